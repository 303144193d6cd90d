"""`mentorbot recode` throughput with and without embedding answers, and embedding one answer.

Usage: python benchmarks/coding_recode.py [--pairs 40] [--sessions 6]

Generates a synthetic programme (not timed) whose entries have stored codes but no stored
embeddings, then times ``reports.entry_codes.recode`` embedding every coded answer (encoder
batches, encrypted saves), and a second recode that finds everything current (the baseline
of the same run: decrypting and checking only). Also times embedding one answer at a time,
as the bot does after a save. Targets: recode >= 150 answers/s; one answer <= 30 ms on
2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
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


async def run(pairs: int, sessions: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(Path(tmp) / "bench.sqlite3", KeyRing(generate_key()),
                                 load_flows()["consent"].version)
        try:
            await generate_cohort(store, pairs=pairs, sessions=sessions, consent_rate=1.0)
            sentence_encoder.load_encoder().encode(["warm up"])
            start = time.perf_counter()
            first = await recode(store)
            embed_s = time.perf_counter() - start
            start = time.perf_counter()
            again = await recode(store)
            base_s = time.perf_counter() - start
        finally:
            await store.close()
    rate = first.embedded / embed_s if embed_s else 0.0
    print(f"recode embedding {first.embedded} answers of {first.entries} entries: "
          f"{embed_s:.2f} s, {rate:.0f} answers/s (target >= 150)")
    print(f"recode with everything current (baseline, same run): {base_s:.2f} s; "
          f"ratio {embed_s / base_s:.1f}x; {again.embedded} embedded")
    texts = ["Talked through the rota problem; she asked what I wanted and I realised I "
             "can say no. Feeling more confident about the band 7 interview now."] * 30
    encoder = sentence_encoder.load_encoder()
    start = time.perf_counter()
    for i, t in enumerate(texts):
        embed_texts({"s": f"{t} {i}"}, encoder)
    one = (time.perf_counter() - start) / len(texts) * 1000
    print(f"embedding one answer (whole + sentences), one at a time: {one:.1f} ms "
          "(target <= 30 ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--sessions", type=int, default=6)
    args = parser.parse_args()
    asyncio.run(run(args.pairs, args.sessions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
