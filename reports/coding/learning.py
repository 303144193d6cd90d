"""Learning from the evaluator: review decisions become labelled examples for a programme's
heads (issue 13).

Each decided row of a ``review.csv`` (``reports/review.py``) with its masked evidence says of
one sentence that a CMO element is there (``accept``; the ``new_code`` of a ``change``) or is
not (``reject``; the old code of a ``change``). :func:`adapt` refits the shipped element head
on those sentences, starting from the shipped weights and held close to them (an L2 pull), so
a few dozen decisions move the programme's codes without forgetting the bank: only the
decided (sentence, element) cells enter the loss. Elements the head has no weights for yet
get a column of their own. :func:`agreement` says how often the heads' reading of the reviewed
sentences matches the evaluator's decision, before and after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reports.codebook import SCHEME_CMO, Codebook
from reports.coding.heads import Heads
from reports.review import WITHHELD, Decision, id_code

ADAPT_STEPS = 300
ADAPT_LR = 0.05
PULL = 0.02  # strength of the pull towards the shipped weights, per example


@dataclass(frozen=True)
class Example:
    text: str
    element: str
    present: bool


def review_examples(decisions: Mapping[str, Decision], codebook: Codebook) -> list[Example]:
    """Labelled sentences from review decisions (rows without shown evidence are skipped)."""
    out: list[Example] = []
    for rid, d in sorted(decisions.items()):
        text = d.evidence.lstrip("'")
        if not text or text == WITHHELD:
            continue
        code = id_code(rid)  # ids with modality (issue 13) and older ones without
        if code is None:
            continue
        if code in codebook and codebook.get(code).scheme == SCHEME_CMO:
            out.append(Example(text, code, d.decision == "accept"))
        if (d.decision == "change" and d.new_code is not None and d.new_code in codebook
                and codebook.get(d.new_code).scheme == SCHEME_CMO):
            out.append(Example(text, d.new_code, True))
    return out


def _features(heads: Heads, examples: Sequence[Example], encoder: Any) -> Any:
    texts = sorted({e.text for e in examples})
    vectors = encoder.encode(texts)
    # a reviewed sentence is read on its own: it is its own answer, with no known step
    x = heads.features(vectors, [("", "", "")] * len(texts), texts=texts)
    return texts, x, vectors


def agreement(heads: Heads, examples: Sequence[Example], encoder: Any) -> float | None:
    """Share of decided (sentence, element) cells the element head reads as decided."""
    if not examples:
        return None
    texts, x, vectors = _features(heads, examples, encoder)
    head = heads.heads["element"]
    p = head.probabilities(x, heads.similarity(vectors))
    row = {t: i for i, t in enumerate(texts)}
    col = {label: k for k, label in enumerate(head.labels)}
    right = 0
    for e in examples:
        k = col.get(e.element)
        said = k is not None and p[row[e.text], k] >= head.thresholds[k]
        right += said == e.present
    return right / len(examples)


def adapt(heads: Heads, examples: Sequence[Example], encoder: Any) -> Heads:
    """The heads with the element head refitted on ``examples`` (see the module docstring)."""
    import numpy as np

    if not examples:
        return heads
    head = heads.heads["element"]
    labels = list(head.labels)
    for e in examples:
        if e.element not in labels:
            labels.append(e.element)
    extra = len(labels) - len(head.labels)
    w0 = np.hstack([head.weights, np.zeros((head.weights.shape[0], extra), np.float32)])
    b0 = np.concatenate([head.bias, np.full(extra, -2.0, np.float32)])
    thresholds = np.concatenate([head.thresholds,
                                 np.full(extra, float(head.thresholds.max(initial=0.5)),
                                         np.float32)])
    texts, x, _ = _features(heads, examples, encoder)
    x = head.hidden(x)  # an MLP head keeps its hidden layer: only the last layer is refitted
    row = {t: i for i, t in enumerate(texts)}
    col = {label: k for k, label in enumerate(labels)}
    y = np.zeros((len(texts), len(labels)), np.float64)
    mask = np.zeros_like(y)
    for e in examples:
        y[row[e.text], col[e.element]] = 1.0 if e.present else 0.0
        mask[row[e.text], col[e.element]] = 1.0
    w, b = w0.astype(np.float64), b0.astype(np.float64)
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    n = max(1.0, mask.sum())
    for t in range(1, ADAPT_STEPS + 1):
        z = x @ w + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        g = mask * (p - y) / n
        grads = [x.T @ g + PULL * (w - w0), g.sum(axis=0) + PULL * (b - b0)]
        for i, (param, grad) in enumerate(((w, grads[0]), (b, grads[1]))):
            m[i] = 0.9 * m[i] + 0.1 * grad
            v[i] = 0.999 * v[i] + 0.001 * grad * grad
            param -= ADAPT_LR * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t))
                                                          + 1e-8)
    # the kernel blend and calibration stay; a new element has no votes and no scaling yet
    memory_labels = head.memory_labels
    if memory_labels is not None:
        memory_labels = np.hstack([memory_labels,
                                   np.zeros((memory_labels.shape[0], extra), np.float32)])
    platt = head.platt
    if platt is not None:
        platt = np.vstack([platt, np.tile(np.array([[1.0, 0.0]], np.float32), (extra, 1))])
    adapted = replace(head, labels=labels, weights=w.astype(np.float32),
                      bias=b.astype(np.float32), thresholds=thresholds,
                      memory_labels=memory_labels, platt=platt)
    meta = {**heads.meta, "adapted_from_review": len(examples)}
    return replace(heads, heads={**heads.heads, "element": adapted}, meta=meta)
