"""One researcher export built and written by several processes, through the same writers.

``mentorbot export`` on a large programme is CPU work from end to end (decrypting, coding,
formatting three file formats), so :func:`export` splits the entries into consecutive id
ranges, one per worker process:

1. this process takes an :class:`~reports.export.bundle.ExportPlan` from the store (the consent
   rule's people and their data keys, names to mask, date anchors, entry ids);
2. each worker builds its range (:func:`~reports.export.bundle.build_part`) and reports the
   figures only the whole export can settle: case counts, the wide layout of ``entries.csv``,
   which entries belong to which case, totals;
3. this process merges those into one :class:`~reports.export.model.ExportFacts` and sends it
   back; each worker writes its rows (CSV, JSON Lines) and its share of the REFI-QDA project
   into a parts folder, while this process writes the headers' side: ``cases.csv``, the data
   dictionary, ``codebook.qdc``, ``withheld.csv``;
4. this process joins the parts in range order.

The files are the ones :func:`reports.export.write_all` writes from the whole bundle: the CSV
and JSON Lines files byte for byte, the project with the same members and contents (its
``project.qde`` is deflated in pieces). Workers are spawned, not forked: the database
connection lives in a thread of this process. Data keys and names reach them through pipes
and are never written anywhere; the parts folder sits inside the output folder, holds nothing
the finished export does not, and is removed on success and failure alike.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from conversations.catalogue import load_flows
from reports.batch import collector_paused
from reports.codebook import Codebook, load_codebook
from reports.export import CODEBOOK_FILE, PROJECT_FILE, package, refi, stats, tabular
from reports.export.bundle import (
    ExportPlan,
    PartBuild,
    Withheld,
    build_part,
    document_withheld,
    join_cases,
    write_withheld_rows,
)
from reports.export.model import (
    ExportBundle,
    ExportFacts,
    WideStep,
    facts_of,
    merge_wide_steps,
    segments_by_entry,
)
from reports.extract import split
from storage.integrity import TamperError

FORMATS = ("csv", "jsonl", "qdpx")
MIN_ENTRIES_PER_WORKER = 4000  # below this, starting a process costs more than it saves


@dataclass
class ExportResult:
    facts: ExportFacts
    paths: list[Path]
    withheld: list[Withheld] = field(default_factory=list)
    masked: int = 0
    coded_texts: int = 0
    distinct_texts: int = 0  # summed over workers: each codes a distinct text once
    workers: int = 1
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds by stage


@dataclass(frozen=True)
class _PartFacts:
    """What a worker reports after building: everything the merged facts need."""

    counts: dict[str, tuple[str | None, str, int]]
    steps: list[WideStep]
    entries_by_person: dict[str, list[str]]
    entries: int
    answers: int
    segments: int
    withheld: list[Withheld]
    masked: int
    coded_texts: int
    distinct_texts: int


def _part_facts(part: PartBuild) -> _PartFacts:
    f = facts_of(part.bundle)
    return _PartFacts(part.counts, list(f.steps), f.entries_by_person, f.entries, f.answers,
                      f.segments, part.withheld, part.masked, part.coded_texts,
                      part.distinct_texts)


def _merge(plan: ExportPlan, codebook: Codebook, parts: Sequence[_PartFacts]) -> ExportFacts:
    by_person: dict[str, list[str]] = {}
    for p in parts:
        for person, ids in p.entries_by_person.items():
            by_person.setdefault(person, []).extend(ids)
    return ExportFacts(
        plan.pseudonyms.study, plan.generated_by, codebook.version, codebook.content_hash,
        plan.date_mode, sum(p.entries for p in parts), sum(p.answers for p in parts),
        sum(p.segments for p in parts), join_cases(p.counts for p in parts),
        tuple(merge_wide_steps(p.steps for p in parts)), by_person, plan.options,
    )


def _write_part(bundle: ExportBundle, facts: ExportFacts, codebook: Codebook,
                formats: frozenset[str], part_dir: Path, first: bool) -> refi.ProjectPart | None:
    if "csv" in formats:
        tabular.write_csv_part(bundle, facts, part_dir, first)
    if "jsonl" in formats:
        tabular.write_jsonl(bundle, part_dir)
    if "qdpx" in formats:
        return refi.write_project_part(bundle, codebook, part_dir, first, checked=True,
                                       facts=facts)
    return None


def _check(bundle: ExportBundle, codebook: Codebook, formats: frozenset[str]) -> None:
    # every writer's checks, before anything is written: a bad segment or code fails the run
    if "qdpx" in formats:
        refi.check(bundle, codebook)
    else:
        segments_by_entry(bundle)


# ---------------------------------------------------------------------------
# worker process
# ---------------------------------------------------------------------------


def _worker(conn: Connection) -> None:
    """Build one range, report its facts, write its parts when told; report every failure."""
    try:
        # ready before the plan arrives: workers start while the store is still being read
        load_flows()
        load_codebook()
        order = conn.recv()
        if order is None:
            return  # fewer ranges than workers
        gc.disable()  # for the rest of this process's short life: see reports.batch
        plan, book, after, upto, formats, part_dir, first = order
        codebook = load_codebook() if isinstance(book, str) else book
        if codebook.content_hash != (book if isinstance(book, str) else book.content_hash):
            raise ValueError("the packaged codebook changed while the export ran")
        part = build_part(plan, codebook, after, upto)
        _check(part.bundle, codebook, formats)
        conn.send(("built", _part_facts(part)))
        facts = conn.recv()
        if facts is None:
            return  # another part failed: nothing to write
        conn.send(("written", _write_part(part.bundle, facts, codebook, formats, part_dir,
                                          first)))
    except TamperError as exc:  # names row numbers only: raised again in the parent as is
        conn.send(("tamper", str(exc)))
    except BaseException as exc:  # every failure, even KeyboardInterrupt, must reach the parent
        conn.send(("failed", _failure(exc)))
    finally:
        conn.close()


def _failure(exc: BaseException) -> str:
    """What the researcher is told of a worker's failure, with nobody's words in it.

    The export's own checks (a ValueError raised in ``reports.export``) name pseudonyms,
    steps and code ids and say what to fix, so their message is kept; any other error could
    quote an answer (``int("...")``), so only its type and where it happened are told.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename if tb is not None else ""
    origin = f" at {Path(where).name}:{tb.tb_lineno}" if tb is not None else ""
    if isinstance(exc, ValueError) and f"{os.sep}reports{os.sep}export{os.sep}" in where:
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}{origin}"


