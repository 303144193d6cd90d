"""Fit the safety rule's semantic layer: a probe and a resolved-past head over embeddings.

    python benchmarks/safety_train.py            # writes probe.json and resolved.json
    python benchmarks/safety_train.py --check    # the same figures, both files left alone

Trained on the development parts of the labelled corpus (``tests/fixtures/safety/``
``tuning.yaml``, ``dev.yaml`` … ``dev4.yaml``) and the exemplar bank; the frozen test part and
the check part (``dev5.yaml``) are never read here.

What it reads: each sentence's embedding beside the whole answer's, so the same sentence can
weigh differently in an answer that says it is over. What it learns from: each line as the
probe sees it (folded, figures of speech blanked), every
sentence of a near miss as a near miss too, and each near miss once more *unblanked*: the
lexicon blanks only the figures of speech it lists, so the probe has to learn hyperbole ("if
they cancel my leave I will literally die") and the contrast classes (clinical and third
person talk, past distress that is over, ordinary stress) from the lines themselves.

The threshold is calibrated by cross-validation grouped by source file: each part was written
by a different author, so holding a whole part out says how the probe does on text by someone
it never read, which is what the frozen part is. It is the lowest threshold at which the probe
alone flags at most 3 % of the held-out near misses. The leave-one-file-out figures printed
here are the honest estimate for the probe; the lexicon's figures beside them are optimistic
on every part it was tuned on (all but the last to be added, see the README). Deterministic:
Newton's method on a convex loss, so the same inputs give the same file.

The resolved-past head (``resolved.json``) is a logistic regression over the whole answer's
embedding alone, learnt from the corpus parts' risk lines against their "resolved_past" near
misses (the bank has no such lines). It may only clear a lexicon flag (see ``semantic.py``),
so its threshold is set for recall: the lowest at which at most 0.5 % of the risk lines of
parts it was not trained on would score at or above it (leave one file out, as the probe's).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conversations.safety import fold, scan  # noqa: E402
from conversations.safety.semantic import (  # noqa: E402
    BANK,
    PROBE,
    RESOLVED,
    may_be_over,
    sentences,
)
from conversations.sentence_encoder import load_encoder  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "safety"
TUNING = ("tuning", "dev", "dev2", "dev3", "dev4")
MAX_PROBE_FALSE_ALARMS = 0.03
L2 = 1e-4  # chosen by the leave-one-file-out figures below (3e-4 and 1e-3 did worse)
# each sentence is read beside the whole answer, scaled by this (0.5 did better than 0.7, 1.0
# and no context at all, by the same figures)
CONTEXT_WEIGHT = 0.5
RESOLVED_L2 = 1e-3  # the head's (it learns from far fewer lines than the probe)
MAX_HEAD_RECALL_LOSS = 0.005
# the head clears a flag only where the probe scores at least this far below its threshold:
# when in doubt, flag (with no margin, leave one file out lost a risk line of dev3 that the
# probe scored a hair under its threshold)
PROBE_MARGIN = 0.1
_SENTENCE_SPANS = re.compile(r"[^.!?;\n]+")


@dataclass
class Line:
    text: str
    risk: int
    part: str  # the file it came from ("bank" for the exemplar bank)
    lexicon: bool  # the lexicon flags it
    units: list[str]  # the sentences (and whole text) the rule shows the probe
    negatives: list[str]  # for a near miss: what the probe learns as no risk besides the line
    shown: str  # the line as the probe sees it
    # what the probe reads of a line the lexicon flagged before the head may clear it
    flagged_units: list[str] = field(default_factory=list)
    form: str = ""  # the corpus's form ("resolved_past", "direct", ...); "" for the bank
    askable: bool = False  # the rule asks the resolved-past head about it (may_be_over)


def load() -> list[Line]:
    raw: list[tuple[str, int, str, str]] = []
    for name in TUNING:
        for line in yaml.safe_load((FIXTURES / f"{name}.yaml").read_text(
                encoding="utf-8"))["lines"]:
            raw.append((line["text"], int(line["label"] == "risk"), name, line["form"]))
    bank = yaml.safe_load(BANK.read_text(encoding="utf-8"))
    raw += [(str(t), 1, "bank", "") for t in bank["risk"]] + [(str(t), 0, "bank", "")
                                                              for t in bank["safe"]]
    out = []
    for text, risk, part, form in raw:
        folded = fold(text)
        seen = scan(folded)
        units = [seen.text[a:b] for a, b in sentences(folded, seen)]
        flagged_units = [] if seen.hit is None else [
            seen.text[a:b] for a, b in sentences(folded, seen, over_by_lexicon=False)]
        negatives: list[str] = []
        if not risk:
            negatives += [seen.text[m.start():m.end()] for m in _SENTENCE_SPANS.finditer(
                seen.text) if len(m.group(0).strip()) >= 8]
            if folded.text != seen.text:  # a figure of speech the lexicon blanked
                negatives += [folded.text] + [m.group(0) for m in _SENTENCE_SPANS.finditer(
                    folded.text) if len(m.group(0).strip()) >= 8]
        out.append(Line(text, risk, part, seen.hit is not None, units, negatives, seen.text,
                        flagged_units, form, may_be_over(seen.text)))
    return out


class Embeddings:
    def __init__(self, lines: list[Line]) -> None:
        strings = sorted({s for ln in lines
                          for s in [ln.shown, *ln.units, *ln.negatives, *ln.flagged_units]})
        self.index = {s: i for i, s in enumerate(strings)}
        self.matrix = load_encoder().encode(strings).astype(np.float64)

    def __call__(self, strings: list[str]) -> np.ndarray:
        return self.matrix[[self.index[s] for s in strings]]

    def features(self, units: list[str], contexts: list[str]) -> np.ndarray:
        """What the probe reads: a sentence beside its answer (as ``semantic.py`` does)."""
        return np.hstack([self(units), CONTEXT_WEIGHT * self(contexts)])


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Class-balanced, L2-regularised logistic regression by Newton's method."""
    x1 = np.hstack([x, np.ones((len(x), 1))])
    pos = y.sum()
    weight = np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * (len(y) - pos)))
    reg = l2 * np.eye(x1.shape[1])
    reg[-1, -1] = 0.0
    w = np.zeros(x1.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-(x1 @ w)))
        grad = x1.T @ ((p - y) * weight) / weight.sum() + reg @ w
        hess = (x1 * (p * (1 - p) * weight)[:, None]).T @ x1 / weight.sum() + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w[:-1], float(w[-1])


