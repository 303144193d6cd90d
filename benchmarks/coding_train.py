"""Train the semantic coding heads (reports/coding/heads.py) on the labelled bank, offline.

Usage: python benchmarks/coding_train.py [--cv] [--folds 5] [--out PATH]
       [--extra REVIEW_ITEMS.yaml ...] [--blocks unit,answer,context,markers]

Every development part of the bank (``train``, ``dev``, ``test_v1``, ``test_v2``, ``test_v3``,
``train_extra``, ``train_extra2``, ``train_extra3`` and the guide's worked examples;
``benchmarks/coding_bank.DEVELOPMENT_PARTS``) is training data. The frozen part is never
read here: every file goes through ``coding_bank.training_items``, which refuses any
``frozen_*`` file unread.

Model and hyper-parameters are chosen by k-fold cross-validation over those parts, grouped by
answer (an answer's sentences, and any answer with the same text, stay in one fold, so no
sentence of a held-out answer is trained on): each head's L2 strength by its out-of-fold score,
then a decision threshold per label on the pooled out-of-fold probabilities. ``--cv`` also
prints the cross-validated figures of the rules, the heads alone and both combined, scored as
``benchmarks/coding_accuracy.py`` scores a part (the honest tuning figure: the thresholds were
chosen on the same out-of-fold probabilities, so it is slightly optimistic). The final heads
are then fitted on all the development parts and written to
``reports/coding/heads/default.npz`` (shipped with the package).

Role, element and modality heads are trained on sentences: each labelled code's span marks its
sentence as a positive for its element, role and modality, and the answer reads the maximum
over its sentences (reports/coding/heads.py ``units``). Features: the sentence's embedding,
the whole answer's embedding, the step and voice, and the sentence's framing markers with the
rules' own reading of it. Logistic regression in numpy (full-batch Adam, class-balanced), so no
scikit-learn is needed, blended per head with a kernel vote of the training sentences (share
and temperature chosen by the same cross-validation; ``--recipe old`` leaves it out, and
``--compare old`` scores that recipe on the same folds in the same run). Embeddings are
cached outside the repository (``benchmarks/coding_cache.py``, ``MENTORBOT_HEADS_CACHE``), so
reruns are quick.

``--model mlp`` fits one-hidden-layer heads instead (numpy, mini-batch Adam; ``--hidden``,
``--epochs``, ``--batch``), ``--class-weight`` and ``--dropout`` change the loss's weighting of
positives and add input-feature dropout, ``--l2-grid`` the L2 strengths searched; each is part
of the cached folds' key. With ``--cv`` the combined codes' confidences on the held-out folds
also give each method's calibration after the blend (``calibration``: isotonic, its expected
calibration error printed before and after, cross-fitted), shipped in the heads' meta.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.coding_bank import (  # noqa: E402
    BANK,
    DEVELOPMENT_PARTS,
    FrozenPartError,
    Item,
    Scores,
    bank_path,
    development_items,
    predicted_item,
    summary,
    training_items,
)
from conversations.catalogue import load_flows  # noqa: E402
from reports.codebook import CMO_ROLES, SCHEME_CMO, load_codebook  # noqa: E402
from reports.coding.heads import (  # noqa: E402
    BLOCK_ANSWER,
    BLOCK_CONTEXT,
    BLOCK_MARKERS,
    BLOCK_UNIT,
    DEFAULT_HEADS,
    MULTICLASS,
    NO_PHASE,
    SCHEMES,
    UNIT_SCHEMES,
    AnswerProbs,
    Head,
    Heads,
    build_features,
    combine,
    marker_features,
    semantic_codes,
    unit_texts,
    units,
)
from reports.coding.model import MODALITIES  # noqa: E402
from reports.coding.rules import code_text_raw, phase_signal  # noqa: E402

L2_GRID = (3.0, 30.0, 100.0)
# the kernel blend (reports/coding/heads.py ``kernel_vote``): each head's probability mixed
# with a similarity-weighted vote of the training sentences, share and sharpness chosen by CV
KERNEL_ALPHAS = (0.0, 0.3, 0.5, 0.7)
KERNEL_TEMPERATURES = (10.0, 20.0, 40.0)
KERNEL_SCHEMES = ("role", "element", "modality", "domain", "factor")
# the kernel compares sentences in the top principal directions of the training sentences'
# embeddings, not all 384: six times less work per sentence at run time
KERNEL_DIMS = 64


@dataclass(frozen=True)
class Recipe:
    """What cross-validation chooses among: ``old`` is the recipe of the heads shipped before
    the kernel blend (kept so both can be scored on the same folds in one run)."""

    name: str
    l2_grid: tuple[float, ...]
    alphas: tuple[float, ...]
    temperatures: tuple[float, ...]


RECIPES = {"old": Recipe("old", L2_GRID, (0.0,), ()),
           "new": Recipe("new", L2_GRID, KERNEL_ALPHAS, KERNEL_TEMPERATURES)}
THRESHOLDS = tuple(round(0.1 + 0.05 * k, 2) for k in range(15))  # 0.10 .. 0.80
MIN_EXAMPLES = 2  # a label seen fewer times in training gets no weights
MIN_FOR_OWN_THRESHOLD = 8  # rarer labels take their head's common threshold
DEFAULT_BLOCKS = (BLOCK_UNIT, BLOCK_ANSWER, BLOCK_CONTEXT, BLOCK_MARKERS)
FOLDS = 5
STEPS = 300
# how positives are weighted in the multi-label heads' loss: "sqrt" (the square root of the
# negatives-to-positives ratio), "balanced" (the ratio itself) or "none"
CLASS_WEIGHTS = ("sqrt", "balanced", "none")
# the heads' model: "linear" (logistic regression) or "mlp" (one ReLU hidden layer, trained by
# mini-batch Adam with input dropout; the softmax phase head stays linear)
MODELS = ("linear", "mlp")


@dataclass(frozen=True)
class Training:
    """How each head is fitted (part of the cross-validation cache's key)."""

    model: str = "linear"
    class_weight: str = "sqrt"
    dropout: float = 0.0  # share of input features zeroed per step while training
    hidden: int = 128
    epochs: int = 40
    batch: int = 128


TRAINING = Training()


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


def positive_weights(y: np.ndarray, how: str) -> np.ndarray:
    """Per cell of ``y``: how much a positive counts (negatives count 1)."""
    n = len(y)
    pos = y.sum(axis=0)
    ratio = np.maximum(n - pos, 1) / np.maximum(pos, 1)
    up = {"sqrt": np.sqrt(ratio), "balanced": ratio, "none": np.ones_like(ratio)}[how]
    return np.where(y > 0, up, 1.0).astype(np.float32)


Params = tuple[np.ndarray, ...]  # (w, b) of a linear head; (w1, b1, w, b) of an MLP head


def fit(x: np.ndarray, y: np.ndarray, l2: float, softmax: bool,
        steps: int = STEPS, lr: float = 0.05, training: Training | None = None) -> Params:
    """Logistic (or softmax) regression by full-batch Adam; positives up-weighted so rare
    labels are not simply never predicted (``Training.class_weight``). An MLP head where
    ``training`` says so (multi-label heads only)."""
    t_ = training if training is not None else TRAINING
    if t_.model == "mlp" and not softmax:
        return fit_mlp(x, y, l2, t_)
    n, d = x.shape
    k = y.shape[1]
    w = np.zeros((d, k), dtype=np.float32)
    b = np.zeros(k, dtype=np.float32)
    weight = positive_weights(y, t_.class_weight)
    rng = np.random.default_rng(0)
    m_w = np.zeros_like(w)
    v_w = np.zeros_like(w)
    m_b = np.zeros_like(b)
    v_b = np.zeros_like(b)
    for t in range(1, steps + 1):
        xt = x
        if t_.dropout > 0:  # feature dropout (inverted: the kept features scaled up)
            xt = x * (rng.random(x.shape, dtype=np.float32) >= t_.dropout) / (1 - t_.dropout)
        z = xt @ w + b
        if softmax:
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            g = (p - y) / n
        else:
            p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
            g = weight * (p - y) / n
        gw = xt.T @ g + l2 * w / n * 10
        gb = g.sum(axis=0)
        for param, grad, m, v in ((w, gw, m_w, v_w), (b, gb, m_b, v_b)):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            param -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return w.astype(np.float32), b.astype(np.float32)


def fit_mlp(x: np.ndarray, y: np.ndarray, l2: float, training: Training,
            lr: float = 0.003) -> Params:
    """A one-hidden-layer (ReLU) multi-label head by mini-batch Adam, in numpy: input
    dropout, positives weighted as the linear heads', L2 on both layers (the same scale
    as ``fit``'s: ``l2 * 10 / n`` per example)."""
    n, d = x.shape
    k = y.shape[1]
    h = training.hidden
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((d, h)) * np.sqrt(2.0 / d)).astype(np.float32)
    b1 = np.zeros(h, np.float32)
    w2 = (rng.standard_normal((h, k)) * np.sqrt(1.0 / h) * 0.1).astype(np.float32)
    b2 = np.zeros(k, np.float32)
    params = [w1, b1, w2, b2]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    weight = positive_weights(y, training.class_weight)
    decay = l2 * 10 / n
    t = 0
    for _ in range(training.epochs):
        order = rng.permutation(n)
        for at in range(0, n, training.batch):
            idx = order[at:at + training.batch]
            xb, yb, wb = x[idx], y[idx], weight[idx]
            if training.dropout > 0:
                xb = xb * (rng.random(xb.shape, dtype=np.float32) >= training.dropout) / (
                    1 - training.dropout)
            a = xb @ w1 + b1
            hid = np.maximum(a, 0)
            z = hid @ w2 + b2
            p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
            g = wb * (p - yb) / len(idx)
            gw2 = hid.T @ g + decay * w2
            gb2 = g.sum(axis=0)
            gh = (g @ w2.T) * (a > 0)
            gw1 = xb.T @ gh + decay * w1
            gb1 = gh.sum(axis=0)
            t += 1
            for param, grad, (m, v) in zip(params, (gw1, gb1, gw2, gb2), moments, strict=True):
                m *= 0.9
                m += 0.1 * grad
                v *= 0.999
                v += 0.001 * grad * grad
                param -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return tuple(p.astype(np.float32) for p in params)


