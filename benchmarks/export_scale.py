"""End-to-end researcher export at scale: 100,000 entries from an encrypted store.

    .venv/bin/python benchmarks/export_scale.py [n_entries] [--skip-single] [--distinct]
        [--uncoded] [--judged] [--db sqlite|postgresql]

Generates a synthetic cohort with ``reports.synthetic.generate_cohort`` into a temporary
encrypted database (generation time is *excluded* from every figure and printed separately),
then times, in the same run:

1. ``read floor``: reading and decrypting every consented entry in one process and nothing
   else (``reports.extract.read_range``): the least any export has to do;
2. ``one process``: the whole export (all three formats) built and written in this process
   (``sharded.export`` with one worker);
3. ``mentorbot export``: what the command runs once the store is open
   (``reports.export.run.run_export``): workers started, the plan read from the store, the
   export built and written by the workers (one per core) and joined: all three formats,
   ``withheld.csv`` and the data dictionary.

``--distinct`` makes every answer text unique, as real answers are: the templates alone give a
few hundred distinct texts, and rule coding runs once per distinct text, so the default run
flatters the coder. The cohort is generated with each entry's rule codes stored, as the bot
stores them when an entry is saved (``reports.entry_codes``); ``--uncoded`` leaves them out, as
after a codebook change, so the export codes every entry itself, and then no safety verdicts
either, so the read judges every typed answer on the spot by the lexicon (most of the work,
as straight after an upgrade before ``mentorbot recode``). The cohort otherwise stores a
verdict with every answer, as the bot does. ``--judged`` also runs ``mentorbot recode``'s
``rejudge`` before the timings (lexicon only: the semantic layer is switched off for the run).
``--db postgresql`` stores the cohort in a throw-away PostgreSQL server instead
(tests/support/pgserver.py: a unix socket, removed at the end), data and key store as two
databases; the bulk reads then page through it by key (storage.bulk).
The budget is 30 s for (3).
Ratios: (3) against the read floor, and (2) against (3), the speed-up from the workers. Peak
memory (RSS) of this process and of the largest worker.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PTB_TIMEDELTA", "true")
if "--judged" in sys.argv:
    # verdicts by the lexicon alone, so the export reads them as current (workers inherit it)
    os.environ["MENTORBOT_SAFETY_SEMANTIC"] = "off"

from conversations.catalogue import load_flows
from reports import extract
from reports.codebook import load_codebook
from reports.export import sharded
from reports.export.bundle import plan_export
from reports.export.run import run_export
from reports.synthetic import generate_cohort
from storage.crypto import KeyRing, generate_key
from storage.store import Store

BUDGET_S = 30.0
# generate_cohort writes two entries per session per pair (the mentor's log and the mentee's
# reflection); everyone consents here so the export holds the number asked for.
SESSIONS = 10


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def main(n_entries: int, single: bool, distinct: bool, coded: bool,
               judged: bool, backend: str = "sqlite") -> int:
    import contextlib

    codebook = load_codebook()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        target: Path | str = root / "bench.sqlite3"
        keystore = None
        if backend == "postgresql":
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.support import pgserver

            target, keystore = stack.enter_context(pgserver.running()).fresh("export")
        print(f"backend: {backend}; load average {os.getloadavg()[0]:.2f} at the start")
        store = await Store.open(target, KeyRing(generate_key()),
                                 load_flows()["consent"].version, keystore=keystore)
        try:
            t0 = time.perf_counter()
            pairs = -(-n_entries // (2 * SESSIONS))
            written = await generate_cohort(store, pairs=pairs, sessions=SESSIONS,
                                            consent_rate=1.0, distinct=distinct,
                                            coded=coded)
            print(f"generated {written} entries in {pairs} pairs in "
                  f"{time.perf_counter() - t0:.1f} s (excluded from the figures below)")
            if judged:
                from conversations.safety.stored import rejudge

                t0 = time.perf_counter()
                verdicts = await rejudge(store)
                print(f"judged {verdicts.judged} answers (lexicon) in "
                      f"{time.perf_counter() - t0:.1f} s (excluded)")

            plan = await plan_export(store, "bench", "shift")
            t0 = time.perf_counter()
            answers = sum(len(r.answers) for r in extract.read_range(
                plan.snapshot, 0, plan.snapshot.entry_ids[-1]))
            floor = time.perf_counter() - t0
            print(f"read floor        {floor:6.2f} s  {plan.entries} entries, {answers} answers "
                  "read and decrypted in one process")

            one = None
            if single:
                t0 = time.perf_counter()
                result = sharded.export(plan, codebook, root / "one", workers=1)
                one = time.perf_counter() - t0
                print(f"one process       {one:6.2f} s  all formats "
                      f"({_size(root / 'one') / 1e6:.0f} MB)")

            # what the command runs once the store is open: workers started, plan, export
            t0 = time.perf_counter()
            result = await run_export(store, root / "cli", "bench", "shift", ())
            total = time.perf_counter() - t0
            out_mb = _size(root / "cli") / 1e6
        finally:
            await store.close()
    f = result.facts
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in result.stages.items())
    print(f"mentorbot export  {total:6.2f} s  {result.workers} workers ({stages}); "
          f"{f.entries} entries, {f.answers} answers, {f.segments} segments, "
          f"{len(f.cases)} cases, {out_mb:.0f} MB written")
    print(f"        {result.coded_texts} typed answers; stored codes "
          f"{'used' if coded else 'absent'}; safety verdicts "
          f"{'stored' if coded or judged else 'judged on the spot'}; "
          f"{result.masked} answers masked; "
          f"{result.distinct_texts} distinct texts coded by the export (summed over workers)")
    print(f"ratio: export / read floor = {total / floor:.2f}")
    if one is not None:
        print(f"ratio: one process / {result.workers} workers = {one / total:.2f}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: this process {own:.0f} MB, largest worker {workers:.0f} MB")
    verdict = "within" if total <= BUDGET_S else "OVER"
    print(f"TOTAL (mentorbot export, csv+jsonl+qdpx, {backend}): {total:.2f} s for "
          f"{f.entries} entries, {verdict} the {BUDGET_S:.0f} s budget "
          f"({total / BUDGET_S:.0%}); load average {os.getloadavg()[0]:.2f} at the end")
    return 0 if total <= BUDGET_S else 1


if __name__ == "__main__":
    argv = sys.argv[1:]
    db = "sqlite"
    if "--db" in argv:
        at = argv.index("--db")
        db = argv[at + 1]
        del argv[at:at + 2]
    if db not in ("sqlite", "postgresql"):
        sys.exit("--db is sqlite or postgresql")
    args = [a for a in argv if not a.startswith("--")]
    sys.exit(asyncio.run(main(int(args[0]) if args else 100_000,
                              "--skip-single" not in argv, "--distinct" in argv,
                              "--uncoded" not in argv, "--judged" in argv, db)))