def train(lines: list[Line], embed: Embeddings) -> tuple[np.ndarray, float]:
    texts = [ln.shown for ln in lines] + [s for ln in lines for s in ln.negatives]
    contexts = [ln.shown for ln in lines] + [ln.shown for ln in lines for _ in ln.negatives]
    labels = [ln.risk for ln in lines] + [0 for ln in lines for _ in ln.negatives]
    return fit(embed.features(texts, contexts), np.array(labels, dtype=np.float64))


def scores(lines: list[Line], embed: Embeddings, w: np.ndarray, b: float,
           flagged: bool = False) -> np.ndarray:
    """Each line's score as the rule judges it: its best sentence (``flagged``: of a line the
    lexicon flagged, as the probe reads it before the head may clear it)."""
    out = np.zeros(len(lines))
    for i, ln in enumerate(lines):
        units = ln.flagged_units if flagged else ln.units
        if units:
            x = embed.features(units, [ln.shown] * len(units))
            out[i] = float((1 / (1 + np.exp(-(x @ w + b)))).max())
    return out


def calibrate(score: np.ndarray, risk: np.ndarray) -> float:
    """The lowest threshold at which the probe flags at most MAX_PROBE_FALSE_ALARMS of the
    near misses it was not trained on."""
    chosen = 0.95
    for threshold in np.arange(0.95, 0.04, -0.01):
        if (score[risk == 0] >= threshold).mean() > MAX_PROBE_FALSE_ALARMS:
            break
        chosen = float(threshold)
    return round(chosen, 2)


def _each_part_held_out(lines: list[Line], embed: Embeddings, parts: list[str],
                        fit_on, score_with) -> np.ndarray:
    out = np.zeros(len(lines))
    for part in parts:
        mine = [i for i, ln in enumerate(lines) if ln.part == part]
        w, b = fit_on([ln for ln in lines if ln.part != part], embed)
        out[mine] = score_with([lines[i] for i in mine], embed, w, b)
    return out


def held_out(lines: list[Line], embed: Embeddings, parts: list[str]) -> np.ndarray:
    """Each line of ``parts`` scored by a probe trained without its own part."""
    return _each_part_held_out(lines, embed, parts, train, scores)


def _for_head(lines: list[Line]) -> list[Line]:
    return [ln for ln in lines if ln.part != "bank" and (ln.risk or ln.form == "resolved_past")]


def train_head(lines: list[Line], embed: Embeddings) -> tuple[np.ndarray, float]:
    """The resolved-past head: risk lines against distress that is over, whole answers."""
    mine = _for_head(lines)
    x = embed([ln.shown for ln in mine])
    y = np.array([float(ln.form == "resolved_past") for ln in mine])
    return fit(x, y, RESOLVED_L2)


def head_scores(lines: list[Line], embed: Embeddings, w: np.ndarray, b: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(embed([ln.shown for ln in lines]) @ w + b)))


def head_held_out(lines: list[Line], embed: Embeddings, parts: list[str]) -> np.ndarray:
    """Each line of ``parts`` scored by a head trained without its own part."""
    return _each_part_held_out(lines, embed, parts, train_head, head_scores)


def calibrate_head(score: np.ndarray, risk: np.ndarray) -> float:
    """The lowest threshold at which at most MAX_HEAD_RECALL_LOSS of the held-out risk lines
    score at or above it (and so could be cleared)."""
    chosen = 0.99
    for threshold in np.arange(0.99, 0.30, -0.01):
        if (score[risk == 1] >= threshold).mean() > MAX_HEAD_RECALL_LOSS:
            break
        chosen = float(threshold)
    return round(chosen, 2)


