"""Semantic classification heads over an answer's sentence embeddings (issue 13, layer 3).

One logistic regression per scheme reads, for the whole answer and for each of its sentences
(``units``), the sentence's MiniLM embedding (``conversations.sentence_encoder``), the whole
answer's embedding, which step it answers and who wrote it, and the sentence's framing markers
("hope", "now", "used to", a question mark ...) beside the rules' own reading of it (the roles
and modalities of the codes ``reports.coding.rules`` finds there): the rules are features, not
only a separate vote.

* ``role``: the six CMO roles the answer's realised codes carry (one-vs-rest, per sentence);
* ``element``: the CMO elements it evidences (one-vs-rest, per sentence);
* ``modality``: which modalities its codes have (one-vs-rest, per sentence), used to say
  whether an outcome element the heads find is attained or only hoped for;
* ``domain``, ``factor``: learning domains and folded ``ID:polarity`` factors (whole answer);
* ``phase``: the relationship phase or none (softmax, whole answer).

Each head's probability may be blended with a kernel vote (``kernel_vote``): the labels of
the training sentences kept in ``Heads.memory`` (their centred embeddings projected on the top
principal directions, unit length, float16), weighted by a softmax of the cosine similarity,
a soft nearest-neighbour vote that reads what a linear head over the embedding cannot; the
share and temperature are per head, and Platt scaling then applies to the blend.

Weights are trained offline on every development part of the labelled bank by
``benchmarks/coding_train.py`` (numpy only; L2, kernel blend, per-label thresholds and Platt
scaling chosen by cross-validation grouped by answer) and shipped in
``reports/coding/heads/default.npz``;
the feature blocks a set of weights reads are recorded in its ``meta`` (older weights read the
unit embedding and step only). Confidence is the head's Platt-scaled probability. Everything
here needs numpy, which comes with the ``semantic`` extra: without it ``heads_available()``
says so and callers code with the rules alone.

:func:`combine` joins the heads with the rules: a rule hit the rules are sure of is kept as it
is; an unsure one is kept only where the element head does not contradict it; the heads add
what the rules are silent on, each such code with ``method: semantic`` and its probability;
where the rules read an outcome as only intended and find none realised, an outcome the heads
add is intended too (``GATE_BY_RULES``); in text that answers no flow step the rules lead
(``combine``'s ``known_step``).

A head may be an MLP (``Head.hidden_weights``: one ReLU layer before ``weights``; older
weights have none, and the shipped ones are linear). The heads' ``meta["calibration"]``
maps a stored code's confidence, per method, to the share of such codes that were right on
held-out folds (``reports.coding.stored.calibrated``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reports.codebook import (
    CONTEXT_ROLES,
    OUTCOME_ROLES,
    SCHEME_CMO,
    SCHEME_DOMAIN,
    SCHEME_FACTOR,
    Codebook,
)
from reports.coding.model import (
    HYPOTHETICAL,
    INTENDED,
    METHOD_SEMANTIC,
    NEGATED,
    REALISED,
    CodeHit,
    modal_role,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# bump when ``semantic_codes``, ``combine`` or the stored codes' calibration change what is
# coded (part of ``reports.entry_codes.combined_coder_id``, so stored codes recompute)
COMBINATION_VERSION = "2"
HEADS_DIR = Path(__file__).resolve().parent / "heads"
DEFAULT_HEADS = HEADS_DIR / "default.npz"
SCHEMES = ("role", "element", "modality", "domain", "factor", "phase")
MULTICLASS = frozenset({"phase"})
NO_PHASE = "none"
# a rule hit at least this confident stands whatever the heads say (chosen by CV: the rules'
# 0.75 cues were right less often on held-out folds than their 0.6 ones, 0.8 keeps them open
# to the heads' doubt)
RULE_SURE = 0.8
RULE_DOUBT = 0.1  # an unsure rule hit is dropped where its element's probability is below
# an outcome the heads find is realised only where its sentence reads as realised by this much
# more than as intended (a wish coded as attained is the worse error: chosen by CV)
OUTCOME_MARGIN = 0.2
WEAK_GUESS = 0.5  # a semantic code for a role the rules already evidence needs this much
# a semantic code for another role, in an answer the rules found CMO codes in, needs this much
# (chosen by CV: 0.2 to 0.4 all help a little)
BESIDE_RULES = 0.3
# ... and this much in text that answers no flow step (``combine``'s ``known_step``; chosen
# on the shared notes' interview quotes, the only such text labelled: 0.5 to 0.8 all help)
UNSTEPPED_BESIDE_RULES = 0.7
# where the rules read an outcome as only intended and find none realised, an outcome the heads
# add is intended too: the rules' modality markers are sure where they fire (0 of the bank's
# intended outcomes coded as realised), the embedding barely tells a hope from a report
GATE_BY_RULES = True
VOICES = ("mentee", "mentor")


def heads_available() -> tuple[bool, str]:
    """Whether heads can run here (numpy and the shipped weights), and why not."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False, "semantic heads unavailable: numpy is not installed (the semantic extra)"
    if not DEFAULT_HEADS.is_file():
        return False, f"semantic heads unavailable: no weights at {DEFAULT_HEADS.name}"
    return True, "semantic heads available"


