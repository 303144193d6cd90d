"""Conversations as people on phones have them, through the real Application.

The stand-in enforces Telegram's limits (4,096 characters a message, 64 bytes of button
data, callback queries that expire, "message is not modified") and splits long pastes
the way Telegram's apps do, so each test here fails if the bot relies on anything Telegram
would refuse.
"""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.errors import classify
from bot.pastes import PART_MIN, join
from conversations.engine import Button
from conversations.service import Response
from storage.store import Store
from tests.people import GROW_ANSWERS, Cohort
from tests.support.api_standin import MAX_TEXT_LENGTH, BotApiStandin
from tests.support.harness import TgUser, running_app

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends

ME = 444_555_666


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


async def mentee(app: Any, standin: BotApiStandin, cohort: Cohort, store: Store) -> TgUser:
    user = TgUser(app, standin, ME)
    await user.join(cohort.mentee_code)
    me = await store.participants.by_user(ME)
    assert me is not None
    await store.participants.set_field(me.id, "preferred_framework", "grow")
    user.new()
    return user


def long_answer(step: str, size: int = 2000) -> str:
    words = f"{step} " + " ".join(f"w{n}" for n in range(size))
    return words[: size - 4] + " END"


async def to_summary(user: TgUser) -> str:
    said = ""
    for _ in range(5):
        said = texts(await user.send("/skip"))
        if "Save it, or change an answer" in said:
            return said
    raise AssertionError(said)


def every_message_fits(standin: BotApiStandin) -> None:
    for message in standin.sent_messages():
        assert len(message["text"]) <= MAX_TEXT_LENGTH
    refused = [c for c in standin.calls if c.status == 400 and c.method == "sendMessage"]
    assert not refused


async def test_four_long_answers_are_saved_and_shown_whole_on_request(
    cohort: Cohort, store: Store
) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        await user.send("/reflect")
        answers = {s: long_answer(s) for s in ("goal", "reality", "options", "will")}
        for answer in answers.values():
            assert len(answer) == 2000
            said = texts(await user.send(answer))
            assert "limit here" not in said
        summary = await to_summary(user)
        assert "…" in summary and " END" not in summary  # shortened, with its buttons
        full = await user.tap("Show in full")
        shown = texts(full)
        for answer in answers.values():
            assert answer in shown  # whole, over several messages
        assert len(full) >= 3
        said = texts(await user.tap("Save"))
        assert "Saved" in said
        every_message_fits(standin)
    entry = (await store.entries.of(1))[0]
    assert entry.status == "complete"
    assert await store.entries.answers(1, entry.id) == answers


async def test_any_long_reply_is_split_with_buttons_under_the_last_part(
    cohort: Cohort, store: Store
) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        service = app.bot_data["service"]
        long = "\n".join(f"line {n} " + "x" * 90 for n in range(100))  # about 10,000

        async def chatty(*_: Any) -> Response:
            return Response().say(long, buttons=((Button("OK", "1:ok"),),))

        service.text = chatty
        sent = await user.send("hello")
        assert len(sent) == 3
        assert "\n".join(m["text"] for m in sent) == long
        assert [bool(m["reply_markup"]) for m in sent] == [False, False, True]
        every_message_fits(standin)