def _probs(x: np.ndarray, params: Params, softmax: bool) -> np.ndarray:
    if len(params) == 4:
        x = np.maximum(x @ params[0] + params[1], 0)
    w, b = params[-2], params[-1]
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
    idx = np.cumsum([0, *groups[:-1]]).astype(int)
    return np.maximum.reduceat(p, idx, axis=0) if len(groups) else p[:0]


# ---------------------------------------------------------------------------------------
# the corpus: every unit of every item, embedded once
# ---------------------------------------------------------------------------------------


@dataclass
class Corpus:
    items: list[Item]
    spans: list[list[tuple[int, int]]]
    item_of_unit: np.ndarray  # item index of each unit row
    first: np.ndarray  # unit row of each item's whole-answer unit
    emb: np.ndarray  # unit embeddings
    contexts: list[tuple[str, str, str]]  # per unit
    unit_text: list[str]
    intends: list[bool]  # per unit
    markers: np.ndarray  # per unit

    @property
    def groups(self) -> list[int]:
        return [len(s) for s in self.spans]

    def unit_rows(self, item_idx: np.ndarray) -> np.ndarray:
        mask = np.isin(self.item_of_unit, item_idx)
        return np.flatnonzero(mask)


def build_corpus(items: Sequence[Item], encoder: Any) -> Corpus:
    from reports.entry_codes import intention_steps

    intending = intention_steps()
    texts, spans = unit_texts([it.text for it in items])
    emb = encoder.encode(texts)
    item_of_unit = np.repeat(np.arange(len(items)), [len(s) for s in spans])
    first = np.cumsum([0] + [len(s) for s in spans[:-1]]).astype(int)
    contexts = [(items[i].flow, items[i].step, items[i].voice) for i in item_of_unit]
    intends = [(items[i].flow, items[i].step) in intending for i in item_of_unit]
    markers = marker_features(texts, contexts, intends)
    return Corpus(list(items), spans, item_of_unit, first, emb, contexts, texts, intends,
                  markers)