@dataclass
class Head:
    labels: list[str]
    weights: NDArray[np.float32]  # features x labels
    bias: NDArray[np.float32]
    thresholds: NDArray[np.float32]  # per label (multi-label heads); unused for softmax
    # kernel blend (older weights: none): the head's probability is mixed with a similarity-
    # weighted vote of the training sentences (``Heads.memory``), share ``kernel_alpha``, then
    # Platt-scaled by ``platt`` (labels x (slope, offset)); without it the scaling is folded
    # into the weights
    kernel_alpha: float = 0.0
    kernel_temperature: float = 20.0
    memory_labels: NDArray[np.float32] | None = None  # memory rows x labels, 0/1
    platt: NDArray[np.float32] | None = None
    # an MLP head (older weights: none): one ReLU layer (features x hidden) read first, and
    # ``weights`` then maps the hidden units to the labels
    hidden_weights: NDArray[np.float32] | None = None
    hidden_bias: NDArray[np.float32] | None = None

    def hidden(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """What ``weights`` reads: the features themselves, or an MLP head's hidden layer."""
        import numpy as np

        if self.hidden_weights is None or self.hidden_bias is None:
            return x
        return np.maximum(x @ self.hidden_weights + self.hidden_bias, 0.0).astype(np.float32)

    def linear(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        import numpy as np

        z = self.hidden(x) @ self.weights + self.bias
        if len(self.labels) and self.thresholds.size == 0:  # softmax head
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)

    def probabilities(self, x: NDArray[np.float32],
                      similarity: NDArray[np.float32] | None = None,
                      vote: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        """``similarity``: rows x memory rows (cosine), where the head blends in its kernel
        (or ``vote``, the kernel's vote itself, where the caller has it)."""
        import numpy as np

        p = self.linear(x)
        if (vote is None and self.kernel_alpha > 0 and similarity is not None
                and self.memory_labels is not None
                and similarity.shape[1] == self.memory_labels.shape[0]):
            vote = kernel_vote(similarity, self.memory_labels, self.kernel_temperature)
        if vote is not None and self.kernel_alpha > 0:
            p = (1 - self.kernel_alpha) * p + self.kernel_alpha * vote
        if self.platt is not None:
            a, c = self.platt[:, 0], self.platt[:, 1]
            q = np.clip(p, 1e-6, 1 - 1e-6)
            p = 1.0 / (1.0 + np.exp(-np.clip(a * np.log(q / (1 - q)) + c, -30, 30)))
        return p.astype(np.float32)


def kernel_vote(similarity: NDArray[np.float32], labels: NDArray[np.float32],
                temperature: float) -> NDArray[np.float32]:
    """Each row's labels as a softmax-weighted vote of the memory's rows (a soft k-nearest-
    neighbour: the nearest training sentences count most, with no top-k sort to pay for)."""
    import numpy as np

    z = temperature * (similarity - similarity.max(axis=1, keepdims=True))
    w = np.exp(z, dtype=np.float32)
    w /= w.sum(axis=1, keepdims=True)
    return (w @ labels).astype(np.float32)


@dataclass
class Heads:
    contexts: list[str]  # "flow/step" one-hot vocabulary
    mean: NDArray[np.float32]
    scale: NDArray[np.float32]
    heads: dict[str, Head]
    meta: dict[str, Any] = field(default_factory=dict)
    # the training sentences' embeddings (centred on ``mean``, unit length, float16) for the
    # heads' kernel blend, and which rows are whole answers (domain and factor vote with those)
    memory: NDArray[np.float16] | None = None
    memory_whole: NDArray[np.bool_] | None = None
    # embedding dims x kernel dims: the memory is compared in the training sentences' top
    # principal directions (None: in the whole embedding)
    projection: NDArray[np.float32] | None = None
    _memory32: NDArray[np.float32] | None = field(default=None, init=False, repr=False,
                                                  compare=False)
    _stacked: dict[float, tuple[list[str], NDArray[np.float32]]] | None = field(
        default=None, init=False, repr=False, compare=False)

    # -- features --------------------------------------------------------------------------

    @property
    def blocks(self) -> tuple[str, ...]:
        """The feature blocks these weights read (older weights: the unit and its step)."""
        return tuple(self.meta.get("features") or (BLOCK_UNIT, BLOCK_CONTEXT))

    def features(self, embeddings: NDArray[np.float32],
                 contexts: Sequence[tuple[str, str, str]],
                 answers: NDArray[np.float32] | None = None,
                 texts: Sequence[str] | None = None,
                 intends: Sequence[bool] | None = None) -> NDArray[np.float32]:
        """Standardised unit embedding, then (where these weights read them) the whole
        answer's embedding, one-hot step and voice, and the unit's framing markers and rule
        codes. ``contexts``: (flow, step, voice) per row; ``answers``: the embedding of the
        answer each row belongs to (default: the row's own); ``texts``: each row's text."""
        return build_features(embeddings, contexts, self.contexts, self.mean, self.scale,
                              self.blocks, answers, texts, intends)

    def similarity(self, embeddings: NDArray[np.float32] | None
                   ) -> NDArray[np.float32] | None:
        """Cosine similarity of each row's (centred) embedding to every memory row."""
        import numpy as np

        if self.memory is None or embeddings is None:
            return None
        if self._memory32 is None:  # converted once: the shipped copy is float16
            self._memory32 = np.ascontiguousarray(self.memory.T, dtype=np.float32)
        z = np.asarray(embeddings, dtype=np.float32) - self.mean
        if self.projection is not None:
            z = z @ self.projection
        z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-9
        return z @ self._memory32

    def predict(self, x: NDArray[np.float32], embeddings: NDArray[np.float32] | None = None
                ) -> dict[str, NDArray[np.float32]]:
        """Every head's probabilities; ``embeddings`` (the rows' unit embeddings) let the
        heads that have a kernel blend use it."""
        import numpy as np

        sim = self.similarity(embeddings) if any(
            h.kernel_alpha > 0 and h.memory_labels is not None
            for h in self.heads.values()) else None
        if sim is None or self.memory_whole is None:
            return {name: head.probabilities(x) for name, head in self.heads.items()}
        # the costly part, done once per temperature for all the heads: one exponential of
        # the similarities and one product with every blended head's memory labels side by
        # side, with a column of ones (of whole-answer rows for the whole-answer heads) that
        # gives each vote its normaliser
        peak = sim.max(axis=1, keepdims=True)
        out: dict[str, NDArray[np.float32]] = {}
        votes: dict[str, NDArray[np.float32]] = {}
        for t, (names, stacked) in self._stacked_labels().items():
            w = np.subtract(sim, peak, out=sim.copy() if len(self._stacked) > 1 else sim)
            w *= t
            np.exp(w, out=w)
            v = w @ stacked
            at = 0
            for name in names:
                k = len(self.heads[name].labels)
                votes[name] = v[:, at:at + k] / np.maximum(v[:, at + k:at + k + 1], 1e-30)
                at += k + 1
        for name, head in self.heads.items():
            out[name] = head.probabilities(x, vote=votes.get(name))
        return out

    def _stacked_labels(self) -> dict[float, tuple[list[str], NDArray[np.float32]]]:
        """Per kernel temperature: the blended heads and their memory labels side by side
        over every memory row, each followed by its normaliser column (computed once)."""
        import numpy as np

        if self._stacked is None:
            assert self.memory is not None and self.memory_whole is not None
            rows = len(self.memory)
            groups: dict[float, tuple[list[str], list[NDArray[np.float32]]]] = {}
            for name, head in self.heads.items():
                if head.kernel_alpha <= 0 or head.memory_labels is None:
                    continue
                if name in WHOLE_SCHEMES:
                    full = np.zeros((rows, len(head.labels)), np.float32)
                    full[self.memory_whole] = head.memory_labels
                    ones = self.memory_whole.astype(np.float32)[:, None]
                else:
                    full, ones = head.memory_labels, np.ones((rows, 1), np.float32)
                names, blocks = groups.setdefault(head.kernel_temperature, ([], []))
                names.append(name)
                blocks += [full.astype(np.float32), ones]
            self._stacked = {t: (names, np.hstack(blocks)) for t, (names, blocks)
                             in groups.items()}
        return self._stacked

    # -- storage ---------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        import json

        import numpy as np

        arrays: dict[str, Any] = {
            "contexts": np.array(self.contexts, dtype=str),
            "mean": self.mean, "scale": self.scale,
            "meta": np.array(json.dumps(self.meta, sort_keys=True), dtype=str),
        }
        for name, head in self.heads.items():
            arrays[f"{name}.labels"] = np.array(head.labels, dtype=str)
            arrays[f"{name}.weights"] = head.weights.astype(np.float32)
            arrays[f"{name}.bias"] = head.bias.astype(np.float32)
            arrays[f"{name}.thresholds"] = head.thresholds.astype(np.float32)
            if head.kernel_alpha > 0 and head.memory_labels is not None:
                arrays[f"{name}.kernel"] = np.array([head.kernel_alpha, head.kernel_temperature],
                                                    np.float32)
                arrays[f"{name}.memory_labels"] = np.packbits(
                    head.memory_labels.astype(bool), axis=0)
            if head.platt is not None:
                arrays[f"{name}.platt"] = head.platt.astype(np.float32)
            if head.hidden_weights is not None and head.hidden_bias is not None:
                arrays[f"{name}.hidden_weights"] = head.hidden_weights.astype(np.float32)
                arrays[f"{name}.hidden_bias"] = head.hidden_bias.astype(np.float32)
        if self.memory is not None and self.memory_whole is not None:
            arrays["memory"] = self.memory.astype(np.float16)
            arrays["memory_whole"] = self.memory_whole.astype(bool)
            if self.projection is not None:
                arrays["memory_projection"] = self.projection.astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: Path = DEFAULT_HEADS) -> Heads:
        import json

        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            memory = data.get("memory")
            whole = data.get("memory_whole")
            projection = data.get("memory_projection")
            heads = {}
            for name in SCHEMES:
                if f"{name}.labels" not in data:
                    continue
                head = Head([str(x) for x in data[f"{name}.labels"]],
                            data[f"{name}.weights"], data[f"{name}.bias"],
                            data[f"{name}.thresholds"])
                if f"{name}.platt" in data:
                    head.platt = data[f"{name}.platt"]
                if f"{name}.hidden_weights" in data:
                    head.hidden_weights = data[f"{name}.hidden_weights"]
                    head.hidden_bias = data[f"{name}.hidden_bias"]
                if f"{name}.kernel" in data and memory is not None and whole is not None:
                    alpha, temperature = (float(v) for v in data[f"{name}.kernel"])
                    rows = int(whole.sum()) if name in WHOLE_SCHEMES else len(memory)
                    head.kernel_alpha, head.kernel_temperature = alpha, temperature
                    head.memory_labels = np.unpackbits(
                        data[f"{name}.memory_labels"], axis=0, count=rows).astype(np.float32)
                heads[name] = head
            return cls([str(x) for x in data["contexts"]], data["mean"], data["scale"], heads,
                       json.loads(str(data["meta"])), memory, whole, projection)


BLOCK_UNIT, BLOCK_ANSWER, BLOCK_CONTEXT, BLOCK_MARKERS = "unit", "answer", "context", "markers"

# Framing words the embedding blurs (MiniLM places "I hope to feel confident" and "I feel
# confident now" close together): each is one 0/1 feature of a unit, beside the rules' own
# reading of it (roles and modalities of its codes), so the heads can learn what the rules
# know about modality instead of only voting beside them.
_MARKER_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"\b(hope|hoping|hopefully|wish|wishing)\b",
    r"\b(want|wanted|wanting|wanna|would like|i'?d like|keen to|looking to)\b",
    r"\b(goal|aim|aiming|plan|planning|intend|target|objective)\b",
    r"\b(will|i'?ll|going to|gonna|next week|next month|by the end)\b",
    r"\b(expect|expecting|expected|so that|in order to)\b",
    r"^\s*(to|be|get|feel|learn|become|build|have)\b",
    r"\b(now|nowadays|these days|since|lately|recently)\b",
    r"\b(already|finally|managed|started|have been|i'?ve|has been|did|got)\b",
    r"\b\w+ed\b",
    r"\b(used to|at first|before i|at the start|back then)\b",
    r"\b(not|no|never|nothing|nobody|without|hardly|barely)\b|n'?t\b",
    r"\b(still|yet)\b",
    r"\b(if|unless|whether|in case|supposing)\b",
    r"\b(would|could|might|maybe|perhaps|possibly)\b",
    r"\?",
    r"\b(instead of|rather than|not so much|only because)\b",
    r"\b(but|however|although|though)\b",
    r"\b(she|he|they|my mentee|my mentor|my manager)\b",
    r"\b(i|i'm|i've|me|my|myself)\b",
))
_RULE_ROLES = ("CONTEXT_ENABLING", "CONTEXT_INHIBITING", "RESOURCE", "RESPONSE",
               "OUTCOME_PROXIMAL", "OUTCOME_DISTAL")
