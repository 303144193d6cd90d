"""Reminders on Telegram, JobQueue glue only: the sweep job, a paced sender, the buttons.

What is due, whether it may go and what came of it is decided by the transport-free planner
(``conversations/capabilities/reminder_planning.py``); /close, /extend and /quiet are the
lifecycle capability (``conversations/capabilities/lifecycle.py``). This module only runs
the schedule and talks to Telegram.

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

On PostgreSQL several bot processes sweep the same queue (issue #20): a claim is a lease
(``storage.reminder_queue.SEND_LEASE``), so a row one process claimed is no other's to
send, and a killed process's claimed rows go out again once their lease has run out.

Rate limits
-----------
Sends go through the bot's ``AIORateLimiter`` (which retries a ``RetryAfter`` after the
time Telegram asks for; on PostgreSQL its bot-wide limit is shared by every process,
``bot.sendrate``), and before that through :class:`Pacer`, which keeps at most
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
from datetime import datetime, timedelta
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
from conversations.capabilities.lifecycle import PairLifecycle
from conversations.capabilities.reminder_planning import (
    Delivery,
    Outcome,
    ReminderPlanner,
    SweepReport,
)
from conversations.catalogue import Texts, load_texts
from conversations.engine import Reply
from conversations.model import Flow
from conversations.reminder_rules import compose
from conversations.service import Service
from storage.db import utcnow
from storage.models import Participant
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
Clock = Callable[[], datetime]
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


def chat_key(person: Participant) -> int:
    """The pacer's key for a person's chat: their account (every membership of one account
    writes to the same Telegram chat), else the membership itself."""
    return person.account_id if person.account_id is not None else -person.id


# -- sending ---------------------------------------------------------------------------
class ReminderJobs:
    """The sweep job and the paced sender around a :class:`ReminderPlanner`."""

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
        self.planner = ReminderPlanner(store, texts, flows=flows, clock=clock, describe=describe)
        self.planner.wake = self._schedule_wake
        self.bot = bot
        self.sleep = sleep
        self.pacer = pacer or Pacer(sleep=sleep)
        self.send_tries = send_tries
        self.backoff = backoff
        self.plan_every = plan_every
        self.batch_limit = batch_limit
        self.totals = SweepReport()
        self.job_queue: JobQueue[Any] | None = None
        self._lock = asyncio.Lock()

    @property
    def clock(self) -> Clock:
        return self.planner.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.planner.clock = clock

    def attach(self, service: Service) -> None:
        """The planner hears about saved entries; lifecycle answers /close /extend /quiet."""
        service.install(self.planner)
        service.install(PairLifecycle(self.planner))

    async def start(self) -> None:
        await self.planner.start()

    async def press(self, telegram_user_id: int, data: str) -> tuple[str, bool]:
        return await self.planner.press(telegram_user_id, data)

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
            planner = self.planner
            planner.new_sweep()
            try:
                if planner.planned_at is None or now - planner.planned_at >= self.plan_every:
                    report.planned = await planner.plan(now)
                rows = await planner.repo.due(now, self.batch_limit)
                deliveries = await planner.select(rows, now, report)
                await self._dispatch(deliveries, report)
            finally:
                planner.end_sweep()
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

    async def _dispatch(self, deliveries: Sequence[Delivery], report: SweepReport) -> None:
        tasks: list[asyncio.Task[None]] = []
        # One chat per account: someone in several memberships has one delivery per
        # membership. Their later ones go after everyone's first, so the chat's one-per-
        # second limit has passed by then and never holds a send slot idle.
        seen: set[int] = set()
        first: list[Delivery] = []
        later: list[Delivery] = []
        for d in deliveries:
            key = chat_key(d.person)
            (later if key in seen else first).append(d)
            seen.add(key)
        try:
            for d in [*first, *later]:
                await self.pacer.acquire(chat_key(d.person))
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
                self.pacer.release(chat_key(person))

        try:
            claimed = await self.planner.repo.claim([r.id for r in d.rows], self.clock())
            rows = [r for r in d.rows if r.id in claimed]
            if not rows:
                return  # someone else (another sweep) got there first
            chat_id = await self.planner.store.participants.chat_id(person.id)
            if chat_id is None:
                await self.planner.repo.skip(claimed, "no_chat", self.clock())
                report.skipped += len(claimed)
                return
            prefix = await self.planner.prefix(person, rows[0])
            reply = compose(self.planner.texts, rows, person.role.value, d.settings,
                            prefix=prefix)
            outcome = await self._send(chat_id, reply, report)
            release()
            await self.planner.record(person, rows, outcome, d.settings, report)
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

    async def _schedule_wake(self) -> None:
        """A one-off job at the next due time, so a reminder is not up to a sweep late."""
        queue = self.job_queue
        if queue is None or not queue.scheduler.running:
            return
        nxt = await self.planner.repo.next_due()
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


# -- Telegram handlers -----------------------------------------------------------------
def _service(context: CallbackContext[Any, Any, Any, Any]) -> ReminderJobs | None:
    found = context.bot_data.get(REMINDERS_KEY)
    return found if isinstance(found, ReminderJobs) else None


async def on_any_update(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> None:
    """Runs before every other handler and never stops them."""
    user = update.effective_user
    service = _service(context)
    if user is None or user.is_bot or service is None:
        return
    try:
        await service.planner.seen(user.id)
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
) -> ReminderJobs:
    """Called from post_init, once the store and the service exist. Idempotent."""
    existing = app.bot_data.get(REMINDERS_KEY)
    if isinstance(existing, ReminderJobs):
        return existing
    store: Store = app.bot_data["store"]
    service: Service = app.bot_data["service"]
    reminders = ReminderJobs(store, app.bot, service.texts, flows=service.flows)
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

