"""Reading the bot's inline buttons back from the Bot API stand-in's sent messages, as the
benchmarks' simulated people do to press "Save" at the end of a reflection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def last_button(messages: Iterable[Mapping[str, Any]], *labels: str) -> str | None:
    """The callback data of the newest message's button labelled one of ``labels`` (the
    messages oldest first, as the stand-in lists them); None when no message has one."""
    for message in reversed(list(messages)):
        found = None
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if button["text"] in labels:
                    found = button["callback_data"]
        if found:
            return str(found)
    return None