_RULE_MODALITIES = (REALISED, INTENDED, HYPOTHETICAL, NEGATED)
MARKER_WIDTH = len(_MARKER_PATTERNS) + len(_RULE_ROLES) * 2 + len(_RULE_MODALITIES) + 1


def marker_features(texts: Sequence[str], contexts: Sequence[tuple[str, str, str]],
                    intends: Sequence[bool] | None = None) -> NDArray[np.float32]:
    """Framing markers and the rules' reading of each text (see ``_MARKER_PATTERNS``)."""
    import numpy as np

    from reports.coding.rules import code_text_raw

    out = np.zeros((len(texts), MARKER_WIDTH), dtype=np.float32)
    flags = intends if intends is not None else [False] * len(texts)
    n = len(_MARKER_PATTERNS)
    for row, (text, (_, _, voice), intend) in enumerate(zip(texts, contexts, flags,
                                                            strict=True)):
        for k, pattern in enumerate(_MARKER_PATTERNS):
            if pattern.search(text):
                out[row, k] = 1.0
        # risk=False: the safety verdict is no framing feature, and judging it costs time
        for h in code_text_raw(text, voice or None, None, bool(intend), risk=False):
            if h.scheme != SCHEME_CMO:
                continue
            if h.cmo_role in _RULE_ROLES:
                out[row, n + _RULE_ROLES.index(h.cmo_role)] = 1.0
            if h.intended_role in _RULE_ROLES:
                out[row, n + len(_RULE_ROLES) + _RULE_ROLES.index(h.intended_role)] = 1.0
            if h.modality in _RULE_MODALITIES:
                out[row, n + 2 * len(_RULE_ROLES) + _RULE_MODALITIES.index(h.modality)] = 1.0
        out[row, -1] = 1.0 if intend else 0.0
    return out


