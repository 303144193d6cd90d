"""The "about you" questions (issue 14): asked once after the first starting check-in, only
with consent to the evaluation, every answer sealed with the person's key as it is given,
shown by /mydata and gone with erasure."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conversations.catalogue import load_flows
from conversations.mydata import collect
from storage.crypto import DecryptionError
from storage.store import Store
from tests.people import Cohort, Person


async def baseline(person: Person) -> None:
    await person.cmd("checkin")
    assert "two short questions" in person.said
    await person.say("Someone to think with")
    await person.say("How to lead a team")
    await person.cmd("skip")
    await person.tap("Save")


async def test_asked_once_after_the_starting_checkin_and_each_answer_sealed(
        cohort: Cohort, store: Store, db_path: Path) -> None:
    mentee = await cohort.joined_mentee()
    await baseline(mentee)
    assert "Saved" in mentee.said and "Which staff group are you in?" in mentee.said
    assert "Prefer not to say" in [b.label for r in mentee.last.replies for row in r.buttons
                                   for b in row]
    await mentee.tap("Allied health professional")
    me = await store.participants.by_user(7001)
    assert me is not None
    # saved the moment it is given, before the flow ends
    assert await store.context.of(me.id) == {"staff_group": "allied_health"}
    await mentee.tap("Prefer not to say")  # band
    await mentee.cmd("back")
    assert "Your answer so far: Prefer not to say" in mentee.said
    await mentee.cmd("skip")  # changed their mind: nothing is kept for the band
    assert await store.context.of(me.id) == {"staff_group": "allied_health"}
    await mentee.tap("Mental health")
    await mentee.cmd("cancel")
    assert "won't ask these again" in mentee.said

    # on disk: only ciphertext, bound to its question and person
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute("SELECT question, answer_ct FROM participant_context "
                            "WHERE participant_id=? ORDER BY question", (me.id,)).fetchall()
    finally:
        conn.close()
    assert [q for q, _ in rows] == ["asked", "sector", "staff_group"]
    raw = b"".join(ct or b"" for _, ct in rows)
    assert b"allied" not in raw and b"mental" not in raw
    assert db_path.read_bytes().find(b"allied_health") == -1
    sector = next(ct for q, ct in rows if q == "sector")
    with pytest.raises(DecryptionError):  # moved to another question, it does not open
        await store.vault.decrypt(me.id, "participant_context", "staff_group", "answer", sector)

    # asked once: a later starting check-in (here: the same one, again) does not ask
    await store.db.execute("DELETE FROM entries WHERE participant_id=?", (me.id,))
    await baseline(mentee)
    assert "Saved" in mentee.said and "staff group" not in mentee.said

    # /mydata hands the answers over, in words; erasure deletes them
    data = await collect(store, me, load_flows())
    assert {a["answer"] for a in data["about_your_role"]} == {"Allied health professional",
                                                              "Mental health"}
    report = await store.erase(me.id)
    assert report.deleted["participant_context"] == 3
    assert await store.db.scalar("SELECT COUNT(*) FROM participant_context") == 0


async def test_not_asked_without_consent_to_the_evaluation(cohort: Cohort, store: Store) -> None:
    mentee = cohort.person(7001)
    await mentee.start(cohort.mentee_code)
    await mentee.tap("Yes, keep them")
    for answer in ("Yes", "No", "Yes"):  # summaries yes, evaluation no, research yes
        await mentee.tap(answer)
    await baseline(mentee)
    assert "Saved" in mentee.said and "staff group" not in mentee.said
    me = await store.participants.by_user(7001)
    assert me is not None
    assert not await store.context.asked(me.id)
    assert await store.db.scalar("SELECT COUNT(*) FROM participant_context") == 0


async def test_any_other_command_ends_the_questions_and_keeps_the_answers(
        cohort: Cohort, store: Store) -> None:
    mentor = await cohort.joined_mentor()
    await baseline(mentor)
    assert "Which staff group" in mentor.said
    await mentor.tap("Medical or dental")
    await mentor.tap("Consultant, GP or SAS doctor")
    await mentor.tap("Community services")
    await mentor.tap("4 to 10 years")
    assert "Is your mentee from another organisation" in mentor.said  # asked of the partner
    await mentor.cmd("history")  # moving on: the questions end, nothing is lost
    assert "You're in the middle" not in mentor.said
    me = await store.participants.by_user(7002)
    assert me is not None
    assert await store.context.of(me.id) == {"band": "doctor_senior", "sector": "community",
                                             "staff_group": "medical_dental",
                                             "years_in_role": "y4_10"}
