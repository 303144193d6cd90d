"""Text normalisation for cue matching, with a map back to the original characters.

Rules match on lower-cased text with typographic variants folded (curly quotes, dashes,
ellipses, exotic spaces, accents), but evidence must quote the participant's own words, so
every normalised character remembers which original character produced it.

Almost every folding is one character for one character, so the common case needs no map at
all (``offsets is None`` means the identity); only texts with expansions, deletions or runs of
whitespace pay for building one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

_SPECIAL: dict[str, str] = {
    # quotes: phones type curly ones, keyboards straight ones
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"',
    "\u00bb": '"',
    # dashes and minus signs
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\ufe58": "-", "\ufe63": "-", "\uff0d": "-",
    # one character for the ellipsis keeps the common case free of offset maps; it still
    # ends a clause like "..." does
    "\u2026": ".",
    # list bullets separate items the way a semicolon does
    "\u2022": ";", "\u00b7": ";", "\u25aa": ";", "\u25cf": ";",
}


def _fold(ch: str) -> str:
    if ch in _SPECIAL:
        return _SPECIAL[ch]
    if ch.isspace():
        return " "
    if unicodedata.category(ch) == "Cf":  # zero-width joiners, BOMs, soft hyphens
        return ""
    low = ch.lower()
    if low.isascii():
        return low
    decomposed = unicodedata.normalize("NFKD", low)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped or low


class _FoldTable(dict[int, str]):
    """``str.translate`` table that folds each code point once and remembers the answer."""

    def __missing__(self, key: int) -> str:
        value = _fold(chr(key))
        self[key] = value
        return value


_TABLE = _FoldTable()


@dataclass(frozen=True, slots=True)
class Normalised:
    original: str
    text: str
    # offsets[i] is the index in ``original`` of the character that produced text[i];
    # one extra entry maps the end. None means text[i] came from original[i].
    offsets: tuple[int, ...] | None = None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of ``text`` to the half-open span of ``original`` it covers."""
        if self.offsets is None:
            return start, end
        if end <= start:
            pos = self.offsets[start]
            return pos, pos
        return self.offsets[start], self.offsets[end - 1] + 1

    def original_slice(self, start: int, end: int) -> str:
        a, b = self.to_original(start, end)
        return self.original[a:b]


def normalise(text: str) -> Normalised:
    """Lower-case and fold ``text``; runs of whitespace become one space."""
    folded = text.translate(_TABLE)
    if len(folded) == len(text) and "  " not in folded:
        return Normalised(text, folded)
    return _normalise_mapped(text)


def _normalise_mapped(text: str) -> Normalised:
    out: list[str] = []
    offsets: list[int] = []
    for index, ch in enumerate(text):
        for piece in _TABLE[ord(ch)]:
            if piece == " " and out and out[-1] == " ":
                continue
            out.append(piece)
            offsets.append(index)
    offsets.append(len(text))
    return Normalised(text, "".join(out), tuple(offsets))
