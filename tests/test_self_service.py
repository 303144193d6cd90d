"""Issue-3 flows end to end through the service: OSKAR, episode log, check-ins, history,
my data, consent changes, withdrawal and erasure, safety signposting, pause and time zone."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from conversations.catalogue import load_flows
from conversations.safety import shows_risk
from conversations.scripted import walk
from storage.crypto import KeyRing
from storage.db import iso, utcnow
from storage.models import Role, Scope
from storage.store import Store
from tests.people import GROW_ANSWERS, Cohort

pytestmark = pytest.mark.both_backends

FLOWS = load_flows()


async def test_oskar_remembers_choice_and_shows_last_score(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee(framework=None)
    await mentee.cmd("reflect")
    assert "Which reflection would you like" in mentee.said
    await mentee.choose_framework("OSKAR")
    assert "OSKAR reflection from now on" in mentee.said and "(1/4) Outcome" in mentee.said
    await mentee.say("Feel ready for the panel")
    assert "0 (nowhere) to 10" in mentee.said and "Last time" not in mentee.said
    assert len(mentee.last.replies[-1].buttons[0]) == 6  # the 0-10 keypad
    await mentee.say("eleven")
    assert "tap a number from 0 to 10" in mentee.said
    await mentee.tap("4")
    for text in ("My mentor's questions", "Practise answers by Friday"):
        await mentee.say(text)
    await mentee.skip_to_summary()
    assert "Scaling: 4/10" in mentee.said
    await mentee.tap("Save")
    await mentee.cmd("reflect")  # remembered: straight into OSKAR
    assert "(1/4) Outcome" in mentee.said
    await mentee.say("Next outcome")
    assert "Last time you said 4." in mentee.said
    await mentee.tap("6")
    await mentee.say("know-how")
    await mentee.say("action")
    assert "Last time your next step was: Practise answers by Friday" in mentee.said


async def test_mentor_logs_an_episode_without_a_mentee(cohort: Cohort, store: Store) -> None:
    code = await store.programmes.create_invite(cohort.programme_id, Role.MENTOR)
    mentor = cohort.person(7300, "Informal")
    await mentor.start(code)
    await mentor.consent_all()
    await mentor.cmd("log")
    resp = await walk(
        mentor.service,
        mentor.sender,
        FLOWS["episode_log"],
        mentor.last,
        {
            "when": "_yesterday",
            "kind": "EP_INFORMAL_CONTACT",
            "mode": "MODE_PHONE",
            "topics": ["TOPIC_WORKLOAD", "TOPIC_STRESS"],
            "phase": "unsure",
            "climate": "SC_GROWTH",
            "learned": "Listening more than talking",
        },
    )
    assert any("Logged" in r.text for r in resp.replies)
    entry = (await store.entries.of(1))[0]
    assert entry.pair_id is None and entry.status == "complete"
    answers = await store.entries.answers(1, entry.id)
    assert answers["kind"] == "EP_INFORMAL_CONTACT"
    assert answers["when"] == (utcnow().date() - timedelta(days=1)).isoformat() or answers["when"]
    assert answers["topics"] == {"selected": ["TOPIC_WORKLOAD", "TOPIC_STRESS"]}


async def test_checkin_waves(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await cohort.joined_mentor()
    await mentee.cmd("checkin")
    assert "two short questions" in mentee.said  # baseline at joining
    for text in ("Support", "Confidence"):
        await mentee.say(text)
    await mentee.cmd("skip")
    await mentee.tap("Save")
    await mentee.cmd("checkin")
    assert "3-month check-in, around" in mentee.said
    # four months later the 3-month check-in is due, with the versioned question set
    await store.db.execute("UPDATE pairs SET matched_at=?", (iso(utcnow() - timedelta(days=125)),))
    await mentee.cmd("checkin")
    assert "Your 3-month check-in" in mentee.said
    answers = {s.id: f"answer {s.id}" for s in FLOWS["checkin"].steps if not s.optional}
    await walk(mentee.service, mentee.sender, FLOWS["checkin"], mentee.last, answers)
    rows = await store.db.fetchall("SELECT wave, flow_version FROM entries ORDER BY id")
    assert [(r["wave"], r["flow_version"]) for r in rows] == [("baseline", "qs-1"), ("m3", "qs-1")]
    await mentee.cmd("checkin")
    assert "6-month check-in" in mentee.said


@pytest.mark.parametrize(
    "text",
    ["I've been having thoughts of ending it all", "Honestly I don't want to be here anymore"],
)
async def test_signposting_replies_at_once_and_flow_continues(
    cohort: Cohort, store: Store, text: str
) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.cmd("reflect")
    await mentee.say("goal")
    await mentee.say(text)
    assert mentee.last.signposted
    assert (
        "116 123" in mentee.said and "GP" in mentee.said and "occupational health" in mentee.said
    )
    assert "(3/4) Options" in mentee.said  # not ended abruptly
    flagged = await store.entries.flagged_steps(1, (await store.entries.of(1))[0].id)
    assert flagged == {"reality"}


def test_safety_rule_ignores_figures_of_speech() -> None:
    assert not shows_risk("I'm killing it at work and dying to try the new clinic")
    assert shows_risk("I can't cope anymore")


async def test_history_open_edit_delete_and_pages(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    for n in range(7):
        await mentee.grow({**GROW_ANSWERS, "goal": f"goal {n}"})
    await mentee.cmd("history")
    assert "page 1 of 2" in mentee.said
    await mentee.tap("Older »")
    assert "page 2 of 2" in mentee.said
    await mentee.tap("« Newer")
    first = mentee.last.replies[-1].buttons[0][0].label
    await mentee.tap(first)
    assert "Goal: goal 6" in mentee.said  # newest first
    await mentee.tap("Edit Goal")
    await mentee.say("goal six, edited")
    await mentee.tap("Save")
    newest = (await store.entries.of(1))[0]
    assert (await store.entries.answers(1, newest.id))["goal"] == "goal six, edited"
    assert newest.status == "complete"
    await mentee.cmd("history")
    await mentee.tap(mentee.last.replies[-1].buttons[0][0].label)
    stale_delete = mentee.button("Delete")
    await mentee.tap("Delete")
    await mentee.tap("Yes, delete it")
    assert "Deleted." in mentee.said and len(await store.entries.of(1)) == 6
    await mentee.press_raw(stale_delete)
    assert "earlier message" in mentee.said and len(await store.entries.of(1)) == 6


async def test_history_cannot_reach_anyone_elses_entry(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow()
    mentor = await cohort.joined_mentor()
    await mentor.log_session()
    await mentor.cmd("history")
    seq = mentor.last.replies[-1].buttons[0][0].data.split(":")[0]
    mentee_entry = (await store.entries.of(1))[0].id
    await mentor.press_raw(f"{seq}:o{mentee_entry}")
    assert "no longer exists" in mentor.said
    assert GROW_ANSWERS["goal"] not in mentor.said


async def test_mydata_is_complete_and_only_mine(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee(name="Robin")
    await mentee.grow()
    mentor = await cohort.joined_mentor(name="Morgan")
    await mentor.log_session("MENTOR-ONLY-TEXT")
    await mentee.cmd("mydata")
    docs = {d.filename: d.content for d in mentee.last.documents}
    data = json.loads(docs["mentorbot-my-data.json"])
    assert data["about_you"]["name"] == "Robin" and data["about_you"]["role"] == "mentee"
    answers = {a["step"]: a["answer"] for a in data["entries"][0]["answers"]}
    assert answers["goal"] == GROW_ANSWERS["goal"]
    assert len(data["consent_decisions"]) == 4
    rows = list(csv.DictReader(io.StringIO(docs["mentorbot-my-data.csv"].decode())))
    assert {r["answer"] for r in rows} >= set(GROW_ANSWERS.values())
    blob = b"".join(docs.values())
    assert b"MENTOR-ONLY-TEXT" not in blob and b"Morgan" not in blob


async def test_withdraw_one_scope_applies_backwards(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow()
    assert 1 in await store.consent.consenting(Scope.RESEARCH_EXPORT)
    await mentee.cmd("withdraw")
    await mentee.tap("Stop research use")  # one tap after the command
    assert "Research is now off" in mentee.said
    assert 1 not in await store.consent.consenting(Scope.RESEARCH_EXPORT)
    assert 1 in await store.consent.consenting(Scope.EVALUATION)
    assert (await store.entries.of(1))[0].status == "complete"  # data kept


@pytest.mark.sqlite_only  # the SQLite files themselves
async def test_erasure_really_erases(
    cohort: Cohort, store: Store, db_path: Path, master_key: bytes, tmp_path: Path
) -> None:
    mentee = await cohort.joined_mentee(name="Robin")
    await mentee.grow()
    await mentee.cmd("reflect")
    await mentee.say("an unfinished draft")
    await mentee.cmd("cancel")
    mentor = await cohort.joined_mentor(name="Morgan")
    await mentor.log_session("kept for the mentor")
    await store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = tmp_path / "before-erasure.sqlite3"
    shutil.copy(db_path, before)

    await mentee.cmd("withdraw")
    await mentee.tap("Erase everything")
    await mentee.tap("Yes, erase everything")  # two taps after the command
    assert "Erased. I deleted:" in mentee.said and "data key is destroyed" in mentee.said
    assert "entries" in mentee.said and "I kept: one consent-ledger line" in mentee.said

    # no table has a row linked to the mentee (participant id 1)
    assert await store.participants.get(1) is None
    for table, column in (
        ("entries", "participant_id"),
        ("conversation_state", "participant_id"),
        ("audit_log", "participant_id"),
        ("consent_ledger", "participant_id"),
        ("invites", "used_by"),
    ):
        assert await store.db.scalar(f"SELECT COUNT(*) FROM {table} WHERE {column}=1") == 0
    assert (
        await store.db.scalar(
            "SELECT COUNT(*) FROM answers WHERE entry_id NOT IN (SELECT id FROM entries)"
        )
        == 0
    )
    assert await store.db.scalar("SELECT COUNT(*) FROM pairs WHERE mentee_id=1") == 0
    kept = await store.db.fetchall("SELECT * FROM consent_ledger WHERE participant_id IS NULL")
    assert len(kept) == 1 and kept[0]["source"] == "erasure"

    # The erasure's ledger line names no reference found in the older copy.
    assert kept[0]["subject_ref"].encode() not in before.read_bytes()
    with sqlite3.connect(before) as conn:
        mentee_ref = conn.execute("SELECT subject_ref FROM participants WHERE id=1").fetchone()[0]
        assert conn.execute("SELECT COUNT(*) FROM entries WHERE participant_id=1").fetchone()[0]
    assert await store.db.scalar(
        "SELECT COUNT(*) FROM keys.data_keys WHERE subject_ref=?", (mentee_ref,)
    ) == 0  # crypto-shredded: nothing of the mentee's in the copy can be decrypted

    # The copy taken before erasure, opened with the current keys (the live key store and
    # master key), as a restore would: the erasure recorded in the key store is applied
    # again, so the mentee is gone from it too; the mentor's entries still decrypt.
    old = await Store.open(
        before,
        KeyRing(master_key),
        load_flows()["consent"].version,
        keystore=store.db.keystore,
        create=False,
    )
    try:
        assert await old.participants.get(1) is None
        assert await old.participants.by_user(mentee.sender.user_id) is None
        for table in ("entries", "consent_ledger", "audit_log"):
            assert await old.db.scalar(
                f"SELECT COUNT(*) FROM {table} WHERE participant_id=1"
            ) == 0
        assert GROW_ANSWERS["goal"].encode() not in before.read_bytes()
        mentor_entry = (await old.entries.of(2))[0]
        assert (await old.entries.answers(2, mentor_entry.id))["learned"] == "kept for the mentor"
    finally:
        await old.close()
    # the mentor is untouched in the live database
    live = (await store.entries.of(2))[0]
    assert (await store.entries.answers(2, live.id))["learned"] == "kept for the mentor"
    # and the key store no longer holds the mentee's data key
    assert await store.db.scalar("SELECT COUNT(*) FROM keys.data_keys") == 1


async def test_consent_change_and_reask(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.cmd("consent")
    assert "Evaluation: yes" in mentee.said
    await mentee.tap("Yes, keep them")
    await mentee.tap("No")  # summaries
    await mentee.tap("Yes")
    await mentee.tap("No")  # research
    assert "Programme summaries: no" in mentee.said and "Research: no" in mentee.said
    store.consent.current_version = "2099-01-v2"
    await mentee.cmd("history")  # next interaction asks again
    assert "consent text has changed" in mentee.said


async def test_pause_resume_and_timezone(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.cmd("pause")
    assert (await store.participants.get(1)).status == "paused"  # type: ignore[union-attr]
    await mentee.cmd("resume")
    assert (await store.participants.get(1)).status == "active"  # type: ignore[union-attr]
    await mentee.cmd("timezone")
    await mentee.say("Mars/Olympus_Mons")
    assert "don't know the time zone" in mentee.said
    await mentee.cmd("timezone")
    await mentee.say("Asia/Kolkata")
    assert (await store.participants.get(1)).timezone == "Asia/Kolkata"  # type: ignore[union-attr]
    await mentee.cmd("timezone")
    await mentee.tap("Ireland (Dublin)")
    assert (await store.participants.get(1)).timezone == "Europe/Dublin"  # type: ignore[union-attr]
