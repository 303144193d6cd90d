"""The evaluator report at scale: 10,000 and 100,000 entries, time, ratio and peak memory.

Goals (brief): the report on 100,000 entries in 60 s or less on a 2-core machine, peak memory
under 1 GB, and the 100,000-entry time at most 12 times the 10,000-entry time.

    .venv/bin/python benchmarks/report_scale.py [--sizes 10000,100000] [--repeat 1]
                                                [--keep DIR] [--distinct] [--semantic]
                                                [--stale-codes]
                                                [--db sqlite|postgresql]

For each size a synthetic programme is generated into a fresh encrypted database with
``reports.synthetic.generate_cohort`` (20 entries per pair: a mentor's episode log and a
mentee's GROW or OSKAR reflection per session; about 85 % consent to evaluation). Generation
is NOT timed. The report (``build_report``: extract, code, configure, aggregate, render and
write report.json, report.html and review.csv) then runs in a fresh child process, so its
time includes the worker pool's start-up and its memory is measured on its own: peak RSS of
the main process and of the largest worker. The load average before each run is printed,
since other processes on the machine slow the run.

With ``--semantic`` (issue 13; needs the semantic extra) every coded answer also gets a
stored embedding, as ``mentorbot recode`` would leave it: random unit vectors of the encoder's
width, one per unit the heads read, packed and encrypted with the author's key the normal way
(``storage/embeddings.py``; generated, not timed: what the heads then find is meaningless, what
they cost is not). Each size is then reported twice, with the semantic layer (on by default
where embeddings are stored) and with ``--no-semantic``, and a line per size gives the ratio
semantic/rules-only and both absolutes.

With ``--semantic`` the entries' codes are then stored as ``mentorbot recode`` stores them
once embeddings are stored (the rules joined by the heads; not timed), so the report reads
them where they are current (``reports.entry_codes.current_codes``) instead of coding every
answer again; ``--stale-codes`` leaves the generated codes (the rules' alone, stale once
embeddings are stored) for the report to code again, the case straight after an upgrade that
changes the codebook or the heads, before ``mentorbot recode`` has run. On a kept database
(``--keep``) the codes are stored once per coder.

With ``--db postgresql`` each programme is stored in a throw-away PostgreSQL server instead
(tests/support/pgserver.py: initdb in a temporary folder, a unix socket, removed at the end;
data and key store as two databases), and the report reads it from there (``--keep`` keeps
only the reports then).

The last line holds the ratio and the absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_S = 60.0
TARGET_RATIO = 12.0
TARGET_RSS_MB = 1024
ENTRIES_PER_PAIR = 20  # sessions=10: one mentor log and one mentee reflection each


async def _generate(db: Path | str, key_file: Path, entries: int, distinct: bool = False,
                    keystore: str | None = None) -> float:
    from conversations.catalogue import load_flows
    from reports.synthetic import generate_cohort
    from storage.crypto import KeyRing, encode_key, generate_key
    from storage.store import Store

    key = generate_key()
    key_file.write_text(encode_key(key), encoding="ascii")
    started = time.perf_counter()
    store = await Store.open(db, KeyRing(key), load_flows()["consent"].version,
                             keystore=keystore)
    try:
        await generate_cohort(
            store, pairs=max(1, entries // ENTRIES_PER_PAIR), sessions=10, seed=7,
            distinct=distinct,
        )
    finally:
        await store.close()
    return time.perf_counter() - started


async def _embed(db: Path | str, key_file: Path, seed: int = 7,
                 keystore: str | None = None) -> tuple[int, float]:
    """Random unit embeddings for every coded answer, stored encrypted (not timed)."""
    import numpy as np

    from conversations import sentence_encoder
    from conversations.catalogue import load_flows
    from reports import extract
    from reports.coding.embeddings import model_id, pack
    from reports.coding.heads import units
    from reports.entry_codes import coded_texts
    from storage.crypto import KeyRing, decode_key
    from storage.models import Scope
    from storage.store import Store

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    flows = load_flows()
    model = model_id()
    key = decode_key(key_file.read_text(encoding="ascii"))
    store = await Store.open(db, KeyRing(key), flows["consent"].version, create=False,
                             keystore=keystore)
    stored = 0
    try:
        snap = await extract.snapshot(store, Scope.PARTICIPATE)
        rows: list[tuple[int, int, str, str, object]] = []
        if snap.entry_ids:
            for record in extract.read_range(snap, 0, snap.entry_ids[-1], with_codes=False):
                for step, text in coded_texts(flows.get(record.flow), record.answers,
                                              record.flagged).items():
                    spans = units(text)
                    v = rng.standard_normal((len(spans), sentence_encoder.DIMENSION))
                    v /= np.linalg.norm(v, axis=1, keepdims=True)
                    rows.append((record.participant_id, record.entry_id, step, model,
                                 pack(spans, v.astype(np.float32))))
                if len(rows) >= 5000:
                    stored += await store.embeddings.save_many(rows)
                    rows = []
        stored += await store.embeddings.save_many(rows)
    finally:
        await store.close()
    return stored, time.perf_counter() - started


async def _store_codes(db: Path | str, key_file: Path,
                       keystore: str | None = None) -> tuple[int, float, str]:
    """Codes stored with every entry as ``mentorbot recode`` stores them once the answers'
    embeddings are stored (its coding pipeline, ``reports.entry_codes._Pipeline``: the rules
    joined by the heads over the stored embeddings, ``StoredCoder``), not timed. The safety
    rule's judging, which recode runs first, is left out: the cohort's answers carry the
    verdicts they were saved with, and judging 200,000 answers again would embed each."""
    from conversations.catalogue import load_flows
    from reports import extract
    from reports.entry_codes import RecodeResult, StoredCoder, _Pipeline
    from storage.crypto import KeyRing, decode_key
    from storage.db import iso, utcnow
    from storage.models import Scope
    from storage.store import Store

    started = time.perf_counter()
    flows = load_flows()
    key = decode_key(key_file.read_text(encoding="ascii"))
    store = await Store.open(db, KeyRing(key), flows["consent"].version, create=False,
                             keystore=keystore)
    coder = StoredCoder()
    try:
        snap = await extract.snapshot(store, Scope.PARTICIPATE)
        result = RecodeResult(len(snap.entry_ids), 0, 0)
        if snap.entry_ids:
            pipeline = await _Pipeline.open(store, flows, coder, False, result)
            as_of = iso(utcnow())
            for record in extract.read_range(snap, 0, snap.entry_ids[-1]):
                await pipeline.add(record, as_of)
            await pipeline.flush(last=True)
    finally:
        await store.close()
    return result.coded, time.perf_counter() - started, coder.coder


async def _stale_codes(db: Path | str, key_file: Path, keystore: str | None = None) -> None:
    """The stored codes of a kept programme marked as another coder's (``--stale-codes``)."""
    from conversations.catalogue import load_flows
    from storage.crypto import KeyRing, decode_key
    from storage.store import Store

    key = decode_key(key_file.read_text(encoding="ascii"))
    store = await Store.open(db, KeyRing(key), load_flows()["consent"].version, create=False,
                             keystore=keystore)
    try:
        await store.db.execute("UPDATE entry_codes SET coder = coder || '/stale'")
    finally:
        await store.close()


