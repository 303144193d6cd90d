"""XML text for QDA-XML: escaping and tags, written by hand for speed and byte-stable output."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


# ---------------------------------------------------------------------------
# XML text
# ---------------------------------------------------------------------------

_XML_INVALID = r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"
_INVALID_RE = re.compile(_XML_INVALID)
_ATTR_RE = re.compile(r'[&<>"\t\n\r]|' + _XML_INVALID)
_TEXT_RE = re.compile(r"[&<>\r]|" + _XML_INVALID)
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;",
            "\n": "&#10;", "\r": "&#13;"}


def _sub_escape(match: re.Match[str]) -> str:
    return _ESCAPES.get(match.group(), "\ufffd")


def _attr(value: str) -> str:
    # Tabs and line breaks are escaped too: a parser would otherwise normalise them to spaces.
    return value if _ATTR_RE.search(value) is None else _ATTR_RE.sub(_sub_escape, value)


def _text(value: str) -> str:
    return value if _TEXT_RE.search(value) is None else _TEXT_RE.sub(_sub_escape, value)


def _plain(value: str) -> str:
    """Source-file text: LF line ends only, XML-invalid characters replaced one for one."""
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if _INVALID_RE.search(value) is not None:
        value = _INVALID_RE.sub("\ufffd", value)
    return value


def _tag(tag: str, attrs: Iterable[tuple[str, str | None]], *, empty: bool = False) -> str:
    parts = [f' {k}="{_attr(v)}"' for k, v in attrs if v is not None]
    return f"<{tag}{''.join(parts)}{'/>' if empty else '>'}"
