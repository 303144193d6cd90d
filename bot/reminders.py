"""Reminders on Telegram: the JobQueue sweep, a paced sender, snooze buttons, /close, /extend.

The schedule lives in the ``reminders`` table, never in the JobQueue: python-telegram-bot
does not persist jobs, so the queue only holds one repeating *sweep* (and a one-off wake-up
for the next due minute). Both have fixed ids and names with no personal data, so a restart
replaces them instead of piling up copies, and ``misfire_grace_time`` plus ``coalesce`` make
a late sweep (a blocked event loop, a suspended laptop) run once instead of being dropped.
At start-up the first sweep simply reads whatever is due, which is the "rebuild".

Delivery, and how close it gets to exactly once
-----------------------------------------------
Each message is recorded in three steps: (1) *claim*: ``attempts`` + 1 and ``claimed_at``
committed, immediately before the Bot API call; (2) ``sendMessage``; (3) the outcome
committed: ``sent``, ``skipped`` (blocked, rejected, no longer relevant) or pending again
with a later ``due_at`` (a passing failure). A restart before (1) sends the reminder once
(nothing lost); after (3) never again (nothing repeated). The window that remains is a
process crash while a request is in flight, between (1) and (3): Telegram has no
idempotency key for sendMessage, so nobody can know whether that message arrived. Such a
row is still pending with ``claimed_at`` set, the next sweep sends it again, and start-up
logs how many there were. That is at-least-once for the messages in flight at the instant
of a crash (at most one window's worth, about 30) and exactly-once for all others. A read
timeout (``TimedOut``) is the same ambiguity in a running process and is treated the same
way (retried). We prefer a rare duplicate nudge to a silently lost one.

Rate limits
-----------
Sends go through the bot's ``AIORateLimiter`` (which retries a ``RetryAfter`` after the
time Telegram asks for), and before that through :class:`Pacer`, which keeps at most
``overall`` messages in any rolling window and one per chat per second, counting requests
still in flight as inside the window. That spreads a batch due in the same minute so that
Telegram's limits are not hit in the first place; a ``RetryAfter`` that still comes back
pauses the pacer too. Network errors and 5xx answers are retried with backoff; a person
who blocked the bot (``Forbidden``) is marked unreachable and the batch carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time as _time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from telegram import Message, Update
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackContext,
    CallbackQueryHandler,
    JobQueue,
    TypeHandler,
)

from bot.errors import describe, retry_seconds
from bot.render import acknowledge, keyboard
from conversations.catalogue import Texts, load_flows, load_texts
from conversations.commands import Registry
from conversations.engine import Reply
from conversations.model import Flow
from conversations.reminders import (
    PROMPT_AFTER,
    QuietHours,
    ReminderSettings,
    Situation,
    compose,
    episode_events,
    episode_time,
    next_allowed,
    parse_callback,
    plan_pair,
    plan_waves,
    planned_end,
    skip_reason,
    snooze_until,
    when_words,
    zone,
)
from conversations.service import Response, Service
from conversations.validation import whole_number
from storage.db import utcnow
from storage.lifecycle import Lifecycle, PairFacts
from storage.models import Participant, Role, Scope
from storage.reminders import Kind, NewReminder, Reminder, ReminderStore
from storage.store import Store

log = logging.getLogger("mentorbot.reminders")

REMINDERS_KEY = "reminders"
SWEEP_JOB = "reminders-sweep"
WAKE_JOB = "reminders-wake"
# APScheduler 3 defaults to a 1 s grace time, after which a late run is dropped without a
# trace (python-telegram-bot #3642). An hour covers a long stall; coalescing turns any
# number of missed runs into one. max_instances=2 lets a tick arrive during a long fan-out
# and return at once (see sweep()) instead of APScheduler logging a skipped run.
JOB_KWARGS: dict[str, Any] = {
    "misfire_grace_time": 3600,
    "coalesce": True,
    "max_instances": 2,
    "replace_existing": True,
}
CHECKIN_FLOWS = ("baseline", "checkin")
# Kinds the planner owns: a pending one it no longer plans has been superseded.
PLANNED_KINDS = (Kind.QUIET_PAIR, Kind.SIX_MONTH, Kind.CHEMISTRY)

Clock = Callable[[], datetime]
# SQLite's integers go far beyond this; a number past it is a typing slip, not a pair.
MAX_PAIR_NUMBER = 10**9
Sleep = Callable[[float], Awaitable[None]]


# -- pacing ----------------------------------------------------------------------------
class Pacer:
    """At most ``overall`` sends per rolling ``window`` and one per chat per ``chat_window``.

    A send counts from the moment it is let through until ``window`` after it *finished*:
    Telegram sees a request somewhere between the two, so counting the whole span keeps the
    server's own rolling count at or under the limit however long requests take. ``margin``
    adds room for Telegram's clock not being ours. Sends are also spaced a little so a
    batch does not arrive as one burst.
    """

    def __init__(
        self,
        overall: int = 30,
        per_chat_per_second: float = 1.0,
        *,
        window: float = 1.0,
        margin: float = 0.05,
        monotonic: Callable[[], float] = _time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.capacity = max(1, overall)
        self.window = window + margin
        self.chat_window = 1.0 / per_chat_per_second + margin
        self.spacing = self.window / self.capacity * 0.8
        self.monotonic = monotonic
        self.sleep = sleep
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self._chats_in_flight: Counter[int] = Counter()
        self._chat_finished: dict[int, float] = {}
        self._last_start = float("-inf")
        self._hold_until = 0.0

    async def acquire(self, chat: int) -> None:
        while True:
            now = self.monotonic()
            while self._finished and self._finished[0] <= now - self.window:
                self._finished.popleft()
            waits = [self._hold_until - now, self._last_start + self.spacing - now]
            if self._in_flight + len(self._finished) >= self.capacity:
                # Full: room comes when the oldest finished send leaves the window, or
                # (everything still in flight) when one finishes.
                waits.append(self._finished[0] + self.window - now if self._finished else 0.005)
            if self._chats_in_flight[chat]:
                waits.append(0.005)
            elif chat in self._chat_finished:
                waits.append(self._chat_finished[chat] + self.chat_window - now)
            wait = max(waits)
            if wait <= 0:
                self._in_flight += 1
                self._chats_in_flight[chat] += 1
                self._last_start = now
                return
            await self.sleep(wait)

    def release(self, chat: int) -> None:
        now = self.monotonic()
        self._in_flight -= 1
        self._chats_in_flight[chat] -= 1
        if not self._chats_in_flight[chat]:
            del self._chats_in_flight[chat]
        self._finished.append(now)
        self._chat_finished[chat] = now
        if len(self._chat_finished) > 4096:  # forget chats whose second has long passed
            cutoff = now - self.chat_window
            self._chat_finished = {c: t for c, t in self._chat_finished.items() if t > cutoff}

    def hold(self, seconds: float) -> None:
        """Telegram asked us to wait: nothing new starts until then."""
        self._hold_until = max(self._hold_until, self.monotonic() + seconds)


# -- sending ---------------------------------------------------------------------------
class Outcome(StrEnum):
    SENT = "sent"
    BLOCKED = "blocked"  # Forbidden: the person blocked the bot or left Telegram
    REJECTED = "rejected"  # BadRequest: this message can never be delivered as it is
    FAILED = "failed"  # passing trouble that outlasted our retries; try again later


@dataclass
class SweepReport:
    planned: int = 0
    sent: int = 0
    deferred: int = 0
    skipped: int = 0
    blocked: int = 0
    failed: int = 0
    retry_after: int = 0
    busy: bool = False
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: SweepReport) -> None:
        for name in ("planned", "sent", "deferred", "skipped", "blocked", "failed", "retry_after"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reasons.update(other.reasons)


@dataclass(frozen=True)
class Delivery:
    person: Participant
    settings: ReminderSettings
    rows: tuple[Reminder, ...]


class ReminderService:
    """Plans, sends and answers reminders; transport details stay in the few bot calls."""

    def __init__(
        self,
        store: Store,
        bot: Any,
        texts: Texts | None = None,
        *,
        flows: dict[str, Flow] | None = None,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        pacer: Pacer | None = None,
        send_tries: int = 4,
        backoff: float = 0.5,
        plan_every: timedelta = timedelta(minutes=10),
        batch_limit: int = 10_000,
    ) -> None:
        self.store = store
        self.bot = bot
        self.texts = texts or load_texts()
        self.flows = flows or load_flows()
        self.clock = clock
        self.sleep = sleep
        self.pacer = pacer or Pacer(sleep=sleep)
        self.send_tries = send_tries
        self.backoff = backoff
        self.plan_every = plan_every
        self.batch_limit = batch_limit
        self.repo = ReminderStore(store)
        self.lifecycle = Lifecycle(store.db)
        self.totals = SweepReport()
        self.job_queue: JobQueue[Any] | None = None
        self._lock = asyncio.Lock()
        self._planned_at: datetime | None = None
        self._settings: dict[int, ReminderSettings] = {}
        self._warned: set[int] = set()
        # user_hmac -> participant id of people marked unreachable, so that "they wrote
        # to us again" costs nothing for everybody else.
        self._unreachable: dict[bytes, int] = {}

    # -- wiring ------------------------------------------------------------------------
    def attach(self, service: Service) -> None:
        service.install(self)

    def register(self, registry: Registry, service: Service) -> None:
        registry.command("close", self.cmd_close)
        registry.command("extend", self.cmd_extend)
        registry.command("quiet", self.cmd_quiet)
        registry.on_saved(self.on_saved)

    async def start(self) -> None:
        rows = await self.store.db.fetchall(
            "SELECT id, user_hmac FROM participants WHERE status='unreachable'"
        )
        self._unreachable = {bytes(r["user_hmac"]): int(r["id"]) for r in rows}
        interrupted = await self.repo.interrupted()
        if interrupted:
            log.warning(
                "%d reminder(s) were being sent when the bot last stopped; they will be sent "
                "again (delivery unknown)",
                interrupted,
            )

    async def settings_for(self, programme_id: int) -> ReminderSettings:
        cached = self._settings.get(programme_id)
        if cached is not None:
            return cached
        programme = await self.store.programmes.get(programme_id)
        try:
            settings = ReminderSettings.from_programme(programme.settings)
        except ValueError as exc:
            if programme_id not in self._warned:
                self._warned.add(programme_id)
                log.warning(
                    "programme %d: %s; using the default reminder settings", programme_id, exc
                )
            settings = ReminderSettings()
        self._settings[programme_id] = settings
        return settings

    async def quiet_for(self, person: Participant, settings: ReminderSettings) -> QuietHours:
        own = (await self.repo.quiet_hours([person.id])).get(person.id)
        return QuietHours.parse(f"{own[0]}-{own[1]}") if own else settings.quiet_hours

    # -- planning ----------------------------------------------------------------------
    async def plan(self, now: datetime | None = None, pair_ids: set[int] | None = None) -> int:
        """Schedule what follows from the pairs' facts; cancel what they no longer imply."""
        now = now or self.clock()
        await self.lifecycle.ensure_matched(now)
        facts = await self.lifecycle.facts(sorted(pair_ids) if pair_ids is not None else None)
        people = await self.store.participants.all()
        coordinators: dict[int, list[int]] = {}
        for p in people:
            if p.role is Role.COORDINATOR:
                coordinators.setdefault(p.programme_id, []).append(p.id)
        planned: list[NewReminder] = []
        for f in facts.values():
            settings = await self.settings_for(f.programme_id)
            planned += plan_pair(f, settings, coordinators.get(f.programme_id, []))
        members = None if pair_ids is None else {m for f in facts.values() for m in f.members}
        planned += await self._plan_waves(people, now, members)
        inserted = await self.repo.schedule_many(planned, now)
        keys = {n.key for n in planned}
        stale = [
            r.id
            for r in await self.repo.pending(PLANNED_KINDS)
            if (pair_ids is None or r.pair_id in pair_ids) and r.root_key not in keys
        ]
        await self.repo.cancel(stale, "superseded", now)
        if pair_ids is None:
            self._planned_at = now
        return inserted

    async def _plan_waves(
        self, people: Sequence[Participant], now: datetime, only: set[int] | None
    ) -> list[NewReminder]:
        latest: dict[int, Any] = {}
        for pair in await self.store.programmes.pairs():  # ordered by id: the last one wins
            for member in (pair.mentor_id, pair.mentee_id):
                if member is not None:
                    latest[member] = pair
        done = await self._waves_done()
        closed = await self._closed_at()
        out: list[NewReminder] = []
        for p in people:
            if p.role is Role.COORDINATOR or (only is not None and p.id not in only):
                continue
            flows = {f for f in CHECKIN_FLOWS if f in self.flows and p.role in self.flows[f].roles}
            pair = latest.get(p.id)
            start = _parse(pair.matched_at) if pair and pair.matched_at else _parse(p.created_at)
            out += plan_waves(
                p.id,
                pair.id if pair else None,
                start,
                closed.get(pair.id) if pair else None,
                done.get(p.id, set()),
                now,
                flows,
            )
        return out

    async def _waves_done(self) -> dict[int, set[str]]:
        rows = await self.store.db.fetchall(
            "SELECT DISTINCT participant_id, wave FROM entries "
            "WHERE status='complete' AND wave IS NOT NULL"
        )
        out: dict[int, set[str]] = {}
        for r in rows:
            out.setdefault(int(r[0]), set()).add(str(r[1]))
        return out

    async def _closed_at(self) -> dict[int, datetime]:
        rows = await self.store.db.fetchall(
            "SELECT id, closed_at FROM pairs WHERE closed_at IS NOT NULL"
        )
        return {int(r[0]): _parse(r[1]) for r in rows}

    # -- the sweep ---------------------------------------------------------------------
    async def tick(self, context: CallbackContext[Any, Any, Any, Any]) -> None:
        """The JobQueue callback. Failures are logged without personal data and the job lives."""
        try:
            await self.sweep()
        except Exception as exc:
            log.error("reminder sweep failed: %s", describe(exc))

    async def sweep(self) -> SweepReport:
        """Plan if it is time, then send everything due. Safe to call at any moment."""
        if self._lock.locked():
            return SweepReport(busy=True)  # a long fan-out is still running
        async with self._lock:
            report = SweepReport()
            now = self.clock()
            self._settings.clear()  # programme settings are re-read once per sweep
            if self._planned_at is None or now - self._planned_at >= self.plan_every:
                report.planned = await self.plan(now)
            rows = await self.repo.due(now, self.batch_limit)
            deliveries = await self._select(rows, now, report)
            await self._dispatch(deliveries, report)
            await self._schedule_wake()
            self.totals.add(report)
            if report.sent or report.skipped or report.deferred or report.failed:
                log.info(
                    "reminders: sent %d, deferred %d, skipped %d (blocked %d), failed %d",
                    report.sent,
                    report.deferred,
                    report.skipped,
                    report.blocked,
                    report.failed,
                )
            return report

    async def _select(
        self, rows: Sequence[Reminder], now: datetime, report: SweepReport
    ) -> list[Delivery]:
        """Decide, for each person with something due: send one message, wait, or drop it."""
        if not rows:
            return []
        by_person: dict[int, list[Reminder]] = {}
        for r in rows:
            by_person.setdefault(r.participant_id, []).append(r)
        ids = list(by_person)
        people = {p.id: p for p in await self.store.participants.all() if p.id in by_person}
        own_quiet = await self.repo.quiet_hours(ids)
        busy = await self.repo.busy_since(ids)
        consenting = await self.store.consent.consenting(Scope.PARTICIPATE, ids)
        recent = await self.repo.last_sent(ids, now - timedelta(days=1))
        pair_ids = {r.pair_id for r in rows if r.pair_id is not None}
        wave_people = {r.participant_id for r in rows if r.kind is Kind.WAVE}
        latest_pair: dict[int, int] = {}
        if wave_people:
            for pair in await self.store.programmes.pairs():
                for member in (pair.mentor_id, pair.mentee_id):
                    if member in wave_people:
                        latest_pair[member] = pair.id
            pair_ids |= set(latest_pair.values())
        facts = await self.lifecycle.facts(sorted(pair_ids))
        done = await self._waves_done() if wave_people else {}

        skips: dict[str, list[int]] = {}
        defers: dict[tuple[datetime, str], list[int]] = {}
        out: list[Delivery] = []
        for pid, mine in by_person.items():
            person = people.get(pid)
            if person is None:
                skips.setdefault("gone", []).extend(r.id for r in mine)
                continue
            settings = await self.settings_for(person.programme_id)
            if person.status == "paused":
                skips.setdefault("paused", []).extend(r.id for r in mine)
                continue
            if person.status == "unreachable" and not await self._may_probe(person, now, settings):
                skips.setdefault("unreachable", []).extend(r.id for r in mine)
                continue
            quiet = (
                QuietHours.parse(f"{own_quiet[pid][0]}-{own_quiet[pid][1]}")
                if pid in own_quiet
                else settings.quiet_hours
            )
            wait_until, why = next_allowed(now, person.timezone, quiet), "quiet_hours"
            if wait_until <= now and pid in recent and now - recent[pid] < settings.min_gap:
                # Never two reminders close together: the second waits its turn.
                wait_until, why = recent[pid] + settings.min_gap, "spacing"
            if wait_until <= now and pid in busy and busy[pid] > now - settings.busy_for:
                # Someone mid-conversation (joining, reflecting) is not interrupted.
                wait_until, why = busy[pid] + settings.busy_for, "busy"
            if wait_until > now:
                # Relevance is judged when they come due again, with the facts of then.
                defers.setdefault((wait_until, why), []).extend(r.id for r in mine)
                continue
            relevant = []
            for r in mine:
                wave_pair = facts.get(latest_pair.get(pid, -1))
                situation = Situation(
                    pair=wave_pair if r.kind is Kind.WAVE else facts.get(r.pair_id or -1),
                    wave_start=self._wave_start(person, wave_pair),
                    waves_done=frozenset(done.get(pid, set())),
                    reflected_since_due=(
                        r.kind is Kind.REFLECTION
                        and await self.repo.reflected_since(pid, r.created_at)
                    ),
                    consents=pid in consenting,
                )
                reason = skip_reason(r, situation, now, settings)
                if reason is None:
                    relevant.append(r)
                elif reason == "no_consent":
                    # Consent may still come (or come back): look again tomorrow.
                    defers.setdefault((now + timedelta(days=1), reason), []).append(r.id)
                else:
                    skips.setdefault(reason, []).append(r.id)
            if not relevant:
                continue
            if person.role is Role.COORDINATOR:
                # Coordinators get one digest for everything due, not one note per pair.
                group = [r for r in relevant if r.kind is Kind.CHEMISTRY] or relevant[:1]
            else:
                group = relevant[:1]  # one per person per sweep; the rest follow, spaced
            out.append(Delivery(person, settings, tuple(group)))
        for reason, skipped in skips.items():
            await self.repo.skip(skipped, reason, now)
            report.skipped += len(skipped)
            report.reasons[reason] += len(skipped)
        for (until, why), deferred in defers.items():
            await self.repo.defer(deferred, until, why, now)
            report.deferred += len(deferred)
            report.reasons[why] += len(deferred)
        return out

    @staticmethod
    def _wave_start(person: Participant, pair: PairFacts | None) -> datetime:
        if pair is not None and pair.matched_at is not None:
            return pair.matched_at
        return _parse(person.created_at)

    async def _may_probe(
        self, person: Participant, now: datetime, settings: ReminderSettings
    ) -> bool:
        """An unreachable person is tried again now and then: unblocking sends us nothing."""
        last = await self.repo.last_blocked(person.id)
        return last is None or now - last >= settings.unreachable_retry

    async def _dispatch(self, deliveries: Sequence[Delivery], report: SweepReport) -> None:
        tasks: list[asyncio.Task[None]] = []
        try:
            for d in deliveries:
                await self.pacer.acquire(d.person.id)
                tasks.append(asyncio.ensure_future(self._deliver(d, report)))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # shutting down: sends not yet answered stay claimed
                task.cancel()

    async def _deliver(self, d: Delivery, report: SweepReport) -> None:
        person = d.person
        released = False

        def release() -> None:
            # As soon as Telegram has answered: the pacer's window counts from then, and
            # the bookkeeping below need not hold up the next send.
            nonlocal released
            if not released:
                released = True
                self.pacer.release(person.id)

        try:
            claimed = await self.repo.claim([r.id for r in d.rows], self.clock())
            rows = [r for r in d.rows if r.id in claimed]
            if not rows:
                return  # someone else (another sweep) got there first
            chat_id = await self.store.participants.chat_id(person.id)
            if chat_id is None:
                await self.repo.skip(claimed, "no_chat", self.clock())
                report.skipped += len(claimed)
                return
            reply = compose(self.texts, rows, person.role.value, d.settings)
            outcome = await self._send(chat_id, reply, report)
            release()
            await self._record(person, rows, outcome, d.settings, report)
        except Exception as exc:
            # Whatever went wrong stays with this one person; the row keeps its claim and
            # the next sweep tries again.
            report.failed += 1
            log.warning("one reminder could not be handled: %s", describe(exc))
        finally:
            release()

    async def _send(self, chat_id: int, reply: Reply, report: SweepReport) -> Outcome:
        markup = keyboard(reply)
        delay = self.backoff
        for _ in range(self.send_tries):
            try:
                await self.bot.send_message(chat_id, reply.text, reply_markup=markup)
                return Outcome.SENT
            except Forbidden:
                return Outcome.BLOCKED
            except RetryAfter as exc:
                # The rate limiter already waited and retried; Telegram still says wait.
                wait = retry_seconds(exc)
                report.retry_after += 1
                self.pacer.hold(wait)
                await self.sleep(wait)
            except BadRequest:  # a NetworkError subclass, but retrying cannot help
                return Outcome.REJECTED
            except NetworkError:  # connection trouble, timeouts, 5xx answers
                await self.sleep(delay)
                delay *= 2
            except TelegramError:
                # InvalidToken and the like: not this message's fault, and not worth
                # dropping the reminder for. It goes back in the queue.
                return Outcome.FAILED
        return Outcome.FAILED

    async def _record(
        self,
        person: Participant,
        rows: Sequence[Reminder],
        outcome: Outcome,
        settings: ReminderSettings,
        report: SweepReport,
    ) -> None:
        ids = [r.id for r in rows]
        now = self.clock()
        if outcome is Outcome.SENT:
            await self.repo.mark_sent(ids, now)
            report.sent += 1
            if person.status == "unreachable":
                await self._reachable(person.id)
            for r in rows:
                if r.kind is Kind.SIX_MONTH and r.pair_id is not None:
                    months = r.detail.get("months")
                    await self.lifecycle.record(
                        r.pair_id,
                        "six_month_check",
                        at=now,
                        source="system",
                        now=now,
                        detail={"months": months},
                        key=f"check:{r.pair_id}:{months}",
                    )
        elif outcome is Outcome.BLOCKED:
            await self.repo.skip(ids, "blocked", now)
            await self._unreachable_now(person.id)
            report.skipped += len(ids)
            report.blocked += 1
        elif outcome is Outcome.REJECTED:
            await self.repo.skip(ids, "rejected", now)
            report.skipped += len(ids)
            log.warning("a reminder was rejected by the Bot API and dropped")
        else:
            attempts = max(r.attempts for r in rows) + 1
            if attempts >= settings.max_attempts:
                await self.repo.skip(ids, "failed", now)
                report.skipped += len(ids)
            else:
                retry = now + timedelta(minutes=min(360, 5 * 2 ** (attempts - 1)))
                await self.repo.defer(ids, retry, "retry", now)
            report.failed += 1

    async def _unreachable_now(self, participant_id: int) -> None:
        await self.store.participants.set_field(participant_id, "status", "unreachable")
        await self.store.audit.record("system", "marked_unreachable", participant_id)
        row = await self.store.db.fetchone(
            "SELECT user_hmac FROM participants WHERE id=?", (participant_id,)
        )
        if row is not None:
            self._unreachable[bytes(row[0])] = participant_id

    async def _reachable(self, participant_id: int) -> None:
        person = await self.store.participants.get(participant_id)
        if person is not None and person.status == "unreachable":
            # Through set_field, which also refreshes any cached copy of the row.
            await self.store.participants.set_field(participant_id, "status", "active")
            await self.store.audit.record("system", "reachable_again", participant_id)
        self._unreachable = {k: v for k, v in self._unreachable.items() if v != participant_id}

    async def _schedule_wake(self) -> None:
        """A one-off job at the next due time, so a reminder is not up to a sweep late."""
        queue = self.job_queue
        if queue is None or not queue.scheduler.running:
            return
        nxt = await self.repo.next_due()
        if nxt is None:
            return
        delay = (nxt - self.clock()).total_seconds()
        if delay <= 0 or delay > 3600:
            return  # already due (the next sweep has it) or far off (a later sweep will)
        queue.run_once(
            self.tick,
            when=timedelta(seconds=delay + 1),
            name=WAKE_JOB,
            job_kwargs={**JOB_KWARGS, "id": WAKE_JOB},
        )

    # -- events from the conversation --------------------------------------------------
    async def on_saved(
        self, me: Participant, entry_id: int, flow_id: str, answers: dict[str, Any]
    ) -> None:
        """A saved entry: the mentor's log feeds the lifecycle; a reflection answers a prompt.

        Never lets a failure here spoil the person's save, which has already happened.
        """
        try:
            await self._on_saved(me, entry_id, flow_id, answers)
        except Exception as exc:
            log.warning("reminder bookkeeping after a save failed: %s", describe(exc))

    async def _on_saved(
        self, me: Participant, entry_id: int, flow_id: str, answers: dict[str, Any]
    ) -> None:
        now = self.clock()
        if flow_id in ("grow", "oskar"):
            await self.repo.cancel_where(
                now, "done", participant_id=me.id, kinds=(Kind.REFLECTION,)
            )
            return
        if flow_id != "episode_log":
            return
        entry = await self.store.entries.get(entry_id, me.id)
        if entry is None or entry.pair_id is None:
            return  # an episode outside a matched pair (informal mentoring) has no lifecycle
        at = episode_time(answers, me.timezone, now)
        events = episode_events(answers)
        await self.lifecycle.replace_for_entry(
            entry_id,
            entry.pair_id,
            me.id,
            [(e, at) for e in events],
            source="episode_log",
            now=now,
        )
        pair = await self.store.programmes.pair(entry.pair_id)
        settings = await self.settings_for(me.programme_id)
        key = f"reflection:{entry_id}"
        if (
            pair is not None
            and pair.mentee_id is not None
            and answers.get("kind") in PROMPT_AFTER
            and now - at <= settings.reflection_max_age
        ):
            await self.repo.schedule(
                NewReminder(
                    Kind.REFLECTION,
                    pair.mentee_id,
                    pair.id,
                    now + settings.reflection_delay,
                    key,
                ),
                now,
            )
        else:  # an edit turned the session into something else
            await self.repo.cancel_where(now, "superseded", key=key)
        await self._pair_changed(entry.pair_id, now)

    async def _pair_changed(self, pair_id: int, now: datetime) -> None:
        facts = (await self.lifecycle.facts([pair_id])).get(pair_id)
        if facts is not None and facts.closed:
            # A reflection prompt stays: the last session is worth reflecting on too.
            await self.repo.cancel_where(now, "pair_closed", pair_id=pair_id, kinds=PLANNED_KINDS)
        await self.plan(now, {pair_id})
        await self._schedule_wake()

    # -- coordinator commands ----------------------------------------------------------
    async def _coordinator_pair(
        self, me: Participant, resp: Response, args: str, usage: str, **extra: object
    ) -> tuple[PairFacts | None, list[str]]:
        parts = args.split()
        number = whole_number(parts[0].lstrip("#"), 1, MAX_PAIR_NUMBER) if parts else None
        if number is None:
            resp.say(self.texts.say(usage, pairs=await self._open_pairs(me), **extra))
            return None, parts
        facts = (await self.lifecycle.facts([number])).get(number)
        if facts is None or facts.programme_id != me.programme_id:
            # The same answer for "no such pair" and "another programme's pair".
            resp.say(self.texts.say("rem_pair_unknown", pair=number))
            return None, parts
        if facts.matched_at is None:
            resp.say(self.texts.say("rem_pair_unmatched", pair=number))
            return None, parts
        if facts.closed:
            resp.say(self.texts.say("rem_pair_already_closed", pair=number))
            return None, parts
        return facts, parts

    async def _open_pairs(self, me: Participant) -> str:
        await self.lifecycle.ensure_matched(self.clock())
        numbers = [
            f.pair_id
            for f in (await self.lifecycle.facts()).values()
            if f.programme_id == me.programme_id and f.matched_at is not None and not f.closed
        ]
        if not numbers:
            return self.texts.say("rem_no_open_pairs")
        return self.texts.say("rem_open_pairs", pairs=", ".join(str(n) for n in numbers[:60]))

    async def cmd_close(self, me: Participant, resp: Response, args: str) -> Response:
        facts, parts = await self._coordinator_pair(me, resp, args, "rem_close_usage")
        if facts is None:
            return resp
        rematch = len(parts) > 1 and parts[1].lower().replace("-", "") in ("rematch", "nofit")
        event = "rematched" if rematch else "closed"
        now = self.clock()
        await self.lifecycle.record(
            facts.pair_id,
            event,
            at=now,
            source="coordinator",
            now=now,
            detail={"by": "coordinator"},
        )
        await self.store.audit.record("coordinator", f"pair_{event}", me.id, pair=facts.pair_id)
        await self._pair_changed(facts.pair_id, now)
        resp.changed = True
        return resp.say(self.texts.say(f"rem_{event}", pair=facts.pair_id))

    async def cmd_extend(self, me: Participant, resp: Response, args: str) -> Response:
        settings = await self.settings_for(me.programme_id)
        facts, parts = await self._coordinator_pair(
            me, resp, args, "rem_extend_usage", months=settings.extend_months
        )
        if facts is None:
            return resp
        months = settings.extend_months
        if len(parts) > 1:
            typed = whole_number(parts[1], 1, 12)
            if typed is None:
                return resp.say(self.texts.say("rem_extend_usage", months=months, pairs=""))
            months = typed
        now = self.clock()
        await self.lifecycle.record(
            facts.pair_id,
            "extended",
            at=now,
            source="coordinator",
            now=now,
            detail={"months": months},
        )
        await self.store.audit.record("coordinator", "pair_extended", me.id, pair=facts.pair_id)
        await self._pair_changed(facts.pair_id, now)
        updated = (await self.lifecycle.facts([facts.pair_id]))[facts.pair_id]
        end = planned_end(updated, settings)
        assert end is not None
        resp.changed = True
        return resp.say(
            self.texts.say(
                "rem_extended",
                pair=facts.pair_id,
                months=months,
                date=end.astimezone(zone(me.timezone)).strftime("%d %b %Y"),
            )
        )

    async def cmd_quiet(self, me: Participant, resp: Response, args: str) -> Response:
        settings = await self.settings_for(me.programme_id)
        tz = me.timezone
        word = args.strip().lower()
        if not word:
            quiet = await self.quiet_for(me, settings)
            if quiet.off:
                return resp.say(self.texts.say("rem_quiet_none", tz=tz))
            start, end = quiet.strings()
            return resp.say(self.texts.say("rem_quiet_show", start=start, end=end, tz=tz))
        now = self.clock()
        if word == "default":
            await self.repo.clear_quiet_hours(me.id)
            start, end = settings.quiet_hours.strings()
            resp.changed = True
            return resp.say(self.texts.say("rem_quiet_default", start=start, end=end, tz=tz))
        try:
            quiet = QuietHours.parse(word)
        except ValueError:
            return resp.say(self.texts.say("rem_quiet_bad"))
        start, end = quiet.strings()
        await self.repo.set_quiet_hours(me.id, start, end, now)
        resp.changed = True
        if quiet.off:
            return resp.say(self.texts.say("rem_quiet_off", tz=tz))
        return resp.say(self.texts.say("rem_quiet_set", start=start, end=end, tz=tz))

    # -- buttons -----------------------------------------------------------------------
    async def press(self, telegram_user_id: int, data: str) -> tuple[str, bool]:
        """A snooze or check answer; (what to tell the person, whether anything changed).

        Anything stale or not theirs gets the same polite answer and changes nothing.
        """
        stale = (self.texts.say("rem_button_stale"), False)
        parsed = parse_callback(data)
        if parsed is None:
            return stale
        action, reminder_id, arg = parsed
        me = await self.store.participants.by_user(telegram_user_id)
        row = await self.repo.get(reminder_id)
        now = self.clock()
        if (
            me is None
            or row is None
            or row.participant_id != me.id
            or row.status != "sent"
            or row.acted is not None
        ):
            return stale
        settings = await self.settings_for(me.programme_id)
        if row.sent_at is not None and now - row.sent_at > settings.button_life:
            return stale
        if action == "z":
            if row.snoozes >= settings.max_snoozes or row.kind is Kind.CHEMISTRY:
                return stale
            until = snooze_until(arg, now, me.timezone, await self.quiet_for(me, settings))
            if await self.repo.snooze(row.id, me.id, until, now) is None:
                return stale
            await self._schedule_wake()
            return self.texts.say(
                "rem_snoozed", when=when_words(self.texts, until, now, me.timezone)
            ), True
        if row.kind is not Kind.SIX_MONTH or row.pair_id is None:
            return stale
        facts = (await self.lifecycle.facts([row.pair_id])).get(row.pair_id)
        if facts is None or not await self.repo.act(
            row.id, me.id, "still" if arg == "s" else "finished", now
        ):
            return stale
        if facts.closed:
            return self.texts.say("rem_answer_already_closed"), True
        role = me.role.value
        if arg == "s":
            await self.lifecycle.record(
                row.pair_id,
                "still_meeting",
                at=now,
                source="answer",
                now=now,
                participant_id=me.id,
                detail={"by": role},
            )
            return self.texts.say("rem_answer_still"), True
        # A pair either member says has finished is closed: the six-month check asks
        # exactly that, and the closing check-in then goes to both.
        await self.lifecycle.record(
            row.pair_id, "closed", at=now, source="answer", now=now, detail={"by": role}
        )
        await self._pair_changed(row.pair_id, now)
        return self.texts.say("rem_answer_finished"), True

    async def seen(self, telegram_user_id: int) -> None:
        """Someone wrote or tapped: if they were unreachable, they are back."""
        if not self._unreachable:
            return
        pid = self._unreachable.get(self.store.participants.user_key(telegram_user_id))
        if pid is not None:
            await self._reachable(pid)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- Telegram handlers -----------------------------------------------------------------
