"""Reminders through the real Application and the Bot API stand-in, on a controlled clock.

The sweep is called directly with a fake UTC clock; pacing and retry waits use a fake
monotonic clock, so nothing here sleeps for real. Each reminder kind is checked at the
right local time, and so are quiet hours, snoozing, pausing, restarts, blocked people,
429s and 5xx answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import telegram.ext._aioratelimiter as limiter_module
from telegram.ext import Application

from bot.coordinator import DIGEST_KEY, SYNC_JOB, CoordinatorTools
from bot.jobs import (
    JOB_KWARGS,
    REMINDERS_KEY,
    SWEEP_JOB,
    Pacer,
    ReminderJobs,
    install,
)
from conversations.catalogue import load_flows, load_texts
from conversations.reminder_rules import (
    QuietHours,
    ReminderSettings,
    callback,
    next_allowed,
    parse_callback,
    snooze_until,
)
from conversations.scripted import button_data
from conversations.service import Response, Sender, Service
from conversations.waves import MONTH
from storage.crypto import KeyRing
from storage.db import iso
from storage.models import Role, Scope
from storage.reminder_queue import Kind
from storage.store import Store
from tests.conftest import Place
from tests.people import Cohort
from tests.support.api_standin import BotApiStandin
from tests.support.harness import TOKEN, TgUser, running_app

pytestmark = pytest.mark.both_backends

FLOWS = load_flows()
_yield = asyncio.sleep  # the real one, whatever a test patches
TEXTS = load_texts()
# A Monday in the past (the episode log refuses future dates). London is on GMT then.
BASE = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
MENTOR, MENTEE, COORDINATOR = 111_000_001, 111_000_002, 111_000_003


@dataclass
class FakeTime:
    now: datetime = BASE
    mono: float = 10_000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.mono += max(0.0, seconds)
        await _yield(0)

    def at(self, when: datetime) -> None:
        self.mono += max(0.0, (when - self.now).total_seconds())
        self.now = when


def use(rs: ReminderJobs, t: FakeTime) -> ReminderJobs:
    rs.clock = t.clock
    rs.sleep = t.sleep
    rs.pacer = Pacer(monotonic=t.monotonic, sleep=t.sleep)
    return rs


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


async def join(user: TgUser, code: str) -> None:
    await user.send(f"/start {code}")
    await user.tap("Yes, keep them")
    for _ in range(3):
        await user.tap("Yes")
    user.new()


@dataclass
class World:
    app: Application  # type: ignore[type-arg]
    standin: BotApiStandin
    rs: ReminderJobs
    store: Store
    time: FakeTime
    mentor: TgUser
    mentee: TgUser
    pair_id: int

    @property
    def service(self) -> Service:
        return self.app.bot_data["service"]  # type: ignore[no-any-return]

    async def pid(self, user_id: int) -> int:
        me = await self.store.participants.by_user(user_id)
        assert me is not None
        return me.id

    async def sweep_at(self, when: datetime) -> None:
        self.time.at(when)
        await self.rs.sweep()

    async def rows(self, kind: Kind | None = None) -> list[Any]:
        rows = await self.store.db.fetchall("SELECT * FROM reminders ORDER BY id")
        return [r for r in rows if kind is None or r["kind"] == kind.value]


async def settings(store: Store, programme_id: int, **values: object) -> None:
    await store.db.execute(
        "UPDATE programmes SET settings=? WHERE id=?",
        (json.dumps({"reminders": values}), programme_id),
    )


@asynccontextmanager
async def world(
    store: Store,
    cohort: Cohort,
    standin: BotApiStandin | None = None,
    *,
    mentee_tz: str | None = None,
    t: FakeTime | None = None,
    waves: bool = False,
) -> AsyncIterator[World]:
    """A matched pair on BASE, both consented, on a fake clock.

    Wave check-ins (the starting one is due at once) are cancelled unless ``waves``, so
    each test sees only the reminders it is about.
    """
    t = t or FakeTime()
    async with running_app(store, standin) as (app, stand):
        rs = use(app.bot_data[REMINDERS_KEY], t)
        mentor = TgUser(app, stand, MENTOR, "Morgan")
        mentee = TgUser(app, stand, MENTEE, "Robin")
        await join(mentor, cohort.mentor_code)
        await join(mentee, cohort.mentee_code)
        await store.db.execute(
            "UPDATE pairs SET matched_at=? WHERE id=?", (iso(BASE), cohort.pair_id)
        )
        if mentee_tz:
            me = await store.participants.by_user(MENTEE)
            assert me is not None
            await store.participants.set_field(me.id, "timezone", mentee_tz)
        t.at(BASE)
        await rs.planner.plan()
        if not waves:
            await store.db.execute("UPDATE reminders SET status='cancelled' WHERE kind='wave'")
        yield World(app, stand, rs, store, t, mentor, mentee, cohort.pair_id)


async def log_episode(
    service: Service, user_id: int, day: date, kind: str = "EP_FORMAL_SESSION"
) -> Response:
    """The mentor's /log, typed and tapped through the service as a person would."""
    who = Sender(user_id, user_id, "Morgan")
    resp = await service.command(who, "log")
    resp = await service.text(who, day.isoformat())
    answers = {"kind": kind, "mode": "MODE_VIDEO", "phase": "unsure", "climate": "SC_GROWTH"}
    for step in FLOWS["episode_log"].steps[1:]:
        value = answers.get(step.id)
        if value is None:
            resp = await service.command(who, "skip")
        else:
            resp = await service.press(who, button_data(resp, value))
    resp = await service.press(who, button_data(resp, "_save"))
    assert any("Logged" in r.text for r in resp.replies), [r.text for r in resp.replies]
    return resp


