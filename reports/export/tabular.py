"""CSV, JSON Lines and data dictionary writers for researcher exports.

Files written into ``out_dir`` (names are module constants):

- ``answers.csv``: long format, one row per answer. The first column, ``case_id``, is the
  participant's study pseudonym, so rows group by case in spreadsheets and statistics packages.
- ``entries.csv``: wide format, one row per entry with ``<step>_text`` / ``_scale`` / ``_codes``
  columns. Its first column is ``entry_id``, unique per row: QualCoder's survey import refuses a
  file whose first column repeats, so this is the file to import there (each entry becomes a
  QualCoder case, each text column a set of documents, ``case_id`` an attribute).
- ``cases.csv``: one row per participant with the case attributes.
- ``segments.csv``: one row per coded segment, with the quoted span.
- ``entries.jsonl``: one JSON object per entry (sorted keys), answers and segments nested.
- ``codebook.csv``: every code's id, label, place in the code tree, CMO role and definition.
- ``data_dictionary.csv`` / ``data_dictionary.md``: every column of every file above.
- ``datapackage.json``: a Frictionless Data Package describing the CSV files (Table Schema,
  keys, missing values) and the export's settings.

All CSVs are UTF-8 with a byte order mark (Excel and QualCoder's survey import, which decode
with the Windows locale otherwise; ``ExportOptions.bom`` False leaves it out), comma separated,
RFC 4180 quoting (fields with commas, quotes or line breaks are quoted, quotes doubled, CRLF
between records). Line breaks inside answers are kept as written. A text cell that begins with
``= + - @``, a tab or a carriage return gets a leading apostrophe so spreadsheets show it
instead of running it as a formula; :func:`restore_cell` undoes that, and ``segments.csv``
offsets count it, so they index the cell as it stands. Numeric columns are never prefixed:
this module formats them itself, so they cannot hold a formula, and a prefix would turn a
negative ``day`` into text.

The same bundle always gives the same bytes: rows follow bundle order, nothing depends on the
clock, the locale or hash seeds.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import orjson

from reports.export.files import append_file, atomic_binary
from reports.export.model import (
    Case,
    ExportBundle,
    ExportEntry,
    ExportFacts,
    PlacedSegment,
    WideStep,
    facts_of,
    segments_by_entry,
)

ANSWERS_CSV = "answers.csv"
ENTRIES_CSV = "entries.csv"
CASES_CSV = "cases.csv"
SEGMENTS_CSV = "segments.csv"
ENTRIES_JSONL = "entries.jsonl"
CODEBOOK_CSV = "codebook.csv"
DICTIONARY_CSV = "data_dictionary.csv"
DICTIONARY_MD = "data_dictionary.md"
PACKAGE_JSON = "datapackage.json"
BOM = "\ufeff"

CODE_SEPARATOR = ";"
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_CHARS = frozenset(_FORMULA_TRIGGERS)
# Rows are handed to the csv module in batches: one writerows call per batch keeps the
# per-row Python overhead down without holding a whole 100,000-entry file in memory.
_BATCH = 2048


def neutralise(value: str) -> str:
    """Prefix a cell a spreadsheet would read as a formula with an apostrophe."""
    return "'" + value if value.startswith(_FORMULA_TRIGGERS) else value


def restore_cell(value: str) -> str:
    """Undo :func:`neutralise` (for readers that want the participant's exact text back)."""
    if value.startswith("'") and value[1:].startswith(_FORMULA_TRIGGERS):
        return value[1:]
    return value


# ---------------------------------------------------------------------------
# Column descriptions
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    meaning: str


_SHIFTED = ("Entry date (the session date an episode log gives, else the day the entry was "
            "saved, as the evaluator report dates it) shifted by a secret per-participant "
            "offset of up to 182 days either way, never 0 (the same offset for all of a "
            "participant's entries and typed dates, so intervals within one participant are "
            "kept; a mentor's and a mentee's offsets differ); not the real calendar date")
_DATE_MODES = {
    "shift": _SHIFTED,
    "shifted": _SHIFTED,
    "relative": "Empty: this export gives no calendar dates; use day",
    "days": "Empty: this export gives no calendar dates; use day",
    "none": "Empty: this export gives no dates",
}
_DAY_MEANINGS = {
    "shift": "Empty by design in this export: a day count beside a shifted date would give "
    "away the offset (export with --dates relative for days)",
    "relative": "Days since the pair's matching date (negative before it); for an entry with no "
    "matched pair, days since the participant's own first entry",
}
_DATE_MODE_MEANINGS = {
    "shift": "Dates are shifted per participant by a secret offset; day is empty",
    "relative": "No calendar dates; day counts days from the pair's matching date (or the "
    "participant's first entry); date is empty",
}
_DATE_MODE_MEANINGS["shifted"] = _DATE_MODE_MEANINGS["shift"]
_DAY_MEANINGS["shifted"] = _DAY_MEANINGS["shift"]


def _date_meaning(date_mode: str) -> str:
    known = _DATE_MODES.get(date_mode)
    if known is not None:
        return f"{known} (date mode {date_mode!r}); ISO 8601 YYYY-MM-DD"
    return f"Entry date as supplied under date mode {date_mode!r}; ISO 8601 YYYY-MM-DD or empty"


def _day_meaning(date_mode: str) -> str:
    return _DAY_MEANINGS.get(date_mode, "Days since the pair's first session (negative before "
                             "it); empty if unknown")


_WAVE = ("Check-in wave of the entry: baseline, m3, m6, m9, m12 (months since the pair "
         "started), closing or followup (six months after closing); empty for reflections and "
         "session logs")
_CODEBOOK = "Version of the codebook every code id on this row belongs to"


def _entry_columns(date_mode: str) -> list[Column]:
    return [
        Column("entry_id", "string", "Study pseudonym of the entry (one reflection or log)"),
        Column("pair", "string", "Study pseudonym of the mentoring pair; empty if unpaired"),
        Column("role", "string", "Role of the writer when the entry was made (mentee, mentor)"),
        Column("flow", "string", "Flow (question set) the entry was written in"),
        Column("flow_version", "integer", "Version of that flow's definition"),
        Column("question_set_version", "string", "Version of the prompt wording; may be empty"),
        Column("wave", "string", _WAVE),
        Column("date", "date", _date_meaning(date_mode)),
        Column("day", "integer", _day_meaning(date_mode)),
        Column("consent", "string", "Consent state that admitted the entry to this export"),
        Column("codebook_version", "string", _CODEBOOK),
    ]


_CASE_ID = Column("case_id", "string", "Study pseudonym of the participant (the case)")

_ANSWER_COLUMNS = [
    Column("answer_no", "integer", "Position of the answer within its entry, from 1"),
    Column("step_id", "string", "Id of the flow step that asked the question"),
    Column("framework_step", "code", "Codebook id of the GROW/OSKAR step; empty if none"),
    Column("kind", "string", "Input kind of the step: text, choice, multi, scale or date"),
    Column("prompt", "string", "Prompt as shown to the participant (placeholders filled; a "
           "reminder of their previous answer, such as 'Last time you said 6.', left out)"),
    Column("text", "string", "The answer as written or chosen; empty if skipped"),
    Column("scale", "integer", "0-10 scale value for scale steps; empty otherwise"),
    Column("codes", "code list", "Codebook ids chosen with buttons, separated by ';'"),
]

_SEGMENT_COLUMNS = [
    _CASE_ID,
    Column("entry_id", "string", "Study pseudonym of the coded entry"),
    Column("step_id", "string", "Step whose answer the segment codes"),
    Column("answer_no", "integer", "Position of that answer within the entry, from 1"),
    Column("start", "integer", "Start of the span in the answer's text cell exactly as it stands "
           "in answers.csv and entries.csv (after the formula guard's apostrophe, if any): "
           "0-based Unicode code point offset, inclusive"),
    Column("end", "integer", "End of the span in that cell: code point offset, exclusive"),
    Column("code_id", "code", "Codebook id applied to the span"),
    Column("method", "string", "Coding layer that produced it: structured, rules, semantic "
           "(the semantic heads over the answer's stored embedding), both (a rule code the "
           "heads confirm) or an evaluator's review"),
    Column("confidence", "number", "Confidence of that method, 0 to 1"),
    Column("modality", "string", "What the span claims: realised, intended (a goal, hope or "
           "plan), hypothetical or negated; only a realised outcome code is evidence of the "
           "outcome"),
    Column("quote", "string", "The coded span of the answer text"),
    Column("codebook_version", "string", _CODEBOOK),
]

_CASE_FIXED = [
    _CASE_ID,
    Column("pair", "string", "Study pseudonym of the participant's pair; empty if unpaired"),
    Column("role", "string", "Participant's role: mentee or mentor"),
]


def _answer_csv_columns(date_mode: str) -> list[Column]:
    return [_CASE_ID, *_entry_columns(date_mode), *_ANSWER_COLUMNS]


# ---------------------------------------------------------------------------
# Wide layout (entries.csv) and case attribute columns
# ---------------------------------------------------------------------------

_NOT_IDENT = re.compile(r"[^0-9A-Za-z_]+")


def _ident(raw: str, fallback: str) -> str:
    # Column names that R, Stata, SPSS and QualCoder all accept unchanged: QualCoder strips
    # punctuation from headers and the packages reject spaces, so keep [A-Za-z0-9_] only.
    name = _NOT_IDENT.sub("_", raw).strip("_") or fallback
    return f"x_{name}" if name[0].isdigit() else name


def _free_name(base: str, suffixes: Sequence[str], taken: set[str]) -> str:
    candidate, n = base, 1
    while any(candidate + s in taken for s in suffixes):
        n += 1
        candidate = f"{base}_{n}"
    taken.update(candidate + s for s in suffixes)
    return candidate


def _named(steps: Iterable[WideStep], fixed: Iterable[str]) -> list[WideStep]:
    taken = set(fixed)
    out = []
    for step in steps:
        base = _ident(step.step_id, "step")
        if step.occurrence:
            base = f"{base}_{step.occurrence + 1}"
        out.append(replace(step, prompts=list(step.prompts),
                           base=_free_name(base, step.suffixes(), taken)))
    return out


def _entries_csv_columns(facts: ExportFacts) -> tuple[list[Column], list[WideStep]]:
    entry_cols = _entry_columns(facts.date_mode)
    fixed = [entry_cols[0], _CASE_ID, *entry_cols[1:],
             Column("n_answers", "integer", "Number of answers in the entry")]
    layout = _named(facts.steps, (c.name for c in fixed))
    columns = list(fixed)
    for step in layout:
        repeat = f" (repeat {step.occurrence + 1} within an entry)" if step.occurrence else ""
        asked = "; ".join(_one_line(p, 100) for p in step.prompts)
        about = f"step {step.step_id!r}{repeat}; prompt: {asked}" if asked else repr(step.step_id)
        for suffix in step.suffixes():
            if suffix == "_text":
                columns.append(Column(step.base + suffix, "string", f"Answer text to {about}"))
            elif suffix == "_scale":
                columns.append(Column(step.base + suffix, "integer", f"Scale value for {about}"))
            else:
                columns.append(Column(step.base + suffix, "code list",
                                      f"Codebook ids chosen for {about}, separated by ';'"))
    return columns, layout


def _case_attribute_names(cases: Sequence[Case]) -> list[tuple[str, str]]:
    """(attribute key, column name) for every case attribute, keys in sorted order."""
    keys = sorted({k for case in cases for k in case.attributes})
    taken = {c.name for c in _CASE_FIXED}
    return [(k, _free_name(_ident(k, "attribute"), [""], taken)) for k in keys]


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[IO[str]]:
    """Write to a sibling temp file and rename, so a failed export leaves no half file."""
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "w", encoding="utf-8", newline="", buffering=1 << 20) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