def _service(context: CallbackContext[Any, Any, Any, Any]) -> ReminderService | None:
    found = context.bot_data.get(REMINDERS_KEY)
    return found if isinstance(found, ReminderService) else None


async def on_any_update(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> None:
    """Runs before every other handler and never stops them."""
    user = update.effective_user
    service = _service(context)
    if user is None or user.is_bot or service is None:
        return
    try:
        await service.seen(user.id)
    except Exception as exc:  # bookkeeping must never cost anyone their reply
        log.warning("could not mark a person reachable again: %s", describe(exc))


async def on_reminder_button(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> None:
    """Snooze and six-month answers. Handled here only: the generic button handler would
    take an ``r:`` press for a stale flow button."""
    query = update.callback_query
    if query is None or not (query.data or "").startswith("r:"):
        # The pattern lets a press without data through (game buttons have none); the
        # generic handler answers it.
        return
    service = _service(context)
    user = update.effective_user
    if user is not None and service is not None:
        try:
            text, changed = await service.press(user.id, query.data or "")
            if not await acknowledge(query, text) and text and update.effective_chat:
                # The press counted, but its answer expired: say it in the chat instead.
                await update.effective_chat.send_message(text)
            if changed and isinstance(query.message, Message):
                with contextlib.suppress(BadRequest):  # too old to edit: the press counted
                    await query.message.edit_reply_markup(reply_markup=None)
        except Exception as exc:
            log.warning("a reminder button failed: %s", describe(exc))
            with contextlib.suppress(TelegramError):
                await query.answer(load_texts().say("error"))
    raise ApplicationHandlerStop


async def install(
    app: Application[Any, Any, Any, Any, Any, Any], *, interval: float = 60.0
) -> ReminderService:
    """Called from post_init, once the store and the service exist. Idempotent."""
    existing = app.bot_data.get(REMINDERS_KEY)
    if isinstance(existing, ReminderService):
        return existing
    store: Store = app.bot_data["store"]
    service: Service = app.bot_data["service"]
    reminders = ReminderService(store, app.bot, service.texts, flows=service.flows)
    reminders.attach(service)
    await reminders.start()
    app.bot_data[REMINDERS_KEY] = reminders
    # Before the generic handlers: "back again" sees every update first, and reminder
    # buttons are taken before the catch-all button handler could call them stale.
    app.add_handler(TypeHandler(Update, on_any_update), group=-2)
    app.add_handler(CallbackQueryHandler(on_reminder_button, pattern=r"^r:"), group=-1)
    if app.job_queue is None:
        log.warning("no JobQueue (install python-telegram-bot[job-queue]): reminders are off")
        return reminders
    reminders.job_queue = app.job_queue
    app.job_queue.run_repeating(
        reminders.tick,
        interval=timedelta(seconds=interval),
        first=timedelta(seconds=1),
        name=SWEEP_JOB,
        job_kwargs={**JOB_KWARGS, "id": SWEEP_JOB},
    )
    return reminders
