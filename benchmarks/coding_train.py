"""Train the semantic coding heads (reports/coding/heads.py) on the labelled bank, offline.

Usage: python benchmarks/coding_train.py [--out PATH] [--extra REVIEW_ITEMS.yaml ...]

Trains on the bank's ``train`` part plus the guide's worked examples (``examples.yaml``),
chooses each head's L2 strength and decision threshold on the ``dev`` part, and writes the
weights to ``reports/coding/heads/default.npz`` (shipped with the package). The frozen test
part is never read here. Logistic regression in numpy (full-batch Adam, class-balanced
binary cross-entropy or softmax), so no scikit-learn is needed.

``--extra`` adds labelled items in the bank format (for example the evaluator's review
decisions, see ``reports/coding/learning.py``) to the training set.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.coding_bank import (  # noqa: E402
    BANK,
    FrozenPartError,
    Item,
    bank_path,
    load_split,
    training_items,
)
from conversations.catalogue import load_flows  # noqa: E402
from reports.codebook import CMO_ROLES  # noqa: E402
from reports.coding.heads import (  # noqa: E402
    DEFAULT_HEADS,
    MULTICLASS,
    NO_PHASE,
    SCHEMES,
    UNIT_SCHEMES,
    Head,
    Heads,
    build_features,
    unit_texts,
    units,
)
from reports.coding.model import MODALITIES  # noqa: E402

L2_GRID = (0.3, 3.0, 10.0, 30.0, 100.0)
THRESHOLDS = tuple(round(0.1 + 0.05 * k, 2) for k in range(15))  # 0.10 .. 0.80
MIN_EXAMPLES = 2  # a label seen fewer times in training gets no weights


def step_vocabulary() -> list[str]:
    return sorted(f"{flow.id}/{step.id}" for flow in load_flows().values()
                  for step in flow.steps if step.kind == "text")


def unit_targets(items: Sequence[Item], scheme: str) -> list[set[str]]:
    """Labels of every unit (whole answer, then sentences) of every item, for the schemes read
    per sentence: a sentence carries the codes whose span overlaps it."""
    out: list[set[str]] = []
    for it in items:
        spans = units(it.text)
        found: list[set[str]] = [set() for _ in spans]
        for element, role, _, modality in it.codes:
            label = {"role": role, "element": element, "modality": modality}[scheme]
            if label is None:
                continue
            found[0].add(label)
            span = it.spans.get((element, role, modality), "")
            a = it.text.find(span) if span else -1
            if a < 0:
                continue
            b = a + len(span)
            for k, (x, y) in enumerate(spans[1:], start=1):
                if x < b and a < y:
                    found[k].add(label)
        out.extend(found)
    return out


def targets(items: Sequence[Item], scheme: str) -> list[set[str]]:
    out: list[set[str]] = []
    for it in items:
        if scheme == "role":
            out.append(set(it.roles))
        elif scheme == "element":
            out.append(set(it.elements))
        elif scheme == "modality":
            out.append({m for _, _, _, m in it.codes})
        elif scheme == "domain":
            out.append(set(it.domains))
        elif scheme == "factor":
            out.append(set(it.factors))
        else:
            out.append({it.phase or NO_PHASE})
    return out


def label_set(scheme: str, train: list[set[str]]) -> list[str]:
    if scheme == "role":
        return list(CMO_ROLES)
    if scheme == "modality":
        return list(MODALITIES)
    counts = Counter(x for labels in train for x in labels)
    if scheme == "phase":
        return sorted(counts)
    return sorted(x for x, n in counts.items() if n >= MIN_EXAMPLES)


def matrix(rows: list[set[str]], labels: Sequence[str]) -> np.ndarray:
    y = np.zeros((len(rows), len(labels)), dtype=np.float32)
    index = {x: k for k, x in enumerate(labels)}
    for i, row in enumerate(rows):
        for x in row:
            if x in index:
                y[i, index[x]] = 1.0
    return y


def fit(x: np.ndarray, y: np.ndarray, l2: float, softmax: bool,
        steps: int = 400, lr: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Logistic (or softmax) regression by full-batch Adam; positives up-weighted so rare
    labels are not simply never predicted."""
    n, d = x.shape
    k = y.shape[1]
    w = np.zeros((d, k), dtype=np.float64)
    b = np.zeros(k, dtype=np.float64)
    pos = y.sum(axis=0)
    weight = np.where(y > 0, np.sqrt(np.maximum(n - pos, 1) / np.maximum(pos, 1)), 1.0)
    m_w = np.zeros_like(w)
    v_w = np.zeros_like(w)
    m_b = np.zeros_like(b)
    v_b = np.zeros_like(b)
    for t in range(1, steps + 1):
        z = x @ w + b
        if softmax:
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            g = (p - y) / n
        else:
            p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
            g = weight * (p - y) / n
        gw = x.T @ g + l2 * w / n * 10
        gb = g.sum(axis=0)
        for param, grad, m, v in ((w, gw, m_w, v_w), (b, gb, m_b, v_b)):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            param -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return w.astype(np.float32), b.astype(np.float32)


def _probs(x: np.ndarray, w: np.ndarray, b: np.ndarray, softmax: bool) -> np.ndarray:
    z = x @ w + b
    if softmax:
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _f1(y: np.ndarray, pred: np.ndarray, micro: bool) -> float:
    tp = (y * pred).sum(axis=0)
    fp = ((1 - y) * pred).sum(axis=0)
    fn = (y * (1 - pred)).sum(axis=0)
    if micro:
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0
    seen = (y.sum(axis=0) + pred.sum(axis=0)) > 0
    f = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    return float(f[seen].mean()) if seen.any() else 0.0