# -- pure logic ------------------------------------------------------------------------
def test_quiet_hours_parse_and_span_midnight() -> None:
    q = QuietHours.parse("21:00-08:00")
    assert q.contains(time(21, 0)) and q.contains(time(3, 0)) and not q.contains(time(8, 0))
    assert QuietHours.parse("22-7").strings() == ("22:00", "07:00")
    day = QuietHours.parse("13:00 to 14:00")
    assert day.contains(time(13, 30)) and not day.contains(time(14, 0))
    assert QuietHours.parse("off").off and not QuietHours.parse("off").contains(time(23))
    for bad in ("21", "25:00-08:00", "soon"):
        with pytest.raises(ValueError):
            QuietHours.parse(bad)


def test_next_allowed_uses_the_persons_zone_and_dst() -> None:
    quiet = QuietHours()
    # 22:30 in Kolkata is 17:00 UTC: the next allowed time is 08:00 IST = 02:30 UTC.
    at = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert next_allowed(at, "Asia/Kolkata", quiet) == datetime(2026, 3, 3, 2, 30, tzinfo=UTC)
    assert next_allowed(at, "Europe/London", quiet) == at  # 17:00 in London is fine
    # 05:00 on the morning the clocks go forward in London: 08:00 BST is 07:00 UTC.
    spring = datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    assert next_allowed(spring, "Europe/London", quiet) == datetime(2026, 3, 29, 7, tzinfo=UTC)
    assert next_allowed(at, "Not/AZone", quiet) == at  # unknown zone: London


def test_snooze_choices() -> None:
    quiet = QuietHours()
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert snooze_until("h", now, "Europe/London", quiet) == now + timedelta(hours=1)
    assert snooze_until("t", now, "Europe/London", quiet) == now + timedelta(days=1)
    late = datetime(2026, 3, 2, 20, 30, tzinfo=UTC)  # an hour later is quiet time
    assert snooze_until("h", late, "Europe/London", quiet) == datetime(2026, 3, 3, 8, tzinfo=UTC)


def test_settings_come_from_the_programme_and_typos_are_errors() -> None:
    s = ReminderSettings.from_programme(
        {"reminders": {"reflection_delay_hours": 1, "quiet_hours": "22:00-07:00"}}
    )
    assert s.reflection_delay == timedelta(hours=1)
    assert s.quiet_hours.strings() == ("22:00", "07:00")
    assert s.quiet_pair_after == timedelta(weeks=5)
    assert ReminderSettings.from_programme({}) == ReminderSettings()
    with pytest.raises(ValueError, match="unknown"):
        ReminderSettings.from_programme({"reminders": {"quiet_pair_wekes": 3}})
    with pytest.raises(ValueError):
        ReminderSettings.from_programme({"reminders": {"extend_months": 40}})


def test_callback_data_is_short_and_strict() -> None:
    data = callback("z", 999_999_999_999, "h")
    assert len(data.encode()) <= 64
    assert parse_callback(data) == ("z", 999_999_999_999, "h")
    for forged in ("r:z:1:x", "r:a:1:h", "r:z:-1:h", "r:z:1:h:extra", "1:r:z:1:h", ""):
        assert parse_callback(forged) is None


async def test_pacer_keeps_a_rolling_window_and_one_per_chat_per_second() -> None:
    t = FakeTime()
    pacer = Pacer(overall=3, margin=0.0, monotonic=t.monotonic, sleep=t.sleep)
    starts = []
    for chat in (1, 2, 3, 4):
        await pacer.acquire(chat)
        starts.append(t.mono)
        t.mono += 0.01  # the request takes 10 ms
        pacer.release(chat)
    # three fit in a second; the fourth waits until the first finished a second ago
    assert starts[3] - starts[0] >= 1.01 - 1e-9
    await pacer.acquire(4)  # the same chat again: a second after its last send finished
    assert t.mono - (starts[3] + 0.01) >= 1.0 - 1e-9
    pacer.release(4)
    pacer.hold(5)
    before = t.mono
    await pacer.acquire(9)
    assert t.mono - before >= 5


