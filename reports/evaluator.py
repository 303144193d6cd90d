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
import math
import multiprocessing
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Protocol

from conversations.catalogue import load_flows
from reports import extract
from reports.codebook import (
    SCHEME_CLIMATE,
    SCHEME_CMO,
    SCHEME_DOMAIN,
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
    CONTEXT_ROLES,
    GRADE_RULES,
    GRADES,
    OUTCOME_ROLES,
    THEORY_RULES,
    WINDOW_AFTER_DAYS,
    WINDOW_BEFORE_DAYS,
    Configuration,
    EntryCodes,
    configure,
    patterns,
)
from reports.phases import DAYS_PER_MONTH, PHASES, PairHistory, Timeline, infer, month_of
from reports.review import WITHHELD, Reviewer, ReviewError, ReviewWriter, read_review, review_id
from reports.structured import (
    CANDIDATES_KEPT,
    OTHER_SUFFIX,
    ChunkCoder,
    ChunkResult,
    Code,
    StepIndex,
    TextJob,
    code_chunk,
    init_worker,
    split_entry,
)
from storage.models import Scope
from storage.pseudonyms import Pseudonymiser
from storage.store import Store

STUDY = "evaluation"
REPORT_VERSION = "1"
CHUNK_TEXTS = 1500  # texts per pool task: big enough to amortise pickling, small enough to
# keep both workers busy to the end
POOL_MIN_ENTRIES = 3000  # below this a pool costs more to start than it saves
QUOTES_PER_CODE = 2
TIMELINES_SHOWN = 30  # pairs drawn in the HTML (all pairs are in the JSON)
MONTHS_SHOWN = 24
STAGES = (("early", 0, 2), ("middle", 3, 5), ("late", 6, 10_000))  # months of the relationship
ROLES = ("mentee", "mentor")
COARSE = {"CONTEXT_ENABLING": "CONTEXT", "CONTEXT_INHIBITING": "CONTEXT", "RESOURCE": "RESOURCE",
          "RESPONSE": "RESPONSE", "OUTCOME_PROXIMAL": "OUTCOME_PROXIMAL",
          "OUTCOME_DISTAL": "OUTCOME_DISTAL"}
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

    def __init__(self, codebook: Codebook, decisions: Mapping[str, Any], workers: int,
                 flows: Mapping[str, Any]) -> None:
        self.local: ChunkCoder | None = None
        self.pool: ProcessPoolExecutor | None = None
        if workers > 0:
            packaged = load_codebook()
            # the packaged codebook travels as its hash: each worker loads its own copy
            book: Codebook | str = (codebook.content_hash
                                    if packaged.content_hash == codebook.content_hash
                                    else codebook)
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

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class _Run:
    def __init__(self, store: Store, codebook: Codebook, options: Options,
                 progress: ProgressSink) -> None:
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
        self.pseudonyms = await Pseudonymiser.for_study(store.vault, options.study)
        consenting = await extract.consenting(store, Scope.EVALUATION)
        self.consenting = consenting
        self.pairs = {
            r["id"]: r for r in await store.db.fetchall(
                "SELECT id, mentor_id, mentee_id, matched_at, closed_at FROM pairs")
        }
        self._matched_day = {
            pid: date.fromisoformat(r["matched_at"][:10]).toordinal()
            for pid, r in self.pairs.items() if r["matched_at"]
        }
        partner: dict[int, list[int]] = {}
        for p in self.pairs.values():
            members = [m for m in (p["mentor_id"], p["mentee_id"]) if m is not None]
            for m in members:
                partner.setdefault(m, []).extend(x for x in members if x != m)
        # partners' names too: a mentee writes their mentor's name, consenting or not; the
        # name is only ever used to mask it
        wanted = set(consenting) | {x for m in consenting for x in partner.get(m, [])}
        names = await extract.first_names(store, wanted)
        self.names: dict[int, tuple[str, ...]] = {
            m: tuple(sorted({names[x] for x in (m, *partner.get(m, [])) if x in names}))
            for m in consenting
        }
        total = 0
        if consenting:
            for r in await store.db.fetchall(
                "SELECT participant_id, COUNT(*) AS n FROM entries WHERE status='complete' "
                "GROUP BY participant_id"
            ):
                if r["participant_id"] in consenting:
                    total += int(r["n"])
        workers = options.workers
        if workers is None:
            workers = min(2, os.cpu_count() or 1) if total >= POOL_MIN_ENTRIES else 0
        self.workers = workers
        coder = _Coder(self.codebook, self.reviewer.decisions, workers, self.flows)
        review_out.parent.mkdir(parents=True, exist_ok=True)
        try:
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
        finally:
            coder.close()

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
        examples = [semantic.Example(d.new_code or rid.split(":")[2], d.evidence)
                    for rid, d in sorted(self.reviewer.decisions.items())
                    if d.decision in ("accept", "change") and d.evidence
                    and not d.evidence.startswith("[withheld")]
        if not examples:
            self.semantic_note = ("available, but no labelled examples yet: accept or change "
                                  "codes in review.csv and pass it with --review")
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
                code = Code(hit.code_id, hit.scheme, hit.cmo_role, hit.level, hit.polarity,
                            step, 0, len(text), METHOD_SEMANTIC, hit.confidence)
                rid = review_id(entry.label, step, code.code_id, code.polarity, code.method)
                decision = self.reviewer.decide(rid, code.scheme, code.method, code.code_id)
                pair = self.pair_label(entry.pair_id) if entry.pair_id is not None else ""
                self.writer.write_row(
                    rid, entry.label, self.person_label(entry.person), pair, entry.author, "",
                    self.index.label(entry.flow, step), code.code_id,
                    self.codebook.get(code.code_id).label, code.scheme, code.cmo_role or "",
                    code.polarity or "", code.method, f"{code.confidence:.3f}", evidence,
                    decision.decision if decision else "",
                    (decision.new_code or "") if decision else "",
                    decision.note if decision else "")
                if decision is not None and decision.decision == "reject":
                    continue
                if decision is not None and decision.decision == "change" and decision.new_code:
                    scheme, role, level, polarity = self.index.labels[decision.new_code]
                    code = code._replace(code_id=decision.new_code, scheme=scheme,
                                         cmo_role=role, level=level, polarity=polarity)
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
                    matched_at = run.pairs[entry.pair_id]["matched_at"]
                    start = (date.fromisoformat(matched_at[:10]).toordinal()
                             if matched_at else entry.day)
                    by_key[key] = _Unit(key, run.pair_label(entry.pair_id), start,
                                        matched=matched_at is not None)
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
        """Pair-level events that belong to no one person, or to a consenting one.

        Events the bot derived from episode logs are skipped: the job reads the consented logs
        themselves, and a non-consenting mentor's logs must not reach the report this way.
        """
        run = self.run
        has_table = await run.store.db.scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='pair_events'")
        if not has_table:
            return {}
        wanted = {int(u.key[2:]) for u in units if u.key.startswith("D:")}
        out: dict[int, list[tuple[str, str]]] = {}
        for r in await run.store.db.fetchall(
            "SELECT pair_id, event, at, source, participant_id FROM pair_events "
            "ORDER BY pair_id, at, id"
        ):
            if r["pair_id"] not in wanted or r["source"] == "episode_log":
                continue
            if r["participant_id"] is not None and r["participant_id"] not in run.consenting:
                continue
            out.setdefault(r["pair_id"], []).append((r["event"], r["at"]))
        return out

    def timeline(self, unit: _Unit, events: Sequence[tuple[str, str]]) -> Timeline:
        history = PairHistory()
        if unit.matched:
            history.events.append((0, "matched"))
        for event, at in events:
            if event == "matched":
                continue
            history.events.append((date.fromisoformat(at[:10]).toordinal() - unit.start, event))
        for e in unit.entries:
            day = e.day - unit.start
            history.contacts.append(day)
            for code in e.codes:
                if code.scheme == "episode_kind":
                    history.events.append((day, code.code_id))
                elif code.scheme == SCHEME_PHASE:
                    if code.start < 0 and e.author == "mentor":
                        history.views.append((day, code.code_id))
                    elif code.method != METHOD_STRUCTURED:
                        history.signals.append((day, code.code_id, code.confidence))
        return infer(history, self.codebook.phase_crosswalk)

    async def run_all(self) -> dict[str, Any]:
        run = self.run
        units = await self.units()
        events = await self.lifecycle(units)
        run.progress.stage("Phases and configurations", len(units))
        levels = {c: run.index.labels[c][2] for c in self.codebook.codes}
        timelines: dict[str, Timeline] = {}
        configurations: list[tuple[_Unit, Configuration]] = []
        unconfigured: Counter[str] = Counter()
        for unit in units:
            if unit.key.startswith("D:"):
                timelines[unit.label] = self.timeline(unit, events.get(int(unit.key[2:]), []))
            found, missing = configure(self._entry_codes(unit), levels)
            configurations.extend((unit, c) for c in found)
            unconfigured.update(missing)
            run.progress.advance()
        run.progress.stage("Writing the report", None)
        return self.assemble(units, timelines, configurations, unconfigured)

    def _entry_codes(self, unit: _Unit) -> list[EntryCodes]:
        out = []
        for e in unit.entries:
            elements = set()
            outcomes = set()
            for c in e.codes:
                role = c.cmo_role
                if role is None:
                    continue
                if role in OUTCOME_ROLES:
                    if c.scheme in (SCHEME_CMO, SCHEME_DOMAIN):
                        outcomes.add((c.code_id, role))
                elif c.scheme in (SCHEME_CMO, SCHEME_FACTOR):
                    elements.add((c.code_id, role))
            if elements or outcomes:
                out.append(EntryCodes(e.idx, e.day - unit.start, e.author, e.person,
                                      frozenset(elements), frozenset(outcomes)))
        return out

    # -- assembling the report data -----------------------------------------------------
    def assemble(self, units: Sequence[_Unit], timelines: Mapping[str, Timeline],
                 configurations: Sequence[tuple[_Unit, Configuration]],
                 unconfigured: Counter[str]) -> dict[str, Any]:
        run = self.run
        unit_of: dict[int, _Unit] = {}
        for unit in units:
            for e in unit.entries:
                unit_of[e.idx] = unit
        month = {e.idx: month_of(e.day - unit_of[e.idx].start) for e in run.entries}
        self.month = month

        element_stats = self._elements(unit_of)
        quotes, quote_ids = self._quotes(unit_of, month)
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
        data["summary"] = self._summary(units, month)
        data["cmo_framework"] = self._framework(element_stats, quote_ids)
        data["configurations"] = self._configurations(configurations, unconfigured, quote_ids)
        data["phases"] = self._phases(timelines)
        data["learning_domains"] = self._domains(month)
        data["factors"] = self._factors(month)
        data["climate"] = self._climate(month)
        data["topics"] = self._topics()
        data["programme_theories"] = self._theories(configurations)
        data["review"] = run.reviewer.agreement.to_json() | {
            "rows_written": run.writer.rows, "file_given": run.options.review is not None}
        data["method"] = self._method()
        data["quotes"] = quotes
        data["labels"] = dict(sorted(self.labels.items()))
        return data

    def _elements(self, unit_of: Mapping[int, _Unit]) -> dict[tuple[str, str], dict[str, Any]]:
        stats: dict[tuple[str, str], dict[str, Any]] = {}
        for e in self.run.entries:
            seen: set[tuple[str, str]] = set()
            for c in e.codes:
                if c.scheme != SCHEME_CMO or c.cmo_role is None:
                    continue
                key = (c.code_id, c.cmo_role)
                s = stats.get(key)
                if s is None:
                    s = stats[key] = {"entries": 0, "people": set(), "units": set(),
                                      "methods": Counter(), "authors": Counter()}
                s["methods"][_method(c)] += 1
                if key in seen:
                    continue
                seen.add(key)
                s["entries"] += 1
                s["people"].add(e.person)
                s["units"].add(unit_of[e.idx].key)
                s["authors"][e.author] += 1
        return stats

    def _quotes(self, unit_of: Mapping[int, _Unit], month: Mapping[int, int]
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

    def _summary(self, units: Sequence[_Unit], month: Mapping[int, int]) -> dict[str, Any]:
        run = self.run
        entries = run.entries
        by_flow = Counter(e.flow for e in entries)
        people = {(e.person, e.author) for e in entries}
        codes = Counter(_method(c) for e in entries for c in e.codes)
        months = [m for m in month.values() if m >= 0]
        days = [e.day for e in entries]
        return {
            "entries": len(entries),
            "entries_by_flow": {self._flow_title(f): n for f, n in sorted(by_flow.items())},
            "entries_by_author": dict(sorted(Counter(e.author for e in entries).items())),
            "people": len(people),
            "people_by_role": dict(sorted(Counter(a for _, a in people).items())),
            "pairs": sum(1 for u in units if u.key.startswith("D:")),
            "people_outside_pairs": sum(1 for u in units if u.key.startswith("P:")),
            "months_observed": (max(months) + 1) if months else 0,
            "period": ([date.fromordinal(min(days)).isoformat()[:7],
                        date.fromordinal(max(days)).isoformat()[:7]] if days else None),
            "codes_by_method": dict(sorted(codes.items())),
            "free_texts_coded": run.rule_texts,
        }

    def _framework(self, stats: Mapping[tuple[str, str], Mapping[str, Any]],
                   quote_ids: Mapping[tuple[str, str], list[str]]) -> dict[str, Any]:
        codebook = self.codebook
        total = len(self.run.entries) or 1
        cells: dict[str, dict[str, list[dict[str, Any]]]] = {
            level: {role: [] for role in codebook.cmo_roles} for level in codebook.cmo_levels}
        keys = {(c.id, c.role) for c in codebook.by_scheme(SCHEME_CMO)} | set(stats)
        for code, role in sorted(keys, key=lambda k: (k[0], k[1] or "")):
            definition = codebook.get(code)
            level = definition.level
            if role is None or level not in cells or role not in cells[level]:
                continue
            s = stats.get((code, role))
            self.label(code)
            cells[level][role].append({
                "code": code,
                "default_role": definition.role == role,
                "entries": s["entries"] if s else 0,
                "share": _share(s["entries"], total) if s else 0.0,
                "people": len(s["people"]) if s else 0,
                "units": len(s["units"]) if s else 0,
                "by_method": dict(sorted(s["methods"].items())) if s else {},
                "by_author": dict(sorted(s["authors"].items())) if s else {},
                "quotes": quote_ids.get((code, role), []),
            })
        for level in cells.values():
            for items in level.values():
                items.sort(key=lambda i: (-i["entries"], i["code"]))
        return {"levels": dict(codebook.cmo_levels), "roles": dict(codebook.cmo_roles),
                "cells": cells}

    def _configurations(self, configurations: Sequence[tuple[_Unit, Configuration]],
                        unconfigured: Counter[str],
                        quote_ids: Mapping[tuple[str, str], list[str]]) -> dict[str, Any]:
        entry_label = {e.idx: e.label for e in self.run.entries}
        found = [c for _, c in configurations]
        for c in found:
            self.label(c.outcome)
            for items in c.chain.values():
                for code, _, _ in items:
                    self.label(code)
        items = [c.to_json(u.label, entry_label, month_of) for u, c in configurations]
        items.sort(key=lambda i: (i["unit"], i["outcome"], i["outcome_role"]))
        found_patterns = patterns(found)
        pattern_json = []
        for p in found_patterns:
            j = p.to_json()
            j["quotes"] = quote_ids.get((p.outcome, p.outcome_role), [])
            j["element_quotes"] = {
                part: {c: quote_ids.get((c, r), [])[:1] for c, r, _ in p.typical(part)}
                for part in ("context", "resource", "response")
            }
            pattern_json.append(j)
        for code in unconfigured:
            self.label(code)
        return {
            "window_days": {"before": WINDOW_BEFORE_DAYS, "after": WINDOW_AFTER_DAYS},
            "grades": GRADE_RULES,
            "count": len(items),
            "by_grade": {g: sum(1 for c in found if c.grade == g) for g in GRADES},
            "patterns": pattern_json,
            "outcomes_without_mechanism": dict(sorted(unconfigured.items())),
            "items": items,
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
        current = Counter(t.current for t in timelines.values() if t.current)
        transitions = Counter((tr.from_phase, tr.to_phase, tr.kind)
                              for t in timelines.values() for tr in t.transitions)
        return {
            "distribution": {"months": list(range(months)), "counts": counts},
            "current": {p: current.get(p, 0) for p in PHASES},
            "transitions": [[a, b, kind, n] for (a, b, kind), n in sorted(transitions.items())],
            "pairs_with_regressions": sum(1 for t in timelines.values() if t.regressions),
            "regressions": sum(len(t.regressions) for t in timelines.values()),
            "crosswalk": self.codebook.phase_crosswalk,
            "pairs": {label: t.to_json() for label, t in sorted(timelines.items())},
        }

    def _by_month(self, month: Mapping[int, int], pick: Callable[[Entry], Iterable[str]],
                  by_author: bool) -> dict[str, dict[str, list[list[float]]]]:
        totals: Counter[tuple[str, int]] = Counter()
        hits: Counter[tuple[str, str, int]] = Counter()
        for e in self.run.entries:
            m = month[e.idx]
            if m < 0 or m >= MONTHS_SHOWN:
                continue
            group = e.author if by_author else "all"
            totals[(group, m)] += 1
            for code in set(pick(e)):
                hits[(group, code, m)] += 1
        out: dict[str, dict[str, list[list[float]]]] = {}
        for (group, code, m), n in sorted(hits.items()):
            out.setdefault(group, {}).setdefault(code, []).append(
                [m, _share(n, totals[(group, m)]), n])
        return out

    def _domains(self, month: Mapping[int, int]) -> dict[str, Any]:
        domains = [c.id for c in self.codebook.by_scheme(SCHEME_DOMAIN)]
        for d in domains:
            self.label(d)
        series = self._by_month(
            month, lambda e: (c.code_id for c in e.codes if c.scheme == SCHEME_DOMAIN), True)
        totals = Counter()
        for e in self.run.entries:
            for code in {c.code_id for c in e.codes if c.scheme == SCHEME_DOMAIN}:
                totals[(e.author, code)] += 1
        return {
            "by_month": series,
            "totals": {a: {d: totals[(a, d)] for d in domains} for a in ROLES},
            "note": "share of each group's entries in that month coded with the domain",
        }

    def _factor_theme(self, code: str) -> str:
        pairs = self.codebook.rules.factor_counterparts if self.codebook.rules else {}
        reverse = {v: k for k, v in pairs.items()}
        return reverse.get(code, code)

    def _factors(self, month: Mapping[int, int]) -> dict[str, Any]:
        pairs = self.codebook.rules.factor_counterparts if self.codebook.rules else {}
        counts: Counter[tuple[str, str]] = Counter()
        by_author: Counter[tuple[str, str, str]] = Counter()
        by_stage: Counter[tuple[str, str, str]] = Counter()
        for e in self.run.entries:
            seen = set()
            for c in e.codes:
                if c.scheme != SCHEME_FACTOR:
                    continue
                polarity = c.polarity or self.codebook.get(c.code_id).polarity or ""
                folded = fold_factor(c.code_id, polarity, pairs)
                if folded in seen:
                    continue
                seen.add(folded)
                theme = self._factor_theme(folded.split(":")[0])
                counts[(theme, polarity)] += 1
                by_author[(theme, polarity, e.author)] += 1
                m = month[e.idx]
                stage = next((s for s, lo, hi in STAGES if lo <= m <= hi), "before")
                by_stage[(theme, polarity, stage)] += 1
        themes = sorted({t for t, _ in counts},
                        key=lambda t: (-(counts[(t, POLARITY_HELPING)]
                                         + counts[(t, POLARITY_HINDERING)]), t))
        rows = []
        for theme in themes:
            self.label(theme)
            counterpart = pairs.get(theme)
            if counterpart:
                self.label(counterpart)
            rows.append({
                "factor": theme,
                "counterpart": counterpart,
                "helping": counts[(theme, POLARITY_HELPING)],
                "hindering": counts[(theme, POLARITY_HINDERING)],
                "by_author": {a: [by_author[(theme, POLARITY_HELPING, a)],
                                  by_author[(theme, POLARITY_HINDERING, a)]] for a in ROLES},
                "by_stage": {s: [by_stage[(theme, POLARITY_HELPING, s)],
                                 by_stage[(theme, POLARITY_HINDERING, s)]]
                             for s, _, _ in STAGES},
            })
        return {"rows": rows, "stages": {s: [lo, hi] for s, lo, hi in STAGES}}

    def _climate(self, month: Mapping[int, int]) -> dict[str, Any]:
        codes = [c.id for c in self.codebook.by_scheme(SCHEME_CLIMATE)]
        for c in codes:
            self.label(c)
        months = 0
        counts: Counter[tuple[str, int]] = Counter()
        for e in self.run.entries:
            m = month[e.idx]
            if m < 0 or m >= MONTHS_SHOWN:
                continue
            for code in {c.code_id for c in e.codes if c.scheme == SCHEME_CLIMATE}:
                counts[(code, m)] += 1
                months = max(months, m + 1)
        return {
            "months": list(range(months)),
            "counts": {c: [counts[(c, m)] for m in range(months)] for c in codes},
            "totals": {c: sum(counts[(c, m)] for m in range(months)) for c in codes},
        }

    def _topics(self) -> dict[str, Any]:
        counts: Counter[str] = Counter()
        for e in self.run.entries:
            for code in {c.code_id for c in e.codes if c.scheme == SCHEME_TOPIC}:
                counts[code] += 1
        out = []
        for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            self.label(code)
            out.append({"topic": code, "entries": n,
                        "sensitive": code in self.sensitive})
        return {"rows": out}

    def _theories(self, configurations: Sequence[tuple[_Unit, Configuration]]
                  ) -> list[dict[str, Any]]:
        out = []
        for rule in THEORY_RULES:
            tagged = [(u, c) for u, c in configurations if rule.theory in c.theories]
            outcomes = Counter(c.outcome for _, c in tagged)
            self.label(rule.theory)
            out.append({
                "theory": rule.theory,
                "rule": rule.why,
                "configurations": len(tagged),
                "units": len({u.key for u, _ in tagged}),
                "by_grade": {g: sum(1 for _, c in tagged if c.grade == g) for g in GRADES},
                "outcomes": [[o, n] for o, n in
                             sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))[:5]],
            })
        return out

    def _method(self) -> dict[str, Any]:
        run = self.run
        coverage: Counter[tuple[str, str]] = Counter()
        for e in run.entries:
            found: dict[str, set[str]] = {}
            for c in e.codes:
                if c.cmo_role in COARSE and c.start >= 0:
                    found.setdefault(c.step, set()).add(COARSE[c.cmo_role])
            for step in e.texts:
                info = run.index.get(e.flow, step)
                if info is None:
                    continue
                for role in info.roles:
                    coverage[(role, "answers")] += 1
                    coverage[(role, "coded")] += role in found.get(step, ())
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
            "coverage": {r: {"answers": coverage[(r, "answers")],
                             "coded": coverage[(r, "coded")],
                             "share": _share(coverage[(r, "coded")], coverage[(r, "answers")])}
                         for r in roles},
            "configuration_window_days": [WINDOW_BEFORE_DAYS, WINDOW_AFTER_DAYS],
            "workers": run.workers,
        }


# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------


def _dumps(data: Mapping[str, Any]) -> str:
    # compact: with ``indent`` json falls back to its pure-Python encoder, ten times slower on
    # the tens of megabytes a large programme gives; ``python -m json.tool`` pretty-prints it
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False) + "\n"


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
        out["phase_distribution"] = draw.phase_distribution(dist["months"], dist["counts"],
                                                             phase_labels)
    lanes = []
    for label, t in _timelines_shown(data["phases"]["pairs"]):
        segments = t["segments"]
        spans = []
        for k, s in enumerate(segments):
            end = segments[k + 1]["from_day"] if k + 1 < len(segments) else s["to_day"] + 7
            spans.append((s["phase"], s["from_day"] / DAYS_PER_MONTH, end / DAYS_PER_MONTH))
        regressions = [tr["day"] / DAYS_PER_MONTH for tr in t["transitions"]
                       if tr["kind"] == "regression"]
        lanes.append((label, spans, regressions))
    if lanes:
        out["phase_timelines"] = draw.phase_timelines(lanes, phase_labels)
    domains = data["learning_domains"]["by_month"]
    panels = {f"{a}s": {d: [(int(m), float(s)) for m, s, _ in pts]
                        for d, pts in sorted(domains.get(a, {}).items())}
              for a in ROLES if domains.get(a)}
    if panels:
        out["learning_domains"] = draw.lines_by_month(
            panels, {k: _short(v.split(":", 1)[0]) for k, v in labels.items()},
            "share of entries")
    rows = [(_factor_name(r, short), r["helping"], r["hindering"])
            for r in data["factors"]["rows"][:14]]
    if rows:
        out["factors"] = draw.diverging(rows)
    climate = data["climate"]
    if climate["months"] and any(climate["totals"].values()):
        out["climate"] = draw.stacked_shares(
            climate["months"], climate["counts"],
            {k: labels[k].split(":", 1)[0] for k in climate["counts"]}, draw.CLIMATE_COLOURS)
    patterns_ = data["configurations"]["patterns"][:12]
    if patterns_:
        out["configurations"] = draw.grades_by_outcome(
            [(short[p["outcome"]], p["grades"]) for p in patterns_], GRADES)
    return out


