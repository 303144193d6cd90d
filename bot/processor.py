"""Concurrent across chats, strictly in order within one chat.

The flow engine keeps one place per person, so two updates from the same chat must not
race; updates from different people have nothing to share and run concurrently.

Within the process an asyncio lock per chat gives the order. On PostgreSQL several
processes may serve one programme (issue #20): there ``shared`` (storage.coordination) also
records each update's arrival (a copy another live process holds is dropped) and gives a
chat's turn across processes, oldest update first. A turn that is not free is waited for
without holding the chat's local lock, so an older update of the same chat in this process
can take it meanwhile. The key is a keyed hash of the chat id (``turn_key``), never the id.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.throttle import FloodGate

log = logging.getLogger("mentorbot.processor")
TURN_WAIT_FIRST, TURN_WAIT_MAX = 0.002, 0.05  # seconds between tries for a busy shared turn


class Shared(Protocol):
    """storage.coordination's PgCoordination, as far as the processor uses it."""

    async def arrive(self, chat_key: int, update_id: int) -> bool: ...
    async def record(self, chat_key: int, update_id: int, update: dict[str, Any]) -> bool: ...
    async def adopt(self) -> list[tuple[int, dict[str, Any]]]: ...
    async def drop(self, update_id: int) -> None: ...
    async def try_turn(self, chat_key: int, update_id: int | None = None) -> bool: ...
    async def end_turn(self, chat_key: int, update_id: int | None = None) -> None: ...


class PerChatUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}
        # Set at start-up (bot.app): drops what a flooding chat or stranger sends over budget
        # before it waits for the chat's turn or costs a reply (bot.throttle).
        self.gate: FloodGate | None = None
        # Set at start-up on PostgreSQL (bot.app): the turn across processes, and the
        # keyed hash that names a chat there.
        self.shared: Shared | None = None
        self.turn_key: Callable[[int], int] | None = None
        # Updates whose arrival the webhook recorded before acknowledging them (record),
        # or that this process adopted from a dead one: already arrived, theirs to handle.
        self.recorded: set[int] = set()
        # Updates the flood gate has already let in (record asks it first, so a flood
        # costs no database write)
        self.admitted: set[int] = set()

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
            if update.update_id in self.admitted:
                self.admitted.discard(update.update_id)
            elif not await self._admit(update):
                if inspect.iscoroutine(coroutine):
                    coroutine.close()  # never run: close it so nothing warns it was not awaited
                if self.shared is not None and update.update_id in self.recorded:
                    self.recorded.discard(update.update_id)
                    await self._forget(update.update_id)
                return
        update_id = update.update_id if isinstance(update, Update) else None
        if update_id is not None and update_id in self.recorded:
            self.recorded.discard(update_id)  # its arrival is recorded already
        elif self.shared is not None and update_id is not None and not await self._arrive(
                key, update_id):
            if inspect.iscoroutine(coroutine):
                coroutine.close()  # another process has this very update
            return
        await self.in_chat(key, lambda: coroutine, update_id)

    async def record(self, update: Update, data: dict[str, Any]) -> bool:
        """Behind the webhook, before the update is acknowledged: its arrival and the update
        itself recorded in the database (storage.coordination), so that a process that dies
        before handling it leaves it for another. True to handle it here; False if another
        live process holds it. A failure is raised: the update is then not acknowledged,
        and Telegram sends it again."""
        if self.gate is not None:
            if not await self._admit(update):
                return False  # over budget: dropped before it costs a database write
            self.admitted.add(update.update_id)
        if self.shared is None or self.turn_key is None:
            return True
        try:
            mine = await self.shared.record(self.turn_key(self._key(update)), update.update_id,
                                            data)
        except BaseException:
            self.admitted.discard(update.update_id)
            raise
        if mine:
            self.recorded.add(update.update_id)
        else:
            self.admitted.discard(update.update_id)
        return mine

    async def _admit(self, update: Update) -> bool:
        assert self.gate is not None
        user = update.effective_user
        return await self.gate.admit(user.id if user is not None else None, self._key(update))

    async def adopt(self) -> list[tuple[int, dict[str, Any]]]:
        """Recorded updates of processes that died before handling them, now this one's,
        oldest first (storage.coordination)."""
        if self.shared is None:
            return []
        found = await self.shared.adopt()
        self.recorded.update(uid for uid, _ in found)
        self.admitted.update(uid for uid, _ in found)  # the dead process's gate let them in
        return found

    async def _forget(self, update_id: int) -> None:
        assert self.shared is not None
        try:
            await self.shared.drop(update_id)
        except Exception as exc:  # its arrival stops holding the chat after the lease
            log.warning("dropped update not forgotten: %s", type(exc).__name__)

    async def _arrive(self, key: int, update_id: int) -> bool:
        assert self.shared is not None and self.turn_key is not None
        try:
            return await self.shared.arrive(self.turn_key(key), update_id)
        except Exception as exc:  # the update is handled, in this process's order only
            log.warning("update arrival not shared: %s", type(exc).__name__)
            return True

    async def in_chat(self, key: int, work: Callable[[], Awaitable[Any]],
                      update_id: int | None = None) -> None:
        """Run work that is not an update (a paste's timer) in the chat's order too.

        ``work`` is called only once the chat's turn comes, so work cancelled while waiting
        leaves no coroutine behind that was never awaited.
        """
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            if self.shared is None or self.turn_key is None:
                async with lock:
                    await work()
                return
            shared, turn = self.shared, self.turn_key(key)
            wait = TURN_WAIT_FIRST
            while True:
                async with lock:
                    try:
                        mine = await shared.try_turn(turn, update_id)
                    except Exception as exc:
                        log.warning("chat turn not shared: %s", type(exc).__name__)
                        await work()
                        if update_id is not None:  # handled: no one is to adopt it
                            await self._forget(update_id)
                        return
                    if mine:
                        try:
                            await work()
                        finally:
                            await shared.end_turn(turn, update_id)
                        return
                await asyncio.sleep(wait)
                wait = min(TURN_WAIT_MAX, wait * 2)
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
