"""Speed of the numpy sentence encoder (conversations/sentence_encoder.py) on chat-length texts.

    .venv/bin/python benchmarks/encoder_speed.py [--sentences 500] [--repeat 3]

Needs the ``semantic`` extra and the model wheel (see the README's test command). Encodes a
fixed set of synthetic reflection answers (5 to 40 words, seeded) with batch size 32 (the
default) and batch size 1, and tokenises them alone as the floor no encoder can beat. Each
figure is the best of ``--repeat`` runs after one warm-up. Ratios first, absolutes last.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conversations.sentence_encoder import (  # noqa: E402
    EncoderUnavailableError,
    SentenceEncoder,
    load_encoder,
)

OPENINGS = ["Today", "This week", "In our session", "Honestly", "After the audit", "Lately",
            "On the ward", "During the chemistry meeting", "Since we last met", "Tonight"]
SUBJECTS = ["my mentor", "I", "we", "my manager", "the team", "she", "he", "my mentee"]
VERBS = ["talked about", "worked on", "struggled with", "reflected on", "planned",
         "felt anxious about", "got better at", "agreed to look at", "laughed about",
         "finally sorted out"]
OBJECTS = ["the handover", "setting boundaries", "my confidence in meetings", "the rota",
           "a difficult conversation with a relative", "the band 6 interview",
           "time for the audit", "how to give feedback", "my career plan", "the night shifts",
           "delegating to students", "saying no 😅", "the café rota — again", "next steps"]
TAILS = ["", "and it helped a lot", "which I had been avoiding for months",
         "so I will try it on Monday", "but I am still not sure it will work",
         "because the last month was exhausting", "and we set a date to review it",
         "with a plan of three small steps"]


def sentences(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(OPENINGS) + ",", rng.choice(SUBJECTS), rng.choice(VERBS),
                 rng.choice(OBJECTS), rng.choice(TAILS)]
        text = " ".join(p for p in parts if p) + "."
        if rng.random() < 0.3:  # some answers run to two sentences
            text += " " + rng.choice(SUBJECTS).capitalize() + " " + rng.choice(VERBS) + " " \
                + rng.choice(OBJECTS) + " " + rng.choice(TAILS) + "."
        out.append(text)
    return out


def best_of(repeat: int, run: Callable[[], object]) -> float:
    run()  # warm-up: first-touch page faults and BLAS thread start-up are not the encoder's
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        encoder: SentenceEncoder = load_encoder()
    except EncoderUnavailableError as exc:
        print(exc, file=sys.stderr)
        return 2
    load_s = time.perf_counter() - start

    texts = sentences(args.sentences)
    n = len(texts)
    tokens = [len(e.ids) for e in encoder.tokenize(texts)]
    words = [len(t.split()) for t in texts]
    tok_s = best_of(args.repeat, lambda: encoder.tokenize(texts))
    b32_s = best_of(args.repeat, lambda: encoder.encode(texts, batch_size=32))
    b1_s = best_of(args.repeat, lambda: encoder.encode(texts, batch_size=1))

    def ms(seconds: float) -> float:
        return 1000.0 * seconds / n

    print(f"{n} sentences, {min(words)}-{max(words)} words "
          f"(mean {sum(words) / n:.1f}), {min(tokens)}-{max(tokens)} tokens "
          f"(mean {sum(tokens) / n:.1f}); {os.cpu_count()} cores; best of {args.repeat}")
    print(f"ratio  batch 1 / batch 32 time:        {b1_s / b32_s:.2f}x")
    print(f"ratio  batch 32 / tokenising alone:    {b32_s / tok_s:.1f}x")
    print(f"ratio  tokenising share of batch 32:   {tok_s / b32_s:.1%}")
    print(f"abs    batch 32:        {n / b32_s:8.1f} sentences/s  {ms(b32_s):7.3f} ms/sentence")
    print(f"abs    batch 1:         {n / b1_s:8.1f} sentences/s  {ms(b1_s):7.3f} ms/sentence")
    print(f"abs    tokenising only: {n / tok_s:8.1f} sentences/s  {ms(tok_s):7.3f} ms/sentence")
    print(f"abs    model load (first call of load_encoder): {load_s:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
