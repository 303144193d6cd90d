"""The evaluator pipeline: read consented entries, code them, apply the review, run the rest.

Rule coding is most of the work, so free texts go in chunks to a process pool (``_Coder``)
while the main process decrypts the next batches; ``build_report`` then runs the analysis,
renders and writes the files.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from conversations.catalogue import load_flows
from reports import extract
from reports.batch import collector_paused
from reports.codebook import (
    Codebook,
    load_codebook,
)
from reports.configurations import (
    UnitPayload,
    UnitResult,
)
from reports.evaluator.analysis import _Analysis
from reports.evaluator.model import (
    CHUNK_TEXTS,
    POOL_MIN_ENTRIES,
    Entry,
    Options,
    ProgressSink,
    ReportResult,
    _Quote,
    _Silent,
    realised_role,
)
from reports.evaluator.render import charts, render_html, write_json
from reports.phases import month_of
from reports.review import Reviewer, ReviewWriter, read_review
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
        semantic: Any = None,
    ) -> None:
        """``semantic``: the semantic layer (``reports.coding.stored.Layer``) each coder
        joins to the rules, or None for rules alone."""
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
                initargs=(book, dict(decisions), semantic),
            )
        else:
            self.local = ChunkCoder(codebook, decisions, flows, semantic=semantic)
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
        if self.local is not None and self.local.semantic is not None:
            self.local.semantic.close()
            self.local.semantic = None
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
        self.semantic_note = "off (--no-semantic)"
        self.semantic: Any = None  # reports.coding.stored.Layer while the layer is on
        self.semantic_counts = [0, 0, 0, 0]  # see reports.coding.stored.Counts
        self.refit: Any = None  # reports.coding.stored.Refit, when a review refitted the heads
        self.rule_texts = 0
        self.workers = 0
        self.coder: _Coder | None = None
        self._subjects: dict[int, str] = {}
        # "for whom" answers of the consenting people only (read with the same set)
        self.context: dict[int, dict[str, str]] = {}
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
        # the report's own namespace: never the pseudonyms of an export of the same study
        self.pseudonyms = await Pseudonymiser.for_study(store.vault, options.study, "report")
        consenting = await extract.consenting(store, Scope.EVALUATION)
        self.consenting = consenting
        self.context = await store.context.of_many(consenting)
        if options.semantic is not False and consenting:
            await self._open_semantic(consenting)
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
        coder = self.coder = _Coder(self.codebook, self.reviewer.decisions, workers, self.flows,
                                    self.semantic)
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
            wave=record.wave,
            scale=self._scale(record),
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
                base = step.split(".", 1)[0]
                quotable = base not in entry.flagged
                ctx = (entry.label, person, pair, entry.author, month, entry.flow, step,
                       entry.wave)
                # embeddings are stored under the answer's step (a typed "other" too)
                key = (record.entry_id, base) if self.semantic is not None else None
                coder.add((text, entry.author, names, quotable, ctx, key), (idx, step, text))
                self.rule_texts += 1
        self.progress.advance()

    def _scale(self, record: extract.EntryRecord) -> int | None:
        for step, value in record.answers.items():
            info = self.index.get(record.flow, step)
            if info is not None and info.kind == "scale" and step not in record.flagged:
                try:
                    return int(value)
                except (TypeError, ValueError):
                    return None
        return None

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
            role = realised_role(role, self.entries[idx].wave)
            bucket = self.quotes.setdefault((code, role), [])
            bucket.append(_Quote(rank, text, idx, step))
            if len(bucket) > 4 * CANDIDATES_KEPT:
                bucket.sort(key=lambda q: q.rank)
                del bucket[CANDIDATES_KEPT:]
        for k, n in enumerate(result.semantic):
            self.semantic_counts[k] += n

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

    # -- the semantic layer over stored embeddings ---------------------------------------
    async def _open_semantic(self, consenting: set[int]) -> None:
        """Turn the semantic heads on where they can run on stored embeddings (issue 13).

        Nothing is embedded here: answers are read from what ``mentorbot recode`` (or the bot
        at save time) stored, and an answer without a stored embedding is coded by the rules.
        A review's decisions refit the element head first (``reports.coding.stored.refit``).
        """
        from reports.coding.embeddings import available, model_id
        from reports.coding.stored import Layer, open_layer, refit
        from reports.entry_codes import report_coder
        from storage.bulk import data_keys

        ok, why = available()
        heads = None
        if ok:
            heads, why = open_layer()
        if heads is None:
            self.semantic_note = f"rules only: {why}"
            return
        model = model_id()
        if not await self.store.embeddings.count(model):
            self.semantic_note = ("rules only: no stored embeddings from this encoder; run "
                                  "`mentorbot recode` to embed the answers")
            return
        shipped = heads
        if self.reviewer.decisions:
            heads, self.refit = refit(heads, self.reviewer.decisions, self.codebook)
        keys = await data_keys(self.store, consenting)
        # the codes stored with each entry are this layer's codes while the heads are the
        # shipped ones: read where current, coded where stale or missing
        coder = report_coder(self.codebook, semantic=True) if heads is shipped else None
        self.semantic = Layer(heads, str(self.store.db.path), keys, model, coder)
        self.semantic_note = ("semantic heads over the answers' stored embeddings, joined to "
                              "the rules: rules where they are sure, the heads where the "
                              "rules are silent or unsure (confidence: the head's probability)")


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
        coding=_coding_line(run),
    )


def _coding_line(run: _Run) -> str:
    if run.semantic is None:
        return f"Coded by the rules alone ({run.semantic_note})."
    read, missing, never, _ = run.semantic_counts
    line = (f"Coded by the rules and the semantic heads: {read} of {run.rule_texts} free-text "
            "answers read from their stored embeddings")
    if missing:
        line += (f"; {missing} not embedded yet were coded by the rules (run `mentorbot "
                 "recode`)")
    if never:
        line += f"; {never} never embedded (signposted, or typed beside a choice) by the rules"
    if run.refit is not None and run.refit.after is not None:
        line += (f"; heads refitted on {run.refit.examples} review decisions (agreement "
                 f"{run.refit.before:.0%} before, {run.refit.after:.0%} after)")
    return line + "."