class PartFailed(RuntimeError):
    """A worker could not build or write its share of the export."""


class Workers:
    """Worker processes for one export; start them early (see :func:`start_workers`)."""

    def __init__(self, n: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for i in range(n):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(theirs,), name=f"mentorbot-export-{i}",
                               daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)

    def __len__(self) -> int:
        return len(self.conns)

    def use(self, n: int) -> None:
        """Keep the first ``n`` workers; the others stop."""
        for conn in self.conns[n:]:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
            conn.close()
        self.conns = self.conns[:n]

    def send_all(self, messages: Sequence[Any]) -> None:
        for conn, message in zip(self.conns, messages, strict=True):
            conn.send(message)

    def gather(self, expected: str) -> list[Any]:
        out = []
        for i, conn in enumerate(self.conns):
            try:
                kind, payload = conn.recv()
            except EOFError:
                kind, payload = "failed", "the worker exited without a report"
            if kind == "tamper":
                raise TamperError(payload)
            if kind != expected:
                raise PartFailed(f"export part {i + 1} of {len(self.conns)} failed: {payload}")
            out.append(payload)
        return out

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)  # a worker still waiting for facts stops
            conn.close()
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self.conns, self.procs = [], []


# ---------------------------------------------------------------------------
# the export
# ---------------------------------------------------------------------------