def judged(lex: np.ndarray, score: np.ndarray, flagged_score: np.ndarray, threshold: float,
           head: np.ndarray, askable: np.ndarray) -> np.ndarray:
    """The rule's verdict (see ``conversations.safety.assess_many``): the probe's flags, and
    the lexicon's unless the head clears one (asked at all, read as over, the probe well below
    its threshold)."""
    probe = score >= threshold
    quiet = flagged_score < threshold - PROBE_MARGIN
    return (lex & ~(head & askable & quiet)) | probe


def figures(flags: np.ndarray, risk: np.ndarray) -> str:
    return f"recall {flags[risk == 1].mean():.3f}  false alarms {flags[risk == 0].mean():.3f}"


def main() -> None:
    lines = load()
    embed = Embeddings(lines)
    risk = np.array([ln.risk for ln in lines])
    lex = np.array([ln.lexicon for ln in lines])
    part = np.array([ln.part for ln in lines])
    askable = np.array([ln.askable for ln in lines])
    print("leave one file out: the probe is trained on the other parts and the bank, its "
          "threshold calibrated by leave-one-file-out within those, then judged on the part:")
    pooled: list[np.ndarray] = []
    for held in TUNING:
        inner = [p for p in TUNING if p != held]
        rest = [ln for ln in lines if ln.part != held]
        inner_scores = held_out(rest, embed, inner)
        rest_risk = np.array([ln.risk for ln in rest])
        in_corpus = np.array([ln.part != "bank" for ln in rest])
        threshold = calibrate(inner_scores[in_corpus], rest_risk[in_corpus])
        w, b = train(rest, embed)
        mine = part == held
        held_lines = [ln for ln in lines if ln.part == held]
        score = scores(held_lines, embed, w, b)
        probe = score >= threshold
        both = lex[mine] | probe
        head_threshold = calibrate_head(head_held_out(rest, embed, inner)[in_corpus],
                                        rest_risk[in_corpus])
        hw, hb = train_head(rest, embed)
        over = head_scores(held_lines, embed, hw, hb) >= head_threshold
        rule = judged(lex[mine], score, scores(held_lines, embed, w, b, flagged=True),
                      threshold, over, askable[mine])
        pooled.append(np.stack([risk[mine], lex[mine], probe, both, rule]))
        print(f"  {held:<7} ({int(risk[mine].sum())} risk, {int((1 - risk[mine]).sum())} near "
              f"misses) threshold {threshold:.2f}, resolved-past head {head_threshold:.2f}")
        print(f"    lexicon alone       {figures(lex[mine], risk[mine])}")
        print(f"    probe alone         {figures(probe, risk[mine])}")
        print(f"    lexicon + probe     {figures(both, risk[mine])}")
        print(f"    + resolved head     {figures(rule, risk[mine])}  (the rule with semantic)")
    r, lx, pr, bo, ru = np.concatenate(pooled, axis=1).astype(bool)
    r = r.astype(int)
    print(f"  all parts pooled: lexicon alone {figures(lx, r)}; probe alone {figures(pr, r)}; "
          f"lexicon + probe {figures(bo, r)}; + resolved head {figures(ru, r)}")

    in_corpus = part != "bank"
    threshold = calibrate(held_out(lines, embed, list(TUNING))[in_corpus], risk[in_corpus])
    w, b = train(lines, embed)
    head_threshold = calibrate_head(head_held_out(lines, embed, list(TUNING))[in_corpus],
                                    risk[in_corpus])
    hw, hb = train_head(lines, embed)
    print(f"final probe: every part and the bank, threshold {threshold:.2f}; resolved-past head "
          f"threshold {head_threshold:.2f} (both leave-one-file-out)")
    if "--check" in sys.argv:
        return
    RESOLVED.write_text(json.dumps({
        "about": "logistic regression over the all-MiniLM-L6-v2 embedding of a whole folded "
                 "answer: distress that is over (resolved_past near misses) against risk "
                 "lines; fitted by benchmarks/safety_train.py, threshold for at most 0.5 % of "
                 "held-out risk lines by leave-one-file-out; only ever clears a lexicon flag",
        "threshold": head_threshold,
        "probe_margin": PROBE_MARGIN,
        "bias": round(hb, 6),
        "weights": [round(float(v), 6) for v in hw],
    }) + "\n", encoding="utf-8")
    print(f"wrote {RESOLVED.relative_to(ROOT)}")
    PROBE.write_text(json.dumps({
        "about": "logistic regression over all-MiniLM-L6-v2 embeddings of folded text; "
                 "fitted by benchmarks/safety_train.py on the development parts and the "
                 "bank, threshold calibrated by leave-one-file-out cross-validation",
        "threshold": threshold,
        "context_weight": CONTEXT_WEIGHT,
        "bias": round(b, 6),
        "weights": [round(float(v), 6) for v in w],
    }) + "\n", encoding="utf-8")
    print(f"wrote {PROBE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
