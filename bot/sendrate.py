"""Telegram's bot-wide limit (about 30 messages/s) shared by every process of one programme.

python-telegram-bot's ``AIORateLimiter`` keeps that limit per process. With several bot
processes on one PostgreSQL database (issue #20) :class:`SharedRateLimiter` keeps
everything else it does (the per-group limits, retrying a 429 after ``retry_after``, the
same rule of which requests count: those with a ``chat_id``) and takes the bot-wide part
from the database instead (``storage.coordination``: each message takes the next free
moment on the server's clock, ``1/rate`` apart across all processes). A 429 moves that
moment on for every process. On SQLite, or before the store is open, the process's own
limiter applies, as before.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

from bot.errors import retry_seconds

# The shared rate, as a share of Telegram's: slots 1/rate apart put at most rate + 1 sends
# in any second at our end; the rest is room for requests that reach Telegram closer
# together than they left.
SHARED_SHARE = 0.9


class Slots(Protocol):
    async def send_slot(self, name: str = "telegram", rate: float = 30.0) -> float: ...
    async def hold_sends(self, seconds: float, name: str = "telegram") -> None: ...


class _BotWide:
    """Stands in for AIORateLimiter's bot-wide limiter (an ``async with`` object)."""

    def __init__(self, rate: float, local: Any) -> None:
        self.rate = rate
        self.local = local
        self.slots: Slots | None = None

    async def __aenter__(self) -> None:
        if self.slots is None:
            if self.local is not None:
                await self.local.__aenter__()
            return
        wait = await self.slots.send_slot(rate=self.rate * SHARED_SHARE)
        if wait > 0:
            await asyncio.sleep(wait)

    async def __aexit__(self, typ: object, exc: BaseException | None, tb: object) -> None:
        if self.slots is not None and isinstance(exc, RetryAfter):
            await self.slots.hold_sends(retry_seconds(exc))


class SharedRateLimiter(AIORateLimiter):
    def __init__(self, overall_max_rate: float = 30, max_retries: int = 0) -> None:
        super().__init__(overall_max_rate=overall_max_rate, max_retries=max_retries)
        self.bot_wide: _BotWide | None = None
        if overall_max_rate:
            self.bot_wide = _BotWide(overall_max_rate, self._base_limiter)
            self._base_limiter = self.bot_wide  # type: ignore[assignment]

    def share(self, slots: Slots) -> None:
        """From now on the bot-wide limit is the processes' shared one."""
        if self.bot_wide is not None:
            self.bot_wide.slots = slots