def default_workers(entries: int) -> int:
    """One worker per core, and none for fewer than :data:`MIN_ENTRIES_PER_WORKER` entries."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    return max(1, min(cores, entries // MIN_ENTRIES_PER_WORKER))


def start_workers(workers: int) -> Workers | None:
    """Workers started now, to be handed to :func:`export` (None for one: no processes).

    Starting a worker takes about a second of imports; started before the plan is read from
    the store, that second overlaps it.
    """
    return Workers(workers) if workers > 1 else None


def export(plan: ExportPlan, codebook: Codebook, out_dir: Path | str,
           formats: Sequence[str] = FORMATS, workers: int | None = None,
           pool: Workers | None = None) -> ExportResult:
    """Build and write the plan's export into ``out_dir`` with ``workers`` processes.

    ``workers`` defaults to :func:`default_workers`; with one, everything happens here,
    through the same parts and joins. ``pool``, from :func:`start_workers`, is used (and
    closed) instead of starting workers here.
    """
    try:
        with collector_paused():
            return _export(plan, codebook, Path(out_dir), frozenset(formats or FORMATS),
                           workers, pool)
    finally:
        if pool is not None:
            pool.close()


def _export(plan: ExportPlan, codebook: Codebook, out: Path, wanted: frozenset[str],
            workers: int | None, pool: Workers | None) -> ExportResult:
    unknown = wanted - set(FORMATS) - set(stats.STATS_FORMATS)
    if unknown:
        raise ValueError(f"unknown export format(s): {', '.join(sorted(unknown))}")
    stats_formats = sorted(wanted & set(stats.STATS_FORMATS))
    if stats_formats:
        stats.check_available()  # before any work: the extra may be missing
        wanted |= {"csv"}  # the Stata and SPSS files are made from the CSV files
    if pool is not None:
        workers = len(pool)
    elif workers is None:
        workers = default_workers(plan.entries)
    ranges = split(plan.snapshot.entry_ids, workers)
    if pool is not None and len(ranges) == 1:
        pool.close()  # nothing to share out: this process does it all
        pool = None
    out.mkdir(parents=True, exist_ok=True)
    _remove_parts(out)
    packaged = load_codebook()
    # the packaged codebook travels as its hash: each worker loads its own copy
    book: Codebook | str = (codebook.content_hash
                            if packaged.content_hash == codebook.content_hash else codebook)

    clock = _Clock()
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-parts-") as tmp:
        part_dirs = [Path(tmp) / f"part-{i}" for i in range(len(ranges))]
        if len(ranges) == 1:
            built = build_part(plan, codebook, *ranges[0])
            _check(built.bundle, codebook, wanted)
            parts = [_part_facts(built)]
            facts = _merge(plan, codebook, parts)
            clock.lap("build")
            side = _write_side(codebook, facts, parts, wanted, out)
            projects = [_write_part(built.bundle, facts, codebook, wanted, part_dirs[0], True)]
            clock.lap("write parts")
            del built
        else:
            if pool is None:
                pool = Workers(len(ranges))
            pool.use(len(ranges))
            try:
                pool.send_all([(plan, book, after, upto, wanted, part_dir, i == 0)
                               for i, ((after, upto), part_dir) in enumerate(
                                   zip(ranges, part_dirs, strict=True))])
                parts = pool.gather("built")
                facts = _merge(plan, codebook, parts)
                clock.lap("build")
                pool.send_all([facts] * len(ranges))
                side = _write_side(codebook, facts, parts, wanted, out)
                projects = pool.gather("written")
                clock.lap("write parts")
            finally:
                pool.close()
        paths = tabular.assemble_tabular(facts, part_dirs, out, csv_files="csv" in wanted,
                                         jsonl="jsonl" in wanted)
        paths += side
        if "qdpx" in wanted:
            paths.append(refi.assemble_qdpx(
                facts, codebook,
                [(d, p) for d, p in zip(part_dirs, projects, strict=True) if p is not None],
                out / PROJECT_FILE))
        if stats_formats:
            paths += stats.write_stats(facts, out, stats_formats)
        clock.lap("join")
    return ExportResult(
        facts, paths, [w for p in parts for w in p.withheld], sum(p.masked for p in parts),
        sum(p.coded_texts for p in parts), sum(p.distinct_texts for p in parts), len(ranges),
        clock.laps,
    )


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def _write_side(codebook: Codebook, facts: ExportFacts, parts: Sequence[_PartFacts],
                wanted: frozenset[str], out: Path) -> list[Path]:
    """The files written from the merged facts alone, while the workers write their rows."""
    paths: list[Path] = []
    if wanted & {"csv", "jsonl"}:
        paths += tabular.write_data_dictionary(facts, out)
        paths.append(write_withheld_rows([w for p in parts for w in p.withheld], out,
                                         facts.options.bom))
        document_withheld(out)
    if "csv" in wanted:
        paths.append(package.write_codebook_csv(codebook, out, facts.options.bom))
        rows = [tabular.ANSWERS_CSV, tabular.ENTRIES_CSV, tabular.CASES_CSV,
                tabular.SEGMENTS_CSV]
        paths.append(package.write_package(facts, [*rows, *(p.name for p in paths)], out))
    if "qdpx" in wanted:
        paths.append(refi.write_qdc(codebook, out / CODEBOOK_FILE))
    return paths


def _remove_parts(out: Path) -> None:
    """Parts folders a killed export left behind: the next export into the folder clears them."""
    for leftover in out.glob(".export-parts-*"):
        shutil.rmtree(leftover, ignore_errors=True)
