"""The evaluator's report: extract -> code -> configure -> aggregate -> render.

``build_report`` reads the entries whose authors currently consent to ``evaluation`` (through
``reports.extract``, the one place the consent rule is applied), codes them with the structured
and rules layers (and the optional semantic one), applies the evaluator's review decisions,
infers relationship phases, builds CMO configurations per pair and outcome, and writes:

* ``report.json``: everything, machine-readable, keys sorted, no run timestamps, stamped with
  the codebook version and hash: the same database, codebook and review file give the same
  bytes;
* ``report.html``: the report an evaluator hands on (Jinja2 with autoescape; charts embedded as
  PNG data URIs, so it opens offline);
* ``review.csv``: one row per suggested code, for the evaluator to accept, reject or change.

People appear only as study pseudonyms (``P-``, ``D-``, ``E-``); quotes are single sentences
with names masked, never from an answer that was signposted for safety or that touches a
sensitive topic.

Scale: rule coding is most of the work, so free texts go in chunks to a process pool while the
main process decrypts the next batches; results are merged in submission order, so the output
does not depend on which worker finished first.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import sys
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Protocol

from conversations.catalogue import load_flows
from reports import extract
from reports.batch import collector_paused
from reports.codebook import (
    COARSE_ROLE,
    OUTCOME_ROLES,
    SCHEME_CLIMATE,
    SCHEME_CMO,
    SCHEME_DOMAIN,
    SCHEME_EPISODE_KIND,
    SCHEME_FACTOR,
    SCHEME_PHASE,
    SCHEME_TOPIC,
    Codebook,
    load_codebook,
)
from reports.coding.model import (
    METHOD_RULES,
    METHOD_SEMANTIC,
    METHOD_STRUCTURED,
    POLARITY_HELPING,
    POLARITY_HINDERING,
)
from reports.coding.rules import fold_factor
from reports.configurations import (
    GRADE_RULES,
    GRADES,
    THEORY_RULES,
    WINDOW_AFTER_DAYS,
    WINDOW_BEFORE_DAYS,
    EntryRow,
    Pattern,
    Summary,
    UnitPayload,
    UnitResult,
)
from reports.phases import DAYS_PER_MONTH, KRAM_PRE, PHASES, PairHistory, Timeline, month_of
from reports.review import WITHHELD, Reviewer, ReviewError, ReviewWriter, read_review, review_id
from reports.structured import (
    CANDIDATES_KEPT,
    OTHER_SUFFIX,
    ChunkCoder,
    ChunkResult,
    Code,
    StepIndex,
    TextJob,
    analyse_chunk,
    code_chunk,
    init_worker,
    split_entry,
)
from storage.models import Scope
from storage.pseudonyms import Pseudonymiser
from storage.store import Store

STUDY = "evaluation"
REPORT_VERSION = "1"
UNITS_PER_TASK = 100  # pairs per analysis task
CHUNK_TEXTS = 1500  # texts per pool task: big enough to amortise pickling, small enough to
# keep both workers busy to the end
POOL_MIN_ENTRIES = 3000  # below this a pool costs more to start than it saves
QUOTES_PER_CODE = 2
TIMELINES_SHOWN = 30  # pairs drawn in the HTML (all pairs are in the JSON)
MONTHS_SHOWN = 24
MIN_MONTH_ENTRIES = 10  # a share of fewer entries than this swings too much to chart
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
    semantic: bool = False


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    entries: int
    people: int
    pairs: int
    review_rows: int
    agreement: float | None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage (not in JSON)

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


@dataclass
class _Quote:
    rank: tuple[float, int]
    text: str
    entry: int
    step: str


# ---------------------------------------------------------------------------------------
# coding stage
# ---------------------------------------------------------------------------------------

_Meta = tuple[int, str, str]  # (entry position, step, text) of each text in a chunk


class _Coder:
    """Sends free texts out in chunks and hands results back in submission order."""

    def __init__(
        self,
        codebook: Codebook,
        decisions: Mapping[str, Any],
        workers: int,
        flows: Mapping[str, Any],
    ) -> None:
        self.local: ChunkCoder | None = None
        self.pool: ProcessPoolExecutor | None = None
        if workers > 0:
            packaged = load_codebook()
            # the packaged codebook travels as its hash: each worker loads its own copy
            book: Codebook | str = (
                codebook.content_hash
                if packaged.content_hash == codebook.content_hash
                else codebook
            )
            # spawn, not fork: the database connection lives in a thread of this process
            self.pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker,
                initargs=(book, dict(decisions)),
            )
        else:
            self.local = ChunkCoder(codebook, decisions, flows)
        self.jobs: list[TextJob] = []
        self.meta: list[_Meta] = []
        self.pending: deque[tuple[Future[ChunkResult] | ChunkResult, list[_Meta]]] = deque()

    def add(self, job: TextJob, meta: _Meta) -> None:
        self.jobs.append(job)
        self.meta.append(meta)
        if len(self.jobs) >= CHUNK_TEXTS:
            self.flush()

    def flush(self) -> None:
        if not self.jobs:
            return
        if self.local is not None:
            self.pending.append((self.local.code(self.jobs), self.meta))
        else:
            assert self.pool is not None
            self.pending.append((self.pool.submit(code_chunk, self.jobs), self.meta))
        self.jobs, self.meta = [], []

    def ready(self, wait: bool) -> Iterator[tuple[ChunkResult, list[_Meta]]]:
        """Finished chunks, oldest first; stops at the first unfinished one unless ``wait``."""
        while self.pending:
            result, meta = self.pending[0]
            if isinstance(result, Future):
                if not wait and not result.done():
                    return
                result = result.result()
            self.pending.popleft()
            yield result, meta

    def submit_units(
        self, payloads: list[UnitPayload]
    ) -> Future[list[UnitResult]] | list[UnitResult]:
        """Per-unit analysis of a batch: in a worker once coding is done, else here."""
        if self.pool is None:
            assert self.local is not None
            return self.local.analyse(payloads)
        return self.pool.submit(analyse_chunk, payloads)

    @staticmethod
    def collect(
        pending: Iterable[Future[list[UnitResult]] | list[UnitResult]],
    ) -> Iterator[UnitResult]:
        for batch in pending:
            yield from (batch.result() if isinstance(batch, Future) else batch)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class _Run:
    def __init__(
        self, store: Store, codebook: Codebook, options: Options, progress: ProgressSink
    ) -> None:
        self.store = store
        self.codebook = codebook
        self.options = options
        self.progress = progress
        self.flows = load_flows()
        self.index = StepIndex(self.flows, codebook)
        self.entries: list[Entry] = []
        self.quotes: dict[tuple[str, str], list[_Quote]] = {}
        self.reviewer = Reviewer()
        self.semantic_note = "not requested (--semantic turns it on where it is installed)"
        self.semantic: Any = None
        self.rule_texts = 0
        self.workers = 0
        self.coder: _Coder | None = None
        self._subjects: dict[int, str] = {}
        self._matched_day: dict[int, int] = {}
        # a pseudonym is an HMAC: one per person and pair, not one per code
        self._person_label: dict[int, str] = {}
        self._pair_label: dict[int, str] = {}

    # -- reading and coding -------------------------------------------------------------
    async def read(self, review_out: Path) -> None:
        store = self.store
        options = self.options
        if options.review is not None:
            self.reviewer = Reviewer(read_review(options.review, self.codebook))
        if options.semantic:
            self._load_semantic()
        # the report's own namespace: never the pseudonyms of an export of the same study
        self.pseudonyms = await Pseudonymiser.for_study(store.vault, options.study, "report")
        consenting = await extract.consenting(store, Scope.EVALUATION)
        self.consenting = consenting
        self.pairs = {p.id: p for p in await store.programmes.pairs()}
        self._matched_day = {
            pid: date.fromisoformat(p.matched_at[:10]).toordinal()
            for pid, p in self.pairs.items()
            if p.matched_at
        }
        # partners' names too: the same names exports mask
        self.names: dict[int, tuple[str, ...]] = await extract.mask_names(store, consenting)
        total = 0
        if consenting:
            total = sum(n for pid, n in (await store.entries.complete_counts()).items()
                        if pid in consenting)
        workers = options.workers
        if workers is None:
            workers = min(2, os.cpu_count() or 1) if total >= POOL_MIN_ENTRIES else 0
        self.workers = workers
        # the pool stays up for the per-pair analysis; build_report closes it
        coder = self.coder = _Coder(self.codebook, self.reviewer.decisions, workers, self.flows)
        review_out.parent.mkdir(parents=True, exist_ok=True)
        with review_out.open("w", encoding="utf-8", newline="") as handle:
            self.writer = ReviewWriter(handle)
            self.progress.stage("Coding entries", total)
            async for record in extract.entries(store, Scope.EVALUATION):
                self._split(record, coder)
                for done, meta in coder.ready(wait=False):
                    self._merge(done, meta)
            coder.flush()
            for done, meta in coder.ready(wait=True):
                self._merge(done, meta)

    def _split(self, record: extract.EntryRecord, coder: _Coder) -> None:
        split = split_entry(record.flow, record.answers, self.index)
        when = split.day or record.created_at[:10]
        try:
            day = date.fromisoformat(when).toordinal()
        except ValueError:
            day = date.fromisoformat(record.created_at[:10]).toordinal()
        idx = len(self.entries)
        entry = Entry(
            idx=idx,
            entry_id=record.entry_id,
            label=self.pseudonyms.entry(record.entry_id),
            person=record.participant_id,
            author=sys.intern(record.role.value),
            pair_id=record.pair_id,
            flow=sys.intern(record.flow),
            day=day,
            codes=split.codes,
            flagged=frozenset(record.flagged),
            texts=tuple(s for s, _ in split.texts if not s.endswith(OTHER_SUFFIX)),
        )
        self.entries.append(entry)
        self._subjects[record.participant_id] = record.subject_ref
        if split.texts:
            names = self.names.get(record.participant_id, ())
            pair = self.pair_label(entry.pair_id) if entry.pair_id is not None else ""
            start = self._matched_day.get(entry.pair_id) if entry.pair_id is not None else None
            month = "" if start is None else str(month_of(day - start) + 1)
            person = self.person_label(entry.person)
            for step, text in split.texts:
                quotable = step.split(".", 1)[0] not in entry.flagged
                ctx = (entry.label, person, pair, entry.author, month, entry.flow, step)
                coder.add((text, entry.author, names, quotable, ctx), (idx, step, text))
                self.rule_texts += 1
        self.progress.advance()

    def _merge(self, result: ChunkResult, meta: list[_Meta]) -> None:
        self.writer.write_text(result.review_csv, result.review_rows)
        new = tuple.__new__  # Code is a NamedTuple: build it from the worker's plain tuples
        for codes, (idx, _, _) in zip(result.codes, meta, strict=True):
            if codes:
                self.entries[idx].codes.extend(new(Code, c) for c in codes)
        for scheme, method, code, decision, new_code in result.applied:
            self.reviewer.agreement.record(scheme, method, code, decision, new_code)
        for code, role, rank, text, _, position in result.candidates:
            idx, step, _ = meta[position]
            bucket = self.quotes.setdefault((code, role), [])
            bucket.append(_Quote(rank, text, idx, step))
            if len(bucket) > 4 * CANDIDATES_KEPT:
                bucket.sort(key=lambda q: q.rank)
                del bucket[CANDIDATES_KEPT:]
        if self.semantic is not None:
            self._semantic(meta)

    def person_label(self, person: int) -> str:
        label = self._person_label.get(person)
        if label is None:
            label = self._person_label[person] = self.pseudonyms.person(self._subjects[person])
        return label

    def pair_label(self, pair_id: int) -> str:
        label = self._pair_label.get(pair_id)
        if label is None:
            label = self._pair_label[pair_id] = self.pseudonyms.pair(pair_id)
        return label

    # -- optional semantic layer --------------------------------------------------------
    def _load_semantic(self) -> None:
        from reports.coding import semantic

        ok, why = semantic.availability()
        if not ok:
            self.semantic_note = why
            return
        examples = [
            semantic.Example(d.new_code or rid.split(":")[2], d.evidence)
            for rid, d in sorted(self.reviewer.decisions.items())
            if d.decision in ("accept", "change")
            and d.evidence
            and not d.evidence.startswith("[withheld")
        ]
        if not examples:
            self.semantic_note = (
                "available, but no labelled examples yet: accept or change "
                "codes in review.csv and pass it with --review"
            )
            return
        self.semantic = semantic.SemanticCoder(examples, self.codebook)
        self.semantic_note = f"on, matching against {len(examples)} reviewed examples"

    def _semantic(self, meta: list[_Meta]) -> None:
        """Semantic suggestions for a chunk, reviewed and listed like the rules' ones."""
        from reports.structured import Masker

        texts = [text for _, _, text in meta]
        for (idx, step, text), hits in zip(meta, self.semantic.code(texts), strict=True):
            entry = self.entries[idx]
            quotable = step.split(".", 1)[0] not in entry.flagged
            names = self.names.get(entry.person, ())
            evidence = Masker(names).mask(text) if quotable else WITHHELD
            for hit in hits:
                code = Code(
                    hit.code_id,
                    hit.scheme,
                    hit.cmo_role,
                    hit.level,
                    hit.polarity,
                    step,
                    0,
                    len(text),
                    METHOD_SEMANTIC,
                    hit.confidence,
                )
                rid = review_id(entry.label, step, code.code_id, code.polarity, code.method)
                decision = self.reviewer.decide(rid, code.scheme, code.method, code.code_id)
                pair = self.pair_label(entry.pair_id) if entry.pair_id is not None else ""
                self.writer.write_row(
                    rid,
                    entry.label,
                    self.person_label(entry.person),
                    pair,
                    entry.author,
                    "",
                    self.index.label(entry.flow, step),
                    code.code_id,
                    self.codebook.get(code.code_id).label,
                    code.scheme,
                    code.cmo_role or "",
                    code.polarity or "",
                    code.method,
                    f"{code.confidence:.3f}",
                    evidence,
                    decision.decision if decision else "",
                    (decision.new_code or "") if decision else "",
                    decision.note if decision else "",
                )
                if decision is not None and decision.decision == "reject":
                    continue
                if decision is not None and decision.decision == "change" and decision.new_code:
                    scheme, role, level, polarity = self.index.labels[decision.new_code]
                    code = code._replace(
                        code_id=decision.new_code,
                        scheme=scheme,
                        cmo_role=role,
                        level=level,
                        polarity=polarity,
                    )
                entry.codes.append(code)


