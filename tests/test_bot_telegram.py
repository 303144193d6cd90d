"""The real python-telegram-bot Application, real Update objects, the Bot API stand-in.

Covers the foundation journey (pair onboarding, consent, a full GROW reflection, a
restart in the middle) and every kind of bad input, which must get a short clear reply
and change nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.processor import PerChatUpdateProcessor
from conversations.catalogue import load_flows
from storage.crypto import KeyRing
from storage.store import Store
from tests.conftest import Place
from tests.people import GROW_ANSWERS, Cohort
from tests.support.api_standin import BotApiStandin
from tests.support.harness import TOKEN, TgUser, running_app

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


async def snapshot(store: Store) -> dict[str, int]:
    counts = {}
    for table in ("participants", "entries", "answers", "consent_ledger", "invites"):
        counts[table] = await store.db.scalar(f"SELECT COUNT(*) FROM {table}")
    counts["used"] = await store.db.scalar(
        "SELECT COUNT(*) FROM invites WHERE used_at IS NOT NULL"
    )
    return counts


async def join(user: TgUser, code: str) -> None:
    assert "Your choices are saved" in texts(await user.join(code))


async def test_pair_onboards_consents_and_reflects(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        assert isinstance(app.update_processor, PerChatUpdateProcessor)
        assert standin.commands(scope={"type": "all_private_chats"})  # post_init: guest menu
        mentor = TgUser(app, standin, 111_222_333, "Morgan")
        mentee = TgUser(app, standin, 444_555_666, "Robin")
        await join(mentor, cohort.mentor_code)
        await join(mentee, cohort.mentee_code)
        # each member got the command menu of their role, in their own chat
        mentee_menu = {
            c["command"]
            for c in standin.commands(scope={"type": "chat", "chat_id": mentee.user_id})
        }
        assert {"reflect", "history", "withdraw"} <= mentee_menu and "log" not in mentee_menu
        assert "log" in {
            c["command"]
            for c in standin.commands(scope={"type": "chat", "chat_id": mentor.user_id})
        }

        said = texts(await mentee.send("/reflect"))
        assert "Which reflection" in said
        said = texts(await mentee.tap("GROW: goal, reality, options, will"))
        assert "(1/4) Goal" in said
        for step in ("goal", "reality", "options", "will"):
            await mentee.send(GROW_ANSWERS[step])
        for _ in range(4):
            said = texts(await mentee.send("/skip"))
        assert "Save it, or change an answer" in said
        said = texts(await mentee.tap("Save"))
        assert "Saved" in said
        # the pressed summary lost its buttons, so it cannot be saved twice
        with pytest.raises(LookupError):
            mentee.find_button("Save")
    entries = await store.entries.of(2)
    assert entries[0].status == "complete"
    assert await store.entries.answers(2, entries[0].id) == GROW_ANSWERS


async def test_restart_in_the_middle_resumes(
    cohort: Cohort, store: Store, place: Place, master_key: bytes
) -> None:
    standin = BotApiStandin(token=TOKEN)
    async with running_app(store, standin) as (app, _):
        mentee = TgUser(app, standin, 444_555_666)
        await join(mentee, cohort.mentee_code)
        await mentee.send("/reflect")
        await mentee.tap("OSKAR: outcome, scaling, know-how, action, review")
        await mentee.send("Be ready for the interview")
    # a new process: new connection, new Application, same files on disk
    fresh = await place.open(KeyRing(master_key), load_flows()["consent"].version)
    try:
        async with running_app(fresh, standin) as (app, _):
            mentee = TgUser(app, standin, 444_555_666)
            said = texts(await mentee.tap("5"))  # the keypad from before the restart works
            assert "(3/4) Know-how" in said
            said = texts(await mentee.send("/back"))
            assert "0 (nowhere) to 10" in said
            said = texts(await mentee.tap("7"))
            assert "(3/4) Know-how" in said
        entry = (await fresh.entries.of(1))[0]
        answers = await fresh.entries.answers(1, entry.id)
        assert answers == {"outcome": "Be ready for the interview", "scaling": 7}
        assert (await fresh.db.integrity_check()) == "ok"
    finally:
        await fresh.close()


BAD_INPUTS = [
    ("sticker", lambda s, u: s.sticker(u), "ignored that sticker"),
    ("photo", lambda s, u: s.photo(u, caption="my notes"), "ignored that photo"),
    ("voice", lambda s, u: s.voice(u), "ignored that voice message"),
    ("file", lambda s, u: s.document(u), "ignored that file"),
    ("unknown command", lambda s, u: s.text_message(u, "/dance"), "I don't know /dance"),
    ("wrong role", lambda s, u: s.text_message(u, "/log"), "/log is for mentors"),
    ("out of place", lambda s, u: s.text_message(u, "/skip"), "nothing in progress"),
    ("too long", lambda s, u: s.text_message(u, "x" * 20_000), "too long"),
    ("forged button", lambda s, u: s.callback_query(u, "0:_save"), "earlier message"),
    (
        "garbage button",
        lambda s, u: s.callback_query(u, "\u202e\x00;DROP TABLE entries"),
        "earlier message",
    ),
]


@pytest.mark.parametrize(("name", "build", "expected"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
async def test_bad_input_gets_a_clear_reply_and_changes_nothing(
    cohort: Cohort, store: Store, name: str, build: Any, expected: str
) -> None:
    async with running_app(store) as (app, standin):
        mentee = TgUser(app, standin, 444_555_666)
        await join(mentee, cohort.mentee_code)
        mentee.new()
        before = await snapshot(store)
        replies = await mentee.raw(build(standin, mentee.user_id))
        assert expected in texts(replies), texts(replies)
        assert "Traceback" not in texts(replies)
        assert await snapshot(store) == before


async def test_bad_input_mid_flow_keeps_the_flow(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        mentee = TgUser(app, standin, 444_555_666)
        await join(mentee, cohort.mentee_code)
        await mentee.send("/reflect")
        await mentee.tap("GROW: goal, reality, options, will")
        sent = await mentee.send("first goal")
        before = await snapshot(store)
        for update in (
            standin.sticker(mentee.user_id),
            standin.edited_message(mentee.user_id, sent[0]["message_id"] - 1, "edit"),
            standin.text_message(mentee.user_id, "/reflect"),
            standin.callback_query(mentee.user_id, "1:_save"),
        ):
            replies = await mentee.raw(update)
            assert replies, "every bad input gets a reply"
        assert await snapshot(store) == before
        said = texts(await mentee.send("the reality"))
        assert "(3/4) Options" in said


async def test_stale_button_on_an_old_message(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        mentee = TgUser(app, standin, 444_555_666)
        await join(mentee, cohort.mentee_code)
        await mentee.send("/reflect")
        menu_id, grow = mentee.find_button("GROW: goal, reality, options, will")
        await mentee.press(grow, menu_id)
        before = await snapshot(store)
        replies = await mentee.press(grow, menu_id)  # the same old button again
        assert "earlier" in texts(replies)
        assert await snapshot(store) == before


async def test_invites_over_telegram(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        first = TgUser(app, standin, 444_555_666)
        await join(first, cohort.mentee_code)
        late = TgUser(app, standin, 777_888_999)
        assert "already been used" in texts(await late.send(f"/start {cohort.mentee_code}"))
        for _ in range(5):
            await late.send("/start zzzzzzzzzzzzzzzzzzzz")
        assert "Too many wrong codes" in texts(await late.send(f"/start {cohort.mentor_code}"))
        assert await store.db.scalar("SELECT COUNT(*) FROM participants") == 1
        stranger = TgUser(app, standin, 123_123_123)
        assert "open the invite link" in texts(await stranger.send("/reflect"))
        assert "invite link" in texts(await stranger.send("/start"))


async def test_handler_crash_gets_a_polite_reply_and_no_personal_data_in_logs(
    cohort: Cohort, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_app(store) as (app, standin):
        mentee = TgUser(app, standin, 444_555_666, "Zebedee")
        await join(mentee, cohort.mentee_code)
        service = app.bot_data["service"]

        async def boom(*_: Any, **__: Any) -> None:
            raise RuntimeError("secret text Zebedee 444555666 should never be logged")

        service.text = boom
        with caplog.at_level("DEBUG"):
            replies = await mentee.send("a very private sentence")
        assert "something went wrong on my side" in texts(replies)
        logged = caplog.text
        for secret in ("Zebedee", "444555666", "a very private sentence", "secret text"):
            assert secret not in logged
        assert "RuntimeError" in logged


async def test_redelivered_updates_are_applied_once(cohort: Cohort, store: Store) -> None:
    """After a crash Telegram sends unconfirmed updates again; each must count once."""
    async with running_app(store) as (app, standin):
        mentee = TgUser(app, standin, 444_555_666)
        await join(mentee, cohort.mentee_code)
        await mentee.send("/reflect")
        await mentee.tap("GROW: goal, reality, options, will")
        first = standin.text_message(mentee.user_id, "the goal")
        second = standin.text_message(mentee.user_id, "the reality")
        await mentee.raw(first)
        await mentee.raw(second)
        for again in (first, second):  # redelivered, in order, after a restart
            said = texts(await mentee.raw(again))
            assert "(3/4) Options" in said  # where we are, repeated
        answers = await store.entries.answers(1, (await store.entries.of(1))[0].id)
        assert answers == {"goal": "the goal", "reality": "the reality"}