def corpus_features(c: Corpus, rows: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                    vocab: Sequence[str], blocks: Sequence[str]) -> np.ndarray:
    answers = c.emb[c.first[c.item_of_unit[rows]]]
    x = build_features(c.emb[rows], [c.contexts[r] for r in rows], vocab, mean, scale,
                       [b for b in blocks if b != BLOCK_MARKERS], answers)
    if BLOCK_MARKERS in blocks:
        x = np.hstack([x, c.markers[rows]])
    return x


@dataclass
class Fitted:
    """One fold's (or the final) weights of every head, before thresholds are chosen."""

    mean: np.ndarray
    scale: np.ndarray
    labels: dict[str, list[str]]
    weights: dict[str, dict[float, Params]]  # scheme -> l2 -> (w, b) or (w1, b1, w, b)
    # the kernel blend's memory: training units' centred unit-length embeddings, which are
    # whole answers, and each scheme's labels of those rows
    memory: np.ndarray | None = None
    memory_whole: np.ndarray | None = None
    memory_labels: dict[str, np.ndarray] = field(default_factory=dict)
    projection: np.ndarray | None = None  # embedding dims x KERNEL_DIMS


def unit_length(z: np.ndarray) -> np.ndarray:
    return (z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-9)).astype(np.float32)


def kernel_memory(c: Corpus, train_idx: np.ndarray, f: Fitted, dims: int = KERNEL_DIMS) -> None:
    """The kernel blend's memory of a fit: the training sentences projected on their top
    ``dims`` principal directions, at unit length, with every scheme's labels."""
    train_items = [c.items[i] for i in train_idx]
    rows = c.unit_rows(train_idx)
    centred = c.emb[rows] - f.mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    f.projection = vt[:dims].T.astype(np.float32)
    f.memory = unit_length(centred @ f.projection)
    f.memory_whole = np.isin(rows, c.first[train_idx])
    f.memory_labels = {}
    for scheme in KERNEL_SCHEMES:
        f.memory_labels[scheme] = matrix(unit_targets(train_items, scheme) if scheme in
                                         UNIT_SCHEMES else targets(train_items, scheme),
                                         f.labels[scheme])


def fit_all(c: Corpus, train_idx: np.ndarray, vocab: Sequence[str], blocks: Sequence[str],
            grid: dict[str, Sequence[float]]) -> Fitted:
    train_items = [c.items[i] for i in train_idx]
    rows = c.unit_rows(train_idx)
    mean = c.emb[rows].mean(axis=0).astype(np.float32)
    scale = (c.emb[rows].std(axis=0) + 1e-3).astype(np.float32)
    x_units = corpus_features(c, rows, mean, scale, vocab, blocks)
    whole_rows = np.isin(rows, c.first[train_idx])
    labels: dict[str, list[str]] = {}
    weights: dict[str, dict[float, Params]] = {}
    for scheme in SCHEMES:
        whole = targets(train_items, scheme)
        labels[scheme] = label_set(scheme, whole)
        if scheme in UNIT_SCHEMES:
            x, y = x_units, matrix(unit_targets(train_items, scheme), labels[scheme])
        else:
            x, y = x_units[whole_rows], matrix(whole, labels[scheme])
        weights[scheme] = {l2: fit(x, y, l2, scheme in MULTICLASS) for l2 in grid[scheme]}
    f = Fitted(mean, scale, labels, weights)
    kernel_memory(c, train_idx, f)
    return f


def predict_units(c: Corpus, rows: np.ndarray, f: Fitted, vocab: Sequence[str],
                  blocks: Sequence[str], scheme: str, l2: float) -> np.ndarray:
    x = corpus_features(c, rows, f.mean, f.scale, vocab, blocks)
    return _probs(x, f.weights[scheme][l2], scheme in MULTICLASS)


