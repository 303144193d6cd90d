"""The stored answer format, decoded in one place.

An answer is stored as the engine produced it: a string (a text answer, a date, a choice's
id), an integer (a scale) or, for a button question that also took typed words, a mapping
``{"selected": [choice ids], "other": "typed text"}`` (a single choice with typed words
stores ``{"other": ...}`` alone; a multi-choice stores ``{"selected": [...]}`` even when
nothing was typed). Older rows may hold a bare list of choice ids. Everything that reads
answers (the engine's summaries, the safety rule, coding, reports, exports) decodes them
through :class:`Answer` instead of poking at the keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SELECTED = "selected"
OTHER = "other"


@dataclass(frozen=True)
class Answer:
    """What a stored answer says: the choices picked and the words typed beside them."""

    selected: tuple[str, ...] = ()
    other: str | None = None  # typed "or type your own" words, when they are a string
    has_other: bool = False  # the answer carries an "other" key at all

    @classmethod
    def decode(cls, value: Any) -> Answer:
        if isinstance(value, str):
            return cls((value,))
        if isinstance(value, list):
            return cls(tuple(str(v) for v in value))
        if isinstance(value, dict):
            other = value.get(OTHER)
            return cls(
                tuple(str(v) for v in value.get(SELECTED) or ()),
                other if isinstance(other, str) else None,
                OTHER in value,
            )
        return cls()

    @property
    def typed(self) -> str | None:
        """The typed words when there are any (not only spaces)."""
        return self.other if self.other is not None and self.other.strip() else None


def typed_choice(text: str) -> dict[str, Any]:
    """A single-choice question answered with the person's own words."""
    return {OTHER: text}


def multi(selected: Iterable[str], other: str | None = None) -> dict[str, Any]:
    """A tap-all-that-apply answer, with typed words when the person added some."""
    value: dict[str, Any] = {SELECTED: list(selected)}
    if other is not None:
        value[OTHER] = other
    return value


def is_typed_choice(value: Any) -> bool:
    """A button answer that carries typed words (which need the safety rule and coding)."""
    return isinstance(value, dict) and bool(value.get(OTHER))


def typed_text(value: Any) -> str:
    """What a person typed in an answer: a text answer, or a choice's "other" text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return Answer.decode(value).other or ""
    return ""