def _answer_max(p: np.ndarray, groups: Sequence[int]) -> np.ndarray:
    """Per answer, the maximum over its units (``groups``: units per answer, in order)."""
    out = np.zeros((len(groups), p.shape[1]), dtype=p.dtype)
    at = 0
    for i, n in enumerate(groups):
        out[i] = p[at:at + n].max(axis=0)
        at += n
    return out


def train_head(scheme: str, x_train: np.ndarray, train: list[set[str]], x_dev: np.ndarray,
               dev: list[set[str]], labels_from: list[set[str]],
               dev_groups: Sequence[int] | None = None) -> tuple[Head, dict[str, float]]:
    """``dev_groups``: dev rows are units, scored per answer by their maximum; ``dev`` then
    holds the answers' labels."""
    labels = label_set(scheme, labels_from)
    y_train, y_dev = matrix(train, labels), matrix(dev, labels)
    softmax = scheme in MULTICLASS
    best: tuple[float, float, float, np.ndarray, np.ndarray] | None = None
    for l2 in L2_GRID:
        w, b = fit(x_train, y_train, l2, softmax)
        p = _probs(x_dev, w, b, softmax)
        if dev_groups is not None:
            p = _answer_max(p, dev_groups)
        if softmax:
            score = float((p.argmax(axis=1) == y_dev.argmax(axis=1)).mean())
            cand = (score, l2, 0.0, w, b)
        else:
            cand = None
            for t in THRESHOLDS:
                score = _f1(y_dev, (p >= t).astype(np.float32), micro=scheme == "element")
                if cand is None or score > cand[0]:
                    cand = (score, l2, t, w, b)
        assert cand is not None
        if best is None or cand[0] > best[0]:
            best = cand
    assert best is not None
    score, l2, threshold, w, b = best
    thresholds = (np.zeros(0, dtype=np.float32) if softmax
                  else np.full(len(labels), threshold, dtype=np.float32))
    return Head(labels, w, b, thresholds), {"dev_score": round(score, 3), "l2": l2,
                                            "threshold": threshold, "labels": len(labels)}


def train_heads(train_items: Sequence[Item], dev_items: Sequence[Item],
                embed: object = None, log: bool = True) -> Heads:
    from conversations import sentence_encoder

    encoder = embed if embed is not None else sentence_encoder.load_encoder()
    vocab = step_vocabulary()
    u_train, g_train = unit_texts([it.text for it in train_items])
    u_dev, g_dev = unit_texts([it.text for it in dev_items])
    e_train = encoder.encode(u_train)  # type: ignore[attr-defined]
    e_dev = encoder.encode(u_dev)  # type: ignore[attr-defined]
    mean = e_train.mean(axis=0).astype(np.float32)
    scale = (e_train.std(axis=0) + 1e-3).astype(np.float32)

    def rows(items: Sequence[Item],
             groups: list[list[tuple[int, int]]]) -> list[tuple[str, str, str]]:
        return [(it.flow, it.step, it.voice) for it, g in zip(items, groups, strict=True)
                for _ in g]

    x_train = build_features(e_train, rows(train_items, g_train), vocab, mean, scale)
    x_dev = build_features(e_dev, rows(dev_items, g_dev), vocab, mean, scale)
    # row index of each answer's whole-answer unit
    first_train = np.cumsum([0] + [len(g) for g in g_train[:-1]])
    first_dev = np.cumsum([0] + [len(g) for g in g_dev[:-1]])
    dev_groups = [len(g) for g in g_dev]
    heads: dict[str, Head] = {}
    meta: dict[str, object] = {"train_items": len(train_items), "dev_items": len(dev_items),
                               "train_units": len(u_train), "unit": "sentence+answer"}
    for scheme in SCHEMES:
        whole_train = targets(train_items, scheme)
        if scheme in UNIT_SCHEMES:
            head, info = train_head(scheme, x_train, unit_targets(train_items, scheme), x_dev,
                                    targets(dev_items, scheme), whole_train, dev_groups)
        else:
            head, info = train_head(scheme, x_train[first_train], whole_train,
                                    x_dev[first_dev], targets(dev_items, scheme), whole_train)
        heads[scheme] = head
        meta[scheme] = info
        if log:
            print(f"  {scheme:9s} {info}")
    return Heads(vocab, mean, scale, heads, meta)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "absent"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_HEADS)
    parser.add_argument("--extra", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    extra: list[Item] = []
    try:
        for path in args.extra:
            extra += training_items(path) or []
    except FrozenPartError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    train = load_split("train")
    dev = load_split("dev")
    if train is None or dev is None:
        print(f"the bank's train and dev parts are needed under {BANK}")
        return 1
    examples = load_split("examples") or []
    items = [*train, *examples, *extra]
    start = time.perf_counter()
    print(f"training on {len(train)} train + {len(examples)} example + {len(extra)} extra items;"
          f" choosing on {len(dev)} dev items")
    heads = train_heads(items, dev)
    heads.meta["bank"] = {s: file_digest(bank_path(s)) for s in ("train", "dev", "examples")}
    heads.save(args.out)
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