def _write_rows(path: Path, header: Sequence[str] | None, rows: Iterable[list[str]],
               bom: bool = True) -> Path:
    with _atomic(path) as fh:
        writer = csv.writer(fh, dialect="excel", lineterminator="\r\n")
        if header is not None:
            if bom:
                fh.write(BOM)
            writer.writerow(header)
        batch: list[list[str]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH:
                writer.writerows(batch)
                batch.clear()
        writer.writerows(batch)
    return path


_QUOTED = re.compile(r'[,"\r\n]')


def _cell(value: str) -> str:
    """One CSV field as the csv module's excel dialect writes it (QUOTE_MINIMAL)."""
    if _QUOTED.search(value) is None:
        return value
    return '"' + value.replace('"', '""') + '"'


def _text_cell(text: str) -> str:
    return _cell("'" + text if text[:1] in _TRIGGER_CHARS else text)


def _write_lines(path: Path, header: Sequence[str] | None,
                 rows: Iterable[list[str]], bom: bool = True) -> Path:
    """Rows whose cells are already CSV fields (see :func:`_cell`), joined here.

    The big files are written this way: the csv module re-examines every field of every row,
    while most fields here repeat (ids, prompts, codes) and are encoded once. A test holds the
    bytes equal to the csv module's.
    """
    with _atomic(path) as fh:
        if header is not None:
            fh.write((BOM if bom else "") + ",".join(_cell(h) for h in header) + "\r\n")
        batch: list[str] = []
        for row in rows:
            batch.append(",".join(row))
            if len(batch) >= _BATCH:
                batch.append("")
                fh.write("\r\n".join(batch))
                batch.clear()
        if batch:
            batch.append("")
            fh.write("\r\n".join(batch))
    return path


class _Neutralised(dict[str, str]):
    """Values that repeat on every row (ids, prompts), neutralised and encoded once."""

    def __missing__(self, key: str) -> str:
        value = self[key] = _cell(neutralise(key))
        return value


def _entry_cells(entry: ExportEntry, memo: _Neutralised, book: str) -> list[str]:
    return [
        memo[entry.pair or ""],
        memo[entry.role],
        memo[entry.flow],
        str(entry.flow_version),
        memo[entry.question_set_version or ""],
        memo[entry.wave or ""],
        memo[entry.date or ""],
        _int(entry.day),
        memo[entry.consent],
        book,
    ]


def _answer_rows(bundle: ExportBundle) -> Iterator[list[str]]:
    memo = _Neutralised()
    book = memo[bundle.codebook_version]
    join = CODE_SEPARATOR.join
    triggers = _TRIGGER_CHARS
    for entry in bundle.entries:
        eid = entry.entry_id
        # the entry's cells are the same on each of its answer rows: joined once
        head = ",".join([memo[entry.person], _text_cell(eid),
                         *_entry_cells(entry, memo, book)])
        for number, a in enumerate(entry.answers, start=1):
            text = a.text or ""
            yield [
                head,
                str(number),
                memo[a.step_id],
                memo[a.framework_step or ""],
                memo[a.kind],
                memo[a.prompt],
                text if text[:1] not in triggers and _QUOTED.search(text) is None
                else _text_cell(text),
                "" if a.scale is None else str(a.scale),
                memo[join(a.codes)],
            ]


def _entry_rows(bundle: ExportBundle, layout: list[WideStep]) -> Iterator[list[str]]:
    memo = _Neutralised()
    book = memo[bundle.codebook_version]
    join = CODE_SEPARATOR.join
    # where each (step, occurrence) writes its text, scale and codes (-1: no such column), so
    # a row costs its answers, not the export's forty-odd step columns
    slots: dict[tuple[str, int], tuple[int, int, int]] = {}
    width = 0
    for step in layout:
        at: dict[str, int] = {}
        for suffix in step.suffixes():
            at[suffix] = width
            width += 1
        slots[(step.step_id, step.occurrence)] = (
            at.get("_text", -1), at.get("_scale", -1), at.get("_codes", -1))
    blank = [""] * width
    for entry in bundle.entries:
        cells = blank.copy()
        seen: dict[str, int] = {}
        for answer in entry.answers:
            n = seen.get(answer.step_id, 0)
            seen[answer.step_id] = n + 1
            text_at, scale_at, codes_at = slots[(answer.step_id, n)]
            if text_at >= 0:
                cells[text_at] = _text_cell(answer.text or "")
            if scale_at >= 0:
                cells[scale_at] = _int(answer.scale)
            if codes_at >= 0:
                cells[codes_at] = memo[join(answer.codes)]
        yield [_text_cell(entry.entry_id), memo[entry.person], *_entry_cells(entry, memo, book),
               str(len(entry.answers)), *cells]


def _case_rows(cases: Sequence[Case], attrs: list[tuple[str, str]]) -> Iterator[list[str]]:
    n = neutralise
    for case in cases:
        yield [n(case.person), n(case.pair or ""), n(case.role),
               *(n(case.attributes.get(key, "")) for key, _ in attrs)]


def _segment_rows(
    bundle: ExportBundle, placed: dict[str, list[PlacedSegment]]
) -> Iterator[list[str]]:
    memo = _Neutralised()
    book = memo[bundle.codebook_version]
    triggers = _TRIGGER_CHARS
    for entry in bundle.entries:
        segments = placed.get(entry.entry_id)
        if not segments:
            continue
        eid = entry.entry_id
        head = memo[entry.person] + "," + _text_cell(eid)
        for p in segments:
            s = p.segment
            text = entry.answers[p.answer_index].text or ""
            quote = text[s.start : s.end]
            # the text's cell starts with the guard's apostrophe: offsets index the cell
            guard = 1 if text[:1] in triggers else 0
            yield [
                head, memo[s.step_id], str(p.answer_index + 1), str(s.start + guard),
                str(s.end + guard), memo[s.code_id], memo[s.method],
                repr(float(s.confidence)), memo[s.modality], _text_cell(quote), book,
            ]


def _headers(facts: ExportFacts) -> tuple[dict[str, list[str]], list[WideStep]]:
    """Header row of each row file (answers, entries, segments) and the named wide layout."""
    entry_columns, layout = _entries_csv_columns(facts)
    return {
        ANSWERS_CSV: [c.name for c in _answer_csv_columns(facts.date_mode)],
        ENTRIES_CSV: [c.name for c in entry_columns],
        SEGMENTS_CSV: [c.name for c in _SEGMENT_COLUMNS],
    }, layout


def _row_files(
    bundle: ExportBundle, layout: list[WideStep]
) -> dict[str, Iterator[list[str]]]:
    placed = segments_by_entry(bundle)
    return {
        ANSWERS_CSV: _answer_rows(bundle),
        ENTRIES_CSV: _entry_rows(bundle, layout),
        SEGMENTS_CSV: _segment_rows(bundle, placed),
    }


def write_cases(facts: ExportFacts, out_dir: Path | str) -> Path:
    attrs = _case_attribute_names(facts.cases)
    return _write_rows(Path(out_dir) / CASES_CSV,
                       [*(c.name for c in _CASE_FIXED), *(c for _, c in attrs)],
                       _case_rows(facts.cases, attrs), facts.options.bom)


def write_csv(bundle: ExportBundle, out_dir: Path | str,
              facts: ExportFacts | None = None) -> list[Path]:
    """Write answers.csv (long), entries.csv (wide), cases.csv and segments.csv.

    Returns the paths in that order. Raises ``ValueError`` if the bundle is inconsistent
    (duplicate entry ids, segments that do not fit their answer). ``facts`` saves working them
    out again when the caller has them.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    facts = facts or facts_of(bundle)
    headers, layout = _headers(facts)
    rows = _row_files(bundle, layout)
    bom = facts.options.bom
    paths = {name: _write_lines(out / name, headers[name], rows[name], bom) for name in rows}
    return [paths[ANSWERS_CSV], paths[ENTRIES_CSV], write_cases(facts, out),
            paths[SEGMENTS_CSV]]


# Writing one export in parts: each process writes the rows of its consecutive share of the
# entries with write_csv_part (header in the first share only) and write_jsonl; assemble_tabular
# then writes cases.csv from the merged facts and appends the parts in order. The result is
# byte for byte what write_csv and write_jsonl give for the whole bundle.


def write_csv_part(bundle: ExportBundle, facts: ExportFacts, part_dir: Path | str,
                   first: bool) -> None:
    """This share's rows of each CSV; the first share's files start with the header."""
    part = Path(part_dir)
    part.mkdir(parents=True, exist_ok=True)
    headers, layout = _headers(facts)
    for name, rows in _row_files(bundle, layout).items():
        _write_lines(part / name, headers[name] if first else None, rows, facts.options.bom)


def assemble_tabular(facts: ExportFacts, part_dirs: Sequence[Path], out_dir: Path | str,
                     *, csv_files: bool = True, jsonl: bool = True) -> list[Path]:
    """The export's CSV and JSON Lines files from the parts in ``part_dirs`` (in order).

    The first part of each file becomes the file (renamed, not copied) and the others are
    appended: the parts live in a folder inside ``out_dir``, on the same file system.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    names = [ANSWERS_CSV, ENTRIES_CSV, SEGMENTS_CSV] if csv_files else []
    if jsonl:
        names.append(ENTRIES_JSONL)
    for name in names:
        paths.append(_join(out / name, [d / name for d in part_dirs]))
    if csv_files:
        paths.insert(2, write_cases(facts, out))
    return paths


def _join(path: Path, parts: Sequence[Path]) -> Path:
    tmp = path.with_name(path.name + ".partial")
    try:
        os.replace(parts[0], tmp)
        with open(tmp, "ab") as fh:
            for part in parts[1:]:
                with open(part, "rb") as src:
                    append_file(src, fh, os.fstat(src.fileno()).st_size)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------
# JSON Lines
# ---------------------------------------------------------------------------

_JSONL_COLUMNS = [
    _CASE_ID,
    *[Column(c.name, c.type, c.meaning) for c in _entry_columns("")],
    Column("answers", "array", "The entry's answers in the order they were asked"),
    *[Column(f"answers[].{c.name}", c.type, c.meaning) for c in _ANSWER_COLUMNS
      if c.name != "codes"],
    Column("answers[].codes", "array of code", "Codebook ids chosen with buttons"),
    Column("answers[].segments", "array", "Coded segments of this answer"),
    *[Column(f"answers[].segments[].{c.name}", c.type, c.meaning) for c in _SEGMENT_COLUMNS
      if c.name in {"start", "end", "code_id", "method", "confidence", "modality"}],
]


def _jsonl_columns(date_mode: str) -> list[Column]:
    date = _date_meaning(date_mode)
    return [Column(c.name, c.type, date) if c.name == "date" else c for c in _JSONL_COLUMNS]


def _entry_object(entry: ExportEntry, placed: list[PlacedSegment], book: str) -> dict[str, Any]:
    # Keys are written in sorted order here so the encoder need not sort them (a fifth of its
    # time); a test holds every line equal to its sort_keys=True re-encoding.
    per_answer: dict[int, list[dict[str, Any]]] = {}
    for p in placed:
        s = p.segment
        per_answer.setdefault(p.answer_index, []).append({
            "code_id": s.code_id, "confidence": float(s.confidence), "end": s.end,
            "method": s.method, "modality": s.modality, "start": s.start,
        })
    return {
        "answers": [
            {
                "answer_no": i + 1,
                "codes": list(a.codes),
                "framework_step": a.framework_step,
                "kind": a.kind,
                "prompt": a.prompt,
                "scale": a.scale,
                "segments": per_answer.get(i, []),
                "step_id": a.step_id,
                "text": a.text,
            }
            for i, a in enumerate(entry.answers)
        ],
        "case_id": entry.person,
        "codebook_version": book,
        "consent": entry.consent,
        "date": entry.date,
        "day": entry.day,
        "entry_id": entry.entry_id,
        "flow": entry.flow,
        "flow_version": entry.flow_version,
        "pair": entry.pair,
        "question_set_version": entry.question_set_version,
        "role": entry.role,
        "wave": entry.wave,
    }


def write_jsonl(bundle: ExportBundle, out_dir: Path | str) -> Path:
    """Write entries.jsonl: one JSON object per line and entry, keys sorted, UTF-8.

    Missing values are ``null`` (never empty strings); text is not apostrophe-prefixed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    placed = segments_by_entry(bundle)
    # orjson writes compact UTF-8 and never NaN (segments_by_entry already refused non-finite
    # confidences); about five times quicker than the json module on 100,000 entries.
    dumps = orjson.dumps
    path = out / ENTRIES_JSONL
    with atomic_binary(path) as fh:
        batch: list[bytes] = []
        for entry in bundle.entries:
            batch.append(dumps(_entry_object(entry, placed.get(entry.entry_id, []),
                                             bundle.codebook_version)))
            if len(batch) >= _BATCH:
                fh.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            fh.write(b"\n".join(batch) + b"\n")
    return path


# ---------------------------------------------------------------------------
# Data dictionary
# ---------------------------------------------------------------------------


def dictionary_columns(facts: ExportFacts | ExportBundle) -> dict[str, list[Column]]:
    """Every column of every file :func:`write_csv` and :func:`write_jsonl` write, by file."""
    if isinstance(facts, ExportBundle):
        facts = facts_of(facts)
    entry_columns, _ = _entries_csv_columns(facts)
    attrs = _case_attribute_names(facts.cases)
    case_columns = [*_CASE_FIXED, *(_CASE_ATTRIBUTES.get(key) or Column(
        name, "string", f"Case attribute {key!r}") for key, name in attrs)]
    return {
        ANSWERS_CSV: _answer_csv_columns(facts.date_mode),
        ENTRIES_CSV: entry_columns,
        CASES_CSV: case_columns,
        SEGMENTS_CSV: list(_SEGMENT_COLUMNS),
        ENTRIES_JSONL: _jsonl_columns(facts.date_mode),
    }


_CASE_ATTRIBUTES = {
    "entries": Column("entries", "integer", "Entries this participant has in the export"),
}

TEXT_MEANINGS = {
    "masked": "Names are masked in all exported text, as the consent question promises ('under "
    "a study code and without names'): the authors' and their partners' first names, titled "
    "names (Dr [name]) and other capitalised names become [name]; emails [email], handles "
    "[handle], phone numbers [number], links [link]. The same masker as the evaluator "
    "report's quotes; it errs towards masking, so a capitalised place or team may show as "
    "[name]",
    "verbatim": "Text exactly as written, names included: only for a study whose ethics "
    "approval allows it (mentorbot export --text verbatim)",
}
OFFSET_MEANINGS = {
    "codepoints": "project.qdpx selection positions count Unicode code points (QualCoder; "
    "pyrefiqda); use --for nvivo, atlasti or maxqda for UTF-16 positions",
    "utf16": "project.qdpx selection positions count UTF-16 code units (an emoji or other "
    "character beyond U+FFFF counts 2), as NVivo, ATLAS.ti and MAXQDA do",
}


def _metadata(facts: ExportFacts) -> list[tuple[str, str, str]]:
    o = facts.options
    return [
        ("study", facts.study, "Study the pseudonyms belong to"),
        ("generated_by", facts.generated_by, "Program and version that wrote the export"),
        ("codebook_version", facts.codebook_version, "Codebook version of all codes (also on "
         "every row); labels and definitions in codebook.csv"),
        ("codebook_hash", facts.codebook_hash, "Content hash of that codebook file"),
        ("date_mode", facts.date_mode, _DATE_MODE_MEANINGS.get(
            facts.date_mode, f"Dates as supplied under mode {facts.date_mode!r}")),
        ("text", o.text, TEXT_MEANINGS.get(o.text, o.text)),
        ("qdpx_offsets", o.offsets, OFFSET_MEANINGS.get(o.offsets, o.offsets)),
        ("qdpx_tool", o.tool or "", "QDA tool the project was written for (--for), if named"),
        ("entries", str(facts.entries), "Entries in the export"),
        ("answers", str(facts.answers), "Answers in the export"),
        ("segments", str(facts.segments), "Coded segments in the export"),
        ("cases", str(len(facts.cases)), "Participants (cases) in the export"),
        ("encoding", "UTF-8 with a byte order mark; CSV per RFC 4180 with CRLF record ends"
         if o.bom else "UTF-8, no byte order mark; CSV per RFC 4180 with CRLF record ends",
         "Character encoding and CSV dialect (entries.jsonl: UTF-8, no BOM)"),
        ("formula_guard", "'", "CSV text cells starting with = + - @ TAB or CR carry this "
         "leading apostrophe; strip it to get the original text (JSONL is unchanged)"),
        ("offsets", "code points", "segments.csv start/end are 0-based Unicode code point "
         "offsets into the answer's text cell as it stands (apostrophe guard included), end "
         "exclusive; entries.jsonl segments index the unguarded text"),
        ("import", "see meaning", "QualCoder: project.qdpx (Project > Import REFI-QDA), or "
         "entries.csv as a survey; NVivo, ATLAS.ti, MAXQDA: project.qdpx exported with --for "
         "TOOL; R, pandas, Stata, SPSS: the CSV files with datapackage.json, or the .dta/.sav "
         "files (--format dta/sav)"),
    ]


def write_data_dictionary(bundle: ExportBundle | ExportFacts,
                          out_dir: Path | str) -> list[Path]:
    """Write data_dictionary.csv and data_dictionary.md; returns both paths."""
    facts = facts_of(bundle) if isinstance(bundle, ExportBundle) else bundle
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = dictionary_columns(facts)
    meta = _metadata(facts)

    rows: list[list[str]] = [
        [neutralise(x) for x in ("(export)", key, "metadata", meaning, value)]
        for key, value, meaning in meta
    ]
    for file, columns in files.items():
        rows.extend([neutralise(x) for x in (file, c.name, c.type, c.meaning, "")]
                    for c in columns)
    csv_path = _write_rows(out / DICTIONARY_CSV, ["file", "column", "type", "meaning", "value"],
                           rows, facts.options.bom)

    lines = [f"# Data dictionary: {_md(facts.study)}", "", "| item | value | meaning |",
             "|---|---|---|"]
    lines += [f"| {_md(k)} | {_md(v)} | {_md(m)} |" for k, v, m in meta]
    for file, columns in files.items():
        lines += ["", f"## `{file}`", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {_md(c.type)} | {_md(c.meaning)} |" for c in columns]
    md_path = out / DICTIONARY_MD
    with _atomic(md_path) as fh:
        fh.write("\n".join(lines) + "\n")
    return [csv_path, md_path]


_MD_ESCAPES = str.maketrans({"|": "\\|", "\\": "\\\\", "<": "&lt;", ">": "&gt;", "&": "&amp;",
                             "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]"})


def _md(text: str) -> str:
    # Prompts reach the dictionary; a Markdown viewer must not render one as HTML or a link.
    return " ".join(text.split()).translate(_MD_ESCAPES)