async def _report(db: Path | str, key_file: Path, out: Path, semantic: bool | None = None,
                  keystore: str | None = None) -> dict[str, object]:
    from conversations.catalogue import load_flows
    from reports.evaluator import Options, build_report
    from storage.crypto import KeyRing, decode_key
    from storage.store import Store

    started = time.perf_counter()
    cpu = time.process_time()
    key = decode_key(key_file.read_text(encoding="ascii"))
    store = await Store.open(db, KeyRing(key), load_flows()["consent"].version, create=False,
                             keystore=keystore)
    try:
        result = await build_report(store, out, options=Options(semantic=semantic))
    finally:
        await store.close()
    wall = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": round(wall, 2),
        "main_cpu_s": round(time.process_time() - cpu, 2),
        "workers_cpu_s": round(children.ru_utime + children.ru_stime, 2),
        "main_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "worker_peak_rss_mb": children.ru_maxrss // 1024,
        "entries": result.entries,
        "review_rows": result.review_rows,
        "stages_s": result.timings,
        "coding": result.coding,
        "json_mb": round((out / "report.json").stat().st_size / 2**20, 1),
        "review_mb": round((out / "review.csv").stat().st_size / 2**20, 1),
    }


def _child(args: argparse.Namespace) -> None:
    semantic = {"on": None, "off": False}[args.layer]
    target = args.target if args.keystore else Path(args.target)
    stats = asyncio.run(_report(target, Path(args.key), Path(args.out), semantic,
                                args.keystore))
    print(json.dumps(stats))


