"""Speed of the numpy sentence encoder (conversations/sentence_encoder.py) on chat-length texts.

    .venv/bin/python benchmarks/encoder_speed.py [--sentences 500] [--repeat 3]
        [--baseline REV]

Needs the ``semantic`` extra and the model wheel (see the README's test command). Encodes a
fixed set of synthetic reflection answers (5 to 40 words, seeded, all different) in bulk
(the default batching, on every core), in bulk on one core, one at a time, and one answer
of three units (whole answer and two sentences, as the bot embeds it); and tokenises them
alone as the floor no encoder can beat. With ``--baseline REV`` the encoder of that git
revision (``conversations/sentence_encoder.py`` as it was there) is timed in the same run,
interleaved with today's, and its vectors compared with today's. Each figure is the best of
``--repeat`` runs after one warm-up: the machine is shared, and the best run is the one
least disturbed. Ratios first, absolutes last.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def baseline_encoder(rev: str) -> Any:
    """The encoder of git revision ``rev``, loaded as a module of its own."""
    source = subprocess.run(["git", "show", f"{rev}:conversations/sentence_encoder.py"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="encoder-baseline-"))
    path = folder / "baseline_sentence_encoder.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("baseline_sentence_encoder", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SentenceEncoder()


ANSWER = ("Talked through the rota problem; she asked what I wanted and I realised I can say "
          "no. Feeling more confident about the band 7 interview now.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV",
                        help="also time the encoder of this git revision, in the same run")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        encoder: SentenceEncoder = load_encoder()
    except EncoderUnavailableError as exc:
        print(exc, file=sys.stderr)
        return 2
    load_s = time.perf_counter() - start

    texts = list(dict.fromkeys(sentences(args.sentences)))  # all different: no dedup gains
    n = len(texts)
    tokens = [len(e.ids) for e in encoder.tokenize(texts)]
    words = [len(t.split()) for t in texts]
    from reports.coding.heads import units

    answer_units = [ANSWER[a:b] for a, b in units(ANSWER)]
    counter = iter(range(10**9))

    def one_answer(enc: Any) -> Callable[[], object]:
        # a new number each call, so nothing could be remembered from the last one
        return lambda: enc.encode([f"{u} {next(counter)}" for u in answer_units])

    encoders: dict[str, Any] = {"now": encoder}
    if args.baseline:
        encoders[args.baseline] = baseline_encoder(args.baseline)
    figures: dict[str, dict[str, float]] = {name: {} for name in encoders}
    for _ in range(args.repeat):  # interleaved, so both see the same machine
        for name, enc in encoders.items():
            f = figures[name]
            for key, run in (
                ("bulk", lambda e=enc: e.encode(texts)),
                ("bulk1", lambda e=enc: one_core(e, texts)),
                ("single", lambda e=enc: e.encode(texts[:40], batch_size=1)),
                ("answer", one_answer(enc)),
            ):
                f[key] = min(f.get(key, float("inf")), best_of(1, run))
    tok_s = best_of(args.repeat, lambda: encoder.tokenize(texts))

    def ms(seconds: float, count: int = n) -> float:
        return 1000.0 * seconds / count

    print(f"{n} sentences, {min(words)}-{max(words)} words "
          f"(mean {sum(words) / n:.1f}), {min(tokens)}-{max(tokens)} tokens "
          f"(mean {sum(tokens) / n:.1f}); {os.cpu_count()} cores; best of {args.repeat}; "
          f"load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    now = figures["now"]
    if args.baseline:
        base = figures[args.baseline]
        for key, label in (("bulk", "bulk, every core"), ("bulk1", "bulk, one core"),
                           ("single", "one sentence at a time"),
                           ("answer", "one answer (3 units)")):
            print(f"ratio  {args.baseline} / now, {label + ':':26s} {base[key] / now[key]:5.2f}x")
        old = encoders[args.baseline].encode(texts)
        new = encoder.encode(texts)
        print(f"diff   largest |now - {args.baseline}| over the vectors: "
              f"{float(abs(new - old).max()):.2e}")
    print(f"ratio  tokenising share of bulk:   {tok_s / now['bulk']:.1%}")
    for name, f in figures.items():
        print(f"abs    {name:8s} bulk, every core: {n / f['bulk']:7.1f} sentences/s "
              f"{ms(f['bulk']):7.3f} ms/sentence")
        print(f"abs    {name:8s} bulk, one core:   {n / f['bulk1']:7.1f} sentences/s "
              f"{ms(f['bulk1']):7.3f} ms/sentence")
        print(f"abs    {name:8s} one at a time:    {ms(f['single'], 40):7.3f} ms/sentence")
        print(f"abs    {name:8s} one answer:       {1000 * f['answer']:7.3f} ms "
              f"({len(answer_units)} units)")
    print(f"abs    tokenising only: {n / tok_s:8.1f} sentences/s  {ms(tok_s):7.3f} ms/sentence")
    print(f"abs    model load (first call of load_encoder): {load_s:.2f} s")
    return 0


def one_core(enc: Any, texts: list[str]) -> object:
    from threadpoolctl import threadpool_limits

    if "threads" in enc.encode.__code__.co_varnames:
        return enc.encode(texts, threads=1)
    with threadpool_limits(1, user_api="blas"):
        return enc.encode(texts)


if __name__ == "__main__":
    raise SystemExit(main())