def build_features(embeddings: NDArray[np.float32], contexts: Sequence[tuple[str, str, str]],
                   vocabulary: Sequence[str], mean: NDArray[np.float32],
                   scale: NDArray[np.float32],
                   blocks: Sequence[str] = (BLOCK_UNIT, BLOCK_CONTEXT),
                   answers: NDArray[np.float32] | None = None,
                   texts: Sequence[str] | None = None,
                   intends: Sequence[bool] | None = None) -> NDArray[np.float32]:
    import numpy as np

    parts = []
    z = (np.asarray(embeddings, dtype=np.float32) - mean) / scale
    if BLOCK_UNIT in blocks:
        parts.append(z)
    if BLOCK_ANSWER in blocks:
        parts.append(z if answers is None
                     else (np.asarray(answers, dtype=np.float32) - mean) / scale)
    if BLOCK_CONTEXT in blocks:
        index = {c: i for i, c in enumerate(vocabulary)}
        extra = np.zeros((len(contexts), len(vocabulary) + len(VOICES)), dtype=np.float32)
        for row, (flow, step, voice) in enumerate(contexts):
            k = index.get(f"{flow}/{step}")
            if k is not None:
                extra[row, k] = 1.0
            if voice in VOICES:
                extra[row, len(vocabulary) + VOICES.index(voice)] = 1.0
        parts.append(extra)
    if BLOCK_MARKERS in blocks:
        if texts is None:
            raise ValueError("these heads read the texts' framing markers: pass texts")
        parts.append(marker_features(texts, contexts, intends))
    return np.hstack(parts).astype(np.float32)


