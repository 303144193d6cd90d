"""Fit the safety rule's semantic probe: a logistic regression over sentence embeddings.

    python benchmarks/safety_train.py            # writes conversations/safety/probe.json

Trained on the tuning parts of the labelled corpus only (``tests/fixtures/safety/tuning.yaml``,
and ``dev.yaml``) and the exemplar bank; the frozen test part is never read here. The decision
threshold is chosen by five-fold cross-validation on the same lines (the lowest threshold at
which the probe alone flags at most 3 % of near misses), and the cross-validated figures are
printed: they are tuning figures, not test figures (``safety_accuracy.py`` gives
those). Deterministic: the same inputs give the same file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conversations.safety import fold, scan  # noqa: E402
from conversations.safety.semantic import BANK, PROBE, sentences  # noqa: E402
from conversations.sentence_encoder import load_encoder  # noqa: E402

TUNING = ("tuning", "dev", "dev2", "dev3")
MAX_PROBE_FALSE_ALARMS = 0.03
L2 = float(next((a.split("=")[1] for a in sys.argv if a.startswith("--l2=")), "3e-4"))
EPOCHS = int(next((a.split("=")[1] for a in sys.argv if a.startswith("--epochs=")), "10000"))


def load() -> tuple[list[str], np.ndarray, list[bool]]:
    texts: list[str] = []
    labels: list[int] = []
    from_corpus: list[bool] = []
    for name in TUNING:
        path = ROOT / "tests" / "fixtures" / "safety" / f"{name}.yaml"
        for line in yaml.safe_load(path.read_text(encoding="utf-8"))["lines"]:
            texts.append(line["text"])
            labels.append(int(line["label"] == "risk"))
            from_corpus.append(True)
    bank = yaml.safe_load(BANK.read_text(encoding="utf-8"))
    for side, label in (("risk", 1), ("safe", 0)):
        for text in bank[side]:
            texts.append(str(text))
            labels.append(label)
            from_corpus.append(False)
    return texts, np.array(labels, dtype=np.float32), from_corpus


def with_sentences(x: np.ndarray, y: np.ndarray, sx: np.ndarray, owner: np.ndarray,
                   rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole texts of ``rows``, plus every sentence of their near misses as a near miss too:
    the probe judges sentences, and a fragment of a near miss ("going to apologise
    tomorrow") is no risk either."""
    keep = np.isin(owner, rows[y[rows] == 0])
    return (np.vstack([x[rows], sx[keep]]),
            np.concatenate([y[rows], np.zeros(int(keep.sum()), dtype=y.dtype)]))


def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression by full-batch gradient descent (no randomness)."""
    w = np.zeros(x.shape[1], dtype=np.float64)
    b = 0.0
    pos = y.sum()
    weight = np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * (len(y) - pos)))
    rate = 0.5
    for _ in range(EPOCHS):
        z = x @ w + b
        p = 1 / (1 + np.exp(-z))
        g = (p - y) * weight
        w -= rate * (x.T @ g / len(y) + L2 * w)
        b -= rate * float(g.mean())
    return w, b


def main() -> None:
    texts, y, from_corpus = load()
    encoder = load_encoder()
    folded = [fold(t) for t in texts]
    seen = [scan(f) for f in folded]
    # trained on what the probe is shown: folded text with figures of speech blanked out
    x = encoder.encode([s.text for s in seen]).astype(np.float64)
    # sentence spans of each text, for judging the way the rule does (best sentence)
    spans = [sentences(f, s) for f, s in zip(folded, seen, strict=True)]
    flat = [s.text[a:b] for s, own in zip(seen, spans, strict=True) for a, b in own]
    sx = encoder.encode(flat).astype(np.float64)
    owner = np.repeat(np.arange(len(texts)), [len(s) for s in spans])
    lex = np.array([s.hit is not None for s in seen])

    folds = np.arange(len(texts)) % 5
    scores = np.zeros(len(texts))
    for k in range(5):
        train = np.where(folds != k)[0]
        w, b = fit(*with_sentences(x, y, sx, owner, train))
        s = 1 / (1 + np.exp(-(sx @ w + b)))
        best = np.full(len(texts), 0.0)
        np.maximum.at(best, owner, s)
        scores[folds == k] = best[folds == k]
    corpus = np.array(from_corpus)
    risk, safe = corpus & (y == 1), corpus & (y == 0)
    # The lexicon was tuned on these very lines, so its figures here say little about new
    # text; the probe's threshold is set on its own cross-validated false alarms instead: the
    # lowest threshold at which it alone raises at most MAX_PROBE_FALSE_ALARMS on near misses.
    chosen = 0.95
    for threshold in np.arange(0.95, 0.04, -0.01):
        if (scores[safe] >= threshold).mean() > MAX_PROBE_FALSE_ALARMS:
            break
        chosen = float(threshold)
    if "--curve" in sys.argv:
        for threshold in np.arange(0.3, 0.96, 0.05):
            f = lex | (scores >= threshold)
            print(f"  {threshold:.2f} recall {f[risk].mean():.3f} FA {f[safe].mean():.3f}")
        for i in np.where(safe & ~lex & (scores >= chosen))[0]:
            print("   FA", round(scores[i], 2), texts[i][:100])
    flagged = lex | (scores >= chosen)
    probe = scores >= chosen
    print(f"cross-validated on the tuning parts ({int(risk.sum())} risk, {int(safe.sum())} "
          f"near misses), threshold {chosen:.2f}:")
    print(f"  lexicon alone       recall {lex[risk].mean():.3f}  false alarms "
          f"{lex[safe].mean():.3f}")
    print(f"  probe alone         recall {probe[risk].mean():.3f}  false alarms "
          f"{probe[safe].mean():.3f}")
    print(f"  lexicon + semantic  recall {flagged[risk].mean():.3f}  false alarms "
          f"{flagged[safe].mean():.3f}")
    w, b = fit(*with_sentences(x, y, sx, owner, np.arange(len(texts))))
    PROBE.write_text(json.dumps({
        "about": "logistic regression over all-MiniLM-L6-v2 embeddings of folded text; "
                 "fitted by benchmarks/safety_train.py on the tuning parts and the bank",
        "threshold": round(chosen, 2),
        "bias": round(float(b), 6),
        "weights": [round(float(v), 6) for v in w],
    }) + "\n", encoding="utf-8")
    print(f"wrote {PROBE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
