"""The unit every coding layer produces: one code, its evidence, and how sure the layer is."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from reports.codebook import CONTEXT_ROLES

METHOD_RULES = "rules"
METHOD_SEMANTIC = "semantic"
METHOD_STRUCTURED = "structured"
# a rule code the semantic heads also find (reports/coding/stored.py)
METHOD_BOTH = "both"

POLARITY_HELPING = "helping"
POLARITY_HINDERING = "hindering"

# Modality (issue 13, docs/coding-guide.md §3): whether what a code names happened. Only a
# realised code carries its role; an intended, hypothetical or negated one keeps its id (and its
# learning domain) but its ``cmo_role`` is None and ``intended_role`` names the role it would
# play if realised, so an aspiration never counts as an outcome. The one exception is a negated
# context, which keeps a (turned round) context role: an absent support is a present barrier.
REALISED = "realised"
INTENDED = "intended"
HYPOTHETICAL = "hypothetical"
NEGATED = "negated"
MODALITIES = (REALISED, INTENDED, HYPOTHETICAL, NEGATED)
_CONTEXT_ROLES = frozenset(CONTEXT_ROLES)


def modal_role(cmo_role: str | None, modality: str) -> tuple[str | None, str | None]:
    """(cmo_role, intended_role) of a code with this role read in this modality."""
    if cmo_role is None or modality == REALISED:
        return cmo_role, None
    if modality == NEGATED and cmo_role in _CONTEXT_ROLES:
        return cmo_role, None
    return None, cmo_role


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
    modality: str = REALISED
    intended_role: str | None = None

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
            "modality": self.modality,
            "intended_role": self.intended_role,
        }


def hit_sort_key(hit: CodeHit) -> tuple[int, int, str, str, str]:
    """Text order first, then id, so equal inputs always list codes the same way."""
    return (hit.span_start, hit.span_end, hit.code_id, hit.polarity or "", hit.method)


def sort_hits(hits: list[CodeHit]) -> list[CodeHit]:
    return sorted(hits, key=hit_sort_key)


def current_codes(codes: tuple[str, Any] | None, coders: Collection[str]
                  ) -> dict[str, Any] | None:
    """The one rule deciding whether an entry's stored codes stand for coding it now: they
    were made by one of ``coders`` (the coder the reader would code with:
    ``reports.entry_codes.coder_id`` or ``combined_coder_id``; see ``accepted_coders`` and
    ``report_coder`` there) and are a mapping. Returns them, or None: code the entry again.
    The database drops an entry's codes whenever one of its answers changes, and ``mentorbot
    recode`` and the bot's embedding worker code an entry again whenever they store new
    embeddings for it, so codes from the reader's coder describe its answers and embeddings
    as they are. Exports, ``mentorbot recode`` and the evaluator's report decide by it."""
    if codes is None or codes[0] not in coders:
        return None
    # written under that coder id and authenticated by the cipher: not checked hit by hit
    return codes[1] if isinstance(codes[1], dict) else None
