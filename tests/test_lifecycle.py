"""A pair's lifecycle: events from the episode log, from answers and from coordinators."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.jobs import ReminderJobs
from conversations.service import Service
from conversations.waves import MONTH
from storage.db import iso
from storage.lifecycle import TERMINAL, Lifecycle, LifecycleError, fold, step
from storage.models import Role
from storage.reminder_queue import Kind
from storage.store import Store
from tests.people import Cohort, Person
from tests.test_reminders import BASE, FakeTime, log_episode, use

pytestmark = pytest.mark.both_backends


def test_states_move_forward_only_and_closing_is_final() -> None:
    assert fold([]) == "matched"
    assert fold(["chemistry_held", "session_held"]) == "active"
    assert fold(["session_held", "chemistry_held"]) == "active"  # a late chemistry log
    assert fold(["session_held", "contact", "still_meeting"]) == "active"
    assert fold(["session_held", "six_month_check", "extended"]) == "extended"
    assert fold(["session_held", "six_month_check", "extended", "six_month_check"]) == (
        "six_month_check"
    )
    for end in TERMINAL:
        assert fold(["session_held", end, "session_held", "extended"]) == end
    assert step("closed", "rematched") == "closed"


async def test_unknown_events_are_programming_errors(store: Store) -> None:
    with pytest.raises(LifecycleError):
        await Lifecycle(store.db).record(1, "teleported", at=BASE, source="system", now=BASE)


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime(now=BASE.replace(hour=10))


@pytest.fixture
def reminders(store: Store, service: Service, clock: FakeTime) -> ReminderJobs:
    rs = use(ReminderJobs(store, bot=None, texts=service.texts), clock)
    rs.attach(service)
    return rs


async def pair_up(cohort: Cohort) -> tuple[Person, Person, Person]:
    mentor = await cohort.joined_mentor(7002)
    mentee = await cohort.joined_mentee(7001)
    await cohort.store.db.execute(
        "UPDATE pairs SET matched_at=? WHERE id=?", (iso(BASE), cohort.pair_id)
    )
    code = await cohort.store.programmes.create_invite(cohort.programme_id, Role.COORDINATOR)
    lead = cohort.person(7003, "Lee")
    await lead.start(code)
    return mentor, mentee, lead


async def events(rs: ReminderJobs, pair_id: int) -> list[tuple[str, str]]:
    return [(e.event, e.source) for e in await rs.planner.lifecycle.history(pair_id)]


async def test_the_mentors_log_moves_the_pair_along(
    cohort: Cohort, reminders: ReminderJobs, service: Service, store: Store, clock: FakeTime
) -> None:
    await pair_up(cohort)
    await reminders.planner.plan()
    assert await reminders.planner.lifecycle.state(cohort.pair_id) == "matched"
    await log_episode(service, 7002, BASE.date(), "EP_CHEMISTRY_MEETING")
    assert await reminders.planner.lifecycle.state(cohort.pair_id) == "chemistry_held"
    clock.at(BASE + timedelta(days=25))
    await log_episode(service, 7002, (BASE + timedelta(days=20)).date())
    assert await reminders.planner.lifecycle.state(cohort.pair_id) == "active"
    history = await reminders.planner.lifecycle.history(cohort.pair_id)
    assert [(e.event, e.source) for e in history] == [
        ("matched", "system"),
        ("chemistry_held", "episode_log"),
        ("session_held", "episode_log"),
    ]
    # the event carries the day the mentor gave, not the day it was logged
    assert history[2].at == BASE.replace(day=22, hour=12)  # midday in London
    pair = await store.programmes.pair(cohort.pair_id)
    assert pair is not None and pair.state == "active"


async def test_saving_the_same_log_again_replaces_its_events(
    cohort: Cohort, reminders: ReminderJobs, service: Service, store: Store
) -> None:
    await pair_up(cohort)
    await log_episode(service, 7002, BASE.date(), "EP_FORMAL_SESSION")
    entry = (await store.entries.of(await _pid(store, 7002), "complete"))[0]
    me = await store.participants.by_user(7002)
    assert me is not None
    # what an edit from /history does: the same entry saved with a different kind
    await reminders.planner.on_saved(
        me, entry.id, "episode_log", {"when": "2026-03-02", "kind": "EP_INFORMAL_CONTACT"}
    )
    assert await events(reminders, cohort.pair_id) == [
        ("matched", "system"),
        ("contact", "episode_log"),
    ]
    prompt = await reminders.planner.repo.by_key(f"reflection:{entry.id}")
    assert prompt is not None and prompt.status == "cancelled"  # no longer a session


async def test_a_closing_session_closes_the_pair_and_cancels_its_nudges(
    cohort: Cohort, reminders: ReminderJobs, service: Service, store: Store
) -> None:
    await pair_up(cohort)
    await reminders.planner.plan()
    await log_episode(service, 7002, BASE.date(), "EP_CLOSING_SESSION")
    assert await reminders.planner.lifecycle.state(cohort.pair_id) == "closed"
    pending = [r for r in await reminders.planner.repo.pending() if r.pair_id == cohort.pair_id]
    assert {r.kind for r in pending} == {Kind.WAVE, Kind.REFLECTION}
    assert {r.detail.get("wave") for r in pending if r.kind is Kind.WAVE} >= {"closing"}


async def test_coordinator_closes_a_pair(
    cohort: Cohort, reminders: ReminderJobs, store: Store
) -> None:
    _, mentee, lead = await pair_up(cohort)
    await reminders.planner.plan()
    await lead.cmd("close")
    assert "Usage: /close" in lead.said and f"Open pairs: {cohort.pair_id}." in lead.said
    assert "Robin" not in lead.said and "Morgan" not in lead.said
    resp = await lead.service.command(lead.sender, "close", f"{cohort.pair_id}")
    assert f"Pair {cohort.pair_id} is now closed" in resp.replies[0].text
    assert await reminders.planner.lifecycle.state(cohort.pair_id) == "closed"
    pair = await store.programmes.pair(cohort.pair_id)
    assert pair is not None and pair.state == "closed"
    assert await store.programmes.closed_at(cohort.pair_id) == reminders.clock()
    kinds = {r.kind for r in await reminders.planner.repo.pending() if r.pair_id == cohort.pair_id}
    assert Kind.QUIET_PAIR not in kinds and Kind.SIX_MONTH not in kinds
    resp = await lead.service.command(lead.sender, "close", f"{cohort.pair_id}")
    assert "already closed" in resp.replies[0].text
    assert "pair_closed" in await store.audit.actions(await _pid(store, 7003))
    # only coordinators may close pairs, and refusing changes nothing
    await mentee.cmd("close")
    assert "/close is for coordinators" in mentee.said


async def test_rematch_is_a_no_fault_close(
    cohort: Cohort, reminders: ReminderJobs, store: Store
) -> None:
    _, _, lead = await pair_up(cohort)
    resp = await lead.service.command(lead.sender, "close", f"{cohort.pair_id} rematch")
    assert "no fault" in resp.replies[0].text
    assert await reminders.planner.lifecycle.state(cohort.pair_id) == "rematched"
    pair = await store.programmes.pair(cohort.pair_id)
    assert pair is not None and pair.state == "closed"  # open/closed for everyone else
    assert await store.programmes.pair_of(await _pid(store, 7001)) is None


async def test_coordinators_only_see_their_own_programme(
    cohort: Cohort, reminders: ReminderJobs, store: Store
) -> None:
    await pair_up(cohort)
    other = await store.programmes.create("Another trust")
    code = await store.programmes.create_invite(other.id, Role.COORDINATOR)
    stranger = cohort.person(7100, "Sam")
    await stranger.start(code)
    resp = await stranger.service.command(stranger.sender, "close", f"{cohort.pair_id}")
    assert f"no pair {cohort.pair_id} in your programme" in resp.replies[0].text
    unknown = await stranger.service.command(stranger.sender, "close", "999")
    assert unknown.replies[0].text.replace("999", "N") == resp.replies[0].text.replace(
        str(cohort.pair_id), "N"
    )
    assert await reminders.planner.lifecycle.state(cohort.pair_id) == "matched"


async def test_extend_moves_the_check_and_supersedes_the_old_one(
    cohort: Cohort, reminders: ReminderJobs, store: Store
) -> None:
    _, _, lead = await pair_up(cohort)
    await reminders.planner.plan()
    before = {r.dedupe_key for r in await reminders.planner.repo.pending([Kind.SIX_MONTH])}
    resp = await lead.service.command(lead.sender, "extend", f"{cohort.pair_id} 2")
    assert "extended by 2 month(s)" in resp.replies[0].text
    assert (BASE + 8 * MONTH).strftime("%d %b %Y") in resp.replies[0].text
    assert await reminders.planner.lifecycle.state(cohort.pair_id) == "extended"
    checks = await reminders.planner.repo.pending([Kind.SIX_MONTH])
    assert {r.due_at for r in checks} == {BASE + 8 * MONTH}
    assert all(r.detail == {"months": 8, "extended": True} for r in checks)
    for key in before:
        old = await reminders.planner.repo.by_key(key)
        assert old is not None and old.status == "cancelled" and old.reason == "superseded"
    bad = await lead.service.command(lead.sender, "extend", f"{cohort.pair_id} 40")
    assert "Usage: /extend" in bad.replies[0].text
    await lead.service.command(lead.sender, "close", f"{cohort.pair_id}")
    late = await lead.service.command(lead.sender, "extend", f"{cohort.pair_id}")
    assert "already closed" in late.replies[0].text


async def test_erasing_the_mentor_removes_events_from_their_logs_only(
    cohort: Cohort, reminders: ReminderJobs, service: Service, store: Store
) -> None:
    _, _, lead = await pair_up(cohort)
    await log_episode(service, 7002, BASE.date(), "EP_FORMAL_SESSION")
    await lead.service.command(lead.sender, "extend", f"{cohort.pair_id} 1")
    await store.erase(await _pid(store, 7002))
    assert await events(reminders, cohort.pair_id) == [
        ("matched", "system"),
        ("extended", "coordinator"),
    ]
    assert not await store.db.fetchall(
        "SELECT 1 FROM pair_events WHERE participant_id IS NOT NULL"
    )


async def _pid(store: Store, user_id: int) -> int:
    me = await store.participants.by_user(user_id)
    assert me is not None
    return me.id