UNIT_SCHEMES = ("role", "element", "modality")  # read sentence by sentence, then the maximum
WHOLE_SCHEMES = frozenset({"domain", "factor", "phase"})  # read on the whole answer
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+|\s+-\s+")
MIN_UNIT_CHARS = 12


def units(text: str) -> list[tuple[int, int]]:
    """Spans the heads read: the whole answer first, then each sentence of a longer one.

    One answer often makes several claims (a goal and its attainment, a barrier and what
    helped); read as one vector they blur, so role, element and modality are read per sentence
    and the answer takes the maximum. Domain, factor and phase are read on the whole answer.
    """
    spans = [(0, len(text))]
    start = 0
    pieces: list[tuple[int, int]] = []
    for m in _SENTENCE_END.finditer(text):
        pieces.append((start, m.start()))
        start = m.end()
    pieces.append((start, len(text)))
    pieces = [(a, b) for a, b in pieces if len(text[a:b].strip()) >= MIN_UNIT_CHARS]
    if len(pieces) > 1:
        spans += pieces
    return spans


@dataclass
class AnswerProbs:
    """Probabilities for one answer: per unit (row 0 is the whole answer) for every head."""

    units: list[tuple[int, int]]
    probs: dict[str, NDArray[np.float32]]  # scheme -> units x labels

    def whole(self, scheme: str) -> NDArray[np.float32]:
        return self.probs[scheme][0]

    def best(self, scheme: str) -> NDArray[np.float32]:
        return self.probs[scheme].max(axis=0)


