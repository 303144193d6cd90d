"""The transport-free service: onboarding, consent and GROW, including every way out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conversations.catalogue import load_flows
from conversations.service import Service
from storage.crypto import KeyRing
from storage.db import iso, utcnow
from storage.models import Scope
from storage.store import Store
from tests.conftest import Place
from tests.people import GROW_ANSWERS, Cohort

# the flow, report and export suites run on both backends (issue #20)
pytestmark = pytest.mark.both_backends


async def test_pair_joins_and_consents(cohort: Cohort, store: Store) -> None:
    mentor = cohort.person(7002, "Morgan")
    await mentor.start(cohort.mentor_code)
    assert "joined Test programme as a mentor" in mentor.said
    assert mentor.last.menu_role == "mentor"
    mentee = cohort.person(7001, "Robin")
    await mentee.start(cohort.mentee_code)
    assert "pair is now complete" in mentee.said
    await mentee.consent_all()
    assert "Your choices are saved" in mentee.said
    pair = await store.programmes.pair(cohort.pair_id)
    assert pair is not None and pair.state == "matched" and pair.mentor_id and pair.mentee_id
    rows = await store.db.fetchall("SELECT scope, granted FROM consent_ledger ORDER BY id")
    assert [(r["scope"], r["granted"]) for r in rows] == [
        ("participate", 1),
        ("programme_summary", 1),
        ("evaluation", 1),
        ("research_export", 1),
    ]


async def test_full_grow_reflection_saves_each_answer(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.cmd("reflect")
    assert "(1/4) Goal" in mentee.said
    await mentee.say(GROW_ANSWERS["goal"])
    entry = (await store.entries.of(1))[0]
    # written when given, before the flow ends
    assert await store.entries.answers(1, entry.id) == {"goal": GROW_ANSWERS["goal"]}
    assert entry.status == "draft"
    for step in ("reality", "options", "will"):
        await mentee.say(GROW_ANSWERS[step])
    assert "/skip" in mentee.said
    await mentee.cmd("skip")  # anything else?
    await mentee.tap("Their experience")  # self-coding: toggles redraw in place
    assert mentee.last.replies[-1].replace
    await mentee.tap("Good questions")
    await mentee.tap("✓ Their experience")  # untoggle
    await mentee.tap("Done")
    await mentee.tap("A skill")
    await mentee.say("networking beyond my trust")  # typed "other"
    await mentee.tap("− No time")
    await mentee.tap("Done")
    assert "Here is your GROW reflection" in mentee.said
    assert "What helped: Good questions" in mentee.said
    await mentee.tap("Save")
    assert "Saved" in mentee.said
    entry = (await store.entries.of(1))[0]
    assert entry.status == "complete"
    assert await store.entries.answers(1, entry.id) == GROW_ANSWERS | {
        "helped": {"selected": ["M_DM_TECHNIQUES"]},
        "learning": {"selected": ["DOM_SKILL"], "other": "networking beyond my trust"},
        "factors": {"selected": ["HIN_TIME_CONSTRAINTS"]},
    }


async def test_back_skip_and_edit_from_summary(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.cmd("reflect")
    await mentee.cmd("back")
    assert "first question" in mentee.said
    await mentee.cmd("skip")
    assert "can't be skipped" in mentee.said
    await mentee.say("first goal")
    await mentee.cmd("back")
    assert "Your answer so far: first goal" in mentee.said
    await mentee.say("better goal")
    for text in ("r", "o", "w", "extra"):
        await mentee.say(text)
    await mentee.skip_to_summary()
    await mentee.tap("Edit")
    await mentee.tap("Reality")
    await mentee.say("reality, edited")
    assert "Reality: reality, edited" in mentee.said  # straight back to the summary
    await mentee.tap("Save")
    answers = await store.entries.answers(1, (await store.entries.of(1))[0].id)
    assert answers["goal"] == "better goal" and answers["reality"] == "reality, edited"


async def test_cancel_keeps_a_draft_that_can_be_resumed_or_restarted(
    cohort: Cohort, store: Store
) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.cmd("reflect")
    await mentee.say("goal text")
    await mentee.cmd("cancel")
    assert "kept as a draft" in mentee.said
    await mentee.cmd("reflect")
    await mentee.tap("Carry on")
    assert "(2/4) Reality" in mentee.said
    await mentee.cmd("cancel")
    await mentee.cmd("reflect")
    await mentee.tap("Start again")
    assert "(1/4) Goal" in mentee.said
    entries = await store.entries.of(1)
    assert len(entries) == 1 and await store.entries.answers(1, entries[0].id) == {}


async def test_restart_mid_flow_resumes_at_same_step(
    cohort: Cohort, store: Store, place: Place, master_key: bytes
) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.cmd("reflect")
    await mentee.say("goal before restart")
    await mentee.say("reality before restart")
    # a brand-new store and service on the same file: nothing carried over in memory
    fresh = await place.open(KeyRing(master_key), load_flows()["consent"].version)
    try:
        mentee.service = Service(fresh)
        await mentee.say("options after restart")
        assert "(4/4) Will" in mentee.said
        await mentee.say("will")
        await mentee.skip_to_summary()
        await mentee.tap("Save")
        entry = (await fresh.entries.of(1))[0]
        answers = await fresh.entries.answers(1, entry.id)
        assert answers["goal"] == "goal before restart"
        assert answers["options"] == "options after restart"
    finally:
        await fresh.close()


async def test_idle_flow_is_closed_as_a_draft(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.cmd("reflect")
    await mentee.say("goal")
    mentee.service.clock = lambda: utcnow() + timedelta(hours=13)
    await mentee.say("a late message")
    assert "paused after a long break" in mentee.said
    assert (await store.entries.of(1))[0].status == "draft"


async def test_declining_participation_blocks_reflection(cohort: Cohort, store: Store) -> None:
    mentee = cohort.person(7001)
    await mentee.start(cohort.mentee_code)
    await mentee.tap("No")
    assert "won't keep any reflections" in mentee.said
    await mentee.cmd("reflect")
    assert "need your consent" in mentee.said
    assert await store.db.scalar("SELECT COUNT(*) FROM entries") == 0


async def test_new_consent_version_asks_again(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    store.consent.current_version = "2099-01-v2"
    state = await store.consent.state(1)
    assert state.allows(Scope.PARTICIPATE) and not state.allows(Scope.EVALUATION)
    await mentee.cmd("reflect")
    assert "consent text has changed" in mentee.said


async def test_bad_invites(cohort: Cohort, store: Store) -> None:
    await cohort.joined_mentee()
    late = cohort.person(7100)
    await late.start(cohort.mentee_code)
    assert "already been used" in late.said
    await late.start("not-a-real-code-at-all")
    assert "isn't one I know" in late.said
    await store.db.execute(
        "UPDATE invites SET expires_at=? WHERE used_at IS NULL",
        (iso(utcnow() - timedelta(days=1)),),
    )
    await late.start(cohort.mentor_code)
    assert "expired" in late.said
    for _ in range(5):
        await late.start("wrongwrongwrong")
    assert "Too many wrong codes" in late.said
    assert await store.db.scalar("SELECT COUNT(*) FROM participants") == 1


async def test_wrong_role_unknown_and_out_of_place_commands(cohort: Cohort) -> None:
    mentor = await cohort.joined_mentor()
    await mentor.cmd("reflect")
    assert "/reflect is for mentees" in mentor.said
    await mentor.cmd("frobnicate")
    assert "I don't know /frobnicate" in mentor.said
    await mentor.cmd("back")
    assert "nothing in progress" in mentor.said
    stranger = cohort.person(9999)
    await stranger.cmd("reflect")
    assert "open the invite link" in stranger.said


async def test_stale_and_forged_buttons_change_nothing(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    for step in ("goal", "reality", "options", "will"):
        if step == "goal":
            await mentee.cmd("reflect")
        await mentee.say(GROW_ANSWERS[step])
    await mentee.skip_to_summary()
    save = mentee.button("Save")
    await mentee.tap("Edit")
    await mentee.press_raw(save)  # the summary's button, now stale
    assert "earlier question" in mentee.said
    for forged in ("", "x", "999:_save", "1:" + "A" * 80, "0:../../etc", "abc:def"):
        await mentee.press_raw(forged)
        assert mentee.last.changed is False
    assert (await store.entries.of(1))[0].status == "draft"


async def test_over_long_text_is_refused_whole(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.cmd("reflect")
    await mentee.say("x" * 20_000)
    assert "too long" in mentee.said
    await mentee.say("x" * 5000)  # a paste the Telegram adapter joined: judged whole
    assert "That's 5,000 characters; the limit here is 2,000" in mentee.said
    await mentee.say("y" * 2500)
    assert "limit here is 2,000" in mentee.said
    assert await store.db.scalar("SELECT COUNT(*) FROM answers") == 0


def test_steps_that_take_typed_text_say_so() -> None:
    """Free text on a button step is taken only where the question invites it."""
    from conversations.catalogue import load_flows

    for flow in load_flows().values():
        for step in flow.steps:
            if step.allow_other:
                assert "type" in step.prompt.lower(), (flow.id, step.id)
