"""The "about you" questions (issue 14): asked once after the first starting check-in, only
with consent to the evaluation, every answer sealed with the person's key as it is given,
shown by /mydata and gone with erasure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conversations.catalogue import load_flows
from conversations.mydata import collect
from storage.crypto import DecryptionError
from storage.models import Role
from storage.store import Store
from tests.conftest import Place
from tests.people import Cohort, Person
from tests.support.harness import TgUser, running_app

# the answers are stored through storage/participant_context.py: every test here runs on
# SQLite and on PostgreSQL
pytestmark = pytest.mark.both_backends


async def baseline(person: Person) -> None:
    await person.cmd("checkin")
    assert "two short questions" in person.said
    await person.say("Someone to think with")
    await person.say("How to lead a team")
    await person.cmd("skip")
    await person.tap("Save")


async def test_asked_once_after_the_starting_checkin_and_each_answer_sealed(
        cohort: Cohort, store: Store, place: Place) -> None:
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

    # as stored: only ciphertext, bound to its question and person
    rows = [(q, bytes(ct) if ct is not None else None) for q, ct in await store.db.fetchall(
        "SELECT question, answer_ct FROM participant_context WHERE participant_id=? "
        "ORDER BY question", (me.id,))]
    assert [q for q, _ in rows] == ["asked", "sector", "staff_group"]
    raw = b"".join(ct or b"" for _, ct in rows)
    assert b"allied" not in raw and b"mental" not in raw
    assert (await stored(store, place)).find(b"allied_health") == -1
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


# -- /aboutme: answering later, changing an answer (through the real Application) ----------

def said(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


async def stored(store: Store, place: Place) -> bytes:
    """What the store holds of the answers, as bytes: on SQLite the database file and any
    journal beside it; on PostgreSQL (whose files are the server's) every column of the
    participant_context table as stored."""
    if isinstance(place.db, Path):
        return b"".join(p.read_bytes() for p in place.db.parent.glob(place.db.name + "*"))
    rows = await store.db.fetchall("SELECT * FROM participant_context")
    return b"".join(v if isinstance(v, bytes) else bytes(v) if isinstance(v, memoryview)
                    else str(v).encode() for row in rows for v in row)


async def held(store: Store, user_id: int) -> dict[str, str]:
    me = await store.participants.by_user(user_id)
    assert me is not None
    return await store.context.of(me.id)


async def test_aboutme_answers_later_changes_one_answer_and_seals_them(
        cohort: Cohort, store: Store, place: Place) -> None:
    async with running_app(store) as (app, standin):
        mentee = TgUser(app, standin, 600_010, "Robin")
        await mentee.join(cohort.mentee_code)
        first = said(await mentee.send("/aboutme"))
        assert "You haven't answered these yet" in first and "Which staff group" in first
        await mentee.tap("Nursing or midwifery")
        await mentee.tap("Prefer not to say")  # band
        await mentee.send("/skip")  # sector
        assert "Is your mentor from another" in said(await mentee.tap("1 to 3 years"))
        await mentee.send("/skip")
        summary = said(await mentee.tap("Yes, my own idea"))
        assert "• Band or grade: Prefer not to say" in summary and "Where you work" not in summary
        assert await held(store, 600_010) == {}  # nothing written before Save
        assert "/aboutme changes your answers" in said(await mentee.tap("Save"))
        assert await held(store, 600_010) == {
            "band": "prefer_not", "own_choice": "own_idea", "staff_group": "nursing_midwifery",
            "years_in_role": "y1_3"}

        # later: the answers held are shown, and one of them is changed
        again = said(await mentee.send("/aboutme"))
        assert "• Staff group: Nursing or midwifery" in again
        assert "• Years in role: 1 to 3 years" in again
        assert "Your answer so far: Nursing or midwifery" in again
        await mentee.tap("Keep this answer")
        await mentee.tap("Band 7")
        await mentee.tap("Hospital (acute)")  # answered now, for the first time
        await mentee.tap("Keep this answer")  # years in role
        await mentee.send("/skip")  # cross-boundary: still unanswered
        summary = said(await mentee.tap("Prefer not to say"))  # own choice, changed
        assert "• Band or grade: Band 7" in summary and "• Joining: Prefer not to say" in summary
        assert "Here are your answers about your role:" in summary
        assert "your about you" not in summary.lower()
        await mentee.tap("Save")
        assert await held(store, 600_010) == {
            "band": "band_7", "own_choice": "prefer_not", "sector": "acute",
            "staff_group": "nursing_midwifery", "years_in_role": "y1_3"}

        # only ciphertext as stored (on SQLite: anywhere in its files)
        disk = await stored(store, place)
        assert len(disk) > 100
        for value in (b"nursing_midwifery", b"band_7", b"y1_3", b"Band 7"):
            assert disk.find(value) == -1

        # /mydata hands over the new answers
        await mentee.send("/mydata")
        docs = {d["filename"]: d for d in standin.documents(mentee.user_id)}
        data = json.loads(docs["mentorbot-my-data.json"]["content"])
        role = {a["question"]: a["answer"] for a in data["about_your_role"]}
        assert role["What is your band or grade?"] == "Band 7"
        assert role["Where do you mainly work?"] == "Hospital (acute)"
        assert role["Was joining this programme your own choice?"] == "Prefer not to say"

        # put to the person: the starting check-in will not ask them again
        me = await store.participants.by_user(600_010)
        assert me is not None and await store.context.asked(me.id)


async def test_aboutme_cancel_or_undo_changes_nothing(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        mentee = TgUser(app, standin, 600_011, "Robin")
        await mentee.join(cohort.mentee_code)
        await mentee.send("/aboutme")
        await mentee.tap("Medical or dental")
        for _ in range(5):
            await mentee.send("/skip")
        await mentee.tap("Save")
        assert await held(store, 600_011) == {"staff_group": "medical_dental"}

        await mentee.send("/aboutme")
        await mentee.tap("Allied health professional")
        await mentee.tap("Band 5 or 6")
        assert "Nothing changed" in said(await mentee.send("/cancel"))
        assert await held(store, 600_011) == {"staff_group": "medical_dental"}

        await mentee.send("/aboutme")
        await mentee.send("/skip")  # would clear the staff group, if saved
        for _ in range(5):
            await mentee.send("/skip")
        assert "Nothing changed" in said(await mentee.tap("Undo my changes"))
        assert await held(store, 600_011) == {"staff_group": "medical_dental"}

        await mentee.send("/aboutme")
        await mentee.tap("Allied health professional")
        await mentee.send("/history")  # going on to something else: nothing changes
        assert await held(store, 600_011) == {"staff_group": "medical_dental"}

        await mentee.send("/aboutme")  # skipped and saved: that answer is no longer kept
        for _ in range(6):
            await mentee.send("/skip")
        await mentee.tap("Save")
        assert await held(store, 600_011) == {}


async def test_aboutme_refused_without_consent_to_the_evaluation(
        cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        mentee = TgUser(app, standin, 600_012, "Robin")
        await mentee.send(f"/start {cohort.mentee_code}")
        await mentee.tap("Yes, keep them")
        for answer in ("Yes", "No", "Yes"):  # summaries yes, evaluation no, research yes
            await mentee.tap(answer)
        replies = await mentee.send("/aboutme")
        text = said(replies)
        assert "only for the evaluation" in text and "/consent" in text
        assert not any(m.get("reply_markup") for m in replies)  # no questions to answer
        with pytest.raises(LookupError):
            mentee.find_button("Prefer not to say")
        me = await store.participants.by_user(600_012)
        assert me is not None and not await store.context.asked(me.id)
        assert await store.db.scalar("SELECT COUNT(*) FROM participant_context") == 0


async def test_aboutme_acts_on_the_membership_in_use(store: Store) -> None:
    programme = await store.programmes.create("North")
    invites = {}
    for pair in ("a", "b"):
        pair_id = await store.programmes.create_pair(programme.id)
        for role in (Role.MENTOR, Role.MENTEE):
            invites[pair, role] = await store.programmes.create_invite(programme.id, role,
                                                                       pair_id)
    async with running_app(store) as (app, standin):
        morgan = TgUser(app, standin, 630_101, "Morgan")
        await TgUser(app, standin, 630_102, "Robin").join(invites["a", Role.MENTEE])
        await TgUser(app, standin, 630_103, "Lee").join(invites["b", Role.MENTOR])
        await morgan.join(invites["a", Role.MENTOR])
        await morgan.join(invites["b", Role.MENTEE])  # a second membership, its own consent
        assert "Which is this about?" in said(await morgan.send("/aboutme"))
        asked = said(await morgan.tap("North: mentored by Lee"))
        assert "You haven't answered these yet" in asked
        await morgan.tap("Allied health professional")
        for _ in range(2):
            await morgan.send("/skip")
        assert "Is your mentor from another" in said(await morgan.send("/skip"))  # a mentee's
        await morgan.send("/skip")
        await morgan.send("/skip")
        await morgan.tap("Save")
        account = await store.participants.by_user(630_101)
        assert account is not None
        as_mentor, as_mentee = await store.participants.memberships(account)
        assert as_mentee.role is Role.MENTEE
        assert await store.context.of(as_mentee.id) == {"staff_group": "allied_health"}
        assert await store.context.of(as_mentor.id) == {}
        assert not await store.context.asked(as_mentor.id)
