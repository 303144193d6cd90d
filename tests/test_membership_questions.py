"""People in several memberships (issue 15), through the real Application and the Bot API
stand-in: one question for the membership and the pair, forged or stale answers to it,
/settings across memberships, and a join waiting for approval beside another membership."""

from __future__ import annotations

import json

import pytest

from conversations.choices import choice_data, parse_choice
from storage.models import Role
from storage.store import JOIN_APPROVAL, Store
from tests.support.harness import TgUser, running_app
from tests.test_bot_flows import joined, said, walk
from tests.test_programmes import LOG

pytestmark = pytest.mark.both_backends

GROW = {"goal": "Lead the handover", "reality": "Short-staffed", "options": "Ask",
        "will": "Book time"}


async def _pair(store: Store, programme_id: int) -> tuple[int, str, str]:
    pair = await store.programmes.create_pair(programme_id)
    return (pair, await store.programmes.create_invite(programme_id, Role.MENTOR, pair),
            await store.programmes.create_invite(programme_id, Role.MENTEE, pair))


def _keyboard(user: TgUser) -> dict[str, str]:
    """The buttons of the bot's latest message: label -> callback data."""
    last = user.standin.sent_messages(user.user_id)[-1]
    return {b["text"]: b["callback_data"]
            for row in (last.get("reply_markup") or {}).get("inline_keyboard", []) for b in row}


def _questions(messages: list[dict[str, object]]) -> int:
    return sum(1 for m in messages if m.get("reply_markup"))


async def _rows(store: Store, sql: str, *args: object) -> list[tuple[object, ...]]:
    return [tuple(r) for r in await store.db.fetchall(sql, args)]


# -- the helper both questions read their buttons with ---------------------------------

def test_choice_data_round_trips_and_refuses_anything_else() -> None:
    offered = {"p": [12, 40], "m": [7]}
    for tag, item in (("p", 12), ("p", 40), ("m", 7)):
        assert parse_choice(choice_data(1733, tag, item), 1733, offered) == (tag, item)
    for forged in (
        "1732:p12",  # an earlier question
        "1733:p13", "1733:m12", "1733:x12",  # not offered, wrong tag, unknown tag
        "1733:p012", "01733:p12", "1733:p 12", " 1733:p12", "1733:p12 ", "1733:P12",
        "1733:p١٢", "1733:p-12", "1733:p", "1733:", "1733p12", "1733:p12:m7", "",
        "1733:p" + "9" * 40, "9" * 64,
    ):
        assert parse_choice(forged, 1733, offered) is None, forged
    with pytest.raises(ValueError):
        choice_data(1, "pp", 1)


# -- one question: which membership and which pair -------------------------------------