# -- each kind at the right local time -------------------------------------------------
async def test_reflection_prompt_two_hours_after_the_log_in_local_time(
    store: Store, cohort: Cohort
) -> None:
    async with world(store, cohort, mentee_tz="Asia/Kolkata") as w:
        w.time.at(BASE.replace(hour=10, minute=30))  # 16:00 in Kolkata
        await log_episode(w.service, MENTOR, BASE.date())
        await w.sweep_at(BASE.replace(hour=12, minute=29))
        assert w.mentee.new() == []
        await w.sweep_at(BASE.replace(hour=12, minute=30))  # 18:00 in Kolkata
        got = w.mentee.new()
        assert len(got) == 1 and "/reflect" in got[0]["text"]
        labels = [b["text"] for row in got[0]["reply_markup"]["inline_keyboard"] for b in row]
        assert labels == ["Remind me in 1 hour", "Tomorrow"]
        assert w.mentor.new() == []  # the mentor is not prompted to reflect on their own log
        await w.sweep_at(BASE.replace(hour=13))
        assert w.mentee.new() == []  # sent once
        (row,) = await w.rows(Kind.REFLECTION)
        assert row["status"] == "sent" and row["attempts"] == 1 and row["claimed_at"] is None


async def test_quiet_hours_defer_to_the_next_allowed_morning(store: Store, cohort: Cohort) -> None:
    async with world(store, cohort, mentee_tz="Asia/Kolkata") as w:
        w.time.at(BASE.replace(hour=15))  # 20:30 in Kolkata: due 22:30, inside quiet hours
        await log_episode(w.service, MENTOR, BASE.date())
        await w.sweep_at(BASE.replace(hour=17))
        assert w.mentee.new() == []
        (row,) = await w.rows(Kind.REFLECTION)
        assert row["status"] == "pending" and row["reason"] == "quiet_hours"
        assert row["due_at"] == iso(datetime(2026, 3, 3, 2, 30, tzinfo=UTC))  # 08:00 IST
        await w.sweep_at(datetime(2026, 3, 3, 2, 29, tzinfo=UTC))
        assert w.mentee.new() == []
        await w.sweep_at(datetime(2026, 3, 3, 2, 30, tzinfo=UTC))
        assert "/reflect" in texts(w.mentee.new())


async def test_own_quiet_hours_set_with_a_command(store: Store, cohort: Cohort) -> None:
    async with world(store, cohort) as w:
        said = texts(await w.mentee.send("/quiet"))
        assert "21:00 to 08:00" in said and "Europe/London" in said
        assert "09:30" in texts(await w.mentee.send("/quiet 22:00-09:30"))
        assert "couldn't read" in texts(await w.mentee.send("/quiet tea-time"))
        w.time.at(BASE.replace(hour=7))  # logged 07:00, due 09:00: still quiet for Robin
        await log_episode(w.service, MENTOR, BASE.date())
        await w.sweep_at(BASE.replace(hour=9))
        assert w.mentee.new() == []
        await w.sweep_at(BASE.replace(hour=9, minute=30))
        assert "/reflect" in texts(w.mentee.new())
        assert "back to your programme" in texts(await w.mentee.send("/quiet default"))


async def test_quiet_pair_nudge_goes_to_both_and_restarts_at_each_contact(
    store: Store, cohort: Cohort
) -> None:
    async with world(store, cohort) as w:
        first = BASE + timedelta(days=3)
        w.time.at(first.replace(hour=14))
        await log_episode(w.service, MENTOR, first.date(), "EP_CHEMISTRY_MEETING")
        anchor = first.replace(hour=12)  # a logged day counts from local midday
        await w.sweep_at(anchor + timedelta(weeks=4))
        # a contact four weeks in restarts the five-week clock
        await log_episode(w.service, MENTOR, w.time.now.date(), "EP_INFORMAL_CONTACT")
        second = w.time.now.replace(hour=11)  # midday in London, now on summer time
        await w.sweep_at(anchor + timedelta(weeks=5, hours=1))
        assert w.mentor.new() == [] and w.mentee.new() == []
        superseded = [r for r in await w.rows(Kind.QUIET_PAIR) if r["status"] == "cancelled"]
        assert superseded and all(r["reason"] == "superseded" for r in superseded)
        await w.sweep_at(second + timedelta(weeks=5) - timedelta(minutes=1))
        assert w.mentor.new() == [] and w.mentee.new() == []
        await w.sweep_at(second + timedelta(weeks=5))
        assert "/log it afterwards" in texts(w.mentor.new())
        assert "get in touch with your mentor" in texts(w.mentee.new())
        await w.sweep_at(second + timedelta(weeks=9))
        assert w.mentor.new() == [] and w.mentee.new() == []  # one nudge per quiet spell


async def test_wave_checkins_arrive_on_their_dates(store: Store, cohort: Cohort) -> None:
    await settings(store, cohort.programme_id, quiet_pair_weeks=52, chemistry_overdue_weeks=52)
    async with world(store, cohort, waves=True) as w:
        await w.sweep_at(BASE.replace(hour=9))
        assert "starting check-in" in texts(w.mentee.new())
        assert "starting check-in" in texts(w.mentor.new())
        m3 = BASE + 3 * MONTH  # 1 June, 07:41 UTC = 08:41 in London (BST)
        await w.sweep_at(m3 - timedelta(minutes=1))
        assert w.mentee.new() == []
        await w.sweep_at(m3)
        assert "Your 3-month check-in is ready: /checkin" in texts(w.mentee.new())
        assert "3-month" in texts(w.mentor.new())
        baseline = [r for r in await w.rows(Kind.WAVE) if '"baseline"' in r["detail"]]
        assert {r["status"] for r in baseline} == {"sent"}