def assign_folds(items: Sequence[Item], k: int) -> np.ndarray:
    """A fold per answer, by a hash of its text, so equal texts share a fold."""
    def key(it: Item) -> int:
        norm = " ".join(it.text.lower().split())
        return int(hashlib.sha256(norm.encode()).hexdigest()[:8], 16)

    return np.array([key(it) % k for it in items])


def _choose_thresholds(y: np.ndarray, p: np.ndarray, micro: bool) -> tuple[float, np.ndarray]:
    """The head's best common threshold and, where a label has enough positives, its own."""
    best_t, best_s = THRESHOLDS[0], -1.0
    for t in THRESHOLDS:
        s = _f1(y, (p >= t).astype(np.float32), micro)
        if s > best_s:
            best_t, best_s = t, s
    own = np.full(y.shape[1], best_t, dtype=np.float32)
    for k in range(y.shape[1]):
        if y[:, k].sum() < MIN_FOR_OWN_THRESHOLD:
            continue
        scores = [(_f1(y[:, k:k + 1], (p[:, k:k + 1] >= t).astype(np.float32), False), -abs(
            t - best_t), t) for t in THRESHOLDS]
        own[k] = max(scores)[2]
    return best_s, own


@dataclass
class Choice:
    l2: dict[str, float]
    thresholds: dict[str, np.ndarray]
    scores: dict[str, float]
    # Platt scaling per label (slope, offset on the logit), fitted on out-of-fold
    # probabilities and folded into the weights, so a code's confidence means what it says
    platt: dict[str, np.ndarray] = field(default_factory=dict)
    # the kernel blend per scheme: (share, temperature); share 0 is no blend
    kernel: dict[str, tuple[float, float]] = field(default_factory=dict)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def platt(p: np.ndarray, y: np.ndarray, steps: int = 300) -> tuple[float, float]:
    """Slope and offset of a one-feature logistic fit of ``y`` on ``logit(p)``."""
    z = _logit(p.astype(np.float64))
    a, c = 1.0, 0.0
    for _ in range(steps):  # Newton's method on two parameters
        q = 1.0 / (1.0 + np.exp(-(a * z + c)))
        g = np.array([((q - y) * z).sum(), (q - y).sum()])
        r = q * (1 - q) + 1e-9
        h = np.array([[(r * z * z).sum(), (r * z).sum()], [(r * z).sum(), r.sum()]])
        h += np.eye(2) * 1e-3  # a little ridge keeps a separable label finite
        step = np.linalg.solve(h, g)
        a, c = a - step[0], c - step[1]
        if np.abs(step).max() < 1e-6:
            break
    if not np.isfinite(a) or a <= 0.05:
        return 1.0, 0.0  # no usable calibration: keep the head's own scale
    return float(a), float(c)


OutOfFold = dict[str, dict[float, np.ndarray]]  # scheme -> l2 -> answers x labels
KERNEL = "kernel"  # oof["kernel/<scheme>"][temperature]: the kernel vote alone


def kernel_probabilities(c: Corpus, rows: np.ndarray, f: Fitted, scheme: str,
                         temperature: float) -> np.ndarray:
    """The kernel vote of the fold's memory for unit rows ``rows``."""
    from reports.coding.heads import kernel_vote

    assert f.memory is not None and f.memory_whole is not None and f.projection is not None
    sim = unit_length((c.emb[rows] - f.mean) @ f.projection) @ f.memory.T
    if scheme not in UNIT_SCHEMES:
        sim = sim[:, f.memory_whole]
    return kernel_vote(sim, f.memory_labels[scheme], temperature)


