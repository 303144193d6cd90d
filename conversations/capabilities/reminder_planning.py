"""Reminder planning: what is due for whom, whether it may go now, and what came of it.

Transport-free: the JobQueue glue in ``bot/jobs.py`` calls :meth:`ReminderPlanner.plan`,
:meth:`~ReminderPlanner.select` and :meth:`~ReminderPlanner.record` around each send, and
passes snooze and six-month answers to :meth:`~ReminderPlanner.press`. The rules (quiet
hours, spacing, relevance, wording) are in ``conversations.reminder_rules``; the rows in
``storage.reminder_queue``. A saved session log feeds the pair's lifecycle from here too.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from conversations.catalogue import Texts, load_flows, load_texts
from conversations.commands import Registry
from conversations.model import Flow
from conversations.reminder_rules import (
    PROMPT_AFTER,
    QuietHours,
    ReminderSettings,
    Situation,
    episode_events,
    episode_time,
    next_allowed,
    parse_callback,
    plan_pair,
    plan_waves,
    skip_reason,
    snooze_until,
    when_words,
)
from storage.db import utcnow
from storage.lifecycle import Lifecycle, PairFacts
from storage.models import Participant, Role, Scope
from storage.reminder_queue import Kind, NewReminder, Reminder, ReminderStore
from storage.store import Store

if TYPE_CHECKING:
    from conversations.service import Service

log = logging.getLogger("mentorbot.reminders")

CHECKIN_FLOWS = ("baseline", "checkin")
# Kinds the planner owns: a pending one it no longer plans has been superseded.
PLANNED_KINDS = (Kind.QUIET_PAIR, Kind.SIX_MONTH, Kind.CHEMISTRY)

Clock = Callable[[], datetime]


async def _no_wake() -> None:
    return None


def _error_type(exc: BaseException) -> str:
    return type(exc).__name__


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

class ReminderPlanner:
    """Plans reminders, picks what may go, records outcomes, answers their buttons."""

    def __init__(
        self,
        store: Store,
        texts: Texts | None = None,
        *,
        flows: dict[str, Flow] | None = None,
        clock: Clock = utcnow,
        describe: Callable[[BaseException], str] = _error_type,
    ) -> None:
        self.store = store
        self.texts = texts or load_texts()
        self.flows = flows or load_flows()
        self.clock = clock
        self.describe = describe  # the adapter's error summary: type and place, no text
        self.repo = ReminderStore(store)
        self.lifecycle = Lifecycle(store.db)
        # Set by the JobQueue glue: a wake-up at the next due time after a change.
        self.wake: Callable[[], Awaitable[None]] = _no_wake
        self.planned_at: datetime | None = None
        self._settings: dict[int, ReminderSettings] = {}  # within one sweep only
        self._sweeping = False
        self._warned: set[int] = set()
        # user_hmac -> participant id of people marked unreachable, so that "they wrote
        # to us again" costs nothing for everybody else.
        self._unreachable: dict[bytes, int] = {}
        self._memberships: dict[int, int] | None = None

    def register(self, registry: Registry, service: Service) -> None:
        registry.on_saved(self.on_saved)

    def new_sweep(self) -> None:
        """A sweep begins: programme settings and memberships per account are read once
        for it (one query each, not one per message) and kept until :meth:`end_sweep`."""
        self._settings.clear()
        self._memberships = None
        self._sweeping = True

    def end_sweep(self) -> None:
        """Outside a sweep they are read through: another process (on PostgreSQL) or the
        CLI may have changed them since."""
        self._sweeping = False
        self._settings.clear()
        self._memberships = None

    async def _membership_count(self, person: Participant) -> int:
        if person.account_id is None:
            return 1
        if self._memberships is None:  # one query per sweep, not one per message
            counts = await self.store.participants.membership_counts()
            if not self._sweeping:
                return counts.get(person.account_id, 1)
            self._memberships = counts
        return self._memberships.get(person.account_id, 1)

    async def start(self) -> None:
        self._unreachable = await self.repo.unreachable()
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
        if self._sweeping:
            self._settings[programme_id] = settings
        return settings

    async def quiet_for(self, person: Participant, settings: ReminderSettings) -> QuietHours:
        own = (await self.repo.quiet_hours([person.id])).get(person.id)
        return QuietHours.parse(f"{own[0]}-{own[1]}") if own else settings.quiet_hours

    async def plan(self, now: datetime | None = None, pair_ids: set[int] | None = None) -> int:
        """Schedule what follows from the pairs' facts; cancel what they no longer imply."""
        if self._sweeping:
            return await self._plan(now, pair_ids)
        self.new_sweep()  # outside a sweep: settings read once for this plan, then again
        try:
            return await self._plan(now, pair_ids)
        finally:
            self.end_sweep()

    async def _plan(self, now: datetime | None, pair_ids: set[int] | None) -> int:
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
            self.planned_at = now
        return inserted

    async def _plan_waves(
        self, people: Sequence[Participant], now: datetime, only: set[int] | None
    ) -> list[NewReminder]:
        theirs: dict[int, list[Any]] = {}
        for pair in await self.store.programmes.pairs():  # ordered by id
            for member in (pair.mentor_id, pair.mentee_id):
                if member is not None:
                    theirs.setdefault(member, []).append(pair)
        done = await self.repo.waves_done()
        closed = await self.repo.closed_pairs()
        out: list[NewReminder] = []
        for p in people:
            if p.role is Role.COORDINATOR or (only is not None and p.id not in only):
                continue
            flows = {f for f in CHECKIN_FLOWS if f in self.flows and p.role in self.flows[f].roles}
            pairs = theirs.get(p.id, [])
            matched = [q for q in pairs if q.matched_at]
            # Each relationship has its own check-ins (a mentor's every mentee, a re-matched
            # mentee's new pair); before any is matched, the baseline counts from joining.
            for pair in matched or pairs[-1:] or [None]:
                pair_id = pair.id if pair else None
                start = _parse(pair.matched_at) if pair and pair.matched_at else _parse(
                    p.created_at)
                out += plan_waves(
                    p.id,
                    pair_id,
                    start,
                    closed.get(pair_id) if pair_id is not None else None,
                    done.get((p.id, pair_id), set()),
                    now,
                    flows,
                )
        return out

    async def select(
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
        facts = await self.lifecycle.facts(sorted(pair_ids))
        done = await self.repo.waves_done() if wave_people else {}
        # A coordinator's note names pair numbers: only of pairs whose members all agree to
        # programme summaries, as the summary itself (a declined pair is never named).
        named = {m for r in rows if r.kind is Kind.CHEMISTRY and r.pair_id in facts
                 for m in facts[r.pair_id].members}
        summary_ok = (await self.store.consent.consenting(Scope.PROGRAMME_SUMMARY, named)
                      if named else set())

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
                pair_facts = facts.get(r.pair_id or -1)
                situation = Situation(
                    pair=pair_facts,
                    wave_start=self._wave_start(person, pair_facts),
                    waves_done=frozenset(done.get((pid, r.pair_id), set())),
                    reflected_since_due=(
                        r.kind is Kind.REFLECTION
                        and await self.repo.reflected_since(pid, r.created_at)
                    ),
                    consents=pid in consenting,
                )
                reason = skip_reason(r, situation, now, settings)
                if (reason is None and r.kind is Kind.CHEMISTRY and situation.pair is not None
                        and not set(situation.pair.members) <= summary_ok):
                    reason = "no_consent"  # looked at again tomorrow: consent may come
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

    async def about(self, person: Participant, row: Reminder) -> str | None:
        """The mentee a mentor's reminder is about, by their first name (a mentor may hold
        several pairs); None for everyone else."""
        if person.role is not Role.MENTOR or row.pair_id is None:
            return None
        pair = await self.store.programmes.pair(row.pair_id)
        if pair is None or pair.mentee_id is None or pair.mentor_id != person.id:
            return None
        return (await self.store.participants.name(pair.mentee_id)).strip() or None

    async def prefix(self, person: Participant, row: Reminder) -> str | None:
        """What a reminder starts with: the mentee it is about, for a mentor ("About your
        pair with Sam:"), and, for someone in several programmes or roles, which membership
        it is for ("North, about your pair with Jo:"), by names the person already knows."""
        about = await self.about(person, row)
        if person.account_id is None or row.kind is Kind.CHEMISTRY:
            return None if about is None else self.texts.say("rem_about", name=about)
        if await self._membership_count(person) < 2:
            return None if about is None else self.texts.say("rem_about", name=about)
        programme = (await self.store.programmes.get(person.programme_id)).name
        if about is None and row.pair_id is not None and person.role is Role.MENTEE:
            pair = await self.store.programmes.pair(row.pair_id)
            if pair is not None and pair.mentor_id is not None and pair.mentee_id == person.id:
                about = (await self.store.participants.name(pair.mentor_id)).strip() or None
        if about is None:
            return self.texts.say("rem_in_programme", programme=programme)
        return self.texts.say("rem_about_programme", programme=programme, name=about)

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

    async def record(
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
        key = await self.repo.user_key(participant_id)
        if key is not None:
            self._unreachable[key] = participant_id

    async def _reachable(self, participant_id: int) -> None:
        person = await self.store.participants.get(participant_id)
        if person is not None and person.status == "unreachable":
            # Through set_field, which also refreshes any cached copy of the row.
            await self.store.participants.set_field(participant_id, "status", "active")
            await self.store.audit.record("system", "reachable_again", participant_id)
        self._unreachable = {k: v for k, v in self._unreachable.items() if v != participant_id}

    async def on_saved(
        self, me: Participant, entry_id: int, flow_id: str, answers: dict[str, Any]
    ) -> None:
        """A saved entry: the mentor's log feeds the lifecycle; a reflection answers a prompt.

        Never lets a failure here spoil the person's save, which has already happened.
        """
        try:
            await self._on_saved(me, entry_id, flow_id, answers)
        except Exception as exc:
            log.warning("reminder bookkeeping after a save failed: %s", self.describe(exc))

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
        await self.pair_changed(entry.pair_id, now)

    async def pair_changed(self, pair_id: int, now: datetime) -> None:
        facts = (await self.lifecycle.facts([pair_id])).get(pair_id)
        if facts is not None and facts.closed:
            # A reflection prompt stays: the last session is worth reflecting on too.
            await self.repo.cancel_where(now, "pair_closed", pair_id=pair_id, kinds=PLANNED_KINDS)
        await self.plan(now, {pair_id})
        await self.wake()

    async def press(self, telegram_user_id: int, data: str) -> tuple[str, bool]:
        """A snooze or check answer; (what to tell the person, whether anything changed).

        Anything stale or not theirs gets the same polite answer and changes nothing.
        """
        stale = (self.texts.say("rem_button_stale"), False)
        parsed = parse_callback(data)
        if parsed is None:
            return stale
        action, reminder_id, arg = parsed
        row = await self.repo.get(reminder_id)
        # answered by the membership the reminder was sent for, whichever is in use
        me = (await self.store.participants.membership_of(telegram_user_id, row.participant_id)
              if row is not None else None)
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
            await self.wake()
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
        # One member's private tap does not end a relationship for both: the pair closes
        # when every member still in it has said so (the partner was asked the same
        # question), or when a coordinator closes it. Until then it waits, and shows as
        # needing attention.
        months = row.detail.get("months")
        await self.lifecycle.record(
            row.pair_id, "finish_said", at=now, source="answer", now=now,
            participant_id=me.id, detail={"by": role, "months": months},
            key=f"finish:{row.pair_id}:{me.id}:{months}",
        )
        said = {
            e.participant_id for e in await self.lifecycle.history(row.pair_id)
            if e.event == "finish_said" and e.detail.get("months") == months
        }
        if not set(facts.members) <= said:
            await self.pair_changed(row.pair_id, now)  # plans the partner's question
            return self.texts.say("rem_answer_finish_waits"), True
        await self.lifecycle.record(
            row.pair_id, "closed", at=now, source="answer", now=now, detail={"by": "both"}
        )
        await self.pair_changed(row.pair_id, now)
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