async def test_six_month_check_one_finished_does_not_close_the_pair(
    store: Store, cohort: Cohort
) -> None:
    await settings(store, cohort.programme_id, quiet_pair_weeks=52, chemistry_overdue_weeks=52)
    async with world(store, cohort) as w:
        due = BASE + 6 * MONTH
        await w.sweep_at(due)
        assert "Are you still meeting" in texts(w.mentor.new())
        assert "Are you still meeting" in texts(w.mentee.new())
        await w.mentor.tap("Still meeting")
        await w.mentee.tap("We've finished")
        assert "once your partner says so too" in (
            w.standin.calls_of("answerCallbackQuery")[-1].params["text"])
        events = [e.event for e in await w.rs.planner.lifecycle.history(w.pair_id)]
        assert events[-3:] == ["six_month_check", "still_meeting", "finish_said"]
        pair = await store.programmes.pair(w.pair_id)
        assert pair is not None and pair.state != "closed"
        # the partner is asked, once, after the spacing; still meeting keeps the pair open
        asked = ""
        for hours in (2, 4, 6):  # one reminder per sweep, an hour apart at least
            await w.sweep_at(due + timedelta(hours=hours))
            asked += texts(w.mentor.new())
        assert asked.count("partner has said your mentoring has finished") == 1
        assert "closing check-in" not in asked + texts(w.mentee.new())
        await w.mentor.tap("Still meeting")
        await w.sweep_at(due + timedelta(hours=8))
        assert "partner has said" not in texts(w.mentor.new())
        pair = await store.programmes.pair(w.pair_id)
        assert pair is not None and pair.state != "closed"


async def test_six_month_check_goes_to_both_and_both_finished_closes_the_pair(
    store: Store, cohort: Cohort
) -> None:
    await settings(store, cohort.programme_id, quiet_pair_weeks=52, chemistry_overdue_weeks=52)
    async with world(store, cohort) as w:
        due = BASE + 6 * MONTH  # 31 Aug, 16:21 in London (BST)
        await w.sweep_at(due - timedelta(minutes=1))
        assert w.mentor.new() == []
        await w.sweep_at(due)
        assert "Are you still meeting" in texts(w.mentor.new())
        assert "Are you still meeting" in texts(w.mentee.new())
        await w.mentor.tap("We've finished")
        answer = w.standin.calls_of("answerCallbackQuery")[-1].params
        assert "once your partner says so too" in answer["text"]
        pair = await store.programmes.pair(w.pair_id)
        assert pair is not None and pair.state != "closed"
        await w.mentee.tap("We've finished")
        assert "closing check-in comes next" in (
            w.standin.calls_of("answerCallbackQuery")[-1].params["text"])
        events = [e.event for e in await w.rs.planner.lifecycle.history(w.pair_id)]
        assert events[0] == "matched" and events[-4:] == [
            "six_month_check",
            "finish_said",
            "finish_said",
            "closed",
        ]
        pair = await store.programmes.pair(w.pair_id)
        assert pair is not None and pair.state == "closed"
        # the closing check-in follows, spaced at least an hour after the last reminder
        await w.sweep_at(due + timedelta(minutes=30))
        assert w.mentee.new() == []
        await w.sweep_at(due + timedelta(hours=1, minutes=1))
        assert "closing check-in" in texts(w.mentee.new())