def cross_validate(c: Corpus, vocab: Sequence[str], blocks: Sequence[str], k: int,
                   log: bool = True, recipe: Recipe = RECIPES["new"]
                   ) -> tuple[OutOfFold, dict[str, list[str]], list[tuple[np.ndarray, Fitted]]]:
    """Fit every fold; the pooled out-of-fold probabilities of every answer, per l2 (and
    the kernel vote alone per temperature, under ``kernel/<scheme>``)."""
    folds = assign_folds(c.items, k)
    l2_grid = recipe.l2_grid
    grid = {s: l2_grid for s in SCHEMES}
    fitted: list[tuple[np.ndarray, Fitted]] = []
    # out-of-fold probabilities per scheme and l2, per answer; labels are fixed from all items
    labels = {s: label_set(s, targets(c.items, s)) for s in SCHEMES}
    oof: dict[str, dict[float, np.ndarray]] = {
        s: {l2: np.zeros((len(c.items), len(labels[s])), np.float32) for l2 in l2_grid}
        for s in SCHEMES}
    for fold in range(k):
        start = time.perf_counter()
        train_idx = np.flatnonzero(folds != fold)
        test_idx = np.flatnonzero(folds == fold)
        f = fit_all(c, train_idx, vocab, blocks, grid)
        fitted.append((test_idx, f))
        rows = c.unit_rows(test_idx)
        groups = [c.groups[i] for i in test_idx]
        for scheme in SCHEMES:
            col = {x: j for j, x in enumerate(f.labels[scheme])}
            runs: list[tuple[str, float, np.ndarray]] = [
                (scheme, l2, predict_units(c, rows, f, vocab, blocks, scheme, l2))
                for l2 in l2_grid]
            for key, param, p in runs:
                oof[key][param][test_idx] = _held_out(c, p, rows, groups, test_idx, scheme,
                                                      col, labels[scheme])
        if log:
            print(f"  fold {fold + 1}/{k}: {len(train_idx)} train, {len(test_idx)} held out, "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
    return oof, labels, fitted


def _held_out(c: Corpus, p: np.ndarray, rows: np.ndarray, groups: list[Any],
              test_idx: np.ndarray, scheme: str, col: dict[str, int],
              labels: list[str]) -> np.ndarray:
    """A fold's probabilities for its held-out answers, one row an answer (the maximum over
    its sentences for sentence-level schemes), in the columns of every label of the scheme
    (a label the fold never trained on reads 0)."""
    p = _answer_max(p, groups) if scheme in UNIT_SCHEMES else p[
        np.isin(rows, c.first[test_idx])]
    full = np.zeros((len(test_idx), len(labels)), np.float32)
    for j, label in enumerate(labels):
        if label in col:
            full[:, j] = p[:, col[label]]
    return full


def refresh_kernel(c: Corpus, oof: OutOfFold, labels: dict[str, list[str]],
                   fitted: list[tuple[np.ndarray, Fitted]], recipe: Recipe) -> None:
    """Each fold's kernel memory and the kernel's out-of-fold votes (under
    ``kernel/<scheme>``, per temperature). Cheap beside the regressions, so done on every
    run, also over folds read from the cache."""
    every = np.arange(len(c.items))
    for s in KERNEL_SCHEMES:
        oof[f"{KERNEL}/{s}"] = {t: np.zeros((len(c.items), len(labels[s])), np.float32)
                                for t in recipe.temperatures}
    for test_idx, f in fitted:
        kernel_memory(c, np.setdiff1d(every, test_idx), f)
        rows = c.unit_rows(test_idx)
        groups = [c.groups[i] for i in test_idx]
        for scheme in KERNEL_SCHEMES:
            col = {x: j for j, x in enumerate(f.labels[scheme])}
            for t in recipe.temperatures:
                p = kernel_probabilities(c, rows, f, scheme, t)
                oof[f"{KERNEL}/{scheme}"][t][test_idx] = _held_out(
                    c, p, rows, groups, test_idx, scheme, col, labels[scheme])


def blended(oof: OutOfFold, scheme: str, l2: float, alpha: float,
            temperature: float) -> np.ndarray:
    p = oof[scheme][l2]
    if alpha <= 0:
        return p
    return (1 - alpha) * p + alpha * oof[f"{KERNEL}/{scheme}"][temperature]


def choose(c: Corpus, oof: OutOfFold, labels: dict[str, list[str]],
           log: bool = True, recipe: Recipe = RECIPES["new"]) -> Choice:
    """Each head's L2 (and kernel share and temperature) by its out-of-fold score, then
    per-label thresholds and Platt scaling on the same out-of-fold probabilities."""
    choice = Choice({}, {}, {})
    for scheme in SCHEMES:
        y = matrix(targets(c.items, scheme), labels[scheme])
        best: tuple[float, float, np.ndarray, float, float] | None = None
        kernels = [(0.0, 0.0)]
        if scheme in KERNEL_SCHEMES:
            kernels += [(a, t) for a in recipe.alphas if a > 0 for t in recipe.temperatures]
        for l2 in recipe.l2_grid:
            for alpha, temperature in kernels:
                p = blended(oof, scheme, l2, alpha, temperature)
                if scheme in MULTICLASS:
                    s, th = float((p.argmax(axis=1) == y.argmax(axis=1)).mean()), np.zeros(0)
                else:
                    s, th = _choose_thresholds(y, p, micro=scheme == "element")
                if best is None or s > best[0] + 1e-9:
                    best = (s, l2, th, alpha, temperature)
        assert best is not None
        choice.scores[scheme], choice.l2[scheme] = round(best[0], 3), best[1]
        choice.thresholds[scheme] = best[2]
        choice.kernel[scheme] = (best[3], best[4])
        if scheme not in MULTICLASS:
            p = blended(oof, scheme, best[1], best[3], best[4])
            fits = np.array([platt(p[:, k], y[:, k]) if y[:, k].sum() >= MIN_FOR_OWN_THRESHOLD
                             else (1.0, 0.0) for k in range(y.shape[1])], np.float64)
            choice.platt[scheme] = fits.reshape(-1, 2)
        choice.thresholds[f"{scheme}.labels"] = np.array(labels[scheme])
        if log:
            blend = (f"kernel share {best[3]:.1f} at temperature {best[4]:.0f}" if best[3] > 0
                     else "no kernel blend")
            print(f"  {scheme:9s} l2 {best[1]:6.1f}  {blend:36s} out-of-fold score "
                  f"{best[0]:.3f}")
    return choice


def heads_from(f: Fitted, choice: Choice, vocab: Sequence[str], blocks: Sequence[str],
               meta: dict[str, Any]) -> Heads:
    heads: dict[str, Head] = {}
    for scheme in SCHEMES:
        params = f.weights[scheme][choice.l2[scheme]]
        w, b = params[-2], params[-1]
        labels = f.labels[scheme]
        if scheme in MULTICLASS:
            th = np.zeros(0, np.float32)
        else:
            names = [str(x) for x in choice.thresholds[f"{scheme}.labels"]]
            chosen = dict(zip(names, choice.thresholds[scheme], strict=True))
            common = float(np.median(choice.thresholds[scheme])) if chosen else 0.5
            th = np.array([chosen.get(x, common) for x in labels], np.float32)
            fits = choice.platt.get(scheme)
            alpha, temperature = choice.kernel.get(scheme, (0.0, 0.0))
            platt_after: np.ndarray | None = None
            if fits is not None:
                by_name = dict(zip(names, fits, strict=True))
                ac = np.array([by_name.get(x, (1.0, 0.0)) for x in labels], np.float64)
                a, c = ac[:, 0], ac[:, 1]
                if alpha > 0:  # the scaling applies to the blend: kept apart from the weights
                    platt_after = ac.astype(np.float32)
                else:
                    # sigmoid(a z + c) is the calibrated probability of logit z: scale the
                    # weights
                    w = (w * a).astype(np.float32)
                    b = (b * a + c).astype(np.float32)
                # move each threshold to the same point on the calibrated scale
                th = (1.0 / (1.0 + np.exp(-(a * _logit(th.astype(np.float64)) + c)))
                      ).astype(np.float32)
        head = Head(list(labels), w, b, th)
        if len(params) == 4:
            head.hidden_weights, head.hidden_bias = params[0], params[1]
        if scheme not in MULTICLASS and alpha > 0:
            head.kernel_alpha, head.kernel_temperature = float(alpha), float(temperature)
            head.memory_labels = f.memory_labels[scheme].astype(np.float32)
            head.platt = platt_after
        heads[scheme] = head
    kernel = any(h.kernel_alpha > 0 for h in heads.values())
    return Heads(list(vocab), f.mean, f.scale, heads,
                 {**meta, "features": list(blocks),
                  "kernel": {s: list(choice.kernel.get(s, (0.0, 0.0))) for s in SCHEMES}},
                 f.memory.astype(np.float16) if kernel and f.memory is not None else None,
                 f.memory_whole if kernel else None,
                 f.projection if kernel else None)


# ---------------------------------------------------------------------------------------
# scoring folds end to end, as coding_accuracy scores a part
# ---------------------------------------------------------------------------------------


def cv_figures(c: Corpus, fitted: list[tuple[np.ndarray, Fitted]], choice: Choice,
               vocab: Sequence[str], blocks: Sequence[str],
               records: list[tuple[int, str, float, bool]] | None = None
               ) -> dict[str, dict[str, Any]]:
    """The cross-validated figures of every coder; ``records``, where given, gets every
    combined CMO code's (fold, method, confidence, right) as the stored codes would carry
    them (``reports.coding.stored``), for calibrating confidence after the blend."""
    from reports.coding.stored import _refine
    from reports.entry_codes import intention_steps

    book = load_codebook()
    assert book.rules is not None
    pairs = dict(book.rules.factor_counterparts)
    intending = intention_steps()
    scores = {"rules": Scores(), "semantic": Scores(), "combined": Scores()}
    for fold, (test_idx, f) in enumerate(fitted):
        heads = heads_from(f, choice, vocab, blocks, {})
        rows = c.unit_rows(test_idx)
        x = corpus_features(c, rows, f.mean, f.scale, vocab, blocks)
        probs = heads.predict(x, c.emb[rows])
        at = 0
        for i in test_idx:
            it = c.items[i]
            n = c.groups[i]
            ap = AnswerProbs(list(c.spans[i]), {s: v[at:at + n] for s, v in probs.items()})
            at += n
            intends = (it.flow, it.step) in intending
            # risk=False: risk to self is no scored scheme, and judging it costs time
            hits = code_text_raw(it.text, it.voice, book, intends, risk=False)
            scores["rules"].add(it, predicted_item(it, hits, phase_signal(hits), pairs))
            sem = semantic_codes(heads, ap, it.text, book, intends)
            scores["semantic"].add(it, predicted_item(it, sem.hits, sem.phase, pairs))
            kept, phase = combine(hits, sem, heads, ap, phase_signal(hits),
                                  known_step=bool(it.step))
            scores["combined"].add(it, predicted_item(it, kept, phase, pairs))
            if records is not None:
                gold = {(e, r or ir) for e, r, ir, _ in it.codes}
                records.extend(
                    (fold, h.method, float(h.confidence),
                     (h.code_id, h.cmo_role or h.intended_role) in gold)
                    for h in _refine(kept, sem.hits, heads, ap, it.text)
                    if h.scheme == SCHEME_CMO)
    return {name: summary(s) for name, s in scores.items()}


CALIBRATION_BINS = 12


def isotonic_knots(confidence: np.ndarray, right: np.ndarray,
                   bins: int = CALIBRATION_BINS) -> dict[str, list[float]]:
    """A monotone map from a method's confidence to the share of its codes that are right:
    equal-count bins, then pooled adjacent violators; knots for ``np.interp``."""
    order = np.argsort(confidence, kind="stable")
    x, y = confidence[order], right[order].astype(np.float64)
    groups = [g for g in np.array_split(np.arange(len(x)), min(bins, len(x))) if len(g)]
    blocks = [[float(x[g].mean()), float(y[g].mean()), float(len(g))] for g in groups]
    merged: list[list[float]] = []
    for b in blocks:
        merged.append(b)
        while len(merged) > 1 and merged[-2][1] > merged[-1][1]:
            b2, b1 = merged.pop(), merged.pop()
            n = b1[2] + b2[2]
            merged.append([(b1[0] * b1[2] + b2[0] * b2[2]) / n,
                           (b1[1] * b1[2] + b2[1] * b2[2]) / n, n])
    return {"x": [round(b[0], 4) for b in merged], "y": [round(b[1], 4) for b in merged]}


def expected_calibration_error(confidence: np.ndarray, right: np.ndarray,
                               bins: int = 10) -> float:
    edges = np.minimum((confidence * bins).astype(int), bins - 1)
    err = 0.0
    for k in range(bins):
        m = edges == k
        if m.any():
            err += m.sum() / len(confidence) * abs(confidence[m].mean() - right[m].mean())
    return float(err)


def calibration(records: Sequence[tuple[int, str, float, bool]], log: bool = True
                ) -> dict[str, dict[str, list[float]]]:
    """Per method, the isotonic map fitted on every fold's held-out codes; logged: each
    method's expected calibration error before and after, the map fitted on the other
    folds (cross-fitted, so the after figure is honest)."""
    out: dict[str, dict[str, list[float]]] = {}
    folds = np.array([r[0] for r in records])
    methods = np.array([r[1] for r in records])
    conf = np.array([r[2] for r in records], np.float64)
    right = np.array([r[3] for r in records], np.float64)
    for method in sorted(set(methods.tolist())):
        m = methods == method
        if m.sum() < 50:
            continue
        out[method] = isotonic_knots(conf[m], right[m])
        after = np.zeros(int(m.sum()))
        fm, cm, rm = folds[m], conf[m], right[m]
        for fold in sorted(set(fm.tolist())):
            test = fm == fold
            knots = isotonic_knots(cm[~test], rm[~test])
            after[test] = np.interp(cm[test], knots["x"], knots["y"])
        if log:
            print(f"  calibration of {method} codes ({int(m.sum())}, {rm.mean():.0%} right): "
                  f"ECE {expected_calibration_error(cm, rm):.3f} before, "
                  f"{expected_calibration_error(after, rm):.3f} after (cross-fitted)")
    return out


def _cell(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def print_figures(results: dict[str, dict[str, Any]]) -> None:
    keys = ("role_macro_f1", "kappa", "element_micro_f1", "element_recall", "domain_macro_f1",
            "factor_macro_f1", "phase_accuracy", "intended_as_realised", "uncoded_share")
    print(f"  {'':24s}" + "".join(f"{n:>10s}" for n in results))
    for key in keys:
        cells = "".join(f"{_cell(results[n][key]):>10s}" for n in results)
        print(f"  {key:24s}{cells}")
    print("  per role precision / recall:")
    for role in CMO_ROLES:
        cells = "".join(f"  {results[n]['role_per_label'][role][0]:.3f}/"
                        f"{results[n]['role_per_label'][role][1]:.3f}" for n in results)
        print(f"    {role:22s}{cells}")


def _searched(recipes: Sequence[Recipe]) -> Recipe:
    """One recipe whose grid covers every given one's (one set of folds serves them all)."""
    return Recipe("+".join(r.name for r in recipes),
                  tuple(sorted({x for r in recipes for x in r.l2_grid})),
                  tuple(sorted({x for r in recipes for x in r.alphas})),
                  tuple(sorted({x for r in recipes for x in r.temperatures})))


def _cached_cv(c: Corpus, vocab: Sequence[str], blocks: Sequence[str], folds: int,
               log: bool, recipes: Sequence[Recipe] = (RECIPES["new"],)
               ) -> tuple[list[Choice], list[tuple[np.ndarray, Fitted]]]:
    """``cross_validate``, kept in the embedding cache's folder under a key of everything it
    depends on (the items' text and labels, the features, the grid), so trying another way
    of turning probabilities into codes does not refit every fold. One choice per recipe,
    all made on the same folds."""
    import pickle

    from benchmarks.coding_cache import DEFAULT_CACHE

    searched = _searched(recipes)
    key = hashlib.sha256(repr((
        [(it.id, it.text, it.codes, sorted(it.domains), sorted(it.factors), it.phase,
          sorted(it.spans.items(), key=repr)) for it in c.items],
        list(blocks), folds, searched.l2_grid, THRESHOLDS, STEPS, MIN_EXAMPLES,
        MIN_FOR_OWN_THRESHOLD, c.markers.sum())
        + (() if Training() == TRAINING else (repr(TRAINING),))).encode()).hexdigest()[:16]
    path = DEFAULT_CACHE / f"cv3-{key}.pkl"
    if path.is_file():
        with path.open("rb") as fh:
            oof, labels, fitted = pickle.load(fh)
        if log:
            print(f"  cross-validated folds read from {path}")
    else:
        oof, labels, fitted = cross_validate(c, vocab, blocks, folds, log, searched)
        DEFAULT_CACHE.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            pickle.dump((oof, labels, fitted), fh)
    refresh_kernel(c, oof, labels, fitted, searched)
    choices = []
    for recipe in recipes:
        if log:
            print(f"  recipe {recipe.name}:")
        choices.append(choose(c, oof, labels, log, recipe))
    return choices, fitted


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "absent"


def train_heads(items: Sequence[Item], encoder: Any = None, *, folds: int = FOLDS,
                blocks: Sequence[str] = DEFAULT_BLOCKS, cv_report: bool = False,
                log: bool = True, recipe: str = "new", compare: Sequence[str] = ()
                ) -> tuple[Heads, dict[str, Any]]:
    """Cross-validate, then fit on every item; (heads, cross-validated figures or {}).

    ``recipe``: what the shipped heads are chosen among (``RECIPES``); ``compare``: further
    recipes scored on the same folds (their figures under ``<name>:<coder>``)."""
    from benchmarks.coding_cache import CachedEncoder

    enc = encoder if encoder is not None else CachedEncoder()
    vocab = step_vocabulary()
    start = time.perf_counter()
    c = build_corpus(items, enc)
    if log:
        print(f"  {len(c.items)} answers, {len(c.unit_text)} units embedded "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
    names = [recipe, *[r for r in compare if r != recipe]]
    choices, fitted = _cached_cv(c, vocab, blocks, folds, log, [RECIPES[n] for n in names])
    choice = choices[0]
    figures: dict[str, Any] = {}
    records: list[tuple[int, str, float, bool]] = []
    if cv_report:
        figures = cv_figures(c, fitted, choice, vocab, blocks, records)
        for name, other in zip(names[1:], choices[1:], strict=True):
            figures.update({f"{name}:{k}": v for k, v in
                            cv_figures(c, fitted, other, vocab, blocks).items() if k != "rules"})
    every = np.arange(len(c.items))
    final = fit_all(c, every, vocab, blocks, {s: (choice.l2[s],) for s in SCHEMES})
    meta: dict[str, Any] = {"train_items": len(c.items), "train_units": len(c.unit_text),
                            "unit": "sentence+answer", "folds": folds,
                            "l2": choice.l2, "cv_head_scores": choice.scores,
                            "recipe": recipe,
                            "training": {k: getattr(TRAINING, k) for k in
                                         ("model", "class_weight", "dropout", "hidden",
                                          "epochs", "batch")}}
    if figures:
        meta["cv"] = {n: {k: v for k, v in r.items() if k != "role_per_label"}
                      for n, r in figures.items()}
    if records:
        meta["calibration"] = calibration(records, log)
    return heads_from(final, choice, vocab, blocks, meta), figures


def main(argv: list[str] | None = None) -> int:
    global TRAINING
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_HEADS)
    parser.add_argument("--extra", type=Path, action="append", default=[])
    parser.add_argument("--cv", action="store_true",
                        help="print the cross-validated figures of every coder")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--blocks", default=",".join(DEFAULT_BLOCKS))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="new",
                        help="what the heads are chosen among (old: no kernel blend)")
    parser.add_argument("--compare", default="",
                        help="further recipes to score on the same folds, e.g. old")
    parser.add_argument("--model", choices=MODELS, default=TRAINING.model)
    parser.add_argument("--class-weight", choices=CLASS_WEIGHTS, default=TRAINING.class_weight)
    parser.add_argument("--dropout", type=float, default=TRAINING.dropout,
                        help="input feature dropout while training")
    parser.add_argument("--hidden", type=int, default=TRAINING.hidden,
                        help="hidden units of an MLP head")
    parser.add_argument("--epochs", type=int, default=TRAINING.epochs,
                        help="epochs of an MLP head")
    parser.add_argument("--batch", type=int, default=TRAINING.batch,
                        help="mini-batch size of an MLP head")
    parser.add_argument("--l2-grid", default="",
                        help="the L2 strengths searched, e.g. 3,30 (default: "
                        + ",".join(f"{x:g}" for x in L2_GRID) + ")")
    args = parser.parse_args(argv)
    if args.l2_grid:
        grid = tuple(float(x) for x in args.l2_grid.split(","))
        for name, r in list(RECIPES.items()):
            RECIPES[name] = Recipe(r.name, grid, r.alphas, r.temperatures)
    TRAINING = Training(args.model, args.class_weight, args.dropout, args.hidden, args.epochs,
                        args.batch)
    extra: list[Item] = []
    try:
        for path in args.extra:
            extra += training_items(path) or []
        parts = development_items(DEVELOPMENT_PARTS)
    except FrozenPartError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    if "train" not in parts:
        print(f"the bank's train part is needed under {BANK}")
        return 1
    items = [it for part in parts.values() for it in part] + extra
    blocks = tuple(b for b in args.blocks.split(",") if b)
    start = time.perf_counter()
    print("training on " + ", ".join(f"{p} {len(v)}" for p, v in parts.items())
          + f", extra {len(extra)}; {args.folds}-fold cross-validation grouped by answer; "
          f"features {'+'.join(blocks)}; {TRAINING}", flush=True)
    compare = [r for r in args.compare.split(",") if r]
    if any(r not in RECIPES for r in compare):
        print(f"unknown recipe in --compare (known: {', '.join(sorted(RECIPES))})")
        return 1
    heads, figures = train_heads(items, folds=args.folds, blocks=blocks, cv_report=args.cv,
                                 recipe=args.recipe, compare=compare)
    if figures:
        print(f"\n== cross-validated over {len(items)} answers ({args.folds} folds; tuning "
              "figures) ==")
        print_figures(figures)
    heads.meta["bank"] = {p: file_digest(bank_path(p)) for p in parts}
    if not args.no_write:
        heads.save(args.out)
        print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