# ---------------------------------------------------------------------------------------
# analysis
# ---------------------------------------------------------------------------------------


def _method(code: Code) -> str:
    if code.method == METHOD_STRUCTURED:
        return METHOD_SELF if code.start < 0 else METHOD_PROMPT
    return code.method


def _share(n: int, d: int) -> float:
    return round(n / d, 4) if d else 0.0


BEST_SHOWN = 15  # strongest pair configurations listed in the HTML
# Stands in for the configuration items while the report is encoded; the items are written
# from their own encoded lines. The random part keeps any entry text from ever matching it.
ITEMS_MARKER = f"configuration-items-{secrets.token_hex(12)}"


@dataclass
class _TheoryTally:
    configurations: int = 0
    units: set[str] = field(default_factory=set)
    grades: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


class _ConfigurationSink:
    """Takes each unit's configurations as they arrive (already encoded) and keeps only
    running totals, so a large programme never holds tens of thousands of objects."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.patterns: dict[tuple[str, str], Pattern] = {}
        self.by_grade: Counter[str] = Counter()
        self.unconfigured: Counter[str] = Counter()
        self.theories = {r.theory: _TheoryTally() for r in THEORY_RULES}
        self.codes: set[str] = set()
        self.best: list[tuple[int, str, str, str]] = []

    def add(
        self, label: str, key: str, items: Iterable[tuple[str, Summary]], missing: Counter[str]
    ) -> None:
        self.unconfigured.update(missing)
        self.codes.update(missing)
        for text, c in items:
            self.items.append(text)
            pattern = self.patterns.get((c.outcome, c.outcome_role))
            if pattern is None:
                pattern = self.patterns[(c.outcome, c.outcome_role)] = Pattern(
                    c.outcome, c.outcome_role
                )
            pattern.add(c)
            self.by_grade[c.grade] += 1
            self.codes.add(c.outcome)
            self.codes.update(code for _, code, _ in c.chain)
            for theory in c.theories:
                t = self.theories[theory]
                t.configurations += 1
                t.units.add(key)
                t.grades[c.grade] += 1
                t.outcomes[c.outcome] += 1
            if c.grade == "strong":
                self.best.append((-c.entries, label, c.outcome, text))
                if len(self.best) > 4 * BEST_SHOWN:
                    self.best.sort(key=lambda b: b[:3])
                    del self.best[BEST_SHOWN:]

    def best_items(self) -> list[dict[str, Any]]:
        return [json.loads(b[3]) for b in sorted(self.best, key=lambda b: b[:3])[:BEST_SHOWN]]


_OUTCOME_SCHEMES = frozenset({SCHEME_CMO, SCHEME_DOMAIN})
_ELEMENT_SCHEMES = frozenset({SCHEME_CMO, SCHEME_FACTOR})


@dataclass
class _ElementStats:
    entries: int = 0
    people: set[int] = field(default_factory=set)
    units: set[str] = field(default_factory=set)
    methods: Counter[str] = field(default_factory=Counter)
    authors: Counter[str] = field(default_factory=Counter)


class _Tally:
    """Entry-level counts for every section, gathered in one pass over the codes (the job's
    largest loop: about ten codes per entry)."""

    def __init__(self, codebook: Codebook, index: StepIndex) -> None:
        self.index = index
        self.counterparts = dict(codebook.rules.factor_counterparts) if codebook.rules else {}
        reverse = {v: k for k, v in self.counterparts.items()}
        self.theme = {c: reverse.get(c, c) for c in codebook.codes}
        self.default_polarity = {c: d.polarity or "" for c, d in codebook.codes.items()}
        self.elements: dict[tuple[str, str], _ElementStats] = {}
        self.methods: Counter[str] = Counter()
        self.flows: Counter[str] = Counter()
        self.authors: Counter[str] = Counter()
        self.people: set[tuple[int, str]] = set()
        self.first_day = 10**9
        self.last_day = 0
        self.month_totals: Counter[tuple[str, int]] = Counter()
        self.domain_hits: Counter[tuple[str, str, int]] = Counter()
        self.domain_totals: Counter[tuple[str, str]] = Counter()
        self.factors: Counter[tuple[str, str]] = Counter()
        self.factor_authors: Counter[tuple[str, str, str]] = Counter()
        self.factor_stages: Counter[tuple[str, str, str]] = Counter()
        self.climate: Counter[tuple[str, int]] = Counter()
        self.topics: Counter[str] = Counter()
        self.coverage: Counter[tuple[str, str]] = Counter()

    def entry(self, e: Entry, month: int, unit: str) -> None:
        author = e.author
        self.flows[e.flow] += 1
        self.authors[author] += 1
        self.people.add((e.person, author))
        self.first_day = min(self.first_day, e.day)
        self.last_day = max(self.last_day, e.day)
        shown = 0 <= month < MONTHS_SHOWN
        if shown:
            self.month_totals[(author, month)] += 1
        stage = next((s for s, lo, hi in STAGES if lo <= month <= hi), "before")
        seen: set[tuple[str, str]] = set()
        found: dict[str, set[str]] = {}
        methods = self.methods
        for c in e.codes:
            method = _method(c)
            methods[method] += 1
            scheme = c.scheme
            role = c.cmo_role
            code = c.code_id
            if role is not None and c.start >= 0 and role in COARSE_ROLE:
                found.setdefault(c.step, set()).add(COARSE_ROLE[role])
            if scheme == SCHEME_CMO:
                if role is None:
                    continue
                key = (code, role)
                s = self.elements.get(key)
                if s is None:
                    s = self.elements[key] = _ElementStats()
                s.methods[method] += 1
                if key in seen:
                    continue
                seen.add(key)
                s.entries += 1
                s.people.add(e.person)
                s.units.add(unit)
                s.authors[author] += 1
                continue
            if scheme == SCHEME_FACTOR:
                polarity = c.polarity or self.default_polarity[code]
                folded = fold_factor(code, polarity, self.counterparts)
                key = ("factor", folded)
                if key in seen:
                    continue
                seen.add(key)
                theme = self.theme[folded.split(":")[0]]
                self.factors[(theme, polarity)] += 1
                self.factor_authors[(theme, polarity, author)] += 1
                self.factor_stages[(theme, polarity, stage)] += 1
                continue
            key = (scheme, code)
            if key in seen:
                continue
            seen.add(key)
            if scheme == SCHEME_DOMAIN:
                self.domain_totals[(author, code)] += 1
                if shown:
                    self.domain_hits[(author, code, month)] += 1
            elif scheme == SCHEME_CLIMATE:
                if shown:
                    self.climate[(code, month)] += 1
            elif scheme == SCHEME_TOPIC:
                self.topics[code] += 1
        for step in e.texts:
            info = self.index.get(e.flow, step)
            if info is None:
                continue
            for role_name in info.roles:
                self.coverage[(role_name, "answers")] += 1
                self.coverage[(role_name, "coded")] += role_name in found.get(step, ())


@dataclass
class _Unit:
    key: str  # "D:<pair id>" or "P:<participant id>"
    label: str
    start: int  # date ordinal day 0
    entries: list[Entry] = field(default_factory=list)
    matched: bool = False


class _Analysis:
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.codebook = run.codebook
        self.labels: dict[str, str] = {}
        self.sensitive = run.codebook.sensitive_ids()
        self.month: dict[int, int] = {}  # entry position -> month of its relationship

    def label(self, code: str) -> str:
        self.labels[code] = self.codebook.get(code).label
        return self.labels[code]

    async def units(self) -> list[_Unit]:
        run = self.run
        by_key: dict[str, _Unit] = {}
        for entry in run.entries:
            if entry.pair_id is not None and entry.pair_id in run.pairs:
                key = f"D:{entry.pair_id}"
                if key not in by_key:
                    matched_at = run.pairs[entry.pair_id].matched_at
                    start = (
                        date.fromisoformat(matched_at[:10]).toordinal()
                        if matched_at
                        else entry.day
                    )
                    by_key[key] = _Unit(
                        key, run.pair_label(entry.pair_id), start, matched=matched_at is not None
                    )
            else:
                key = f"P:{entry.person}"
                if key not in by_key:
                    by_key[key] = _Unit(key, run.person_label(entry.person), entry.day)
            by_key[key].entries.append(entry)
        for unit in by_key.values():
            if not unit.matched:
                unit.start = min(e.day for e in unit.entries)
        return sorted(by_key.values(), key=lambda u: u.label)

    async def lifecycle(self, units: Sequence[_Unit]) -> dict[int, list[tuple[str, str]]]:
        """Pair-level events that belong to no one person, or to a consenting one
        (storage.lifecycle.usable: never those derived from episode logs)."""
        run = self.run
        wanted = {int(u.key[2:]) for u in units if u.key.startswith("D:")}
        usable = await run.store.lifecycle.usable_events(wanted, run.consenting)
        return {pid: [(e.event, e.at) for e in found] for pid, found in usable.items() if found}

    async def run_all(self) -> dict[str, Any]:
        run = self.run
        units = await self.units()
        events = await self.lifecycle(units)
        run.progress.stage("Phases and configurations", len(units))
        assert run.coder is not None
        tally = _Tally(self.codebook, run.index)
        # Walk the units once: each yields its workers' payload and feeds the entry-level
        # tallies; batches go out as they fill, so workers configure while this walk goes on.
        pending: list[Future[list[UnitResult]] | list[UnitResult]] = []
        batch: list[UnitPayload] = []
        for unit in units:
            batch.append(self._walk(unit, events, tally))
            if len(batch) == UNITS_PER_TASK:
                pending.append(run.coder.submit_units(batch))
                batch = []
        if batch:
            pending.append(run.coder.submit_units(batch))
        timelines: dict[str, Timeline] = {}
        sink = _ConfigurationSink()
        for label, key, timeline, items, missing in run.coder.collect(pending):
            if timeline is not None:
                timelines[label] = timeline
            sink.add(label, key, items, missing)
            run.progress.advance()
        run.progress.stage("Writing the report", None)
        return self.assemble(units, timelines, sink, tally)

    def _walk(
        self, unit: _Unit, events: Mapping[int, Sequence[tuple[str, str]]], tally: _Tally
    ) -> UnitPayload:
        """One unit's entries, once: configurable codes, phase evidence, and the tallies."""
        is_pair = unit.key.startswith("D:")
        history = PairHistory() if is_pair else None
        if history is not None:
            if unit.matched:
                history.events.append((0, "matched"))
            for event, at in events.get(int(unit.key[2:]), ()):
                if event != "matched":
                    history.events.append((at.date().toordinal() - unit.start, event))
        rows: list[EntryRow] = []
        for e in unit.entries:
            day = e.day - unit.start
            month = month_of(day)
            self.month[e.idx] = month
            tally.entry(e, month, unit.key)
            elements = set()
            outcomes = set()
            for c in e.codes:
                role = c.cmo_role
                scheme = c.scheme
                if role is not None:
                    if role in OUTCOME_ROLES:
                        if scheme in _OUTCOME_SCHEMES:
                            outcomes.add((c.code_id, role))
                    elif scheme in _ELEMENT_SCHEMES:
                        elements.add((c.code_id, role))
                if history is not None:
                    if scheme == SCHEME_EPISODE_KIND:
                        history.events.append((day, c.code_id))
                    elif scheme == SCHEME_PHASE:
                        if c.start < 0 and e.author == "mentor":
                            history.views.append((day, c.code_id))
                        elif c.method != METHOD_STRUCTURED:
                            history.signals.append((day, c.code_id, c.confidence))
            if history is not None:
                history.contacts.append(day)
            if elements or outcomes:
                rows.append(
                    (
                        e.label,
                        day,
                        e.author,
                        e.person,
                        tuple(sorted(elements)),
                        tuple(sorted(outcomes)),
                    )
                )
        return unit.label, unit.key, rows, history

    # -- assembling the report data -----------------------------------------------------
    def assemble(
        self,
        units: Sequence[_Unit],
        timelines: Mapping[str, Timeline],
        sink: _ConfigurationSink,
        tally: _Tally,
    ) -> dict[str, Any]:
        run = self.run
        unit_of: dict[int, _Unit] = {}
        for unit in units:
            for e in unit.entries:
                unit_of[e.idx] = unit
        quotes, quote_ids = self._quotes(unit_of, self.month)
        data: dict[str, Any] = {
            "report": "evaluator",
            "report_version": REPORT_VERSION,
            "codebook": {
                "version": self.codebook.version,
                "hash": self.codebook.content_hash,
                "rules_version": self.codebook.rules_version,
            },
            "study": run.options.study,
        }
        data["summary"] = self._summary(units, tally)
        data["cmo_framework"] = self._framework(tally, quote_ids)
        data["configurations"] = self._configurations(sink, quote_ids)
        data["phases"] = self._phases(timelines)
        data["learning_domains"] = self._domains(tally)
        data["factors"] = self._factors(tally)
        data["climate"] = self._climate(tally)
        data["topics"] = self._topics(tally)
        data["programme_theories"] = self._theories(sink)
        data["review"] = run.reviewer.agreement.to_json() | {
            "rows_written": run.writer.rows,
            "file_given": run.options.review is not None,
        }
        data["method"] = self._method(tally)
        data["quotes"] = quotes
        for code in sink.codes:
            self.label(code)
        data["labels"] = dict(sorted(self.labels.items()))
        self.best = sink.best_items()
        self.items = sink.items
        return data

    def _quotes(
        self, unit_of: Mapping[int, _Unit], month: Mapping[int, int]
    ) -> tuple[dict[str, Any], dict[tuple[str, str], list[str]]]:
        run = self.run
        chosen: dict[tuple[str, str], list[_Quote]] = {}
        for key, bucket in run.quotes.items():
            picked: list[_Quote] = []
            people: set[int] = set()
            texts: set[str] = set()
            for q in sorted(bucket, key=lambda q: q.rank):
                person = run.entries[q.entry].person
                if person in people or q.text in texts:
                    continue
                picked.append(q)
                people.add(person)
                texts.add(q.text)
                if len(picked) == QUOTES_PER_CODE:
                    break
            chosen[key] = picked
        quotes: dict[str, Any] = {}
        ids: dict[tuple[str, str], list[str]] = {}
        by_text: dict[tuple[int, str], str] = {}
        for key in sorted(chosen):
            for q in chosen[key]:
                e = run.entries[q.entry]
                qid = by_text.get((q.entry, q.text))
                if qid is None:
                    qid = f"Q{len(quotes) + 1}"
                    by_text[(q.entry, q.text)] = qid
                    unit = unit_of[e.idx]
                    quotes[qid] = {
                        "text": q.text,
                        "person": run.person_label(e.person),
                        "author": e.author,
                        "pair": unit.label if unit.key.startswith("D:") else None,
                        "entry": e.label,
                        "month": month[e.idx],
                        "step": run.index.label(e.flow, q.step),
                        "flow": self._flow_title(e.flow),
                    }
                ids.setdefault(key, []).append(qid)
        return quotes, ids

    def _flow_title(self, flow: str) -> str:
        found = self.run.flows.get(flow)
        return found.title if found is not None else flow

    def _summary(self, units: Sequence[_Unit], tally: _Tally) -> dict[str, Any]:
        run = self.run
        entries = run.entries
        months = [m for m in self.month.values() if m >= 0]
        return {
            "entries": len(entries),
            "entries_by_flow": {self._flow_title(f): n for f, n in sorted(tally.flows.items())},
            "entries_by_author": dict(sorted(tally.authors.items())),
            "people": len(tally.people),
            "people_by_role": dict(sorted(Counter(a for _, a in tally.people).items())),
            "pairs": sum(1 for u in units if u.key.startswith("D:")),
            "people_outside_pairs": sum(1 for u in units if u.key.startswith("P:")),
            "months_observed": (max(months) + 1) if months else 0,
            "period": (
                [
                    date.fromordinal(tally.first_day).isoformat()[:7],
                    date.fromordinal(tally.last_day).isoformat()[:7],
                ]
                if entries
                else None
            ),
            "codes_by_method": dict(sorted(tally.methods.items())),
            "free_texts_coded": run.rule_texts,
        }

    def _framework(
        self, tally: _Tally, quote_ids: Mapping[tuple[str, str], list[str]]
    ) -> dict[str, Any]:
        codebook = self.codebook
        stats = tally.elements
        total = len(self.run.entries) or 1
        cells: dict[str, dict[str, list[dict[str, Any]]]] = {
            level: {role: [] for role in codebook.cmo_roles} for level in codebook.cmo_levels
        }
        keys = {(c.id, c.role) for c in codebook.by_scheme(SCHEME_CMO)} | set(stats)
        for code, role in sorted(keys, key=lambda k: (k[0], k[1] or "")):
            definition = codebook.get(code)
            level = definition.level
            if role is None or level not in cells or role not in cells[level]:
                continue
            s = stats.get((code, role))
            self.label(code)
            cells[level][role].append(
                {
                    "code": code,
                    "default_role": definition.role == role,
                    "entries": s.entries if s else 0,
                    "share": _share(s.entries, total) if s else 0.0,
                    "people": len(s.people) if s else 0,
                    "units": len(s.units) if s else 0,
                    "by_method": dict(sorted(s.methods.items())) if s else {},
                    "by_author": dict(sorted(s.authors.items())) if s else {},
                    "quotes": quote_ids.get((code, role), []),
                }
            )
        for level in cells.values():
            for items in level.values():
                items.sort(key=lambda i: (-i["entries"], i["code"]))
        return {
            "levels": dict(codebook.cmo_levels),
            "roles": dict(codebook.cmo_roles),
            "cells": cells,
        }

    def _configurations(
        self, sink: _ConfigurationSink, quote_ids: Mapping[tuple[str, str], list[str]]
    ) -> dict[str, Any]:
        pattern_json = []
        for p in sorted(
            sink.patterns.values(),
            key=lambda p: (-p.well_supported, -p.units, p.outcome, p.outcome_role),
        ):
            j = p.to_json()
            j["quotes"] = quote_ids.get((p.outcome, p.outcome_role), [])
            j["element_quotes"] = {
                part: {c: quote_ids.get((c, r), [])[:1] for c, r, _ in p.typical(part)}
                for part in ("context", "resource", "response")
            }
            pattern_json.append(j)
        return {
            "window_days": {"before": WINDOW_BEFORE_DAYS, "after": WINDOW_AFTER_DAYS},
            "grades": GRADE_RULES,
            "count": len(sink.items),
            "by_grade": {g: sink.by_grade[g] for g in GRADES},
            "patterns": pattern_json,
            "outcomes_without_mechanism": dict(sorted(sink.unconfigured.items())),
            # the items themselves are written straight from the sink (see write_json)
            "items": ITEMS_MARKER,
        }

    def _phases(self, timelines: Mapping[str, Timeline]) -> dict[str, Any]:
        months = 0
        for t in timelines.values():
            if t.points:
                months = max(months, month_of(t.points[-1].day) + 1)
        months = min(months, MONTHS_SHOWN)
        counts = {p: [0] * months for p in PHASES}
        for t in timelines.values():
            if not t.points:
                continue
            last = month_of(t.points[-1].day)
            for m in range(min(last + 1, months)):
                phase = t.phase_at(int((m + 1) * DAYS_PER_MONTH) - 1)
                if phase is not None:
                    counts[phase][m] += 1
        for phase in PHASES:
            self.label(phase)
        for kram in (KRAM_PRE, *self.codebook.phase_crosswalk.values()):
            self.label(kram)
        current = Counter(t.current for t in timelines.values() if t.current)
        transitions = Counter(
            (tr.from_phase, tr.to_phase, tr.kind)
            for t in timelines.values()
            for tr in t.transitions
        )
        return {
            "distribution": {"months": list(range(months)), "counts": counts},
            "current": {p: current.get(p, 0) for p in PHASES},
            "transitions": [[a, b, kind, n] for (a, b, kind), n in sorted(transitions.items())],
            "pairs_with_regressions": sum(1 for t in timelines.values() if t.regressions),
            "regressions": sum(len(t.regressions) for t in timelines.values()),
            "crosswalk": self.codebook.phase_crosswalk,
            "pairs": {label: t.to_json() for label, t in sorted(timelines.items())},
        }

    def _domains(self, tally: _Tally) -> dict[str, Any]:
        domains = [c.id for c in self.codebook.by_scheme(SCHEME_DOMAIN)]
        for d in domains:
            self.label(d)
        series: dict[str, dict[str, list[list[float]]]] = {}
        for (group, code, m), n in sorted(tally.domain_hits.items()):
            total = tally.month_totals[(group, m)]
            series.setdefault(group, {}).setdefault(code, []).append(
                [m, _share(n, total), n, total]
            )
        return {
            "by_month": series,
            "totals": {a: {d: tally.domain_totals[(a, d)] for d in domains} for a in ROLES},
            "note": "[month, share, entries coded, entries that month] per group and domain; "
            f"the chart leaves out months with fewer than {MIN_MONTH_ENTRIES} entries",
        }

    def _factors(self, tally: _Tally) -> dict[str, Any]:
        pairs = tally.counterparts
        counts = tally.factors
        themes = sorted(
            {t for t, _ in counts},
            key=lambda t: (-(counts[(t, POLARITY_HELPING)] + counts[(t, POLARITY_HINDERING)]), t),
        )
        rows = []
        for theme in themes:
            self.label(theme)
            counterpart = pairs.get(theme)
            if counterpart:
                self.label(counterpart)
            rows.append(
                {
                    "factor": theme,
                    "counterpart": counterpart,
                    "helping": counts[(theme, POLARITY_HELPING)],
                    "hindering": counts[(theme, POLARITY_HINDERING)],
                    "by_author": {
                        a: [
                            tally.factor_authors[(theme, POLARITY_HELPING, a)],
                            tally.factor_authors[(theme, POLARITY_HINDERING, a)],
                        ]
                        for a in ROLES
                    },
                    "by_stage": {
                        s: [
                            tally.factor_stages[(theme, POLARITY_HELPING, s)],
                            tally.factor_stages[(theme, POLARITY_HINDERING, s)],
                        ]
                        for s, _, _ in STAGES
                    },
                }
            )
        return {"rows": rows, "stages": {s: [lo, hi] for s, lo, hi in STAGES}}

    def _climate(self, tally: _Tally) -> dict[str, Any]:
        codes = [c.id for c in self.codebook.by_scheme(SCHEME_CLIMATE)]
        for c in codes:
            self.label(c)
        months = max((m + 1 for _, m in tally.climate), default=0)
        return {
            "months": list(range(months)),
            "counts": {c: [tally.climate[(c, m)] for m in range(months)] for c in codes},
            "totals": {c: sum(tally.climate[(c, m)] for m in range(months)) for c in codes},
        }

    def _topics(self, tally: _Tally) -> dict[str, Any]:
        out = []
        for code, n in sorted(tally.topics.items(), key=lambda kv: (-kv[1], kv[0])):
            self.label(code)
            out.append({"topic": code, "entries": n, "sensitive": code in self.sensitive})
        return {"rows": out}

    def _theories(self, sink: _ConfigurationSink) -> list[dict[str, Any]]:
        out = []
        for rule in THEORY_RULES:
            t = sink.theories[rule.theory]
            self.label(rule.theory)
            out.append(
                {
                    "theory": rule.theory,
                    "rule": rule.why,
                    "configurations": t.configurations,
                    "units": len(t.units),
                    "by_grade": {g: t.grades[g] for g in GRADES},
                    "outcomes": [
                        [o, n]
                        for o, n in sorted(t.outcomes.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
                    ],
                }
            )
        return out

    def _method(self, tally: _Tally) -> dict[str, Any]:
        run = self.run
        coverage = tally.coverage
        roles = sorted({r for r, _ in coverage})
        try:
            version = metadata.version("mentorbot")
        except metadata.PackageNotFoundError:
            version = "unknown"
        return {
            "software": f"mentorbot {version}",
            "pseudonym_study": run.options.study,
            "coders": {
                METHOD_SELF: "participants' own button answers (confidence 1)",
                METHOD_PROMPT: "codes a prompt elicits, evidenced by answering it "
                "(confidence 0.5)",
                METHOD_RULES: "cue phrases of coding_rules.yaml with negation and hedging",
                METHOD_SEMANTIC: run.semantic_note,
            },
            "coverage": {
                r: {
                    "answers": coverage[(r, "answers")],
                    "coded": coverage[(r, "coded")],
                    "share": _share(coverage[(r, "coded")], coverage[(r, "answers")]),
                }
                for r in roles
            },
            "configuration_window_days": [WINDOW_BEFORE_DAYS, WINDOW_AFTER_DAYS],
        }


# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------


def write_json(path: Path, data: Mapping[str, Any], items: Sequence[str]) -> None:
    """report.json: ``data`` with the configuration items (already encoded, in order) put
    where the marker stands. Equal input gives equal bytes: keys are sorted throughout."""
    text = _dumps(data)
    head, tail = text.split(json.dumps(ITEMS_MARKER), 1)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(head)
        handle.write("[")
        for k, item in enumerate(items):
            if k:
                handle.write(",")
            handle.write(item)
        handle.write("]")
        handle.write(tail)


def _dumps(data: Mapping[str, Any]) -> str:
    # compact: with ``indent`` json falls back to its pure-Python encoder, ten times slower on
    # the tens of megabytes a large programme gives; ``python -m json.tool`` pretty-prints it
    return (
        json.dumps(
            data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
        + "\n"
    )


def _short(label: str, limit: int = 42) -> str:
    head = label.split(":", 1)[0] if ":" in label and len(label) > limit else label
    return head if len(head) <= limit else head[: limit - 1] + "…"


def charts(data: Mapping[str, Any]) -> dict[str, str]:
    from reports import charts as draw

    labels = data["labels"]
    short = {k: _short(v) for k, v in labels.items()}
    phase_labels = {p: labels[p].split(":", 1)[0] for p in PHASES}
    out: dict[str, str] = {}
    dist = data["phases"]["distribution"]
    if dist["months"]:
        out["phase_distribution"] = draw.phase_distribution(
            dist["months"], dist["counts"], phase_labels
        )
    lanes = []
    for label, t in _timelines_shown(data["phases"]["pairs"]):
        segments = t["segments"]
        spans = []
        for k, s in enumerate(segments):
            end = segments[k + 1]["from_day"] if k + 1 < len(segments) else s["to_day"] + 7
            spans.append((s["phase"], s["from_day"] / DAYS_PER_MONTH, end / DAYS_PER_MONTH))
        regressions = [
            tr["day"] / DAYS_PER_MONTH for tr in t["transitions"] if tr["kind"] == "regression"
        ]
        lanes.append((label, spans, regressions))
    if lanes:
        out["phase_timelines"] = draw.phase_timelines(lanes, phase_labels)
    domains = data["learning_domains"]["by_month"]
    panels = {
        f"{a}s": {
            d: [(int(m), float(s)) for m, s, _, total in pts if total >= MIN_MONTH_ENTRIES]
            for d, pts in sorted(domains.get(a, {}).items())
        }
        for a in ROLES
        if domains.get(a)
    }
    if panels:
        out["learning_domains"] = draw.lines_by_month(
            panels, {k: _short(v.split(":", 1)[0]) for k, v in labels.items()}, "share of entries"
        )
    rows = [
        (_factor_name(r, short), r["helping"], r["hindering"])
        for r in data["factors"]["rows"][:14]
    ]
    if rows:
        out["factors"] = draw.diverging(rows)
    climate = data["climate"]
    if climate["months"] and any(climate["totals"].values()):
        out["climate"] = draw.stacked_shares(
            climate["months"],
            climate["counts"],
            {k: labels[k].split(":", 1)[0] for k in climate["counts"]},
            draw.CLIMATE_COLOURS,
        )
    patterns_ = data["configurations"]["patterns"][:12]
    if patterns_:
        out["configurations"] = draw.grades_by_outcome(
            [(short[p["outcome"]], p["grades"]) for p in patterns_], GRADES
        )
    return out


def _factor_name(row: Mapping[str, Any], short: Mapping[str, str]) -> str:
    if row.get("counterpart"):
        return f"{short[row['factor']]} / {short[row['counterpart']]}"
    return short[row["factor"]]


def _timelines_shown(pairs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Pairs with regressions first (they need a look), then the rest, by pseudonym."""
    with_regression = [
        (k, v)
        for k, v in sorted(pairs.items())
        if any(t["kind"] == "regression" for t in v["transitions"])
    ]
    rest = [
        (k, v)
        for k, v in sorted(pairs.items())
        if not any(t["kind"] == "regression" for t in v["transitions"])
    ]
    return (with_regression[: TIMELINES_SHOWN // 2] + rest)[:TIMELINES_SHOWN]


def render_html(
    data: Mapping[str, Any], images: Mapping[str, str], best: Sequence[Mapping[str, Any]] = ()
) -> str:
    import jinja2

    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["pct"] = lambda v: f"{100 * float(v):.0f}%"
    env.filters["short"] = _short
    env.filters["month"] = lambda m: "before matching" if m is None or m < 0 else f"month {m + 1}"
    env.filters["months"] = lambda d: f"{d / DAYS_PER_MONTH:.1f}"
    source = (
        resources.files("reports")
        .joinpath("templates", "evaluator.html.j2")
        .read_text(encoding="utf-8")
    )
    template = env.from_string(source)
    return template.render(
        d=data,
        images=images,
        labels=data["labels"],
        phase_names={p: data["labels"][p].split(":", 1)[0] for p in PHASES},
        timelines=_timelines_shown(data["phases"]["pairs"]),
        best=best,
        roles_order=list(data["cmo_framework"]["roles"]),
        grades=GRADES,
    )


# ---------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------


async def build_report(
    store: Store,
    out_dir: Path,
    *,
    codebook: Codebook | None = None,
    options: Options | None = None,
    progress: ProgressSink | None = None,
) -> ReportResult:
    """Run the whole job and write report.json, report.html and review.csv into ``out_dir``."""
    book = codebook if codebook is not None else load_codebook()
    opts = options or Options()
    sink = progress or _Silent()
    out_dir.mkdir(parents=True, exist_ok=True)
    review_tmp = out_dir / "review.csv.partial"
    run = _Run(store, book, opts, sink)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    try:
        with collector_paused():
            await run.read(review_tmp)
            lap("extract_and_code")
            analysis = _Analysis(run)
            data = await analysis.run_all()
            lap("phases_configurations_aggregates")
            images = charts(data)
            lap("charts")
            html = render_html(data, images, analysis.best)
            lap("render_html")
            write_json(out_dir / "report.json", data, analysis.items)
            (out_dir / "report.html").write_text(html, encoding="utf-8")
            review_tmp.replace(out_dir / "review.csv")
            lap("write")
    except BaseException:
        review_tmp.unlink(missing_ok=True)
        raise
    finally:
        if run.coder is not None:
            run.coder.close()
    summary = data["summary"]
    return ReportResult(
        out_dir=out_dir,
        entries=summary["entries"],
        people=summary["people"],
        pairs=summary["pairs"],
        review_rows=run.writer.rows,
        agreement=run.reviewer.agreement.rate,
        timings=timings,
    )


__all__ = [
    "STUDY",
    "Options",
    "ReportResult",
    "ReviewError",
    "build_report",
    "charts",
    "render_html",
]