async def test_a_declined_pair_is_never_named_and_a_lone_finished_needs_attention(
    store: Store, cohort: Cohort
) -> None:
    """Six pairs: one of them has a member who declined programme summaries. The chemistry
    note and the summary's needing-attention list name pair numbers, never that pair's;
    a lone "We've finished" at the six-month check leaves its pair open and listed."""
    await settings(store, cohort.programme_id, quiet_pair_weeks=52, chemistry_overdue_weeks=3)
    lead_code = await store.programmes.create_invite(cohort.programme_id, Role.COORDINATOR)
    pairs = [cohort.pair_id]
    codes = []
    for _ in range(5):
        pair = await store.programmes.create_pair(cohort.programme_id)
        pairs.append(pair)
        codes.append([await store.programmes.create_invite(cohort.programme_id, r, pair)
                      for r in (Role.MENTOR, Role.MENTEE)])
    async with world(store, cohort) as w:
        lead = TgUser(w.app, w.standin, COORDINATOR, "Lee")
        await lead.send(f"/start {lead_code}")
        others = []
        for n, (mentor_code, mentee_code) in enumerate(codes):
            mentor = TgUser(w.app, w.standin, 223_000 + 2 * n, "Kim")
            mentee = TgUser(w.app, w.standin, 223_001 + 2 * n, "Ash")
            await join(mentor, mentor_code)
            await join(mentee, mentee_code)
            others.append((mentor, mentee))
        declined_pair, (_, declining) = pairs[1], others[0]
        await declining.send("/withdraw")
        await declining.tap("Stop counting me in summaries")
        me = await store.participants.by_user(declining.user_id)
        assert me is not None
        assert not (await store.consent.state(me.id)).allows(Scope.PROGRAMME_SUMMARY)
        await store.db.execute("UPDATE pairs SET matched_at=?", (iso(BASE),))
        await w.rs.planner.plan()
        await store.db.execute("UPDATE reminders SET status='cancelled' WHERE kind='wave'")
        lead.new()
        # three weeks on, no pair has met: one note, the declined pair not in it
        await w.sweep_at(BASE + timedelta(weeks=3, hours=10))
        (note,) = lead.new()
        named = {int(p) for p in note["text"].split("(pair ")[1].split(")")[0].split(", ")}
        assert named == set(pairs) - {declined_pair}
        # the six-month check: a lone "We've finished" from the first pair's mentee and
        # from the declined pair's; neither pair closes
        due = BASE + 6 * MONTH
        await w.sweep_at(due)
        await w.mentee.tap("We've finished")
        await declining.tap("We've finished")
        for pair_id in (w.pair_id, declined_pair):
            pair = await store.programmes.pair(pair_id)
            assert pair is not None and pair.state != "closed"
        # the coordinator's summary lists the first pair as needing attention, never the
        # declined one, and says so by number only
        summary = texts(await lead.send("/summary"))
        line = next(x for x in summary.splitlines() if "said finished" in x)
        assert f"pairs {w.pair_id}." in line
        assert all(f" {declined_pair}," not in x and f" {declined_pair}." not in x
                   for x in summary.splitlines() if x.startswith("Needing attention"))
        # the weekly digest is the summary sent by the JobQueue: the same list, the
        # declined pair not in it
        tools = w.app.bot_data[DIGEST_KEY]
        assert isinstance(tools, CoordinatorTools)
        lead_me = await store.participants.by_user(COORDINATOR)
        assert lead_me is not None
        lead.new()
        assert await tools.digest_for(lead_me.id)
        (digest,) = lead.new()
        attention = [x for x in digest["text"].splitlines() if x.startswith("Needing attention")]
        assert attention and any(f"pairs {w.pair_id}." in x for x in digest["text"].splitlines())
        assert all(f" {declined_pair}," not in x and f" {declined_pair}." not in x
                   for x in attention)
        for name in ("Morgan", "Robin", "Kim", "Ash"):
            assert name not in summary and name not in note["text"]
            assert name not in digest["text"]


async def test_chemistry_overdue_note_is_one_anonymised_digest(
    store: Store, cohort: Cohort
) -> None:
    await settings(store, cohort.programme_id, quiet_pair_weeks=52)
    second = await store.programmes.create_pair(cohort.programme_id)
    codes = [
        await store.programmes.create_invite(cohort.programme_id, r, second)
        for r in (Role.MENTOR, Role.MENTEE)
    ]
    coordinator_code = await store.programmes.create_invite(cohort.programme_id, Role.COORDINATOR)
    async with world(store, cohort) as w:
        lead = TgUser(w.app, w.standin, COORDINATOR, "Lee")
        await lead.send(f"/start {coordinator_code}")
        for uid, code in zip((222_001, 222_002), codes, strict=True):
            await join(TgUser(w.app, w.standin, uid, "Other"), code)
        matched = BASE.replace(hour=10)
        await store.db.execute("UPDATE pairs SET matched_at=?", (iso(matched),))
        lead.new()
        await w.sweep_at(matched + timedelta(weeks=3) - timedelta(minutes=1))
        assert lead.new() == []
        await w.sweep_at(matched + timedelta(weeks=3))
        (note,) = lead.new()
        assert f"pair {w.pair_id}, {second}" in note["text"] and "2 pair(s)" in note["text"]
        for name in ("Morgan", "Robin", "Other"):
            assert name not in note["text"]
        assert "reply_markup" not in note or not note["reply_markup"]
        # a pair that has met drops out of the next note; this one was already sent
        await w.sweep_at(BASE + timedelta(weeks=6))
        assert lead.new() == []


async def test_a_pair_that_met_is_not_reported(store: Store, cohort: Cohort) -> None:
    coordinator_code = await store.programmes.create_invite(cohort.programme_id, Role.COORDINATOR)
    async with world(store, cohort) as w:
        lead = TgUser(w.app, w.standin, COORDINATOR, "Lee")
        await lead.send(f"/start {coordinator_code}")
        lead.new()
        await w.rs.planner.plan()  # the note is scheduled once there is a coordinator to tell
        w.time.at(BASE + timedelta(days=10, hours=10))
        await log_episode(w.service, MENTOR, w.time.now.date(), "EP_CHEMISTRY_MEETING")
        await w.sweep_at(BASE + timedelta(weeks=3, hours=1))
        assert lead.new() == []
        (row,) = await w.rows(Kind.CHEMISTRY)
        assert row["status"] == "cancelled" and row["reason"] == "superseded"