def _run_child(db: Path | str, key_file: Path, out: Path, layer: str = "off",
               keystore: str | None = None) -> dict[str, object]:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            *(["--keystore", keystore] if keystore else []),
            "--target",
            str(db),
            "--key",
            str(key_file),
            "--out",
            str(out),
            "--layer",
            layer,
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (median taken)")
    parser.add_argument("--keep", default=None, help="keep databases and reports here")
    parser.add_argument("--distinct", action="store_true",
                        help="every answer text unique, as real answers are (the templates "
                             "alone repeat, and the coder codes each distinct text once)")
    parser.add_argument("--semantic", action="store_true",
                        help="store random embeddings and also run the report with the "
                             "semantic layer; prints semantic/rules-only ratios")
    parser.add_argument("--stale-codes", action="store_true",
                        help="with --semantic: leave the entries' stored codes as generated "
                             "(the rules' alone, stale once embeddings are stored), so the "
                             "report codes every answer again, as before `mentorbot recode` "
                             "has run after an upgrade")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite",
                        help="where the programmes are stored (postgresql: a throw-away "
                             "server of its own)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--layer", default="off", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--keystore", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="report-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    layers = ("off", "on") if args.semantic else ("off",)
    with contextlib.ExitStack() as stack:
        server = None
        if args.db == "postgresql":
            from tests.support import pgserver

            server = stack.enter_context(pgserver.running())
        print(f"backend: {args.db}; load average {os.getloadavg()[0]:.2f}")
        results = _measure(args, sizes, base, layers, server)
    _summary(args, sizes, layers, results)


