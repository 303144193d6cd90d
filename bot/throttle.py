"""Flood control: per chat, and tighter for strangers, so members keep their reply times.

Every reply goes through Telegram's bot-wide limit (about 30 messages/s), so 60 unknown
accounts sending 10 messages each, each answered "you have not joined", put 600 replies in
front of every member's. The gate runs before an update is handled and drops what is over
budget (nothing is queued for later):

- **every chat** has a bucket of ``chat_burst`` updates refilled at ``chat_rate`` a second
  (generous: a member typing, tapping and pasting never meets it). A member who does meets
  one "slow down" reply per ``notice_every`` seconds, then silence until the bucket refills;
- **strangers** (no membership: the Telegram account is in no programme) also have a small
  bucket of their own per chat (``stranger_burst``, refilled at ``stranger_rate``), and all
  strangers together share one more (``strangers_burst``, ``strangers_rate``), so any number
  of unknown accounts together cost members at most about one reply a second. A stranger
  with a real invite link who is dropped in a flood is answered when they try again.

Only counts and monotonic times are kept, keyed by chat id, in memory; idle buckets are
forgotten. Nothing is logged per person.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

STRANGER_MEMORY = 5.0  # seconds a dropped stranger is remembered as one


@dataclass
class Bucket:
    capacity: float
    rate: float  # tokens a second
    tokens: float
    last: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def full_at(self, now: float) -> float:
        return self.last + (self.capacity - self.tokens) / self.rate if self.rate else now


@dataclass(frozen=True)
class Limits:
    chat_burst: float = 60
    chat_rate: float = 5.0
    stranger_burst: float = 5
    stranger_rate: float = 1 / 10
    strangers_burst: float = 10
    strangers_rate: float = 1.0
    notice_every: float = 60.0


class FloodGate:
    def __init__(
        self,
        is_member: Callable[[int], Awaitable[bool]],
        notify: Callable[[int], Awaitable[None]] | None = None,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.is_member = is_member
        self.notify = notify
        self.limits = limits or Limits()
        self.clock = clock
        self._chats: dict[int, Bucket] = {}
        self._strangers: dict[int, Bucket] = {}
        self._noticed: dict[int, float] = {}
        # Strangers whose last update was dropped, until when: a dropped update cannot make
        # anyone a member, so their next ones are judged without a database lookup (a flood
        # costs members no database time). Admitting a stranger forgets them (a /start may
        # make them a member).
        self._known_strangers: dict[int, float] = {}
        now = clock()
        lim = self.limits
        self._all_strangers = Bucket(lim.strangers_burst, lim.strangers_rate,
                                     lim.strangers_burst, now)
        self._last_sweep = now
        self.dropped_members = 0
        self.dropped_strangers = 0

    def _bucket(self, table: dict[int, Bucket], key: int, burst: float, rate: float,
                now: float) -> Bucket:
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = Bucket(burst, rate, burst, now)
        return bucket

    async def _member(self, user_id: int | None, now: float) -> bool:
        if user_id is None:
            return False
        if self._known_strangers.get(user_id, 0.0) > now:
            return False
        return await self.is_member(user_id)

    async def admit(self, user_id: int | None, chat_id: int) -> bool:
        """True if the update may be handled; False to drop it."""
        now = self.clock()
        self._sweep(now)
        lim = self.limits
        member = await self._member(user_id, now)
        if not self._bucket(self._chats, chat_id, lim.chat_burst, lim.chat_rate, now).take(now):
            if member:
                self.dropped_members += 1
                await self._notice(chat_id, now)
            else:
                self._drop_stranger(user_id, now)
            return False
        if member:
            return True
        # A stranger: its own small bucket first, so one noisy account cannot use up the
        # shared one that other newcomers (with real invite links) need.
        own = self._bucket(self._strangers, chat_id, lim.stranger_burst, lim.stranger_rate, now)
        if own.take(now) and self._all_strangers.take(now):
            if user_id is not None:
                self._known_strangers.pop(user_id, None)
            return True
        self._drop_stranger(user_id, now)
        return False

    def _drop_stranger(self, user_id: int | None, now: float) -> None:
        self.dropped_strangers += 1
        if user_id is not None:
            self._known_strangers[user_id] = now + STRANGER_MEMORY

    async def _notice(self, chat_id: int, now: float) -> None:
        if self.notify is None:
            return
        last = self._noticed.get(chat_id)
        if last is not None and now - last < self.limits.notice_every:
            return
        self._noticed[chat_id] = now
        await self.notify(chat_id)

    def _sweep(self, now: float) -> None:
        # Forget buckets that have refilled: they hold nothing a new bucket would not.
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        for table in (self._chats, self._strangers):
            for key in [k for k, b in table.items() if b.full_at(now) <= now]:
                del table[key]
        for key in [k for k, t in self._noticed.items() if now - t >= self.limits.notice_every]:
            del self._noticed[key]
        for key in [k for k, t in self._known_strangers.items() if t <= now]:
            del self._known_strangers[key]
