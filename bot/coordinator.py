"""Coordinator tools in the chat: /summary now, and a weekly digest at a time they choose.

The digest schedule lives in a small table of its own (``coordinator_digests``), never only
in the JobQueue: python-telegram-bot does not persist jobs, so ``install`` re-creates one
``run_daily`` job per stored schedule at start-up. Job names carry the schedule row's id,
never a person's id, name or chat. On PostgreSQL, where another process may change a
schedule, each process makes its jobs match the table again every ``DIGEST_SYNC`` seconds,
and a job that fires reads its schedule first (a stopped or moved one sends nothing).

The figures come from :mod:`reports.coordinator`, which applies the consent rule,
small-cell suppression and the disclosure rule across releases; nothing here adds figures
of its own.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telegram import (
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackContext,
    CallbackQueryHandler,
)

from bot.programme_admin import ProgrammeAdmin
from bot.render import acknowledge, commands_for, keyboard, split_text
from conversations.catalogue import Texts
from conversations.commands import Registry
from conversations.service import Response, Service
from conversations.validation import whole_number
from reports.coordinator import release_summary, render_text
from storage.coordination import CLAIM_LEASE
from storage.db import utcnow
from storage.models import Participant, Role
from storage.store import Held, Store

log = logging.getLogger("mentorbot.coordinator")

DIGEST_KEY = "coordinator_digests"
JOB_PREFIX = "coordinator-digest-"
JOIN_PREFIX = "j:"  # join approval buttons: j:<participant number>:y or :n
# python-telegram-bot's run_daily counts days from Sunday = 0 (as cron does)
WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
DIGEST_SYNC = 60.0  # seconds between a process's reads of the schedules (PostgreSQL)
SYNC_JOB = "digest-schedules-sync"
JOB_KWARGS: dict[str, Any] = {"misfire_grace_time": 3600, "coalesce": True,
                              "replace_existing": True}

def parse_schedule(args: str) -> tuple[int, time] | None:
    """``"mon 08:30"`` -> (1, 08:30); None when it cannot be read."""
    parts = args.lower().split()
    if len(parts) != 2 or parts[0][:3] not in WEEKDAYS:
        return None
    day = WEEKDAYS[parts[0][:3]]
    hh, _, mm = parts[1].partition(":")
    hour, minute = whole_number(hh, 0, 23), whole_number(mm, 0, 59)
    if hour is None or minute is None or len(mm) != 2:
        return None
    return day, time(hour, minute)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/London")


class CoordinatorTools:
    def __init__(self, app: Application[Any, Any, Any, Any, Any, Any], store: Store,
                 texts: Texts) -> None:
        self.app = app
        self.store = store
        self.texts = texts
        # what each digest job was made from (schedule id -> participant, day, HH:MM, zone):
        # sync compares it with the database's
        self._jobs: dict[int, tuple[int, int, str, str]] = {}

    def attach(self, service: Service) -> None:
        service.install(self)

    def register(self, registry: Registry, service: Service) -> None:
        registry.command("summary", self.cmd_summary)
        registry.command("digest", self.cmd_digest)
        registry.on_held(self.ask_coordinators)
        registry.on_note(self.tell_coordinators)
        # pairs, invites, erasure on request and settings (bot/programme_admin.py)
        ProgrammeAdmin(lambda code: invite_link(self.app, code)).register(registry, service)
        self.service = service

    async def tell_coordinators(self, programme_id: int, text: str) -> None:
        """A line for every coordinator of the programme (numbers and roles, no names)."""
        for person in await self.store.participants.all(programme_id):
            if person.role is not Role.COORDINATOR:
                continue
            chat_id = await self.store.participants.chat_id(person.id)
            if chat_id is not None:
                await self._send(chat_id, text)

    # -- joins held for approval (programme setting "join_approval") -------------------
    async def ask_coordinators(self, held: Held) -> None:
        """Ask every coordinator of the programme; they see the pair number and role only."""
        text = self.texts.say("coord_join_request", role=held.role.value,
                              pair=held.pair_id or "-")
        data = f"{JOIN_PREFIX}{held.participant_id}"
        markup = InlineKeyboardMarkup([[
            InlineKeyboardButton("Let them in", callback_data=f"{data}:y"),
            InlineKeyboardButton("Turn away", callback_data=f"{data}:n"),
        ]])
        for person in await self.store.participants.all():
            if person.role is not Role.COORDINATOR or person.programme_id != held.programme_id:
                continue
            chat_id = await self.store.participants.chat_id(person.id)
            if chat_id is None:
                continue
            try:
                await self.app.bot.send_message(chat_id, text, reply_markup=markup)
            except TelegramError as exc:
                log.warning("join request not delivered: %s", type(exc).__name__)

    async def on_join_button(self, update: Update,
                             context: CallbackContext[Any, Any, Any, Any]) -> None:
        query = update.callback_query
        if query is None or update.effective_user is None:
            raise ApplicationHandlerStop
        _, _, rest = (query.data or "").partition(JOIN_PREFIX)
        pid_text, _, verdict = rest.partition(":")
        target = int(pid_text) if pid_text.isascii() and pid_text.isdigit() else None
        me = await self.store.participants.by_user(update.effective_user.id)
        held = await self.store.held(target) if target is not None else None
        if me is not None and held is not None and (
                me.role is not Role.COORDINATOR or me.programme_id != held.programme_id):
            # answered as the lead of the held person's programme, whichever membership
            # is in use
            me = next((m for m in await self.store.participants.memberships(me)
                       if m.role is Role.COORDINATOR and m.programme_id == held.programme_id),
                      me)
        if (me is None or me.role is not Role.COORDINATOR or held is None
                or held.programme_id != me.programme_id or verdict not in ("y", "n")):
            # decided already, someone else's programme, or forged: nothing changes
            await acknowledge(query, self.texts.say("coord_join_decided"))
            raise ApplicationHandlerStop
        await acknowledge(query)
        chat_id = await self.store.participants.chat_id(held.participant_id)
        if verdict == "y":
            done, complete = await self.store.approve(held.participant_id)
            outcome = "coord_join_approved" if done else "coord_join_decided"
            if done and chat_id is not None:
                await self._tell_admitted(held.participant_id, chat_id, complete)
        else:
            done = await self.store.refuse(held.participant_id)
            outcome = "coord_join_refused" if done else "coord_join_decided"
            if done and chat_id is not None:
                await self._send(chat_id, self.texts.say("join_refused"))
        if isinstance(query.message, Message):
            with contextlib.suppress(BadRequest):
                await query.message.edit_text(self.texts.say(
                    outcome, role=held.role.value, pair=held.pair_id or "-"))
        raise ApplicationHandlerStop

    async def _tell_admitted(self, participant_id: int, chat_id: int, complete: bool) -> None:
        person = await self.store.participants.get(participant_id)
        if person is None:
            return
        # its welcome and consent questions come next, so it is the membership in use now
        # (a held join of someone already in another programme left that one in use)
        person = await self.store.participants.use(person)
        name = await self.store.participants.name(participant_id)
        resp = await self.service.welcome(person, name, complete)
        await self._send(chat_id, self.texts.say("join_approved"))
        for reply in resp.replies:
            parts = split_text(reply.text) if reply.text else []
            for n, part in enumerate(parts, 1):
                await self._send(chat_id, part, keyboard(reply) if n == len(parts) else None)
        try:
            await self.app.bot.set_my_commands(commands_for(person.role.value),
                                               scope=BotCommandScopeChat(chat_id))
        except TelegramError as exc:
            log.warning("menu not set after approval: %s", type(exc).__name__)

    async def _send(self, chat_id: int, text: str, markup: Any = None) -> None:
        try:
            await self.app.bot.send_message(chat_id, text, reply_markup=markup)
        except TelegramError as exc:
            log.warning("approval message not delivered: %s", type(exc).__name__)

    async def summary_text(self, me: Participant) -> str:
        return render_text(await release_summary(self.store, me.programme_id))

    async def cmd_summary(self, me: Participant, resp: Response, args: str) -> Response:
        if me.role is not Role.COORDINATOR:  # the command spec already limits it; belt and braces
            return resp.say(self.texts.say("coord_only"))
        return resp.say(await self.summary_text(me))

    async def cmd_digest(self, me: Participant, resp: Response, args: str) -> Response:
        if me.role is not Role.COORDINATOR:
            return resp.say(self.texts.say("coord_only"))
        if not args:
            chosen = await self.store.digests.of(me.id)
            if chosen is None:
                return resp.say(self.texts.say("coord_digest_none"))
            return resp.say(self.texts.say("coord_digest_show", day=DAY_NAMES[chosen[0]],
                                           time=chosen[1], tz=me.timezone))
        if args.strip().lower() == "off":
            sid = await self.store.digests.clear(me.id)
            if sid is not None:
                self._unschedule(sid)
            resp.changed = True
            return resp.say(self.texts.say("coord_digest_off"))
        parsed = parse_schedule(args)
        if parsed is None:
            return resp.say(self.texts.say("coord_digest_bad"))
        day, at = parsed
        sid = await self.store.digests.set(me.id, day, at.strftime("%H:%M"))
        self._schedule(sid, me.id, day, at, me.timezone)
        resp.changed = True
        return resp.say(self.texts.say("coord_digest_set", day=DAY_NAMES[day],
                                       time=at.strftime("%H:%M"), tz=me.timezone))

    # -- jobs --------------------------------------------------------------------------
    def _schedule(self, sid: int, participant_id: int, day: int, at: time, tz: str) -> None:
        queue = self.app.job_queue
        if queue is None:
            log.warning("no JobQueue: weekly digests are off")
            return
        self._unschedule(sid)
        self._jobs[sid] = (participant_id, day, at.strftime("%H:%M"), tz)
        name = f"{JOB_PREFIX}{sid}"
        queue.run_daily(self.send_digest, time=at.replace(tzinfo=_zone(tz)), days=(day,),
                        data=participant_id, name=name, job_kwargs={**JOB_KWARGS, "id": name})

    def _unschedule(self, sid: int) -> None:
        self._jobs.pop(sid, None)
        queue = self.app.job_queue
        if queue is None:
            return
        for job in queue.get_jobs_by_name(f"{JOB_PREFIX}{sid}"):
            job.schedule_removal()

    async def restore(self) -> int:
        """The digest jobs made to match the stored schedules: at start-up, and on
        PostgreSQL every DIGEST_SYNC seconds, since another process may have changed them
        (a job of this process's that the database no longer holds goes)."""
        schedules = await self.store.digests.coordinators()
        for d in schedules:
            if self._jobs.get(d.id) == (d.participant_id, d.weekday, d.at, d.timezone):
                continue
            hh, mm = d.at.split(":")
            self._schedule(d.id, d.participant_id, d.weekday, time(int(hh), int(mm)), d.timezone)
        for sid in set(self._jobs) - {d.id for d in schedules}:
            self._unschedule(sid)
        return len(schedules)

    async def _sync(self, context: CallbackContext[Any, Any, Any, Any]) -> None:
        try:
            await self.restore()
        except Exception as exc:
            log.warning("digest schedules not synced: %s", type(exc).__name__)

    async def _still_scheduled(self, sid: int | None, participant_id: int) -> bool:
        """Read through at the moment a digest job fires: the schedule it was made from is
        still the person's (another process may have changed or stopped it)."""
        made = self._jobs.get(sid) if sid is not None else None
        if made is None:
            return False
        chosen = await self.store.digests.of(participant_id)
        if chosen is not None and chosen == (made[1], made[2]):
            return True
        await self.restore()  # changed elsewhere: the jobs follow the database now
        return False

    async def send_digest(self, context: CallbackContext[Any, Any, Any, Any]) -> None:
        job = context.job
        if job is None or not isinstance(job.data, int):
            return
        sid = job.name.removeprefix(JOB_PREFIX) if job.name else ""
        if not await self._still_scheduled(int(sid) if sid.isdigit() else None, job.data):
            return
        # Every bot process runs the same weekly job; on PostgreSQL one claims the week's
        # digest (storage.coordination; on SQLite the claim is always this process's). The
        # others look again once the claim's lease has passed, so a claimer killed before
        # it sent loses nobody their digest.
        name, period = job.name or f"{JOB_PREFIX}{job.data}", utcnow().date().isoformat()
        shared = await self.store.coordination()
        if await shared.claim(name, period):
            if await self.digest_for(job.data):
                await shared.done(name, period)
        elif context.job_queue is not None:
            context.job_queue.run_once(
                self._take_over, when=CLAIM_LEASE + 5, data=(job.data, name, period),
                name=f"{name}-takeover", job_kwargs={"misfire_grace_time": 3600})

    async def _take_over(self, context: CallbackContext[Any, Any, Any, Any]) -> None:
        job = context.job
        if job is None or not isinstance(job.data, tuple):
            return
        participant_id, name, period = job.data
        shared = await self.store.coordination()
        if await shared.claim(name, period) and await self.digest_for(participant_id):
            await shared.done(name, period)

    async def digest_for(self, participant_id: int) -> bool:
        me = await self.store.participants.get(participant_id)
        if me is None or me.role is not Role.COORDINATOR:
            return False
        chat_id = await self.store.participants.chat_id(me.id)
        if chat_id is None:
            return False
        text = self.texts.say("coord_digest_intro") + "\n" + await self.summary_text(me)
        try:
            await self.app.bot.send_message(chat_id, text)
        except TelegramError as exc:
            # the class of error only: no chat id, no name
            log.warning("weekly digest not delivered: %s", type(exc).__name__)
            return False
        return True


def invite_link(app: Application[Any, Any, Any, Any, Any, Any], code: str) -> str:
    try:
        username = app.bot.username
    except RuntimeError:  # not initialised (never the case in a running bot)
        username = "<your_bot_username>"
    return f"https://t.me/{username}?start={code}"


async def install(app: Application[Any, Any, Any, Any, Any, Any]) -> CoordinatorTools:
    """Called from post_init after reminders. Idempotent."""
    existing = app.bot_data.get(DIGEST_KEY)
    if isinstance(existing, CoordinatorTools):
        return existing
    store: Store = app.bot_data["store"]
    service: Service = app.bot_data["service"]
    tools = CoordinatorTools(app, store, service.texts)
    tools.attach(service)
    app.bot_data[DIGEST_KEY] = tools
    # before the catch-all button handler, which would call a join button stale
    app.add_handler(CallbackQueryHandler(tools.on_join_button, pattern=f"^{JOIN_PREFIX}"),
                    group=-1)
    await tools.restore()
    shared = await store.coordination()
    if shared.shared and app.job_queue is not None:  # other processes may change them
        app.job_queue.run_repeating(tools._sync, interval=DIGEST_SYNC, first=DIGEST_SYNC,
                                    name=SYNC_JOB)
    return tools