async def test_a_press_whose_query_expired_is_still_handled(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        await user.send("/reflect")
        for step in ("goal", "reality", "options", "will"):
            await user.send(GROW_ANSWERS[step])
        await to_summary(user)
        message_id, data = user.find_button("Save")
        # pressed during downtime: by the time the bot sees it, Telegram refuses the answer
        said = texts(await user.raw(standin.callback_query(ME, data, message_id, age=60)))
        assert "Saved" in said
        answer = standin.calls_of("answerCallbackQuery")[-1]
        assert answer.status == 400
    assert (await store.entries.of(1))[0].status == "complete"


async def test_an_expired_press_on_a_stale_message_gets_a_polite_reply(
    cohort: Cohort, store: Store
) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        await user.send("/reflect")
        await user.send("/cancel")
        update = standin.callback_query(ME, "123:_save", age=3600)
        said = texts(await user.raw(update))
        assert "earlier message" in said


async def test_a_reminder_press_whose_query_expired_says_so_in_the_chat(
    cohort: Cohort, store: Store
) -> None:
    async with running_app(store) as (app, standin):
        await mentee(app, standin, cohort, store)
        user = TgUser(app, standin, ME)
        said = texts(await user.raw(standin.callback_query(ME, "r:999999:1h", age=60)))
        assert said  # the answer could not go on the button, so it came as a message
        assert "went wrong" not in said


async def test_a_long_paste_is_refused_whole_never_its_tail(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        await user.send("/reflect")
        paste = " ".join(f"word{n}" for n in range(900))[:5000]
        assert len(standin.paste(ME, paste)) == 2  # the app sends it in two parts
        said = texts(await user.paste(paste))
        assert "That's 5,000 characters; the limit here is 2,000" in said
        assert said.count("limit here") == 1  # one answer for the whole paste
        assert "(2/4) Reality" not in said
        entry = (await store.entries.of(1))[0]
        assert await store.entries.answers(1, entry.id) == {}
        # the next message is an answer of its own again
        said = texts(await user.send("a short goal"))
        assert "(2/4) Reality" in said


async def test_paste_parts_are_joined_as_they_were_cut(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        service = app.bot_data["service"]
        flows = dict(service.flows)  # a copy: the loaded flows are shared by every test
        step = flows["grow"].steps[0]
        roomy = step.model_copy(update={"max_length": 4000})
        flows["grow"] = flows["grow"].model_copy(
            update={"steps": (roomy, *flows["grow"].steps[1:])}
        )
        service.flows = service.engine.flows = flows
        await user.send("/reflect")
        paste = "y" * 4100  # no spaces: the app cuts at the limit, inside the run
        said = texts(await user.paste(paste))
        assert "That's 4,100 characters; the limit here is 4,000" in said  # judged as one
        paste = "z" * 3990 + " tail " + "q" * 200  # cut at the space after "tail"
        assert len(paste) == 4196
        said = texts(await user.paste(paste))
        assert "That's 4,196 characters" in said  # the trimmed space put back
        assert join(["a" * MAX_TEXT_LENGTH, "b"]) == "a" * MAX_TEXT_LENGTH + "b"
        assert join(["a" * PART_MIN, "b"]) == "a" * PART_MIN + " b"


async def test_a_lone_long_message_is_answered_after_the_wait(
    cohort: Cohort, store: Store
) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        await user.send("/reflect")
        update = standin.text_message(ME, "v" * 3600)
        assert texts(await user.raw(update)).count("limit here is 2,000") == 1


async def test_a_command_after_a_paste_part_handles_the_part_first(
    cohort: Cohort, store: Store
) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        await user.send("/reflect")
        first = standin.text_message(ME, "p" * 3800)
        await app.process_update(Update.de_json(first, app.bot))
        assert user.new() == []  # waiting for more parts
        said = texts(await user.send("/cancel"))
        assert said.index("limit here") < said.index("Stopped")


async def test_typed_numbers_on_button_steps(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        await user.send("/reflect")
        for step in ("goal", "reality", "options", "will"):
            await user.send(GROW_ANSWERS[step])
        await user.send("/skip")  # anything else
        await user.send("2 5")  # two taps, typed
        user.find_button("✓ Good questions")
        user.find_button("✓ Time to think")
        said = texts(await user.send("12"))
        assert "numbers from 1 to 8" in said
        said = texts(await user.send("²"))
        assert "digits 0 to 9" in said
        await user.tap("Done")
        await user.send("/skip")
        await user.send("/skip")
    entry = (await store.entries.of(1))[0]
    answers = await store.entries.answers(1, entry.id)
    assert answers["helped"] == {"selected": ["M_DM_TECHNIQUES", "C_DYAD_SAFE_SPACE"]}


async def test_back_offers_keep(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        await user.send("/reflect")
        await user.send("my goal")
        said = texts(await user.send("/back"))
        assert "Your answer so far: my goal" in said
        said = texts(await user.tap("Keep this answer"))
        assert "(2/4) Reality" in said
    entry = (await store.entries.of(1))[0]
    assert await store.entries.answers(1, entry.id) == {"goal": "my goal"}


def first_button(user: TgUser) -> str:
    for message in reversed(user.standin.sent_messages(user.user_id)):
        rows = (message.get("reply_markup") or {}).get("inline_keyboard")
        if rows:
            return str(rows[0][0]["text"])
    raise LookupError("no buttons")


async def saved_then_edit(user: TgUser, store: Store) -> int:
    await user.send("/reflect")
    for step in ("goal", "reality", "options", "will"):
        await user.send(GROW_ANSWERS[step])
    await to_summary(user)
    await user.tap("Save")
    await user.send("/history")
    entry = (await store.entries.of(1))[0]
    await user.tap(first_button(user))  # the entry, at the top of the list
    await user.tap("Edit Goal")
    await user.send("an edited goal")
    return entry.id


async def test_discard_on_an_edit_keeps_the_saved_entry(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        entry_id = await saved_then_edit(user, store)
        said = texts(await user.tap("Undo my changes"))
        assert "saved entry is as it was" in said
    entry = await store.entries.get(entry_id, 1)
    assert entry is not None and entry.status == "complete"
    assert await store.entries.answers(1, entry_id) == GROW_ANSWERS
    # the restored answer carries its safety verdict again, like every answer given
    assert await store.db.scalar("SELECT COUNT(*) FROM answers WHERE safety_rule IS NULL") == 0


async def test_cancel_mid_edit_restores_the_saved_answer(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        entry_id = await saved_then_edit(user, store)
        said = texts(await user.send("/cancel"))
        assert "saved entry is as it was" in said
    assert await store.entries.answers(1, entry_id) == GROW_ANSWERS


async def test_declining_participation_with_entries_offers_erasure(
    cohort: Cohort, store: Store
) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        await user.send("/reflect")
        await user.send("a goal")
        await user.send("/cancel")
        await user.send("/consent")
        said = texts(await user.tap("No"))
        assert "won't keep any reflections" not in said
        assert "1 entries you saved before are still stored" in said
        said = texts(await user.tap("Yes, erase everything"))  # the second tap
        assert "Erased" in said
    assert await store.db.scalar("SELECT COUNT(*) FROM entries") == 0


async def test_a_refused_reply_tells_the_person(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        service = app.bot_data["service"]

        async def oversized(*_: Any) -> Response:
            return Response().say("pick", buttons=((Button("x", "9" * 65),),))

        service.text = oversized
        said = texts(await user.send("hello"))
        assert "Telegram turned down my reply" in said
        assert any(c.status == 400 for c in standin.calls_of("sendMessage"))


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (BadRequest("x"), "error_refused"),
        (Forbidden("x"), ""),
        (RetryAfter(3), "error_busy"),
        (TimedOut(), "error_slow"),
        (NetworkError("x"), "error_network"),
        (RuntimeError("x"), "error"),
    ],
)
def test_errors_are_told_apart(error: BaseException, key: str) -> None:
    assert classify(error)[1] == key


async def test_settings_and_chat_tidying(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        assert "encrypted" in standin.descriptions()["description"][""]
        assert standin.descriptions()["short_description"][""]
        user = await mentee(app, standin, cohort, store)
        said = texts(await user.send("/settings"))
        assert "Reflection: GROW reflection" in said and "Time zone: Europe/London" in said
        assert "Tidy the chat after saving: off" in said
        said = texts(await user.tap("Tidy the chat after saving"))
        assert "Chat tidying is on" in said
        typed = []
        await user.send("/reflect")
        for step in ("goal", "reality", "options", "will"):
            await user.send(GROW_ANSWERS[step])
            typed.append(standin.sent_messages(ME)[-1]["message_id"] - 1)
        await to_summary(user)
        summary_id, _ = user.find_button("Save")
        assert "Saved" in texts(await user.tap("Save"))
        for message_id in [*typed, summary_id]:
            assert standin.message(ME, message_id) is None  # gone from the chat
        said = texts(await user.send("/history"))
        assert "GROW reflection" in standin.sent_messages(ME)[-1]["reply_markup"][
            "inline_keyboard"
        ][0][0]["text"]
        # switching framework from /settings does not start a reflection
        await user.send("/settings")
        said = texts(await user.tap("Reflection: GROW or OSKAR"))
        said = texts(await user.tap("OSKAR: outcome, scaling, know-how, action, review"))
        assert "OSKAR" in said and "(1/" not in said
        await user.send("/settings")
        assert "Reminders are" not in texts(await user.tap("Reminders on or off"))
    me = await store.participants.by_user(ME)
    assert me is not None and me.status == "paused" and me.preferred_framework == "oskar"


async def test_tidying_off_leaves_the_chat_alone(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        user = await mentee(app, standin, cohort, store)
        await user.send("/reflect")
        await user.send(GROW_ANSWERS["goal"])
        typed = standin.sent_messages(ME)[-1]["message_id"] - 1
        for step in ("reality", "options", "will"):
            await user.send(GROW_ANSWERS[step])
        await to_summary(user)
        await user.tap("Save")
        assert standin.message(ME, typed) is not None
        assert not standin.calls_of("deleteMessage")


def test_the_stand_in_refuses_deleting_after_48_hours() -> None:
    now = [1_000_000.0]
    standin = BotApiStandin(wall_clock=lambda: now[0])
    update = standin.text_message(ME, "hello")
    mid = update["message"]["message_id"]
    now[0] += 48 * 3600
    status, body = standin.handle_nowait("deleteMessage", {"chat_id": ME, "message_id": mid})
    assert status == 400 and "can't be deleted" in body["description"]


def test_chart_libraries_stay_out_of_the_demo_output() -> None:
    import logging

    from bot.logs import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO")
        for name in ("matplotlib.font_manager", "PIL.PngImagePlugin", "fontTools.subset"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
