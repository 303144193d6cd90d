"""SQLite to PostgreSQL, in one place: every dialect difference the storage layer meets.

The storage code and the migrations are written once, in the SQLite dialect (the embedded
default). On PostgreSQL each statement passes through :func:`statement` (queries) or
:func:`migration` (schema scripts) first. Plain portable SQL comes out unchanged apart from
its placeholders, so a new migration or query needs no PostgreSQL twin; what differs is
translated here:

- placeholders ``?`` and ``:name`` become ``%s`` and ``%(name)s`` (and a literal ``%``
  becomes ``%%``), outside string literals only;
- ``x IS ?`` (SQLite's NULL-safe equality) becomes ``x IS NOT DISTINCT FROM %s``;
- ``INSERT OR IGNORE`` becomes ``INSERT ... ON CONFLICT DO NOTHING``;
- an INSERT into a table with an ``id`` key gets ``RETURNING id``, which stands in for
  SQLite's ``lastrowid``;
- ``keys.`` names a table of the key store, which on PostgreSQL is another database: the
  statement is sent there with the prefix removed (``main.`` is dropped likewise);
- in schema scripts: ``INTEGER`` is ``BIGINT`` (SQLite integers are 64-bit), ``BLOB`` is
  ``BYTEA``, ``id INTEGER PRIMARY KEY`` is an identity column, every table gets the
  ``rowid`` column SQLite gives it implicitly (insertion order, read by ``ORDER BY
  rowid``), and a trigger's ``BEGIN ... END`` body becomes a PL/pgSQL trigger function;
- PRAGMAs have no PostgreSQL statement; :mod:`storage.pg` answers the few the code asks.

No database connection here: pure text in, text out, cached per statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from storage.db import migrations


class DialectError(Exception):
    """A statement this layer cannot carry to PostgreSQL (a programming error)."""


KEYS = "keys"  # the key store's schema name in SQLite (ATTACH ... AS keys)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INSERT = re.compile(r"^\s*INSERT\s+(OR\s+(IGNORE)\s+)?INTO\s+([\w.]+)", re.I)
_INSERT_OR_OTHER = re.compile(r"^\s*INSERT\s+OR\s+(?!IGNORE\b)\w+", re.I)
_RETURNING = re.compile(r"\bRETURNING\b", re.I)
_ON_CONFLICT = re.compile(r"\bON\s+CONFLICT\b", re.I)
_EXPLICIT_ID = re.compile(r"^\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+[\w.]+\s*\(\s*id\s*[,)]", re.I)
_FROM_TABLE = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+([\w.]+)", re.I)


@dataclass(frozen=True)
class Statement:
    """One statement as PostgreSQL takes it."""

    sql: str
    keystore: bool  # runs on the key store database
    returns_id: bool  # RETURNING id was added (lastrowid)
    sets_id: dict[str, None] | None = None  # tables given explicit ids (sequence to move)


def _split_literals(sql: str) -> list[tuple[bool, str]]:
    """(is_literal, text) pieces: single-quoted strings and double-quoted names apart."""
    out: list[tuple[bool, str]] = []
    i, start, n = 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            if i > start:
                out.append((False, sql[start:i]))
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # '' inside a literal
                        j += 2
                        continue
                    break
                j += 1
            out.append((True, sql[i : j + 1]))
            i = start = j + 1
            continue
        if ch == "-" and sql.startswith("--", i):
            if i > start:
                out.append((False, sql[start:i]))
            j = sql.find("\n", i)
            j = n if j < 0 else j
            i = start = j  # comments dropped: they may hold '?' or quotes
            continue
        i += 1
    if start < n:
        out.append((False, sql[start:]))
    return out


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


_IS_PARAM = re.compile(r"\bIS\s+(NOT\s+)?(?=\?|:[A-Za-z_])", re.I)


def _placeholders(text: str) -> str:
    # SQLite's "x IS ?" compares NULLs too; PostgreSQL's IS takes only NULL, TRUE, FALSE
    text = _IS_PARAM.sub(lambda m: "IS DISTINCT FROM " if m.group(1)
                         else "IS NOT DISTINCT FROM ", text)
    text = text.replace("%", "%%").replace("?", "%s")
    return _NAMED.sub(r"%(\1)s", text)


def _prefixes(text: str) -> tuple[str, bool]:
    """Drop ``main.`` and ``keys.`` qualifiers; say whether a key store table was named."""
    keys = bool(re.search(rf"\b{KEYS}\.\w", text))
    text = re.sub(rf"\b(?:main|{KEYS})\.(?=[A-Za-z_])", "", text)
    return text, keys


@lru_cache(maxsize=4096)
def id_tables() -> frozenset[str]:
    """Tables whose key is ``id INTEGER PRIMARY KEY`` in the migrations (SQLite's rowid)."""
    found = set()
    for _, _, sql in migrations():
        for m in re.finditer(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(\s*"
                             r"id\s+INTEGER\s+PRIMARY\s+KEY\b", sql, re.I):
            found.add(m.group(1).lower())
    return frozenset(found)


@lru_cache(maxsize=4096)
def statement(sql: str) -> Statement:
    """A runtime statement (query, insert, update, delete) in PostgreSQL's dialect."""
    if _INSERT_OR_OTHER.match(sql):
        raise DialectError("only INSERT OR IGNORE is translated; write ON CONFLICT instead")
    pieces = _split_literals(sql)
    keys = False
    out = []
    for literal, text in pieces:
        if literal:
            out.append(text.replace("%", "%%"))
            continue
        text, named_keys = _prefixes(text)
        keys = keys or named_keys
        out.append(_placeholders(text))
    translated = "".join(out).strip().rstrip(";")
    if keys:
        others = [t for t in _FROM_TABLE.findall(sql)
                  if not t.lower().startswith(KEYS + ".")]
        if others:
            # two databases on PostgreSQL: no statement can reach both
            raise DialectError("a statement names both key store and database tables; "
                               "read them in two statements")
    insert = _INSERT.match(translated)
    returns_id = False
    sets_id = None
    if insert:
        if insert.group(2):
            translated = _INSERT.sub(f"INSERT INTO {insert.group(3)}", translated, count=1)
            if not _ON_CONFLICT.search(translated):
                at = _RETURNING.search(translated)
                clause = " ON CONFLICT DO NOTHING"
                translated = (translated + clause if at is None else
                              translated[: at.start()] + clause.strip() + " "
                              + translated[at.start():])
        table = insert.group(3).lower()
        if table in id_tables() and not keys:
            if not _RETURNING.search(translated):
                translated += " RETURNING id"
                returns_id = True
            if _EXPLICIT_ID.match(translated):
                sets_id = {table: None}
    return Statement(translated, keys, returns_id, sets_id)


# -- schema scripts ---------------------------------------------------------------------
_TRIGGER = re.compile(
    r"^CREATE\s+TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s+(.*?)\s+ON\s+(\w+)\s+"
    r"(?:FOR\s+EACH\s+ROW\s+)?BEGIN\s+(.*)\s+END$", re.I | re.S)
_DROP_TRIGGER = re.compile(r"^DROP\s+TRIGGER\s+(IF\s+EXISTS\s+)?(\w+)$", re.I)
_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?([\w.]+)\s*\((.*)\)$",
                           re.I | re.S)


def split_script(script: str) -> list[str]:
    """Statements of a schema script; a trigger's body (BEGIN ... END) stays whole."""
    statements, current, depth = [], [], 0
    for literal, text in _split_literals(script):
        if literal:
            current.append(text)
            continue
        for part in re.split(r"(;|\bBEGIN\b|\bEND\b)", text, flags=re.I):
            upper = part.upper()
            if upper == "BEGIN" and "TRIGGER" in "".join(current).upper():
                depth += 1
            elif upper == "END" and depth:
                depth -= 1
            if part == ";" and not depth:
                stmt = "".join(current).strip()
                if stmt:
                    statements.append(stmt)
                current = []
            else:
                current.append(part)
    stmt = "".join(current).strip()
    if stmt:
        statements.append(stmt)
    return statements


def _types(text: str) -> str:
    text = re.sub(r"\bid\s+INTEGER\s+PRIMARY\s+KEY\b(\s+AUTOINCREMENT\b)?",
                  "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", text, flags=re.I)
    text = re.sub(r"\bINTEGER\b", "BIGINT", text, flags=re.I)
    return re.sub(r"\bBLOB\b", "BYTEA", text, flags=re.I)


def ddl(stmt: str, triggers: dict[str, str]) -> list[str]:
    """One schema statement as PostgreSQL statements. ``triggers`` maps each trigger made so
    far to its table (PostgreSQL names the table when dropping one); it is updated."""
    stmt = "".join(text if literal else _prefixes(text)[0]
                   for literal, text in _split_literals(stmt)).strip()
    trigger = _TRIGGER.match(stmt)
    if trigger:
        name, when, table, body = trigger.groups()
        triggers[name.lower()] = table
        body = body.strip().rstrip(";")
        # AFTER row triggers ignore the function's result; RETURN NULL ends it
        return [
            f"CREATE OR REPLACE FUNCTION {name}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {body}; RETURN NULL; END $$",
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"CREATE TRIGGER {name} {when} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}_fn()",
        ]
    drop = _DROP_TRIGGER.match(stmt)
    if drop:
        name = drop.group(2)
        table = triggers.get(name.lower())
        if table is None:
            if drop.group(1):
                return []
            raise DialectError(f"DROP TRIGGER {name}: no earlier migration made it")
        return [f"DROP TRIGGER IF EXISTS {name} ON {table}",
                f"DROP FUNCTION IF EXISTS {name}_fn()"]
    create = _CREATE_TABLE.match(stmt)
    if create:
        body = _types(create.group(3))
        # SQLite's implicit rowid (insertion order): the id itself where there is one
        has_id = re.search(r"\bid\s+BIGINT\s+GENERATED", body, re.I)
        rowid = ("rowid BIGINT GENERATED ALWAYS AS (id) STORED" if has_id
                 else "rowid BIGINT GENERATED ALWAYS AS IDENTITY")
        return [f"CREATE TABLE {create.group(1) or ''}{create.group(2)} "
                f"({body.rstrip()},\n    {rowid})"]
    return [_types(stmt)]


def migration(script: str, triggers: dict[str, str]) -> list[str]:
    """A migration (or the key store's schema) as PostgreSQL statements, in order."""
    out: list[str] = []
    for stmt in split_script(script):
        out.extend(ddl(stmt, triggers))
    return out
