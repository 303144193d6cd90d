"""The evaluator's review loop: a file of suggested codes in, decisions back, agreement out.

Each run writes ``review.csv``: one row per code a coder *suggested* (rules, semantic, and the
codes a prompt implies), with its masked evidence. The participants' own button codes are not
suggestions and are not listed. The evaluator fills in ``decision``:

* ``accept``: the code stands (its confidence becomes 1);
* ``reject``: the code is dropped from every table, configuration and chart;
* ``change``: the code is replaced by ``new_code`` (a codebook id).

The next run (``--review FILE``) applies the decisions by ``review_id`` and reports how often
the evaluator agreed with the coders, by scheme and by method. Decisions carry over into the
new ``review.csv``, so the file can be worked through over several runs. A ``review_id`` names
the entry by its study pseudonym, the step, the code, its polarity, its modality (realised,
intended, hypothetical, negated) and the method, so it stays the same from run to run as long
as the same text gives the same suggestion. Files written before modality joined the id are
still read (:func:`find_decision`). Decisions on CMO codes with shown evidence are also
labelled examples: with the semantic layer on, the next run refits the element head on them.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from reports.codebook import Codebook

DECISIONS = ("accept", "reject", "change")
COLUMNS = (
    "review_id",
    "entry",
    "person",
    "pair",
    "author",
    "month",
    "step",
    "code",
    "label",
    "scheme",
    "cmo_role",
    "polarity",
    "method",
    "confidence",
    "evidence",
    "decision",
    "new_code",
    "note",
)
REQUIRED = ("review_id", "code", "decision", "new_code")
WITHHELD = "[withheld: an answer that was signposted for safety is never shown]"
# Spreadsheet programs run cells that start with these as formulas (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ReviewError(ValueError):
    """A review file that cannot be applied; the message names the file, line and problem."""


def review_id(entry: str, step: str, code: str, polarity: str | None, method: str,
              modality: str = "realised") -> str:
    """``entry:step:code:polarity:modality:method``. Modality is part of the id (issue 13): a
    hope to feel confident and a report of feeling confident are different suggestions."""
    return f"{entry}:{step}:{code}:{polarity or '-'}:{modality}:{method}"


def legacy_id(entry: str, step: str, code: str, polarity: str | None, method: str) -> str:
    """The id review files had before modality joined it (still read)."""
    return f"{entry}:{step}:{code}:{polarity or '-'}:{method}"


def find_decision(decisions: Mapping[str, Decision], entry: str, step: str, code: str,
                  polarity: str | None, method: str, modality: str) -> Decision | None:
    """The decision on one suggestion: by its id, else by the id an older file gave it (no
    modality), and for a code both the rules and the semantic heads made, by what the rules
    alone or the heads alone made of it before (``both`` is new since a rules-only run)."""
    if not decisions:
        return None
    methods = (method, "rules", "semantic") if method == "both" else (method,)
    for m in methods:
        found = decisions.get(review_id(entry, step, code, polarity, m, modality))
        if found is None:
            found = decisions.get(legacy_id(entry, step, code, polarity, m))
        if found is not None:
            return found
    return None


def id_code(rid: str) -> str | None:
    """The code a review id names, in either form (None when it is not a review id)."""
    from reports.coding.model import MODALITIES

    parts = rid.split(":")
    if len(parts) >= 6 and parts[-2] in MODALITIES:
        return parts[-4]
    if len(parts) >= 5:
        return parts[-3]
    return None


@dataclass(frozen=True)
class Decision:
    decision: str
    new_code: str | None
    note: str
    line: int
    evidence: str = ""  # as the file shows it (masked), for the semantic layer's examples


def read_review(path: Path, codebook: Codebook) -> dict[str, Decision]:
    """Decisions by review id; rows left blank are simply not reviewed yet."""
    if not path.is_file():
        raise ReviewError(f"no review file at {path}")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _parse(csv.DictReader(handle), path, codebook)
    except UnicodeDecodeError:
        raise ReviewError(f"{path} is not UTF-8 text; save it as CSV (UTF-8)") from None
    except csv.Error as exc:
        raise ReviewError(f"{path} is not a readable CSV file: {exc}") from None


def _parse(reader: csv.DictReader[str], path: Path, codebook: Codebook) -> dict[str, Decision]:
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        raise ReviewError(
            f"{path}: missing column(s) {', '.join(missing)}; start from the "
            "review.csv a report run wrote"
        )
    out: dict[str, Decision] = {}
    for row in reader:
        line = reader.line_num
        decision = (row.get("decision") or "").strip().lower()
        if not decision:
            continue
        rid = (row.get("review_id") or "").strip()
        code = (row.get("code") or "").strip()
        new_code = (row.get("new_code") or "").strip() or None
        where = f"{path} line {line}"
        if decision not in DECISIONS:
            raise ReviewError(
                f"{where}: decision must be accept, reject or change, not {decision!r}"
            )
        if not rid:
            raise ReviewError(f"{where}: the review_id is empty")
        if code not in codebook:
            raise ReviewError(f"{where}: unknown codebook id {code!r} in column code")
        if decision == "change":
            if new_code is None:
                raise ReviewError(f"{where}: a change needs a new_code (a codebook id)")
            if new_code not in codebook:
                raise ReviewError(f"{where}: unknown codebook id {new_code!r} in column new_code")
        elif new_code is not None and new_code not in codebook:
            raise ReviewError(f"{where}: unknown codebook id {new_code!r} in column new_code")
        if rid in out:
            raise ReviewError(
                f"{where}: review_id {rid} appears twice (first on line {out[rid].line})"
            )
        out[rid] = Decision(
            decision,
            new_code if decision == "change" else None,
            (row.get("note") or "").strip(),
            line,
            (row.get("evidence") or "").strip(),
        )
    return out


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def csv_field(text: str) -> str:
    """One field as ``csv.writer`` (excel dialect, minimal quoting) would write it; the job
    writes hundreds of thousands of rows, and building lines directly is several times faster.
    A test pins the equivalence."""
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def cell(value: Any) -> str:
    """A free-text cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


