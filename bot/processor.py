"""Concurrent across chats, strictly in order within one chat.

The flow engine keeps one place per person, so two updates from the same chat must not
race; updates from different people have nothing to share and run concurrently.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.throttle import FloodGate


class PerChatUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}
        # Set at start-up (bot.app): drops what a flooding chat or stranger sends over budget
        # before it waits for the chat's turn or costs a reply (bot.throttle).
        self.gate: FloodGate | None = None

    @staticmethod
    def _key(update: object) -> int:
        if isinstance(update, Update):
            if update.effective_chat is not None:
                return update.effective_chat.id
            if update.effective_user is not None:
                return update.effective_user.id
        return 0

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = self._key(update)
        if self.gate is not None and isinstance(update, Update):
            user = update.effective_user
            if not await self.gate.admit(user.id if user is not None else None, key):
                if inspect.iscoroutine(coroutine):
                    coroutine.close()  # never run: close it so nothing warns it was not awaited
                return
        await self.in_chat(key, lambda: coroutine)

    async def in_chat(self, key: int, work: Callable[[], Awaitable[Any]]) -> None:
        """Run work that is not an update (a paste's timer) in the chat's order too.

        ``work`` is called only once the chat's turn comes, so work cancelled while waiting
        leaves no coroutine behind that was never awaited.
        """
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                await work()
        finally:
            # Forget idle chats so the lock table does not grow with every person ever seen.
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