# -- people in control -----------------------------------------------------------------
async def test_snooze_an_hour_then_tomorrow_and_stale_or_forged_presses(
    store: Store, cohort: Cohort
) -> None:
    async with world(store, cohort) as w:
        w.time.at(BASE.replace(hour=9))
        await log_episode(w.service, MENTOR, BASE.date())
        await w.sweep_at(BASE.replace(hour=11))
        assert "/reflect" in texts(w.mentee.new())
        first_id = (await w.rows(Kind.REFLECTION))[0]["id"]
        await w.mentee.tap("Remind me in 1 hour")
        answer = w.standin.calls_of("answerCallbackQuery")[-1].params["text"]
        assert answer == "Okay, I'll remind you at 12:00."
        assert w.mentee.new() == []  # a toast, not another message
        assert w.standin.calls_of("editMessageReplyMarkup")  # the buttons are gone
        await w.sweep_at(BASE.replace(hour=11, minute=59))
        assert w.mentee.new() == []
        await w.sweep_at(BASE.replace(hour=12))
        again = w.mentee.new()
        assert len(again) == 1 and "/reflect" in again[0]["text"]
        await w.mentee.tap("Tomorrow")
        assert "tomorrow at 12:00" in w.standin.calls_of("answerCallbackQuery")[-1].params["text"]
        await w.sweep_at(BASE.replace(day=3, hour=11, minute=59))
        assert w.mentee.new() == []
        await w.sweep_at(BASE.replace(day=3, hour=12))
        assert "/reflect" in texts(w.mentee.new())
        before = await w.rows()
        # the first message's button again, someone else's reminder, and junk
        stale = "That reminder button has expired"
        for who, data in (
            (w.mentee, callback("z", first_id, "h")),
            (w.mentor, callback("z", before[-1]["id"], "h")),
            (w.mentee, callback("z", 987_654, "t")),
            (w.mentee, "r:garbage"),
        ):
            assert await who.press(data) == []
            assert stale in w.standin.calls_of("answerCallbackQuery")[-1].params["text"]
        assert await w.rows() == before


async def test_pause_skips_reminders_and_resume_brings_them_back(
    store: Store, cohort: Cohort
) -> None:
    async with world(store, cohort) as w:
        assert "paused" in texts(await w.mentee.send("/pause"))
        w.time.at(BASE.replace(hour=9))
        await log_episode(w.service, MENTOR, BASE.date())
        await w.sweep_at(BASE.replace(hour=11))
        assert w.mentee.new() == []
        (row,) = await w.rows(Kind.REFLECTION)
        assert row["status"] == "skipped" and row["reason"] == "paused"
        await w.mentee.send("/resume")
        w.mentee.new()
        await log_episode(w.service, MENTOR, BASE.date())
        await w.sweep_at(BASE.replace(hour=14))
        assert "/reflect" in texts(w.mentee.new())


async def test_no_check_in_reminder_without_consent_to_keep_entries(
    store: Store, cohort: Cohort
) -> None:
    async with world(store, cohort, waves=True) as w:
        me = await store.participants.get(await w.pid(MENTEE))
        assert me is not None
        await store.consent.record(me.id, me.subject_ref, Scope.PARTICIPATE, False, "test")
        await w.sweep_at(BASE.replace(hour=9))
        assert "starting check-in" in texts(w.mentor.new())
        assert w.mentee.new() == []
        row = next(r for r in await w.rows(Kind.WAVE) if r["participant_id"] == me.id)
        assert row["status"] == "pending" and row["reason"] == "no_consent"
        await store.consent.record(me.id, me.subject_ref, Scope.PARTICIPATE, True, "test")
        await w.sweep_at(BASE.replace(day=3, hour=9))
        assert "starting check-in" in texts(w.mentee.new())


async def test_a_reflection_already_written_cancels_the_prompt(
    store: Store, cohort: Cohort
) -> None:
    async with world(store, cohort) as w:
        w.time.at(BASE.replace(hour=9))
        await log_episode(w.service, MENTOR, BASE.date())
        me = await store.participants.by_user(MENTEE)
        assert me is not None
        await store.participants.set_field(me.id, "preferred_framework", "grow")
        await w.mentee.send("/reflect")
        for answer in ("Goal", "Reality", "Options", "Will"):
            await w.mentee.send(answer)
        for _ in range(4):
            await w.mentee.send("/skip")
        await w.mentee.tap("Save")
        w.mentee.new()
        await w.sweep_at(BASE.replace(hour=11))
        assert w.mentee.new() == []
        (row,) = await w.rows(Kind.REFLECTION)
        assert row["status"] == "cancelled" and row["reason"] == "done"


# -- never lost, never twice -----------------------------------------------------------
async def _reopen(place: Place, master_key: bytes) -> Store:
    return await place.open(KeyRing(master_key), FLOWS["consent"].version)


