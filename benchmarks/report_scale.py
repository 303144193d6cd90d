"""The evaluator report at scale: 10,000 and 100,000 entries, time, ratio and peak memory.

Goals (brief): the report on 100,000 entries in 60 s or less on a 2-core machine, peak memory
under 1 GB, and the 100,000-entry time at most 12 times the 10,000-entry time.

    .venv/bin/python benchmarks/report_scale.py [--sizes 10000,100000] [--repeat 1]
                                                [--keep DIR] [--distinct]

For each size a synthetic programme is generated into a fresh encrypted database with
``reports.synthetic.generate_cohort`` (20 entries per pair: a mentor's episode log and a
mentee's GROW or OSKAR reflection per session; about 85 % consent to evaluation). Generation
is NOT timed. The report (``build_report``: extract, code, configure, aggregate, render and
write report.json, report.html and review.csv) then runs in a fresh child process, so its
time includes the worker pool's start-up and its memory is measured on its own: peak RSS of
the main process and of the largest worker. The load average before each run is printed,
since other processes on the machine slow the run.

The last line holds the ratio and the absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def _generate(db: Path, key_file: Path, entries: int, distinct: bool = False) -> float:
    from conversations.catalogue import load_flows
    from reports.synthetic import generate_cohort
    from storage.crypto import KeyRing, encode_key, generate_key
    from storage.store import Store

    key = generate_key()
    key_file.write_text(encode_key(key), encoding="ascii")
    started = time.perf_counter()
    store = await Store.open(db, KeyRing(key), load_flows()["consent"].version)
    try:
        await generate_cohort(
            store, pairs=max(1, entries // ENTRIES_PER_PAIR), sessions=10, seed=7,
            distinct=distinct,
        )
    finally:
        await store.close()
    return time.perf_counter() - started


async def _report(db: Path, key_file: Path, out: Path) -> dict[str, object]:
    from conversations.catalogue import load_flows
    from reports.evaluator import build_report
    from storage.crypto import KeyRing, decode_key
    from storage.store import Store

    started = time.perf_counter()
    cpu = time.process_time()
    key = decode_key(key_file.read_text(encoding="ascii"))
    store = await Store.open(db, KeyRing(key), load_flows()["consent"].version, create=False)
    try:
        result = await build_report(store, out)
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
        "json_mb": round((out / "report.json").stat().st_size / 2**20, 1),
        "review_mb": round((out / "review.csv").stat().st_size / 2**20, 1),
    }


def _child(args: argparse.Namespace) -> None:
    stats = asyncio.run(_report(Path(args.db), Path(args.key), Path(args.out)))
    print(json.dumps(stats))


def _run_child(db: Path, key_file: Path, out: Path) -> dict[str, object]:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--db",
            str(db),
            "--key",
            str(key_file),
            "--out",
            str(out),
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
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="report-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, object]] = {}
    for size in sizes:
        db, key_file = base / f"programme-{size}.sqlite3", base / f"programme-{size}.key"
        if not db.exists():
            took = asyncio.run(_generate(db, key_file, size, args.distinct))
            print(f"{size:>7} entries: generated in {took:.1f} s (not part of the report time)")
        runs = []
        for k in range(args.repeat):
            load = os.getloadavg()[0]
            stats = _run_child(db, key_file, base / f"report-{size}-{k}")
            stats["load_before"] = round(load, 2)
            runs.append(stats)
            print(
                f"{size:>7} entries: report {stats['wall_s']} s (load before {load:.2f}); "
                f"main cpu {stats['main_cpu_s']} s, workers cpu {stats['workers_cpu_s']} s; "
                f"peak rss main {stats['main_peak_rss_mb']} MB, largest worker "
                f"{stats['worker_peak_rss_mb']} MB; stages {stats['stages_s']}; "
                f"report.json {stats['json_mb']} MB, review.csv {stats['review_mb']} MB "
                f"({stats['review_rows']} rows)"
            )
        median = statistics.median(float(r["wall_s"]) for r in runs)  # type: ignore[arg-type]
        best = min(runs, key=lambda r: abs(float(r["wall_s"]) - median))  # type: ignore[arg-type]
        results[size] = best
    if len(sizes) >= 2:
        small, large = results[sizes[0]], results[sizes[-1]]
        ratio = float(large["wall_s"]) / float(small["wall_s"])  # type: ignore[arg-type]
        rss = max(int(large["main_peak_rss_mb"]), int(small["main_peak_rss_mb"]))  # type: ignore[call-overload]
        worker = max(int(large["worker_peak_rss_mb"]), int(small["worker_peak_rss_mb"]))  # type: ignore[call-overload]
        print(
            f"ratio {sizes[-1]}/{sizes[0]}: {ratio:.2f} (target <= {TARGET_RATIO:g}); "
            f"{sizes[0]} entries {small['wall_s']} s, {sizes[-1]} entries {large['wall_s']} s "
            f"(target <= {TARGET_S:g} s); peak RSS main {rss} MB, largest worker {worker} MB, "
            f"main + 2 workers <= {rss + 2 * worker} MB (target < {TARGET_RSS_MB} MB); "
            "generation time excluded"
        )


if __name__ == "__main__":
    main()
