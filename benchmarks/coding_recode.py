"""`mentorbot recode` throughput with and without embedding answers, and embedding one answer.

Usage: python benchmarks/coding_recode.py [--pairs 40] [--sessions 6] [--baseline REV]

Generates a synthetic programme (not timed) whose entries have stored codes but no stored
embeddings and whose answers the current safety rule has not judged (their verdicts are the
lexicon's), then times `mentorbot recode`'s two parts (``reports.entry_codes.recode``):
judging every answer by the safety rule, as after an upgrade that changes it (its semantic
layer embeds each sentence too), and then coding and embedding every coded answer (encoder
batches in a thread, decryption and encrypted saves beside them). A second recode that finds
everything current gives the floor of the same run (decrypting and checking only). Also
times embedding one answer at a time, as the bot's embedding worker does after a save.

With ``--baseline REV`` the same benchmark of git revision ``REV`` (its code, this
environment) runs first, on a programme generated from the same seed, and the ratios compare
the two; the machine is shared, so both are printed with the load average.

The synthetic programme's answers come from a phrase bank and repeat (about a third of its
sentences are distinct), and the encoder embeds a repeated text once within a batch; real
answers rarely repeat, so the figure for a programme whose answers are all distinct
(``generate_cohort(distinct=True)``) is printed too.
Targets: recode >= 150 answers/s; one answer <= 30 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conversations import sentence_encoder  # noqa: E402
from conversations.catalogue import load_flows  # noqa: E402
from reports.coding.embeddings import embed_texts  # noqa: E402
from reports.entry_codes import recode  # noqa: E402
from reports.synthetic import generate_cohort  # noqa: E402
from storage.crypto import KeyRing, generate_key  # noqa: E402
from storage.store import Store  # noqa: E402

# the baseline's figures; "safety verdicts current" from 444d757 on (then the safety rule's
# judging is timed apart, in TOTAL)
RATE = re.compile(r"recode embedding (\d+) answers of (\d+) entries(?:, safety verdicts "
                  r"current)?: ([\d.]+) s, (\d+) answers/s")
TOTAL = re.compile(r"recode after a safety rule change \(every answer judged first, "
                   r"([\d.]+) s\): ([\d.]+) s, (\d+) answers/s")
ONE = re.compile(r"one at a time: ([\d.]+) ms")


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


async def run(pairs: int, sessions: int, distinct: bool) -> dict[str, float]:
    from conversations.safety.stored import rejudge

    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(Path(tmp) / "bench.sqlite3", KeyRing(generate_key()),
                                 load_flows()["consent"].version)
        try:
            await generate_cohort(store, pairs=pairs, sessions=sessions, consent_rate=1.0,
                                  distinct=distinct)
            sentence_encoder.load_encoder().encode(["warm up"])
            # recode's first part, timed on its own: every answer judged by the safety
            # rule (the cohort's verdicts are the lexicon's; after an upgrade that changes
            # the rule recode does the same), its semantic layer embedding each sentence
            start = time.perf_counter()
            await rejudge(store)
            safety_s = time.perf_counter() - start
            start, cpu = time.perf_counter(), time.process_time()
            first = await recode(store)
            embed_s = time.perf_counter() - start
            embed_cpu = time.process_time() - cpu  # every thread of this process
            start = time.perf_counter()
            again = await recode(store)
            base_s = time.perf_counter() - start
        finally:
            await store.close()
        # and the command as it runs after a safety rule change: one recode that judges
        # every answer and then codes and embeds (the safety rule's semantic layer and the
        # coder share their embeddings within it), on the same programme generated again
        store = await Store.open(Path(tmp) / "whole.sqlite3", KeyRing(generate_key()),
                                 load_flows()["consent"].version)
        try:
            await generate_cohort(store, pairs=pairs, sessions=sessions, consent_rate=1.0,
                                  distinct=distinct)
            start = time.perf_counter()
            whole = await recode(store)
            whole_s = time.perf_counter() - start
        finally:
            await store.close()
    total = safety_s + embed_s
    return {"embedded": first.embedded, "entries": first.entries, "s": embed_s,
            "rate": first.embedded / embed_s if embed_s else 0.0, "floor_s": base_s,
            "again": again.embedded, "safety_s": safety_s, "total_s": total,
            "total_rate": first.embedded / total if total else 0.0,
            "whole_s": whole_s, "whole_rate": whole.embedded / whole_s if whole_s else 0.0,
            "cpu_ms": embed_cpu / first.embedded * 1000 if first.embedded else 0.0}


def one_answer_ms() -> float:
    texts = ["Talked through the rota problem; she asked what I wanted and I realised I "
             "can say no. Feeling more confident about the band 7 interview now."] * 30
    encoder = sentence_encoder.load_encoder()
    embed_texts({"s": "warm up. Twice."}, encoder)
    start = time.perf_counter()
    for i, t in enumerate(texts):
        embed_texts({"s": f"{t} {i}"}, encoder)
    return (time.perf_counter() - start) / len(texts) * 1000


def baseline(rev: str, pairs: int, sessions: int,
             distinct: bool = True) -> tuple[str, dict[str, float]]:
    """Run this benchmark as it was at ``rev`` (that revision's code) and read its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        tar = Path(tmp) / "rev.tar"
        tar.write_bytes(archive)
        with tarfile.open(tar) as t:
            t.extractall(Path(tmp) / "rev", filter="data")
        out = subprocess.run(
            [sys.executable, str(Path(tmp) / "rev" / "benchmarks" / "coding_recode.py"),
             "--pairs", str(pairs), "--sessions", str(sessions),
             *([] if distinct else ["--no-distinct"])],
            cwd=Path(tmp) / "rev", capture_output=True, text=True, check=True).stdout
    m, one, total = RATE.search(out), ONE.search(out), TOTAL.search(out)
    if m is None or one is None:
        raise SystemExit(f"could not read the baseline's figures:\n{out}")
    figures = {"embedded": float(m[1]), "s": float(m[3]), "rate": float(m[4]),
               "one_ms": float(one[1])}
    if total is not None:  # the safety rule's judging timed apart
        figures |= {"current_rate": figures["rate"], "safety_s": float(total[1]),
                    "total_s": float(total[2]), "rate": float(total[3])}
    return out, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--baseline", metavar="REV",
                        help="first run this benchmark as it was at git revision REV")
    parser.add_argument("--no-distinct", action="store_true",
                        help="skip the run with every answer made distinct")
    args = parser.parse_args()
    base = None
    if args.baseline:
        base_load = load()
        _, base = baseline(args.baseline, args.pairs, args.sessions, not args.no_distinct)
    now_load = load()
    now = asyncio.run(run(args.pairs, args.sessions, distinct=False))
    one = one_answer_ms()
    distinct = None if args.no_distinct else asyncio.run(
        run(args.pairs, args.sessions, distinct=True))
    end_load = load()

    if base is not None:
        # the baseline's figure includes the safety rule's judging, as recode does
        print(f"ratio  recode answers/s (safety judging included), now / {args.baseline}: "
              f"{now['total_rate'] / base['rate']:.2f}x")
        if "current_rate" in base:
            print(f"ratio  recode answers/s with the safety verdicts current, now / "
                  f"{args.baseline}: {now['rate'] / base['current_rate']:.2f}x")
            print(f"ratio  the safety rule's judging, {args.baseline} / now: "
                  f"{base['safety_s'] / now['safety_s']:.2f}x")
        print(f"ratio  one answer time, {args.baseline} / now: {base['one_ms'] / one:.2f}x")
    print(f"ratio  recode with embedding / recode with everything current: "
          f"{now['s'] / now['floor_s']:.1f}x")
    if base is not None:
        print(f"abs    {args.baseline}: recode embedding {base['embedded']:.0f} answers: "
              f"{base['s']:.2f} s, {base.get('current_rate', base['rate']):.0f} answers/s"
              + (f" with the safety verdicts current; after a safety rule change (judging "
                 f"{base['safety_s']:.2f} s) {base['total_s']:.2f} s, {base['rate']:.0f} "
                 "answers/s" if "current_rate" in base else " (safety judging included)")
              + f"; one answer {base['one_ms']:.1f} ms (load average before it {base_load})")
    print(f"recode embedding {now['embedded']} answers of {now['entries']} entries, safety "
          f"verdicts current: {now['s']:.2f} s, {now['rate']:.0f} answers/s (target >= 150)")
    print(f"recode's CPU time (every thread of the process), safety verdicts current: "
          f"{now['cpu_ms']:.1f} ms an answer, {1000 / now['cpu_ms']:.0f} answers a CPU-second"
          f" (what the wall rate would be on one free core)" if now["cpu_ms"] else "")
    print(f"recode after a safety rule change (every answer judged first, "
          f"{now['safety_s']:.2f} s): {now['total_s']:.2f} s, {now['total_rate']:.0f} "
          "answers/s")
    print(f"recode after a safety rule change, one run of the command (judging and coding "
          f"sharing embeddings): {now['whole_s']:.2f} s, {now['whole_rate']:.0f} answers/s")
    if base is not None:
        print(f"ratio  that run, now / {args.baseline} after a safety rule change: "
              f"{now['whole_rate'] / base['rate']:.2f}x")
    print(f"recode with everything current (floor, same run): {now['floor_s']:.2f} s; "
          f"{now['again']} embedded")
    if distinct is not None:
        print(f"recode with every answer distinct: {distinct['embedded']} answers: "
              f"{distinct['s']:.2f} s, {distinct['rate']:.0f} answers/s (CPU "
              f"{distinct['cpu_ms']:.1f} ms an answer); after a safety rule "
              f"change {distinct['total_s']:.2f} s, {distinct['total_rate']:.0f} answers/s")
    print(f"embedding one answer (whole + sentences), one at a time: {one:.1f} ms "
          "(target <= 30 ms)")
    print(f"load average: {now_load} at the start, {end_load} at the end; "
          f"{os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