async def test_a_mentor_in_two_programmes_is_asked_once_which_pair(
        store: Store) -> None:
    north = await store.programmes.create("North")
    south = await store.programmes.create("South")
    n1, n1_mentor, n1_mentee = await _pair(store, north.id)
    n2, n2_mentor, n2_mentee = await _pair(store, north.id)
    s1, s1_mentor, s1_mentee = await _pair(store, south.id)
    other, other_mentor, _ = await _pair(store, north.id)
    async with running_app(store) as (app, standin):
        morgan = TgUser(app, standin, 670_001, "Morgan")
        sam = TgUser(app, standin, 670_002, "Sam")
        alex = TgUser(app, standin, 670_003, "Alex")
        jo = TgUser(app, standin, 670_004, "Jo")
        await joined(TgUser(app, standin, 670_005, "Lee"), other_mentor)
        await joined(morgan, n1_mentor)
        await morgan.send(f"/start {n2_mentor}")  # a further pair in North
        await joined(morgan, s1_mentor)  # a second membership, South
        for mentee, code in ((sam, n1_mentee), (alex, n2_mentee), (jo, s1_mentee)):
            await joined(mentee, code)
        morgan.new()

        # /log: one question, with North's two pairs by name beside South
        asked = await morgan.send("/log")
        assert _questions(asked) == 1 and "Which is this about?" in said(asked)
        buttons = _keyboard(morgan)
        assert list(buttons) == ["North: Sam", "North: Alex", "South: mentoring Jo"]

        # forged or stale answers: a clear message, and nothing changes (the question
        # still waits and still works)
        seq = buttons["North: Sam"].split(":")[0]
        (north_me,), = await _rows(store, "SELECT mentor_id FROM pairs WHERE id=?", n1)
        slots = "SELECT participant_id, state_ct, updated_at FROM conversation_state"
        state_before = await _rows(store, slots)
        for forged in (
            f"{int(seq) - 1}:p{n1}",  # an earlier question's number
            f"{seq}:p{other}",  # someone else's pair
            f"{seq}:m{north_me}",  # North offered by pair, not as a whole
            f"{seq}:p{n1} ", f"{seq}:p0{n1}", f"{seq}:q{n1}", f"{seq}:p٣",
        ):
            reply = said(await morgan.press(forged))
            assert "earlier message" in reply, (forged, reply)
        assert await _rows(store, slots) == state_before
        assert await _rows(store, "SELECT COUNT(*) FROM entries") == [(0,)]

        # a tap runs the command there: no second question
        started = await morgan.tap("North: Alex")
        assert _questions(started) == 1 and "Which mentee" not in said(started)
        assert "Logged" in await walk(morgan, "episode_log", LOG)
        # the same button again is stale and logs nothing more
        assert "earlier message" in said(await morgan.press(buttons["North: Alex"]))

        await morgan.send("/log")
        await morgan.tap("South: mentoring Jo")
        assert "Logged" in await walk(morgan, "episode_log", LOG | {"learned": "SOUTH-LOG"})

        # /history: the same one question; Sam's pair has nothing logged
        await morgan.send("/history")
        assert list(_keyboard(morgan)) == ["North: Sam", "North: Alex", "South: mentoring Jo"]
        assert "haven't saved any entries" in said(await morgan.tap("North: Sam"))
        await morgan.send("/history")
        await morgan.tap("North: Alex")
        assert [b for b in _keyboard(morgan) if "Episode log" in b]  # Alex's pair's log
    logged = await _rows(store, "SELECT e.pair_id, p.programme_id FROM entries e JOIN "
                            "participants p ON p.id = e.participant_id WHERE e.flow="
                            "'episode_log' AND e.status='complete' ORDER BY e.id")
    assert logged == [(n2, north.id), (s1, south.id)]
    # each mentee's chat holds nothing of the other pairs
    for mentee, others in ((sam, ("Alex", "Jo")), (alex, ("Sam", "Jo")), (jo, ("Sam", "Alex"))):
        seen = json.dumps(standin.sent_messages(mentee.user_id))
        assert all(name not in seen for name in others) and "SOUTH-LOG" not in seen


async def test_mentee_in_one_programme_and_mentor_of_two_in_another(store: Store) -> None:
    """The brief's own buttons: "North: Sam", "North: Alex", "South: mentored by Jo"."""
    north = await store.programmes.create("North")
    south = await store.programmes.create("South")
    n1, n1_mentor, n1_mentee = await _pair(store, north.id)
    n2, n2_mentor, n2_mentee = await _pair(store, north.id)
    s1, s1_mentor, s1_mentee = await _pair(store, south.id)
    async with running_app(store) as (app, standin):
        morgan = TgUser(app, standin, 671_001, "Morgan")
        await joined(morgan, n1_mentor)
        await morgan.send(f"/start {n2_mentor}")
        await joined(morgan, s1_mentee)
        for uid, name, code in ((671_002, "Sam", n1_mentee), (671_003, "Alex", n2_mentee),
                                (671_004, "Jo", s1_mentor)):
            await joined(TgUser(app, standin, uid, name), code)
        # every pair has its starting check-in due: one question for all three
        asked = await morgan.send("/checkin")
        assert _questions(asked) == 1
        assert list(_keyboard(morgan)) == ["North: Sam", "North: Alex",
                                           "South: mentored by Jo"]
        assert "What do you expect" in said(await morgan.tap("North: Sam"))
        assert "Saved" in await walk(morgan, "baseline", {"expectations": "A sounding board",
                                                          "hope_to_learn": "Patience"})
        await morgan.send("/checkin")
        # Sam's is done: North's one pair left is named alone, never Sam
        assert list(_keyboard(morgan)) == ["North: mentoring Alex", "South: mentored by Jo"]
        assert "What do you expect" in said(await morgan.tap("South: mentored by Jo"))
        await morgan.send("/cancel")
        await morgan.send("/checkin")
        assert "What do you expect" in said(await morgan.tap("North: mentoring Alex"))
        await walk(morgan, "baseline", {"expectations": "Listening", "hope_to_learn": "Time"})
    done = await _rows(store, "SELECT pair_id FROM entries WHERE flow='baseline' AND "
                          "status='complete' ORDER BY id")
    assert done == [(n1,), (n2,)]
    assert await _rows(store, "SELECT pair_id FROM entries WHERE status='draft'") == [(s1,)]


