"""The unit every coding layer produces: one code, its evidence, and how sure the layer is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

METHOD_RULES = "rules"
METHOD_SEMANTIC = "semantic"
METHOD_STRUCTURED = "structured"

POLARITY_HELPING = "helping"
POLARITY_HINDERING = "hindering"


@dataclass(frozen=True, slots=True)
class CodeHit:
    """A code found in a text.

    ``span_start``/``span_end`` index the *original* text (half-open) and ``evidence`` is that
    slice, so a reviewer sees the participant's own words.
    """

    code_id: str
    scheme: str
    cmo_role: str | None
    level: str | None
    polarity: str | None
    span_start: int
    span_end: int
    evidence: str
    method: str
    confidence: float

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code_id,
            "scheme": self.scheme,
            "cmo_role": self.cmo_role,
            "level": self.level,
            "polarity": self.polarity,
            "evidence": {"start": self.span_start, "end": self.span_end, "text": self.evidence},
            "method": self.method,
            "confidence": self.confidence,
        }


def hit_sort_key(hit: CodeHit) -> tuple[int, int, str, str, str]:
    """Text order first, then id, so equal inputs always list codes the same way."""
    return (hit.span_start, hit.span_end, hit.code_id, hit.polarity or "", hit.method)


def sort_hits(hits: list[CodeHit]) -> list[CodeHit]:
    return sorted(hits, key=hit_sort_key)
