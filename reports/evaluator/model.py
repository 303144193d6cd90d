"""What the evaluator report is made of: options, results, entries, quotes, constants."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from reports.structured import (  # realised_role lives with the coder (review.csv uses it)
    DISTAL_WAVES,
    Code,
    realised_role,
)

__all__ = ["DISTAL_WAVES", "realised_role"]  # the report's names for them, as before

STUDY = "evaluation"
REPORT_VERSION = "1"
UNITS_PER_TASK = 100  # pairs per analysis task
CHUNK_TEXTS = 1500  # texts per pool task: big enough to amortise pickling, small enough to
# keep both workers busy to the end
POOL_MIN_ENTRIES = 3000  # below this a pool costs more to start than it saves
QUOTES_PER_CODE = 2
TIMELINES_SHOWN = 30  # pairs drawn in the HTML (all pairs are in the JSON)
MONTHS_SHOWN = 24
# A share of fewer entries than this swings too much to chart; the house's small-group rule
# (reports.suppression: 5), since each chart's table beside it gives the n of every month.
MIN_MONTH_ENTRIES = 5
STAGES = (("early", 0, 2), ("middle", 3, 5), ("late", 6, 10_000))  # months of the relationship
ROLES = ("mentee", "mentor")
METHOD_SELF = "self-coded"  # how the report names the participants' own button codes
METHOD_PROMPT = "prompt"


class ProgressSink(Protocol):
    def stage(self, name: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class _Silent:
    def stage(self, name: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class Options:
    study: str = STUDY
    review: Path | None = None
    workers: int | None = None  # None: two processes on large programmes, none on small ones
    # None: on where the semantic extra is installed and embeddings are stored; False: off
    semantic: bool | None = None


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    entries: int
    people: int
    pairs: int
    review_rows: int
    agreement: float | None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage (not in JSON)
    coding: str = ""  # which coding layers ran, in a sentence for the command's output

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(self.out_dir / n for n in ("report.html", "report.json", "review.csv"))


@dataclass(slots=True)
class Entry:
    idx: int
    entry_id: int
    label: str  # study pseudonym of the entry
    person: int
    author: str  # "mentee" / "mentor"
    pair_id: int | None
    flow: str
    day: int  # date ordinal of the session the entry is about
    codes: list[Code]
    flagged: frozenset[str]
    texts: tuple[str, ...]  # text steps answered (for coverage)
    wave: str | None = None  # the check-in wave it answers (baseline, m3, ..., closing)
    scale: int | None = None  # a 0-10 scaling answer (OSKAR), if the entry has one


@dataclass
class _Quote:
    rank: tuple[float, int]
    text: str
    entry: int
    step: str