def answer_probabilities(heads: Heads, embeddings: NDArray[np.float32],
                         spans: Sequence[list[tuple[int, int]]],
                         contexts: Sequence[tuple[str, str, str]],
                         texts: Sequence[str] | None = None,
                         intends: Sequence[bool] | None = None) -> list[AnswerProbs]:
    """Split a batch of unit embeddings (answers' units in order) back into answers.

    ``texts``/``intends``: each answer's text and whether its step asks for goals (needed by
    heads that read framing markers)."""
    import numpy as np

    rows = [ctx for ctx, sp in zip(contexts, spans, strict=True) for _ in sp]
    first = np.cumsum([0] + [len(sp) for sp in spans[:-1]]).astype(int)
    answers = np.asarray(embeddings)[np.repeat(first, [len(sp) for sp in spans])] \
        if len(spans) else None
    unit_text = None
    flags = None
    if texts is not None:
        unit_text = [t[a:b] for t, sp in zip(texts, spans, strict=True) for a, b in sp]
        flags = [bool(f) for f, sp in zip(intends or [False] * len(spans), spans, strict=True)
                 for _ in sp]
    probs = heads.predict(heads.features(embeddings, rows, answers, unit_text, flags),
                          embeddings)
    out: list[AnswerProbs] = []
    at = 0
    for sp in spans:
        out.append(AnswerProbs(list(sp), {k: v[at:at + len(sp)] for k, v in probs.items()}))
        at += len(sp)
    return out


def unit_texts(texts: Sequence[str]) -> tuple[list[str], list[list[tuple[int, int]]]]:
    spans = [units(t) for t in texts]
    return [t[a:b] for t, sp in zip(texts, spans, strict=True) for a, b in sp], spans


_SHARED: dict[Path, Heads] = {}


def load_heads(path: Path = DEFAULT_HEADS) -> Heads:
    found = _SHARED.get(path)
    if found is None:
        found = _SHARED[path] = Heads.load(path)
    return found


# ---------------------------------------------------------------------------------------
# from probabilities to codes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SemanticCodes:
    """What the heads say about one answer, as codes (whole answer as the evidence)."""

    hits: list[CodeHit]
    phase: str | None
    phase_confidence: float


def _hit(codebook: Codebook, code_id: str, role: str | None, modality: str, text: str,
         confidence: float, polarity: str | None = None) -> CodeHit:
    code = codebook.get(code_id)
    cmo_role, intended_role = modal_role(role, modality)
    return CodeHit(code_id=code_id, scheme=code.scheme, cmo_role=cmo_role, level=code.level,
                   polarity=polarity if polarity is not None else code.polarity, span_start=0,
                   span_end=len(text), evidence=text, method=METHOD_SEMANTIC,
                   confidence=round(float(confidence), 3), modality=modality,
                   intended_role=intended_role)


def _default_role(codebook: Codebook, element: str) -> str | None:
    return codebook.get(element).role


def _roles_for(codebook: Codebook, element: str) -> tuple[str, ...]:
    role = _default_role(codebook, element)
    if role in CONTEXT_ROLES:
        return CONTEXT_ROLES
    return (role,) if role is not None else ()