def _measure(args: argparse.Namespace, sizes: list[int], base: Path, layers: tuple[str, ...],
             server: object) -> dict[tuple[int, str], dict[str, object]]:
    results: dict[tuple[int, str], dict[str, object]] = {}
    for size in sizes:
        db: Path | str = base / f"programme-{size}.sqlite3"
        key_file = base / f"programme-{size}.key"
        keystore = None
        marker = base / f"programme-{size}.embedded"
        if server is not None:
            db, keystore = server.fresh(f"scale{size}")  # type: ignore[attr-defined]
            marker.unlink(missing_ok=True)
        if server is not None or not Path(db).exists():
            took = asyncio.run(_generate(db, key_file, size, args.distinct, keystore))
            print(f"{size:>7} entries: generated in {took:.1f} s (not part of the report time)")
        if args.semantic and not marker.exists():
            stored, took = asyncio.run(_embed(db, key_file, keystore=keystore))
            marker.write_text(str(stored), encoding="ascii")
            print(f"{size:>7} entries: {stored} answers given random stored embeddings in "
                  f"{took:.1f} s (not part of the report time)")
        coded = base / f"programme-{size}.coded"
        if args.semantic and not args.stale_codes:
            from reports.entry_codes import StoredCoder

            if not coded.exists() or coded.read_text(encoding="ascii") != StoredCoder().coder:
                n, took, coder = asyncio.run(_store_codes(db, key_file, keystore))
                coded.write_text(coder, encoding="ascii")
                print(f"{size:>7} entries: {n} entries' codes stored as `mentorbot recode` "
                      f"stores them in {took:.1f} s (not part of the report time)")
        if args.semantic and args.stale_codes and coded.exists():
            asyncio.run(_stale_codes(db, key_file, keystore))  # codes kept from a run before
            coded.unlink()
        for layer in layers:
            runs = []
            for k in range(args.repeat):
                load = os.getloadavg()[0]
                stats = _run_child(db, key_file, base / f"report-{size}-{layer}-{k}", layer,
                                   keystore)
                stats["load_before"] = round(load, 2)
                runs.append(stats)
                name = "semantic" if layer == "on" else "rules-only"
                print(
                    f"{size:>7} entries, {name}: report {stats['wall_s']} s (load before "
                    f"{load:.2f}); main cpu {stats['main_cpu_s']} s, workers cpu "
                    f"{stats['workers_cpu_s']} s; peak rss main {stats['main_peak_rss_mb']} MB, "
                    f"largest worker {stats['worker_peak_rss_mb']} MB; stages "
                    f"{stats['stages_s']}; report.json {stats['json_mb']} MB, review.csv "
                    f"{stats['review_mb']} MB ({stats['review_rows']} rows); {stats['coding']}"
                )
            median = statistics.median(float(r["wall_s"]) for r in runs)  # type: ignore[arg-type]
            results[(size, layer)] = min(
                runs, key=lambda r: abs(float(r["wall_s"]) - median))  # type: ignore[arg-type]
    return results


def _summary(args: argparse.Namespace, sizes: list[int], layers: tuple[str, ...],
             results: dict[tuple[int, str], dict[str, object]]) -> None:
    for layer in layers:
        name = "semantic" if layer == "on" else "rules-only"
        if len(sizes) >= 2:
            small, large = results[(sizes[0], layer)], results[(sizes[-1], layer)]
            ratio = float(large["wall_s"]) / float(small["wall_s"])  # type: ignore[arg-type]
            rss, worker = _memory(small, large)
            print(
                f"{name}: ratio {sizes[-1]}/{sizes[0]}: {ratio:.2f} (target <= "
                f"{TARGET_RATIO:g}); {sizes[0]} entries {small['wall_s']} s, {sizes[-1]} "
                f"entries {large['wall_s']} s (target <= {TARGET_S:g} s); peak RSS main {rss} "
                f"MB, largest worker {worker} MB, main + 2 workers <= {rss + 2 * worker} MB "
                f"(target < {TARGET_RSS_MB} MB); generation time excluded; {args.db}"
            )
    if args.semantic:
        for size in sizes:
            on, off = results[(size, "on")], results[(size, "off")]
            rss, worker = _memory(on, on)
            ratio = float(on["wall_s"]) / float(off["wall_s"])  # type: ignore[arg-type]
            print(
                f"semantic/rules-only at {size} entries: {ratio:.2f} ({on['wall_s']} s with "
                f"the semantic layer, {off['wall_s']} s rules only; target <= {TARGET_S:g} s "
                f"at 100000); semantic run peak RSS main {rss} MB, largest worker {worker} "
                f"MB, main + 2 workers <= {rss + 2 * worker} MB (target < {TARGET_RSS_MB} "
                f"MB); load before {on['load_before']}; generation of embeddings excluded"
            )


def _memory(a: dict[str, object], b: dict[str, object]) -> tuple[int, int]:
    rss = max(int(a["main_peak_rss_mb"]), int(b["main_peak_rss_mb"]))  # type: ignore[call-overload]
    worker = max(int(a["worker_peak_rss_mb"]), int(b["worker_peak_rss_mb"]))  # type: ignore[call-overload]
    return rss, worker

if __name__ == "__main__":
    main()