async def test_the_question_is_asked_even_when_the_membership_in_use_cannot_run_it(
        store: Store) -> None:
    """A coordinator's membership in use, mentee in two programmes: /reflect asks which."""
    north = await store.programmes.create("North")
    south = await store.programmes.create("South")
    _, n_mentor, n_mentee = await _pair(store, north.id)
    _, s_mentor, s_mentee = await _pair(store, south.id)
    lead_code = await store.programmes.create_invite(north.id, Role.COORDINATOR)
    async with running_app(store) as (app, standin):
        robin = TgUser(app, standin, 672_001, "Robin")
        await joined(TgUser(app, standin, 672_002, "Morgan"), n_mentor)
        await joined(TgUser(app, standin, 672_003, "Jo"), s_mentor)
        await joined(robin, n_mentee)
        await joined(robin, s_mentee)
        await robin.send(f"/start {lead_code}")  # now the coordinator membership is in use
        assert "Which is this about?" in said(await robin.send("/reflect"))
        assert sorted(_keyboard(robin)) == ["North: mentored by Morgan", "South: mentored by Jo"]


# -- /settings across memberships ------------------------------------------------------

async def test_settings_apply_to_every_membership_and_the_reflection_asks_which(
        store: Store) -> None:
    north = await store.programmes.create("North")
    south = await store.programmes.create("South")
    west = await store.programmes.create("West")
    _, n_mentor, n_mentee = await _pair(store, north.id)
    _, s_mentor, s_mentee = await _pair(store, south.id)
    w_pair, w_mentor, w_mentee = await _pair(store, west.id)
    async with running_app(store) as (app, standin):
        robin = TgUser(app, standin, 673_001, "Robin")
        await joined(TgUser(app, standin, 673_002, "Morgan"), n_mentor)
        await joined(TgUser(app, standin, 673_003, "Jo"), s_mentor)
        await joined(TgUser(app, standin, 673_004, "Kim"), w_mentee)
        await joined(robin, n_mentee)
        await joined(robin, s_mentee)

        shown = said(await robin.send("/settings"))
        assert "apply to all your programmes and roles" in shown
        assert "Reflection in North: not chosen" in shown
        assert "Reflection in South: not chosen" in shown
        # chat tidying and reminders: once, for both memberships
        assert "Chat tidying is on" in said(await robin.tap("Tidy the chat after saving"))
        await robin.send("/settings")
        assert "paused" in said(await robin.tap("Reminders on or off"))
        assert await _rows(store, "SELECT c.tidy_chat, p.status FROM participants p JOIN "
                              "chat_prefs c ON c.participant_id = p.id WHERE p.role='mentee' "
                              "AND p.programme_id IN (?, ?)", north.id, south.id
                     ) == [(1, "paused"), (1, "paused")]
        # the time zone, likewise
        await robin.send("/settings")
        await robin.tap("Time zone")
        assert "Europe/Dublin" in said(await robin.tap("Ireland (Dublin)"))
        assert {tz for (tz,) in await _rows(store, "SELECT timezone FROM participants WHERE "
                                               "role='mentee' AND programme_id IN (?, ?)",
                                      north.id, south.id)} == {"Europe/Dublin"}

        # the reflection is each programme's own: asked which, and said which
        await robin.send("/settings")
        asked = said(await robin.tap("Reflection: GROW or OSKAR"))
        assert "Which is this about?" in asked
        assert sorted(_keyboard(robin)) == ["North: mentored by Morgan", "South: mentored by Jo"]
        await robin.tap("South: mentored by Jo")
        done = said(await robin.tap("OSKAR: outcome, scaling, know-how, action, review"))
        assert "in South will use OSKAR" in done and "Outcome" not in done  # nothing opened
        frameworks = dict(await _rows(store, "SELECT programme_id, preferred_framework FROM "
                                         "participants WHERE role='mentee' AND programme_id "
                                         "IN (?, ?)", north.id, south.id))
        assert frameworks == {north.id: None, south.id: "oskar"}
        shown = said(await robin.send("/settings"))
        assert "Reflection in South: OSKAR" in shown and "Reflection in North: not chosen" in shown
        await robin.send("/cancel")

        # a new membership starts with the person-wide settings
        await robin.send("/resume")
        await robin.send("/quiet 22:00-07:00")
        await joined(robin, w_mentor)
        west_me = await _rows(store, "SELECT p.id, p.timezone, p.status FROM participants p JOIN "
                                 "pairs q ON q.mentor_id = p.id WHERE q.id=?", w_pair)
        (west_id, west_tz, west_status), = west_me
        assert (west_tz, west_status) == ("Europe/Dublin", "active")
        assert await _rows(store, "SELECT tidy_chat FROM chat_prefs WHERE participant_id=?",
                     west_id) == [(1,)]
        assert await _rows(store, "SELECT quiet_start, quiet_end FROM reminder_prefs WHERE "
                              "participant_id=?", west_id) == [("22:00", "07:00")]
        # West's mentor membership is in use now: the reflection still asks which of the
        # two mentee memberships
        await robin.send("/settings")
        assert "Which is this about?" in said(await robin.tap("Reflection: GROW or OSKAR"))