def semantic_codes(heads: Heads, ap: AnswerProbs, text: str, codebook: Codebook,
                   intends: bool = False) -> SemanticCodes:
    """The heads' codes for row ``row`` of a batch of probabilities.

    The role head decides which roles the answer evidences; the element head which elements
    fill them (an element whose role the role head does not find is left out, and a role it
    finds with no element above threshold gets its likeliest element). An outcome element is
    realised only where the role head finds that outcome role and the modality head does not
    find the claim more likely intended; in a step that asks for goals (``intends``) it is
    intended unless the modality head is sure it was reached.
    """
    out: list[CodeHit] = []
    role_head = heads.heads["role"]
    role_best = ap.best("role")
    role_p = {label: float(role_best[k]) for k, label in enumerate(role_head.labels)}
    role_on = {label for k, label in enumerate(role_head.labels)
               if role_p[label] >= float(role_head.thresholds[k])}
    mod_head = heads.heads["modality"]
    role_index = {label: k for k, label in enumerate(role_head.labels)}

    def outcome_modality(role: str, unit: int = 0) -> str:
        # the sentence that most looks like this element says whether it was reached
        mod_p = {label: float(ap.probs["modality"][unit, k])
                 for k, label in enumerate(mod_head.labels)}
        here = float(ap.probs["role"][unit, role_index[role]])
        realised = (role in role_on and here >= float(role_head.thresholds[role_index[role]])
                    and mod_p.get(REALISED, 0.0) >= mod_p.get(INTENDED, 0.0) + OUTCOME_MARGIN)
        if intends:
            realised = realised and mod_p.get(INTENDED, 0.0) < 0.5
        if realised:
            return REALISED
        rest = {m: mod_p.get(m, 0.0) for m in (INTENDED, NEGATED, HYPOTHETICAL)}
        if intends:
            return INTENDED
        return max(rest, key=lambda m: (rest[m], m))

    def context_role() -> str:
        return max(CONTEXT_ROLES, key=lambda r: (role_p.get(r, 0.0), r))

    el_head = heads.heads["element"]
    el_units = ap.probs["element"]
    el_best = el_units.max(axis=0)
    el_arg = el_units.argmax(axis=0)
    emitted_roles: set[str] = set()
    best_for_role: dict[str, tuple[float, str]] = {}
    for k, element in enumerate(el_head.labels):
        if element not in codebook:
            continue
        p = float(el_best[k])
        role = _default_role(codebook, element)
        if role is None:
            continue
        for r in _roles_for(codebook, element):
            if p > best_for_role.get(r, (-1.0, ""))[0]:
                best_for_role[r] = (p, element)
        if p < float(el_head.thresholds[k]):
            continue
        if role in CONTEXT_ROLES:
            role = context_role()
        if role in OUTCOME_ROLES:
            modality = outcome_modality(role, int(el_arg[k]))
        elif role in role_on:
            modality = REALISED
        else:
            continue  # the role head finds no such role in the answer
        hit = _hit(codebook, element, role, modality, text, p)
        out.append(hit)
        if hit.cmo_role is not None:
            emitted_roles.add(hit.cmo_role)
    # a role the role head finds, and no element found for it: its likeliest element
    for r in sorted(role_on - emitted_roles):
        best = best_for_role.get(r)
        if best is None:
            continue
        unit = int(ap.probs["role"][:, role_index[r]].argmax())
        modality = outcome_modality(r, unit) if r in OUTCOME_ROLES else REALISED
        if r in OUTCOME_ROLES and modality != REALISED:
            continue
        out.append(_hit(codebook, best[1], r, modality, text, role_p[r]))
    for scheme in ("domain", "factor"):
        head = heads.heads.get(scheme)
        if head is None:
            continue
        for k, label in enumerate(head.labels):
            p = float(ap.whole(scheme)[k])
            if p < float(head.thresholds[k]):
                continue
            code_id, _, polarity = label.partition(":")
            if code_id not in codebook:
                continue
            if scheme == "factor":
                role = "CONTEXT_ENABLING" if polarity == "helping" else "CONTEXT_INHIBITING"
                out.append(_hit(codebook, code_id, role, REALISED, text, p, polarity))
            else:
                # hoped-for learning keeps its domain but is no outcome (guide §6)
                whole = {label: float(ap.whole("modality")[k])
                         for k, label in enumerate(mod_head.labels)}
                hoped = intends or whole.get(INTENDED, 0.0) > whole.get(REALISED, 0.0)
                role = _default_role(codebook, code_id) or "OUTCOME_DISTAL"
                out.append(_hit(codebook, code_id, role, INTENDED if hoped else REALISED, text,
                                p))
    phase_head = heads.heads.get("phase")
    phase, phase_p = None, 0.0
    if phase_head is not None:
        whole = ap.whole("phase")
        k = int(whole.argmax())
        label = phase_head.labels[k]
        phase_p = float(whole[k])
        if label != NO_PHASE and label in codebook:
            phase = label
    return SemanticCodes(out, phase, phase_p)