_FREE_TEXT = tuple(COLUMNS.index(c) for c in ("evidence", "note", "new_code"))


class ReviewWriter:
    """Streams review rows to a CSV file as the run codes entries."""

    def __init__(self, handle: IO[str], *, header: bool = True) -> None:
        self._handle = handle
        self._writer = csv.writer(handle, lineterminator="\n")
        if header:
            self._writer.writerow(COLUMNS)
        self.rows = 0

    def write_text(self, text: str, rows: int) -> None:
        """Rows another ``ReviewWriter`` (in a worker process) already formatted."""
        self._handle.write(text)
        self.rows += rows

    def write(self, row: Mapping[str, Any]) -> None:
        self.write_row(*(row.get(c) for c in COLUMNS))

    def write_row(self, *values: Any) -> None:
        """One row, values in ``COLUMNS`` order. Only free text is guarded against formula
        injection: ids, labels and numbers come from the codebook and the job itself."""
        row = list(values)
        for k in _FREE_TEXT:
            row[k] = cell(row[k])
        self._writer.writerow(row)
        self.rows += 1


def _rate(counts: Mapping[str, int]) -> float | None:
    total = sum(counts.get(d, 0) for d in DECISIONS)
    return round(counts.get("accept", 0) / total, 3) if total else None


@dataclass
class Agreement:
    """How the evaluator's decisions compare with the coders' suggestions."""

    in_file: int = 0
    applied: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    by_scheme: dict[str, Counter[str]] = field(default_factory=dict)
    by_method: dict[str, Counter[str]] = field(default_factory=dict)
    changes: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)

    def record(
        self, scheme: str, method: str, code: str, decision: str, new_code: str | None
    ) -> None:
        self.applied += 1
        self.counts[decision] += 1
        self.by_scheme.setdefault(scheme, Counter())[decision] += 1
        self.by_method.setdefault(method, Counter())[decision] += 1
        if decision == "change" and new_code is not None:
            self.changes[(code, new_code)] += 1
        elif decision == "reject":
            self.rejected[code] += 1

    @property
    def rate(self) -> float | None:
        return _rate(self.counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "decisions_in_file": self.in_file,
            "applied": self.applied,
            # one figure for both reasons, so the file does not reveal whose entries left
            "not_applied": self.in_file - self.applied,
            "accept": self.counts["accept"],
            "reject": self.counts["reject"],
            "change": self.counts["change"],
            "agreement": self.rate,
            "by_scheme": {
                s: {**{d: c[d] for d in DECISIONS}, "agreement": _rate(c)}
                for s, c in sorted(self.by_scheme.items())
            },
            "by_method": {
                m: {**{d: c[d] for d in DECISIONS}, "agreement": _rate(c)}
                for m, c in sorted(self.by_method.items())
            },
            "changes": [
                [a, b, n]
                for (a, b), n in sorted(self.changes.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
            ],
            "most_rejected": [
                [c, n]
                for c, n in sorted(self.rejected.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
            ],
        }


class Reviewer:
    """Applies decisions to suggestions as a run goes, and keeps the agreement figures."""

    def __init__(self, decisions: Mapping[str, Decision] | None = None) -> None:
        self.decisions = dict(decisions or {})
        self.agreement = Agreement(in_file=len(self.decisions))

    @property
    def active(self) -> bool:
        return bool(self.decisions)

    def decide(self, rid: str, scheme: str, method: str, code: str) -> Decision | None:
        decision = self.decisions.get(rid)
        if decision is not None:
            self.agreement.record(scheme, method, code, decision.decision, decision.new_code)
        return decision


def iter_rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a review file as written (for tests and tools)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from csv.DictReader(handle)