async def test_settings_of_one_membership_read_as_before(store: Store) -> None:
    north = await store.programmes.create("North")
    _, _, n_mentee = await _pair(store, north.id)
    async with running_app(store) as (app, standin):
        robin = TgUser(app, standin, 674_001, "Robin")
        await joined(robin, n_mentee)
        shown = said(await robin.send("/settings"))
        assert "• Reflection: not chosen" in shown and "all your programmes" not in shown
        await robin.tap("Reflection: GROW or OSKAR")
        done = said(await robin.tap("GROW: goal, reality, options, will"))
        assert "Done: /reflect will use GROW" in done and " in North" not in done


# -- a join waiting for approval beside another membership ------------------------------

async def test_a_pending_approval_does_not_block_another_programmes_invite(
        store: Store) -> None:
    held = await store.programmes.create("North", {JOIN_APPROVAL: True})
    south = await store.programmes.create("South")
    n1, _, n1_mentee = await _pair(store, held.id)
    n2, _, n2_mentee = await _pair(store, held.id)
    s1, s_mentor, s_mentee = await _pair(store, south.id)
    _, s2_mentor, _ = await _pair(store, south.id)
    lead_code = await store.programmes.create_invite(held.id, Role.COORDINATOR)
    async with running_app(store) as (app, standin):
        lead = TgUser(app, standin, 675_000, "Lee")
        await lead.send(f"/start {lead_code}")
        robin = TgUser(app, standin, 675_001, "Robin")
        jo = TgUser(app, standin, 675_002, "Jo")
        await joined(jo, s_mentor)
        assert "confirm each place first" in said(await robin.send(f"/start {n1_mentee}"))
        lead.new()

        # another programme's invite opens while North waits: South's own welcome and
        # consent, with a line saying North is still waiting
        reply = said(await robin.send(f"/start {s_mentee}"))
        assert "You've joined South as a mentee" in reply
        assert "Your place in North is still waiting" in reply
        await robin.tap("Yes, keep them")
        for _ in range(3):
            await robin.tap("Yes")
        # South works at once; North is never offered while it waits
        asked = said(await robin.send("/reflect"))
        assert "Which is this about?" not in asked and "Which reflection" in asked
        await robin.tap("GROW: goal, reality, options, will")
        assert "Saved" in await walk(robin, "grow", GROW | {"goal": "SOUTH-GOAL"})
        # another pair of the waiting programme: not taken, and said why
        reply = said(await robin.send(f"/start {n2_mentee}"))
        assert "hasn't been confirmed" in reply and "open this link again" in reply
        assert await _rows(store, "SELECT used_at FROM invites WHERE pair_id=? AND role='mentee'",
                     n2) == [(None,)]
        # and another pair of South (the other role), while North still waits
        assert "as a mentor" in said(await robin.send(f"/start {s2_mentor}"))
        # North's lead heard nothing of South
        assert "South" not in said(lead.new())

        # let in: North's welcome and consent, North now in use, nothing of South in it
        await lead.tap("Let them in")
        welcome = said(robin.new())
        assert "confirmed your place" in welcome and "SOUTH-GOAL" not in welcome
        assert "Jo" not in welcome
        await robin.tap("Yes, keep them")
        for _ in range(3):
            await robin.tap("Yes")
        assert "Which is this about?" in said(await robin.send("/reflect"))
        assert sorted(_keyboard(robin)) == ["North: as a mentee", "South: mentored by Jo"]
        await robin.tap("North: as a mentee")
        await robin.tap("GROW: goal, reality, options, will")
        assert "Saved" in await walk(robin, "grow", GROW | {"goal": "NORTH-GOAL"})
    goals = await _rows(store, "SELECT p.programme_id, e.pair_id FROM entries e JOIN participants "
                           "p ON p.id = e.participant_id WHERE e.flow='grow' ORDER BY e.id")
    assert goals == [(south.id, s1), (held.id, n1)]
    # Jo, Robin's South mentor, sees nothing of North
    assert "North" not in json.dumps(standin.sent_messages(jo.user_id))
