"""Coding layers of the offline reporting job (DESIGN.md §6).

``rules`` is the deterministic cue-phrase layer every run uses; ``heads`` are the semantic
classification heads over sentence embeddings (the ``semantic`` extra), ``stored.join`` how
the two combine for every output, ``combined`` the same for texts from elsewhere.
"""

from reports.coding.model import CodeHit, sort_hits
from reports.coding.normalise import Normalised, normalise
from reports.coding.rules import code_text, phase_signal

__all__ = ["CodeHit", "Normalised", "code_text", "normalise", "phase_signal", "sort_hits"]