async def test_restart_between_scheduling_and_sending_neither_loses_nor_repeats(
    store: Store, cohort: Cohort, place: Place, master_key: bytes
) -> None:
    t = FakeTime()
    async with world(store, cohort, t=t) as w:
        t.at(BASE.replace(hour=9))
        await log_episode(w.service, MENTOR, BASE.date())
        standin = w.standin
    await store.close()  # the process stops with the reminder scheduled, not sent
    for attempt in range(2):
        reopened = await _reopen(place, master_key)
        try:
            async with running_app(reopened, standin) as (app, _):
                rs = use(app.bot_data[REMINDERS_KEY], t)
                t.at(BASE.replace(hour=11, minute=attempt))
                await rs.sweep()
        finally:
            await reopened.close()
        sent = [m for m in standin.sent_messages(MENTEE) if "capture what you took" in m["text"]]
        assert len(sent) == 1, attempt  # sent after the first restart, not again after the next


async def test_a_send_interrupted_by_a_crash_is_sent_again_once(
    store: Store, cohort: Cohort, caplog: pytest.LogCaptureFixture
) -> None:
    """The documented window: claimed but never confirmed means delivery unknown."""
    async with world(store, cohort) as w:
        w.time.at(BASE.replace(hour=9))
        await log_episode(w.service, MENTOR, BASE.date())
        (row,) = await w.rows(Kind.REFLECTION)
        await w.rs.planner.repo.claim([row["id"]], w.time.now)  # the crash came after the claim
        fresh = use(ReminderJobs(store, w.app.bot, w.rs.planner.texts), w.time)
        with caplog.at_level(logging.WARNING, logger="mentorbot.reminders"):
            await fresh.start()
        assert "1 reminder(s) were being sent" in caplog.text
        w.time.at(BASE.replace(hour=11))
        await fresh.sweep()
        await fresh.sweep()
        assert len([m for m in w.mentee.new() if "capture what you took" in m["text"]]) == 1
        (row,) = await w.rows(Kind.REFLECTION)
        assert row["status"] == "sent" and row["attempts"] == 2


async def test_a_blocked_person_is_skipped_and_everyone_else_still_gets_theirs(
    store: Store, cohort: Cohort
) -> None:
    standin = BotApiStandin(token=TOKEN)
    async with world(store, cohort, standin, waves=True) as w:
        standin.blocked_chats.add(MENTEE)
        # Both have the starting check-in due; the mentee's send fails with 403.
        await w.sweep_at(BASE.replace(hour=10))
        assert "starting check-in" in texts(w.mentor.new())
        mentee_id = await w.pid(MENTEE)
        me = await store.participants.get(mentee_id)
        assert me is not None and me.status == "unreachable"
        blocked = [r for r in await w.rows() if r["reason"] == "blocked"]
        assert [r["participant_id"] for r in blocked] == [mentee_id]
        # skipped from now on, without another call to Telegram
        calls = len(standin.calls_of("sendMessage"))
        await log_episode(w.service, MENTOR, BASE.date())
        await w.sweep_at(BASE.replace(hour=13))
        assert len(standin.calls_of("sendMessage")) == calls
        assert (await w.rows(Kind.REFLECTION))[0]["reason"] == "unreachable"
        # they unblock and write: reachable again
        standin.blocked_chats.clear()
        await w.mentee.send("/help")
        me = await store.participants.get(mentee_id)
        assert me is not None and me.status == "active"


async def test_an_unreachable_person_is_retried_after_a_week(store: Store, cohort: Cohort) -> None:
    standin = BotApiStandin(token=TOKEN)
    async with world(store, cohort, standin) as w:
        standin.blocked_chats.add(MENTEE)
        w.time.at(BASE.replace(hour=9))
        await log_episode(w.service, MENTOR, BASE.date())
        await w.sweep_at(BASE.replace(hour=11))
        mentee_id = await w.pid(MENTEE)
        standin.blocked_chats.clear()  # unblocked in Telegram's settings: nothing reaches us
        w.time.at(BASE.replace(day=9, hour=9))
        await log_episode(w.service, MENTOR, w.time.now.date())
        await w.sweep_at(BASE.replace(day=9, hour=11))
        assert "/reflect" in texts(w.mentee.new())
        me = await store.participants.get(mentee_id)
        assert me is not None and me.status == "active"


