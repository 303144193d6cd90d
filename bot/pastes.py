"""Long pastes, taken whole.

Telegram's apps send a paste longer than 4,096 characters as several messages, a second
or so apart. Answering each on its own would refuse the first part as too long and then
take the short tail as the whole answer. So a message long enough to be the first part of
a paste waits a moment for the rest; the parts are joined and handled as one text, to
which the usual length rules then apply.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telegram import Update

from conversations.service import MAX_MESSAGE

# The apps break a paste at the last space or line break before the limit, so a first
# part is a little under 4,096 characters; anything shorter is a message of its own.
PART_MIN = 3500
WINDOW = 2.0  # seconds to wait for the next part

Flush = Callable[[Update, str], Awaitable[None]]
# Runs work in the chat's turn (the update processor's per-chat order).
Serialise = Callable[[int, Callable[[], Awaitable[object]]], Awaitable[None]]


@dataclass
class _Paste:
    parts: list[str]
    update: Update  # the latest part's, for the reply and for redelivery checks
    timer: asyncio.Task[None] | None = None
    handle: Flush | None = None
    serialise: Serialise | None = None


def join(parts: list[str]) -> str:
    """A part cut at exactly the limit was cut inside a word; the others at a space that
    Telegram trimmed, which is put back."""
    out = parts[0]
    for previous, part in itertools.pairwise(parts):
        out += ("" if len(previous) >= MAX_MESSAGE else " ") + part
    return out


@dataclass
class Pastes:
    window: float = WINDOW
    _open: dict[int, _Paste] = field(default_factory=dict)

    def add(self, chat_id: int, update: Update, text: str) -> str | None:
        """The text to handle now (a message, or a finished paste), or None to wait."""
        paste = self._open.get(chat_id)
        if paste is None:
            if len(text) < PART_MIN:
                return text
            self._open[chat_id] = _Paste([text], update)
            return None
        paste.parts.append(text)
        paste.update = update
        if len(text) >= PART_MIN:
            return None  # a middle part: more may follow
        self._close(chat_id)
        return join(paste.parts)

    def wait(self, chat_id: int, flush: Flush, serialise: Serialise) -> None:
        """(Re)start the timer that handles the paste as it stands if no more parts come."""
        paste = self._open[chat_id]
        paste.handle, paste.serialise = flush, serialise
        if paste.timer is not None:
            paste.timer.cancel()

        async def later() -> None:
            await asyncio.sleep(self.window)
            await serialise(chat_id, lambda: self.flush(chat_id, flush))

        paste.timer = asyncio.get_running_loop().create_task(later())

    async def flush(self, chat_id: int, flush: Flush) -> None:
        """Handle an open paste now (its time is up, or the person did something else)."""
        paste = self._close(chat_id)
        if paste is not None:
            await flush(paste.update, join(paste.parts))

    def _close(self, chat_id: int) -> _Paste | None:
        paste = self._open.pop(chat_id, None)
        if paste is not None and paste.timer is not None and paste.timer is not _current():
            paste.timer.cancel()
        return paste

    async def expire(self, chat_id: int) -> None:
        """Act as if the wait were over: handle the chat's open paste now, in its turn."""
        paste = self._open.get(chat_id)
        if paste is None or paste.handle is None or paste.serialise is None:
            return
        handle = paste.handle
        await paste.serialise(chat_id, lambda: self.flush(chat_id, handle))

    def waiting(self, chat_id: int) -> bool:
        return chat_id in self._open

    async def expire_all(self) -> None:
        """On stopping: handle every open paste now, while replies can still be sent."""
        for chat_id in list(self._open):
            await self.expire(chat_id)
        for paste in list(self._open.values()):  # never got a timer: nothing to reply with
            if paste.timer is not None:
                paste.timer.cancel()
        self._open.clear()


def _current() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
