"""The honest split: a development part held out, judged by the lexicon as it was before it was
tuned on that part, and by a probe and resolved-past head that never read it.

    git archive 74cc663 conversations | tar -x -C /tmp/lexicon-before-dev4   # once
    python benchmarks/safety_honest.py /tmp/lexicon-before-dev4              # dev4 held out

The lexicon is the only part of the rule tuned on every development part, so its figures on
them are optimistic; a part written by a new author is judged, as the frozen part will be,
only by a lexicon that never saw it. The given checkout's ``conversations`` package (its own
folding, lexicon and time framing) judges the held-out part in a subprocess; the probe and the
resolved-past head are trained by ``safety_train.py``'s code on the other parts and the bank,
with thresholds calibrated by leave-one-file-out within those, and combined as
``conversations.safety.assess_many`` combines them. Prints recall and false alarms for the
lexicon alone, with the probe, and with the head; the lines themselves are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import safety_train as train  # noqa: E402

from conversations.safety import lexicon  # noqa: E402

# run inside the old checkout: what its rule makes of each line, as safety_train.Line holds it
_OLD = r"""
import json, re, sys
sys.path.insert(0, sys.argv[1])
import conversations.safety as S
from conversations.safety import lexicon
from conversations.safety.semantic import sentences
data = json.load(sys.stdin)
cue = re.compile(data["cue"])
keep = S.resolved_past
out = []
for text in data["texts"]:
    f = S.fold(text)
    s = S.scan(f)
    units = [s.text[a:b] for a, b in sentences(f, s)]
    S.resolved_past = lambda t: False  # a flagged answer's sentences, before the head clears
    flagged = [] if s.hit is None else [s.text[a:b] for a, b in sentences(f, s)]
    S.resolved_past = keep
    t = s.text
    askable = not lexicon.CURRENT.search(t) and bool(
        cue.search(t) or lexicon.PAST.search(t) or lexicon.RECOVERED.search(t))
    out.append([s.hit is not None, t, units, flagged, askable])
json.dump(out, sys.stdout)
"""


def old_lines(checkout: Path, part: str) -> list[train.Line]:
    data = yaml.safe_load((train.FIXTURES / f"{part}.yaml").read_text(encoding="utf-8"))["lines"]
    request = json.dumps({"texts": [d["text"] for d in data], "cue": lexicon.PAST_CUE.pattern})
    done = subprocess.run([sys.executable, "-c", _OLD, str(checkout)], input=request,
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    judged = json.loads(done.stdout)
    return [train.Line(d["text"], int(d["label"] == "risk"), part, lex, units, [], shown,
                       flagged, d["form"], askable)
            for d, (lex, shown, units, flagged, askable) in zip(data, judged, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a checkout holding the old conversations/")
    parser.add_argument("--part", default="dev4", choices=train.TUNING)
    args = parser.parse_args()
    test = old_lines(args.checkout.resolve(), args.part)
    lines = [ln for ln in train.load() if ln.part != args.part]
    embed = train.Embeddings(lines + test)
    inner = [p for p in train.TUNING if p != args.part]
    risk = np.array([ln.risk for ln in lines])
    corpus = np.array([ln.part != "bank" for ln in lines])
    threshold = train.calibrate(train.held_out(lines, embed, inner)[corpus], risk[corpus])
    w, b = train.train(lines, embed)
    head_threshold = train.calibrate_head(train.head_held_out(lines, embed, inner)[corpus],
                                          risk[corpus])
    hw, hb = train.train_head(lines, embed)
    score = train.scores(test, embed, w, b)
    flagged_score = train.scores(test, embed, w, b, flagged=True)
    over = train.head_scores(test, embed, hw, hb) >= head_threshold
    lex = np.array([ln.lexicon for ln in test])
    askable = np.array([ln.askable for ln in test])
    truth = np.array([ln.risk for ln in test])
    rule = train.judged(lex, score, flagged_score, threshold, over, askable)
    print(f"{args.part} held out ({int(truth.sum())} risk, {int((1 - truth).sum())} near misses), "
          f"lexicon from {args.checkout}; probe threshold {threshold:.2f}, resolved-past head "
          f"{head_threshold:.2f}")
    print(f"  lexicon alone          {train.figures(lex, truth)}")
    print(f"  lexicon + probe        {train.figures(lex | (score >= threshold), truth)}")
    print(f"  + resolved-past head   {train.figures(rule, truth)}  (the rule with semantic)")


if __name__ == "__main__":
    main()