FACTORS_AGREE_WITH_RULES = True
POLARITY_FLIP = {"helping": "hindering", "hindering": "helping"}


@lru_cache(maxsize=1)
def _factor_pairs() -> dict[str, str]:
    """Each paired factor's counterpart, both ways (helping id <-> hindering id)."""
    from reports.codebook import load_codebook

    rules = load_codebook().rules
    pairs = dict(rules.factor_counterparts) if rules is not None else {}
    return {**pairs, **{v: k for k, v in pairs.items()}}


def combine(rule_hits: Sequence[Any], sem: SemanticCodes, heads: Heads, ap: AnswerProbs,
            rule_phase: str | None, known_step: bool = True) -> tuple[list[Any], str | None]:
    """Rules where they are sure, the heads where the rules are silent or unsure.

    ``known_step``: whether the answer answers a step of a flow. Text that answers none (an
    interview quote, an imported note) is unlike the chat answers the heads were trained on,
    and there the rules lead (``UNSTEPPED_*``): every rule hit stands, a semantic CMO code for
    a role the rules did not find, in an answer where they found CMO codes, needs
    ``UNSTEPPED_BESIDE_RULES``, and the heads add learning domains and factors only to an
    answer the rules found nothing in."""
    beside = BESIDE_RULES if known_step else max(BESIDE_RULES, UNSTEPPED_BESIDE_RULES)
    el_head = heads.heads["element"]
    best = ap.best("element")
    element_p = {label: float(best[k]) for k, label in enumerate(el_head.labels)}
    kept: list[Any] = []
    for h in rule_hits:
        if (known_step and h.scheme == SCHEME_CMO and h.confidence < RULE_SURE
                and element_p.get(h.code_id, 1.0) < RULE_DOUBT):
            continue  # an unsure cue the heads find no sign of
        kept.append(h)
    gate = GATE_BY_RULES and any(
        h.intended_role in OUTCOME_ROLES for h in kept) and not any(
        h.cmo_role in OUTCOME_ROLES and h.scheme in (SCHEME_CMO, SCHEME_DOMAIN) for h in kept)
    have_cmo = {h.code_id for h in kept if h.scheme == SCHEME_CMO}
    have_roles = {h.cmo_role for h in kept if h.cmo_role is not None and h.scheme == SCHEME_CMO}
    have_other = {(h.scheme, h.code_id, h.polarity) for h in kept if h.scheme != SCHEME_CMO}
    others = known_step or not kept  # whether the heads may add domains and factors
    # a factor the rules read one way round is not added the other way round by the heads
    # (protected time found by the rules is no time constraint)
    turned = set()
    if FACTORS_AGREE_WITH_RULES:
        pair = _factor_pairs()
        for h in kept:
            if h.scheme == SCHEME_FACTOR:
                other = POLARITY_FLIP.get(h.polarity or "", "")
                turned |= {(h.code_id, other), (pair.get(h.code_id, ""), other)}
    for h in sem.hits:
        if gate and h.cmo_role in OUTCOME_ROLES:
            h = replace(h, cmo_role=None, intended_role=h.cmo_role, modality=INTENDED)
        if h.scheme == SCHEME_CMO:
            if h.code_id in have_cmo:
                continue
            if (h.method == METHOD_SEMANTIC and h.cmo_role in have_roles
                    and h.confidence < WEAK_GUESS):
                continue  # a role already evidenced by the rules needs no weak guess
            if (h.method == METHOD_SEMANTIC and have_roles and h.cmo_role is not None
                    and h.confidence < beside):
                continue
            kept.append(h)
        elif others and (h.scheme, h.code_id, h.polarity) not in have_other and h.scheme in (
                SCHEME_DOMAIN, SCHEME_FACTOR) and (h.code_id, h.polarity) not in turned:
            kept.append(h)
    phase = rule_phase if rule_phase is not None else sem.phase
    return kept, phase
