"""The house's floor plan, checked over the real import graph and source text.

Arrows run one way: Telegram -> bot -> conversations -> storage <- reports, and reports may
also use conversations' pure parts (the flow catalogue and model, the answer format, the
engine, the safety rule, the sentence encoder, waves and reminder rules), never the chat
itself (service, capabilities, commands, responses, scripted walks, /mydata, /history).
storage imports nothing above it; nothing in the product imports bot (its top) or the test
support. No import cycle joins files of different packages. SQL and AES-GCM live only in
storage/.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("bot", "conversations", "storage", "reports")
# what each product package may import of the others
MAY_IMPORT = {
    "storage": set(),
    "conversations": {"storage"},
    "reports": {"storage", "conversations"},
    "bot": {"storage", "conversations", "reports"},
}
# the chat itself: transport-free, but not for the offline jobs
CHAT = ("conversations.service", "conversations.capabilities", "conversations.commands",
        "conversations.responses", "conversations.scripted", "conversations.mydata",
        "conversations.history")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # imports under `if TYPE_CHECKING:` are for annotations only: no run-time arrow
    return grimp.build_graph(*PRODUCT, include_external_packages=True,
                             exclude_type_checking_imports=True)


def _arrows(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    return [(m, i) for m in sorted(graph.modules) if m.split(".")[0] in PRODUCT
            for i in sorted(graph.find_modules_directly_imported_by(m))]


def test_layers_import_only_downwards(graph: grimp.ImportGraph) -> None:
    wrong = [
        (m, i) for m, i in _arrows(graph)
        if i.split(".")[0] in PRODUCT and i.split(".")[0] != m.split(".")[0]
        and i.split(".")[0] not in MAY_IMPORT[m.split(".")[0]]
    ]
    assert wrong == []


def test_reports_use_only_the_pure_parts_of_conversations(graph: grimp.ImportGraph) -> None:
    wrong = [(m, i) for m, i in _arrows(graph)
             if m.startswith("reports") and i.startswith(CHAT)]
    assert wrong == []


def test_the_product_never_imports_test_support(graph: grimp.ImportGraph) -> None:
    assert [(m, i) for m, i in _arrows(graph) if i.split(".")[0] in ("tests", "benchmarks")] == []


def _package(graph: grimp.ImportGraph, module: str) -> str:
    return module if graph.find_children(module) else module.rpartition(".")[0]


def test_no_import_cycle_joins_files_of_different_packages(graph: grimp.ImportGraph) -> None:
    cycles = []
    for importer, imported in _arrows(graph):
        if imported.split(".")[0] not in PRODUCT:
            continue
        if _package(graph, importer) == _package(graph, imported):
            continue
        back = graph.find_shortest_chain(importer=imported, imported=importer)
        if back is not None:
            cycles.append((importer, *back))
    assert cycles == []


def test_the_cycle_check_sees_lazy_imports(tmp_path: Path) -> None:
    """A cycle hidden in a function body (as the CLI's once was) is still a cycle."""
    for name, body in (("low", "def f():\n    from high import g\n"),
                       ("high", "from low.inner import f\n\ndef g():\n    pass\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(body if name == "high" else "")
    (tmp_path / "low" / "inner.py").write_text("def f():\n    from high import g\n    g()\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        g = grimp.build_graph("low", "high", cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
    assert g.find_shortest_chain(importer="high", imported="low.inner") is not None
    assert g.find_shortest_chain(importer="low.inner", imported="high") is not None


def _product_files(outside: str) -> list[Path]:
    return sorted(p for package in PRODUCT if package != outside
                  for p in (ROOT / package).rglob("*.py"))


def test_no_aes_gcm_outside_storage() -> None:
    assert [str(p.relative_to(ROOT)) for p in _product_files("storage")
            if "AESGCM" in p.read_text(encoding="utf-8")] == []


# SQL statements as they are written in string literals (f-string parts included); prose
# such as a help text naming "PRAGMA quick_check" is not a statement
SQL = re.compile(
    r"\bSELECT\s.+?\sFROM\s|\bINSERT\s+(OR\s+\w+\s+)?INTO\s|\bUPDATE\s+[\w.{}]+\s+SET\s"
    r"|\bDELETE\s+FROM\s|\b(CREATE|ALTER|DROP)\s+(TABLE|INDEX)\s|\bBEGIN\s+IMMEDIATE\b"
    r"|\bPRAGMA\s+[\w.{}]+\s*(\(|=|[\"']|$)|\bATTACH\s+DATABASE\b", re.S)
DRIVER = re.compile(r"^\s*(import|from)\s+(aiosqlite|sqlite3|psycopg|psycopg_pool|asyncpg)\b",
                    re.M)
RAW_DB = re.compile(r"\.db\.(fetchall|fetchone|scalar|execute\w*|transaction|conn)\b")
FSTRING = (getattr(tokenize, "FSTRING_START", -1), getattr(tokenize, "FSTRING_END", -1))
MIDDLE = getattr(tokenize, "FSTRING_MIDDLE", -1)


def _value(token: str) -> str:
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError):  # an f-string before Python 3.12 tokenizes as one
        quoted = re.match(r"^[rRbBfFuU]*('{3}|\"{3}|'|\")(.*)\1$", token, re.S)
        return quoted.group(2) if quoted else token
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def literals(text: str) -> list[tuple[int, str]]:
    """Each string literal with its line, adjacent literals joined as Python joins them (a
    statement is often written over several), f-string fields as {}."""
    out: list[tuple[int, str]] = []
    parts: list[str] = []
    line, depth = 0, 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == FSTRING[0]:
            depth += 1
        if depth or tok.type in (tokenize.STRING, tokenize.NL, tokenize.COMMENT):
            if not parts:
                line = tok.start[0]
            if tok.type == tokenize.STRING:
                parts.append(_value(tok.string))
            elif tok.type == MIDDLE:
                parts.append(tok.string)
            elif depth and tok.type not in FSTRING:
                parts.append("{}")
            if tok.type == FSTRING[1]:
                depth -= 1
            continue
        if parts:
            out.append((line, "".join(parts)))
            parts = []
    return out


def sql_in(text: str) -> list[str]:
    found = [f"imports {m.group(2)}" for m in DRIVER.finditer(text)]
    found += [f"store.db.{m.group(1)}" for m in RAW_DB.finditer(text)]
    found += [f"SQL on line {line}" for line, literal in literals(text) if SQL.search(literal)]
    return found


def test_no_sql_outside_storage() -> None:
    found = {str(p.relative_to(ROOT)): hits for p in _product_files("storage")
             if (hits := sql_in(p.read_text(encoding="utf-8")))}
    assert found == {}


@pytest.mark.parametrize("text", [
    "import sqlite3\n",
    "async def f(store):\n    await store.db.fetchall('x')\n",
    "Q = 'SELECT id FROM entries WHERE x=?'\n",
    "Q = f'DELETE FROM {table} WHERE participant_id=?'\n",
    "Q = ('UPDATE pairs SET matched_at=?')\n",
    "Q = \"PRAGMA wal_checkpoint(TRUNCATE)\"\n",
    "Q = (\n    'SELECT id, name '  # the columns\n    f'FROM {table} WHERE id=?'\n)\n",
])
def test_the_sql_check_finds_sql(text: str) -> None:
    assert sql_in(text)


def test_the_sql_check_finds_storage_own_sql() -> None:
    for name in ("consent.py", "personal_data.py", "bulk.py", "offline.py", "backup.py"):
        assert sql_in((ROOT / "storage" / name).read_text(encoding="utf-8")), name


def test_the_sql_check_lets_prose_be() -> None:
    assert sql_in('HELP = "PRAGMA quick_check instead of integrity_check."\n'
                  'NAME = "data/mentorbot.sqlite3"\nLOGGERS = ("aiosqlite",)\n') == []
