"""Button data for a question that waits in the person's state slot (which pair, which
membership, or both at once): ``<seq>:<tag><id>``.

``seq`` is the question's generation number (``Service.seq``), so a button of an earlier
question is stale; ``tag`` is one lowercase letter saying what the id names (``p`` a pair,
``m`` a membership); the id must be one the question offered. Anything else (another
question's number, an unknown tag, digits of another script, spaces, an id the question did
not offer, someone else's pair) parses to None: the caller says the button is stale and
changes nothing. The pair and membership questions share this one reading.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

_DATA = re.compile(r"(0|[1-9][0-9]{0,12}):([a-z])([1-9][0-9]{0,11})")  # no leading zeros


def choice_data(seq: int, tag: str, item: int) -> str:
    """The data of the button offering ``item`` (of kind ``tag``) in question ``seq``."""
    if len(tag) != 1 or not tag.islower() or not tag.isascii():
        raise ValueError(f"a choice tag is one lowercase letter, not {tag!r}")
    return f"{seq}:{tag}{item}"


def parse_choice(data: str, seq: int,
                 offered: Mapping[str, Collection[int]]) -> tuple[str, int] | None:
    """(tag, id) if ``data`` is a button of question ``seq`` for an id it offered under
    that tag; else None (stale, forged or not offered)."""
    match = _DATA.fullmatch(data)
    if match is None or match[1] != str(seq):
        return None
    tag, item = match[2], int(match[3])
    return (tag, item) if item in offered.get(tag, ()) else None
