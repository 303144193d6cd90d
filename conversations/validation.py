"""What counts as a number in typed input: ASCII digits only, within stated bounds.

Python's ``str.isdigit`` and ``int`` accept superscripts and other scripts' digits ("²",
"١"), so a check built on them lets "/close ١" close pair 1 and crashes on "²". Every
place that reads a number from a person goes through here.
"""

from __future__ import annotations

import re

_WHOLE = re.compile(r"[0-9]{1,9}")
_LIST = re.compile(r"[0-9]{1,9}(?:\s*[,;\s]\s*[0-9]{1,9})*")


def whole_number(text: str, low: int, high: int) -> int | None:
    """The number typed, if it is written in ASCII digits and lies in low..high."""
    text = text.strip()
    if not _WHOLE.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def looks_numeric(text: str) -> bool:
    """Digits of any script, perhaps several: input that means a number, not words."""
    stripped = re.sub(r"[\s,;]+", "", text)
    return bool(stripped) and all(c.isdigit() or c.isdecimal() for c in stripped)


def number_list(text: str) -> list[int] | None:
    """"2 5", "2, 5" or "2,5" as [2, 5]; None unless it is only ASCII numbers."""
    text = text.strip()
    if not _LIST.fullmatch(text):
        return None
    return [int(n) for n in re.findall(r"[0-9]+", text)]