def _factor_name(row: Mapping[str, Any], short: Mapping[str, str]) -> str:
    if row.get("counterpart"):
        return f"{short[row['factor']]} / {short[row['counterpart']]}"
    return short[row["factor"]]


def _timelines_shown(pairs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Pairs with regressions first (they need a look), then the rest, by pseudonym."""
    with_regression = [(k, v) for k, v in sorted(pairs.items())
                       if any(t["kind"] == "regression" for t in v["transitions"])]
    rest = [(k, v) for k, v in sorted(pairs.items())
            if not any(t["kind"] == "regression" for t in v["transitions"])]
    return (with_regression[: TIMELINES_SHOWN // 2] + rest)[:TIMELINES_SHOWN]


def render_html(data: Mapping[str, Any], images: Mapping[str, str]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: f"{100 * float(v):.0f}%"
    env.filters["short"] = _short
    env.filters["month"] = lambda m: "before matching" if m is None or m < 0 else f"month {m + 1}"
    env.filters["months"] = lambda d: f"{d / DAYS_PER_MONTH:.1f}"
    source = resources.files("reports").joinpath("templates", "evaluator.html.j2").read_text(
        encoding="utf-8")
    template = env.from_string(source)
    return template.render(
        d=data,
        images=images,
        labels=data["labels"],
        phase_names={p: data["labels"][p].split(":", 1)[0] for p in PHASES},
        timelines=_timelines_shown(data["phases"]["pairs"]),
        roles_order=list(data["cmo_framework"]["roles"]),
        grades=GRADES,
        context_roles=CONTEXT_ROLES,
        math=math,
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
        await run.read(review_tmp)
        lap("extract_and_code")
        analysis = _Analysis(run)
        data = await analysis.run_all()
        lap("phases_configurations_aggregates")
        images = charts(data)
        lap("charts")
        html = render_html(data, images)
        text = _dumps(data)
        lap("render")
    except BaseException:
        review_tmp.unlink(missing_ok=True)
        raise
    (out_dir / "report.json").write_text(text, encoding="utf-8")
    (out_dir / "report.html").write_text(html, encoding="utf-8")
    review_tmp.replace(out_dir / "review.csv")
    lap("write")
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


__all__ = ["STUDY", "Options", "ReportResult", "ReviewError", "build_report", "charts",
           "render_html"]