async def test_retry_after_is_honoured_then_the_reminder_is_sent(
    store: Store, cohort: Cohort, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = FakeTime()
    standin = BotApiStandin(token=TOKEN, retry_after=1, clock=t.monotonic)
    async with world(store, cohort, standin, t=t) as w:
        w.time.at(BASE.replace(hour=9))
        await log_episode(w.service, MENTOR, BASE.date())
        w.time.at(BASE.replace(hour=11))
        standin.per_chat_per_second = 1  # Telegram's per-chat limit, on the fake clock
        # Something else just wrote to the mentee, so their chat's second is taken.
        await w.app.bot.send_message(MENTEE, "A message from elsewhere in the bot")
        w.mentee.new()
        # The rate limiter's wait, on the fake clock the stand-in also reads.
        monkeypatch.setattr(
            limiter_module, "asyncio", SimpleNamespace(sleep=t.sleep, Event=asyncio.Event)
        )
        await w.rs.sweep()
        assert standin.count_429 == 1
        assert any(s >= 1.0 for s in t.slept)  # waited as long as Telegram asked
        assert "/reflect" in texts(w.mentee.new())
        (row,) = await w.rows(Kind.REFLECTION)
        assert row["status"] == "sent"


async def test_server_errors_are_retried_with_backoff(store: Store, cohort: Cohort) -> None:
    t = FakeTime()
    standin = BotApiStandin(token=TOKEN, fault_methods=["sendMessage"])
    async with world(store, cohort, standin, t=t) as w:
        t.at(BASE.replace(hour=9))
        await log_episode(w.service, MENTOR, BASE.date())

        async def recovering(seconds: float) -> None:
            await t.sleep(seconds)
            standin.fault_500 = 0.0  # the server is back after the first failure

        w.rs.sleep = recovering
        standin.fault_500 = 1.0
        await w.sweep_at(BASE.replace(hour=11))
        assert standin.fault_counts["500"] == 1 and t.slept[-1] == 0.5
        assert "/reflect" in texts(w.mentee.new())
        # a server that stays down: the reminder goes back in the queue, not in the bin
        w.rs.sleep = t.sleep
        await log_episode(w.service, MENTOR, w.time.now.date())
        standin.fault_502 = 1.0
        await w.sweep_at(BASE.replace(hour=14))
        row = (await w.rows(Kind.REFLECTION))[-1]
        assert row["status"] == "pending" and row["reason"] == "retry"
        assert row["due_at"] == iso(BASE.replace(hour=14, minute=5))
        assert standin.fault_counts["502"] == 4  # four tries, with backoff between them
        standin.fault_502 = 0.0
        await w.sweep_at(BASE.replace(hour=14, minute=5))
        assert "/reflect" in texts(w.mentee.new())


# -- the JobQueue ----------------------------------------------------------------------
async def test_one_named_sweep_job_with_grace_and_coalescing(store: Store, cohort: Cohort) -> None:
    async with running_app(store) as (app, _):
        await install(app)  # a second call (another post_init) adds nothing
        assert app.job_queue is not None
        # (on PostgreSQL the digest schedules' sync job runs beside it: bot/coordinator.py)
        jobs = [j for j in app.job_queue.jobs() if j.name != SYNC_JOB]
        assert [j.name for j in jobs] == [SWEEP_JOB]
        job = jobs[0].job
        assert job.id == SWEEP_JOB and job.misfire_grace_time == 3600 and job.coalesce
        assert JOB_KWARGS["coalesce"] is True
        for name in [j.name for j in jobs]:
            assert name is not None and not any(ch.isdigit() for ch in name)


async def test_a_late_sweep_runs_once_instead_of_being_dropped(
    store: Store, cohort: Cohort
) -> None:
    async with running_app(store) as (app, _):
        rs: ReminderJobs = app.bot_data[REMINDERS_KEY]
        runs: list[int] = []
        done = asyncio.Event()

        async def counted() -> Any:
            runs.append(1)
            done.set()

        rs.sweep = counted  # type: ignore[method-assign]
        assert app.job_queue is not None
        (job,) = app.job_queue.get_jobs_by_name(SWEEP_JOB)
        # The loop was stuck for over three minutes: three runs missed, the last by 20 s,
        # far beyond APScheduler's default one-second grace.
        job.job.modify(next_run_time=datetime.now(UTC) - timedelta(seconds=200))
        await app.job_queue.start()
        try:
            await asyncio.wait_for(done.wait(), 2)
            await asyncio.sleep(0.05)
        finally:
            await app.job_queue.stop(wait=False)
        assert runs == [1]


# -- erasure ---------------------------------------------------------------------------
async def test_erasure_deletes_a_persons_reminders_and_preferences(
    store: Store, cohort: Cohort
) -> None:
    async with world(store, cohort, waves=True) as w:
        await w.mentee.send("/quiet 22-7")
        mentee_id = await w.pid(MENTEE)
        assert [r for r in await w.rows() if r["participant_id"] == mentee_id]
        report = await store.erase(mentee_id)
        assert report.deleted["reminders"] > 0 and report.deleted["reminder_prefs"] == 1
        assert not [r for r in await w.rows() if r["participant_id"] == mentee_id]
        # the rest carries on
        await w.sweep_at(BASE.replace(hour=10))
        assert "starting check-in" in texts(w.mentor.new())


async def test_texts_for_every_kind_exist_and_do_not_shadow_others() -> None:
    for key in (
        "rem_reflection",
        "rem_quiet_mentee",
        "rem_quiet_mentor",
        "rem_wave",
        "rem_check",
        "rem_chemistry",
    ):
        assert key in TEXTS.messages
    assert {"close", "extend", "quiet"} <= set(TEXTS.commands)
    assert TEXTS.commands["close"].roles == ("coordinator",)
