"""The rules and the semantic heads together, for callers that code batches of answers.

``AnswerCoder(semantic=True)`` uses the heads where they can run (the ``semantic`` extra, the
bundled model and the shipped weights) and says otherwise in ``layers``/``note``: without them
every answer is coded by the rules alone, exactly as ``code_text_raw`` codes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reports.codebook import Codebook, load_codebook
from reports.coding.rules import code_text_raw, phase_signal

LAYERS_RULES = "rules"
LAYERS_COMBINED = "rules+semantic"


@dataclass(frozen=True)
class Answer:
    text: str
    role: str | None = None
    flow: str | None = None
    step: str | None = None
    intends: bool = False


class AnswerCoder:
    """``review``: an evaluator's decisions (``reports.review.read_review``); with the semantic
    layer they refit this programme's element head first (``reports/coding/learning.py``) and
    ``agreement`` says how often the heads agreed with them before and after."""

    def __init__(self, codebook: Codebook | None = None, semantic: bool = True,
                 review: Mapping[str, Any] | None = None) -> None:
        self.book = codebook if codebook is not None else load_codebook()
        self.layers = LAYERS_RULES
        self.note = "rules only (semantic layer not requested)"
        self._heads: Any = None
        self._encoder: Any = None
        self.agreement: tuple[float | None, float | None, int] | None = None
        if not semantic:
            return
        from conversations import sentence_encoder
        from reports.coding.heads import heads_available, load_heads

        ok, why = sentence_encoder.availability()
        if ok:
            ok, why = heads_available()
        if not ok:
            self.note = f"rules only: {why}"
            return
        try:
            self._encoder = sentence_encoder.load_encoder()
            self._heads = load_heads()
        except Exception as exc:  # a broken model install must not stop the rules
            self.note = f"rules only: the semantic layer failed to load ({type(exc).__name__})"
            return
        self.layers = LAYERS_COMBINED
        self.note = "rules where sure, semantic heads where the rules are silent or unsure"
        if review:
            from reports.coding.learning import adapt, agreement, review_examples

            examples = review_examples(review, self.book)
            before = agreement(self._heads, examples, self._encoder)
            self._heads = adapt(self._heads, examples, self._encoder)
            after = agreement(self._heads, examples, self._encoder)
            self.agreement = (before, after, len(examples))
            if examples:
                self.note += (f"; element head refitted on {len(examples)} review decisions "
                              f"(agreement with them {before:.0%} before, {after:.0%} after)")

    @property
    def semantic(self) -> bool:
        return self.layers == LAYERS_COMBINED

    def code(self, answers: Sequence[Answer]) -> list[tuple[list[Any], str | None]]:
        """(hits, phase signal) per answer."""
        rule_hits = [code_text_raw(a.text, a.role, self.book, a.intends) for a in answers]
        if not self.semantic or not answers:
            return [(hits, phase_signal(hits)) for hits in rule_hits]
        from reports.coding.heads import unit_texts
        from reports.coding.stored import Item, join

        texts, spans = unit_texts([a.text for a in answers])
        # the one combination every output uses (the report, the stored codes)
        joined = join(self._heads, self.book,
                      [Item(None, a.text, a.role, a.flow or "", a.step or "", a.intends)
                       for a in answers],
                      self._encoder.encode(texts), spans, rule_hits)
        out: list[tuple[list[Any], str | None]] = []
        for kept, phase in joined:
            kept.sort(key=lambda h: (h.span_start, h.span_end, h.code_id, h.polarity or "",
                                     h.modality, h.method))
            out.append((kept, phase))
        return out
