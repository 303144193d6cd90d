"""The Bot API stand-in must look like Telegram to python-telegram-bot, offline."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import BotCommand, BotCommandScopeChat, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from tests.support.api_standin import (
    DEFAULT_BOT_USERNAME,
    BotApiStandin,
    ControlClient,
    LoopbackServer,
    StandinRequest,
    UploadedFile,
)

TOKEN = "123:ABC"
USER = 424242
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without this PTB warns (an error under our filterwarnings) while building RetryAfter.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _in_process_app(standin: BotApiStandin, *, read_timeout: float = 5.0) -> Application:
    return (
        ApplicationBuilder()
        .token(TOKEN)
        .request(StandinRequest(standin, read_timeout=read_timeout))
        .get_updates_request(StandinRequest(standin))
        .rate_limiter(AIORateLimiter())
        .build()
    )


def _loopback_request() -> HTTPXRequest:
    # trust_env=False: an environment proxy must never see the loopback traffic.
    return HTTPXRequest(httpx_kwargs={"trust_env": False})


def _keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Yes", callback_data="yes"),
                InlineKeyboardButton("No", callback_data="no"),
            ]
        ]
    )


# ------------------------------------------------------------------ PTB on StandinRequest


async def test_application_runs_offline_on_standin_request() -> None:
    standin = BotApiStandin(bot_id=555)
    app = _in_process_app(standin)
    async with app:
        assert app.bot.username == DEFAULT_BOT_USERNAME
        assert app.bot.id == 555

        sent = await app.bot.send_message(USER, "Pick one", reply_markup=_keyboard())
        assert sent.text == "Pick one"
        assert sent.chat.id == USER and sent.chat.type == "private"
        assert sent.from_user is not None and sent.from_user.is_bot
        assert sent.reply_markup == _keyboard()

        doc = await app.bot.send_document(
            USER, b"week,score\n1,4\n", filename="summary.csv", caption="Your summary"
        )
        assert doc.document is not None and doc.document.file_name == "summary.csv"
        assert doc.message_id == sent.message_id + 1

        scope = BotCommandScopeChat(USER)
        commands = [BotCommand("start", "Begin"), BotCommand("reflect", "Write a reflection")]
        assert await app.bot.set_my_commands(commands, scope=scope, language_code="en")
        assert await app.bot.get_my_commands(scope=scope, language_code="en") == tuple(commands)
        assert await app.bot.get_my_commands() == ()

        update = standin.push_update(standin.callback_query(USER, "yes", sent.message_id))
        (received,) = await app.bot.get_updates()
        assert received.update_id == update["update_id"]
        query = received.callback_query
        assert query is not None and query.data == "yes"
        assert query.message is not None and query.message.message_id == sent.message_id
        assert await app.bot.answer_callback_query(query.id, text="Noted")
        with pytest.raises(BadRequest, match="Query is too old"):
            await app.bot.answer_callback_query(query.id)

    (message,) = standin.sent_messages(USER)
    assert message["text"] == "Pick one"
    assert message["reply_markup"] == _keyboard().to_dict()
    (document,) = standin.documents(USER)
    assert document["filename"] == "summary.csv"
    assert document["content"] == b"week,score\n1,4\n"
    assert document["caption"] == "Your summary"
    assert standin.commands({"type": "chat", "chat_id": USER}, "en") == [
        c.to_dict() for c in commands
    ]
    assert [c.method for c in standin.calls][:3] == ["getMe", "sendMessage", "sendDocument"]
    assert all(c.status == 200 for c in standin.calls if c.method != "answerCallbackQuery")


async def test_429_surfaces_as_retry_after() -> None:
    standin = BotApiStandin(per_chat_per_second=1, retry_after=7)
    async with _in_process_app(standin) as app:
        await app.bot.send_message(USER, "one")
        with pytest.raises(RetryAfter) as caught:
            await app.bot.send_message(USER, "two")
    assert caught.value.retry_after == dt.timedelta(seconds=7)
    assert standin.count_429 == 1
    assert [c.status for c in standin.calls_of("sendMessage")] == [200, 429]
    assert len(standin.sent_messages()) == 1


async def test_blocked_chat_is_forbidden_and_long_text_is_bad_request() -> None:
    standin = BotApiStandin(blocked_chats={USER})
    async with _in_process_app(standin) as app:
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await app.bot.send_message(USER, "hello")
        await app.bot.send_message(USER + 1, "x" * 4096)
        with pytest.raises(BadRequest, match="Message is too long"):
            await app.bot.send_message(USER + 1, "x" * 4097)
        with pytest.raises(BadRequest, match="Message text is empty"):
            await app.bot.send_message(USER + 1, "   ")
    assert [m["chat_id"] for m in standin.sent_messages()] == [USER + 1]


async def test_server_errors_and_slow_answers() -> None:
    standin = BotApiStandin(fault_500=1.0, fault_methods={"getMe"})
    app = _in_process_app(standin, read_timeout=0.05)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await app.bot.get_me()
    standin.configure(fault_500=0.0, fault_slow=1.0, slow_delay=0.3, fault_methods={"sendMessage"})
    with pytest.raises(TimedOut):
        await app.bot.send_message(USER, "late answer")
    # A timed-out send may still have been delivered, as with the real API.
    assert [m["text"] for m in standin.sent_messages()] == ["late answer"]
    assert standin.fault_counts["500"] == 1 and standin.fault_counts["slow"] == 1


def test_fault_injection_is_seeded() -> None:
    def run(seed: int) -> list[int]:
        standin = BotApiStandin(fault_seed=seed, fault_429=0.2, fault_500=0.1, fault_502=0.1)
        return [standin.handle_nowait("getMe", {})[0] for _ in range(200)]

    first, again = run(7), run(7)
    assert first == again
    assert first != run(8)
    assert {200, 429, 500, 502} == set(first)
    standin = BotApiStandin(fault_seed=7, fault_429=0.2, fault_500=0.1, fault_502=0.1)
    for _ in range(200):
        standin.handle_nowait("getMe", {})
    assert standin.fault_counts["429"] == first.count(429) == standin.count_429
    assert standin.fault_counts["500"] == first.count(500)
    status, body = BotApiStandin(fault_429=1.0, retry_after=3).handle_nowait("getMe", {})
    assert (status, body["parameters"]) == (429, {"retry_after": 3})


# ------------------------------------------------------------------ rate-limit windows


def test_rate_limit_windows_count_correctly() -> None:
    clock = FakeClock()
    standin = BotApiStandin(
        overall_per_second=3, per_chat_per_second=1, enforce_retry_after=False, clock=clock
    )

    def send(chat: int) -> int:
        return standin.handle_nowait("sendMessage", {"chat_id": chat, "text": "x"})[0]

    assert [send(1), send(2), send(3)] == [200, 200, 200]
    assert send(4) == 429  # overall window full
    clock.now += 0.5
    assert send(1) == 429  # still inside both windows
    clock.now += 0.5  # the first three sends fall out of the 1 s window exactly now
    assert [send(1), send(4), send(5)] == [200, 200, 200]
    assert send(1) == 429
    assert standin.count_429 == 3
    status, body = standin.handle_nowait("sendMessage", {"chat_id": 6, "text": "x"})
    assert status == 429
    assert body["description"] == "Too Many Requests: retry after 1"
    assert body["parameters"] == {"retry_after": 1}
    # Reads are not throttled.
    assert standin.handle_nowait("getMe", {})[0] == 200


def test_retry_after_is_enforced_and_slow_rates_stretch_the_window() -> None:
    clock = FakeClock()
    standin = BotApiStandin(per_chat_per_second=0.5, retry_after=2, clock=clock)

    def send() -> tuple[int, dict[str, Any]]:
        return standin.handle_nowait("sendMessage", {"chat_id": USER, "text": "x"})

    assert send()[0] == 200
    clock.now += 1.9  # 0.5/s means one send per 2 s window
    assert send()[1]["parameters"] == {"retry_after": 2}
    clock.now += 1.5  # window has room again, but retry_after (until +2.0) has not passed
    status, body = send()
    assert (status, body["parameters"]) == (429, {"retry_after": 1})
    clock.now += 0.6
    assert send()[0] == 200
    assert standin.count_429 == 2


# ------------------------------------------------------------------ Bot API fidelity


def test_validation_matches_telegram() -> None:
    standin = BotApiStandin()
    ok = standin.handle_nowait

    status, body = ok("sendMessage", {"chat_id": USER, "text": "Done."})
    assert status == 200 and body["result"]["text"] == "Done."
    status, body = ok(
        "sendMessage", {"chat_id": USER, "text": "Done.", "parse_mode": "MarkdownV2"}
    )
    assert status == 400
    assert "Character '.' is reserved" in body["description"]
    status, body = ok(
        "sendMessage",
        {"chat_id": USER, "text": "*Week 1* done\\. _well_", "parse_mode": "MarkdownV2"},
    )
    assert body["result"]["text"] == "Week 1 done. well"
    assert [(e["type"], e["offset"], e["length"]) for e in body["result"]["entities"]] == [
        ("bold", 0, 6),
        ("italic", 13, 4),
    ]
    status, body = ok("sendMessage", {"chat_id": USER, "text": "<x>hi</x>", "parse_mode": "HTML"})
    assert body["description"].startswith("Bad Request: can't parse entities: Unsupported start")
    status, body = ok("sendMessage", {"chat_id": USER, "text": "<b>hi", "parse_mode": "HTML"})
    assert status == 400
    for markup in ("x <![.]</a>", "x <!-- note -->", "<![CDATA[y]]>"):
        assert ok("sendMessage", {"chat_id": USER, "text": markup, "parse_mode": "HTML"})[0] == 400
    status, body = ok(
        "sendMessage", {"chat_id": USER, "text": "🙂 <i>a &amp; b</i>", "parse_mode": "HTML"}
    )
    assert body["result"]["text"] == "🙂 a & b"
    assert body["result"]["entities"] == [{"type": "italic", "offset": 3, "length": 5}]

    long_data = {"inline_keyboard": [[{"text": "x", "callback_data": "d" * 65}]]}
    status, body = ok("sendMessage", {"chat_id": USER, "text": "x", "reply_markup": long_data})
    assert (status, body["description"]) == (400, "Bad Request: BUTTON_DATA_INVALID")
    status, body = ok("sendMessage", {"text": "x"})
    assert body["description"] == "Bad Request: chat_id is empty"
    status, body = ok("sendMessage", {"chat_id": "@someone", "text": "x"})
    assert body["description"] == "Bad Request: chat not found"
    status, body = ok("sendChatAction", {"chat_id": USER, "action": "typing"})
    assert body == {"ok": True, "result": True}
    assert ok("SENDCHATACTION", {"chat_id": USER, "action": "dancing"})[0] == 400
    assert (
        ok("setMyCommands", {"commands": '[{"command": "Start", "description": "x"}]'})[1][
            "description"
        ]
        == "Bad Request: BOT_COMMAND_INVALID"
    )
    assert ok("noSuchMethod", {}) == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    assert BotApiStandin(token=TOKEN).handle_nowait("getMe", {}, token="1:x")[0] == 401
    assert (
        BotApiStandin(strict_chats=True).handle_nowait(
            "sendMessage", {"chat_id": USER, "text": "x"}
        )[1]["description"]
        == "Forbidden: bot can't initiate conversation with a user"
    )


def test_edit_delete_and_builders() -> None:
    standin = BotApiStandin()
    ok = standin.handle_nowait
    greeting = standin.command(USER, "/start abc", first_name="Ada", username="ada")
    assert greeting["message"]["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]
    assert greeting["message"]["chat"] == {
        "id": USER,
        "first_name": "Ada",
        "username": "ada",
        "type": "private",
    }
    keyboard = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}
    sent = ok(
        "sendMessage", {"chat_id": USER, "text": "Ready?", "reply_markup": json.dumps(keyboard)}
    )
    mid = sent[1]["result"]["message_id"]
    assert mid == greeting["message"]["message_id"] + 1  # one sequence per private chat
    assert sent[1]["result"]["chat"]["first_name"] == "Ada"

    press = standin.callback_query(USER, "yes")
    assert press["callback_query"]["message"]["message_id"] == mid
    assert press["callback_query"]["message"]["reply_markup"] == keyboard
    assert press["update_id"] > greeting["update_id"]

    same = {"chat_id": USER, "message_id": mid, "text": "Ready?", "reply_markup": keyboard}
    assert ok("editMessageText", same)[1]["description"].startswith(
        "Bad Request: message is not modified"
    )
    edited = ok("editMessageText", {"chat_id": USER, "message_id": mid, "text": "Thanks"})[1]
    assert edited["result"]["text"] == "Thanks" and "reply_markup" not in edited["result"]
    assert "edit_date" in edited["result"]
    assert standin.message(USER, mid) == edited["result"]
    assert ok("deleteMessage", {"chat_id": USER, "message_id": mid})[1]["result"] is True
    assert ok("deleteMessage", {"chat_id": USER, "message_id": mid})[1]["description"] == (
        "Bad Request: message to delete not found"
    )
    stale = standin.callback_query(USER, "yes", mid)["callback_query"]["message"]
    assert stale["date"] == 0  # an InaccessibleMessage

    doc = standin.document(USER, "plan.pdf", content=b"%PDF plan")["message"]["document"]
    assert doc["mime_type"] == "application/pdf"
    path = ok("getFile", {"file_id": doc["file_id"]})[1]["result"]["file_path"]
    assert standin.file_content(path) == b"%PDF plan"
    assert "voice" in standin.voice(USER)["message"]
    assert len(standin.photo(USER, caption="board")["message"]["photo"]) == 3
    assert standin.sticker(USER)["message"]["sticker"]["emoji"] == "👍"
    note = standin.text_message(USER, "first draft")
    change = standin.edited_message(USER, note["message"]["message_id"], "second draft")
    assert change["edited_message"]["text"] == "second draft"
    assert change["edited_message"]["date"] == note["message"]["date"]


def test_state_round_trips_through_json() -> None:
    standin = BotApiStandin()
    standin.handle_nowait("sendMessage", {"chat_id": USER, "text": "kept"})
    standin.handle_nowait(
        "sendDocument",
        {"chat_id": USER, "document": UploadedFile("a.bin", b"\x00\x01")},
    )
    standin.push_update(standin.text_message(USER, "queued"))
    copy = BotApiStandin()
    copy.load_state(json.loads(json.dumps(standin.dump_state())))
    assert copy.sent_messages() == standin.sent_messages()
    assert copy.documents()[0]["content"] == b"\x00\x01"
    assert copy.pending_updates() == standin.pending_updates()
    assert [c.method for c in copy.calls] == ["sendMessage", "sendDocument"]
    assert (
        copy.push_update(copy.text_message(USER, "next"))["update_id"]
        > (standin.pending_updates()[-1]["update_id"])
    )


# ------------------------------------------------------------------ getUpdates long polling


async def test_get_updates_long_poll_offsets_and_conflicts() -> None:
    standin = BotApiStandin()
    poll = asyncio.create_task(standin.handle("getUpdates", {"timeout": "5"}))
    await asyncio.sleep(0.02)
    assert not poll.done()
    first = standin.push_update(standin.text_message(USER, "late"))
    status, body = await asyncio.wait_for(poll, 1)
    assert status == 200 and [u["update_id"] for u in body["result"]] == [first["update_id"]]

    second = standin.push_update(standin.text_message(USER, "next"))
    body = standin.handle_nowait("getUpdates", {"offset": "0", "limit": "1"})[1]
    assert [u["update_id"] for u in body["result"]] == [first["update_id"]]
    body = standin.handle_nowait("getUpdates", {"offset": str(first["update_id"] + 1)})[1]
    assert [u["update_id"] for u in body["result"]] == [second["update_id"]]

    older = asyncio.create_task(
        standin.handle("getUpdates", {"offset": second["update_id"] + 1, "timeout": 5})
    )
    await asyncio.sleep(0.02)
    newer = await standin.handle(
        "getUpdates", {"offset": second["update_id"] + 1, "timeout": 0.05}
    )
    assert newer == (200, {"ok": True, "result": []})
    status, body = await asyncio.wait_for(older, 1)
    assert status == 409 and "terminated by other getUpdates request" in body["description"]
    assert standin.pending_updates() == []


# ------------------------------------------------------------------ loopback HTTP


async def test_loopback_polling_delivers_updates_to_handlers() -> None:
    standin = BotApiStandin()
    seen: list[tuple[str, Any]] = []
    done = asyncio.Event()

    async def on_start(update: Any, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(("start", context.args))

    async def on_text(update: Any, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(("text", update.message.text))

    async def on_document(update: Any, context: ContextTypes.DEFAULT_TYPE) -> None:
        file = await update.message.document.get_file()
        seen.append(("document", bytes(await file.download_as_bytearray())))

    async def on_button(update: Any, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer()
        seen.append(("button", (query.data, query.message.text)))
        done.set()

    async with LoopbackServer(standin) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        app = (
            ApplicationBuilder()
            .token(TOKEN)
            .base_url(server.base_url)
            .base_file_url(server.base_file_url)
            .request(_loopback_request())
            .get_updates_request(_loopback_request())
            .rate_limiter(AIORateLimiter())
            .build()
        )
        app.add_handler(CommandHandler("start", on_start))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
        app.add_handler(MessageHandler(filters.Document.ALL, on_document))
        app.add_handler(CallbackQueryHandler(on_button))
        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=5)
            sent = await app.bot.send_message(USER, "Ready?", reply_markup=_keyboard())
            standin.push_update(standin.command(USER, "/start abc"))
            standin.push_update(standin.text_message(USER, "hello"))
            standin.push_update(standin.document(USER, "cv.txt", content=b"my cv"))
            standin.push_update(standin.callback_query(USER, "yes", sent.message_id))
            await asyncio.wait_for(done.wait(), 3)
            await app.updater.stop()
            await app.stop()

    assert seen == [
        ("start", ["abc"]),
        ("text", "hello"),
        ("document", b"my cv"),
        ("button", ("yes", "Ready?")),
    ]
    assert standin.pending_updates() == []
    assert standin.calls_of("answerCallbackQuery")[0].status == 200


async def test_loopback_drop_and_encodings() -> None:
    standin = BotApiStandin(fault_drop=1.0, fault_methods={"getMe"})
    async with (
        LoopbackServer(standin) as server,
        httpx.AsyncClient(trust_env=False, timeout=5) as http,
    ):
        api = f"{server.base_url}{TOKEN}"
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"{api}/getMe")
        assert standin.calls[-1].fault == "drop"
        response = await http.post(
            f"{api}/sendMessage",
            json={"chat_id": USER, "text": "json body", "reply_markup": _keyboard().to_dict()},
        )
        assert response.status_code == 200
        assert response.json()["result"]["reply_markup"] == _keyboard().to_dict()
        response = await http.post(f"{api}/sendMessage", data={"chat_id": str(USER), "text": ""})
        assert response.status_code == 400
        assert response.json()["description"] == "Bad Request: message text is empty"
        response = await http.post(f"{api}/unknownMethod")
        assert response.status_code == 404
    assert [m["text"] for m in standin.sent_messages()] == ["json body"]


def test_threaded_server_with_control_client() -> None:
    standin = BotApiStandin(token=TOKEN)
    server = LoopbackServer(standin).start_in_thread()
    try:
        with (
            ControlClient(server.control_url) as control,
            httpx.Client(trust_env=False, timeout=5) as http,
        ):
            api = f"{server.base_url}{TOKEN}"
            assert control.health()["bot_username"] == DEFAULT_BOT_USERNAME
            pushed = control.build("text_message", user_id=USER, text="hi from harness")
            result = http.post(f"{api}/getUpdates", data={"timeout": "0"}).json()["result"]
            assert result == [pushed]

            response = http.post(
                f"{api}/sendDocument",
                data={"chat_id": str(USER), "caption": "notes"},
                files={"document": ('we"ek 1.csv', b"a,b\r\n1,2\r\n", "text/csv")},
            )
            assert response.status_code == 200
            (document,) = control.documents(USER)
            assert document["filename"] == 'we"ek 1.csv'
            assert document["content"] == b"a,b\r\n1,2\r\n"
            assert document["mime_type"] == "text/csv"

            control.block(USER)
            response = http.post(f"{api}/sendMessage", data={"chat_id": USER, "text": "x"})
            assert response.status_code == 403
            control.unblock(USER)
            control.configure(per_chat_per_second=1)
            assert http.post(f"{api}/sendMessage", data={"chat_id": USER, "text": "a"}).is_success
            limited = http.post(f"{api}/sendMessage", data={"chat_id": USER, "text": "b"})
            assert limited.status_code == 429 and limited.json()["parameters"]["retry_after"] == 1
            assert http.post(f"{server.base_url}999:XYZ/getMe").status_code == 401

            assert control.counters()["count_429"] == 1
            assert [m["text"] for m in control.sent_messages(USER)] == ["a"]
            statuses = [(c["method"], c["status"]) for c in control.calls()]
            assert statuses == [
                ("getUpdates", 200),
                ("sendDocument", 200),
                ("sendMessage", 403),
                ("sendMessage", 200),
                ("sendMessage", 429),
                ("getMe", 401),
            ]
            assert len(control.calls(since=5)) == 1
    finally:
        server.stop()


def test_standalone_process_serves_and_writes_state(tmp_path: Path) -> None:
    state_file = tmp_path / "standin.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.api_standin",
            "--port",
            "0",
            "--per-chat-rate",
            "1",
            "--state-file",
            str(state_file),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["base_url"].startswith("http://127.0.0.1:")
        with httpx.Client(trust_env=False, timeout=5) as http:
            me = http.get(f"{info['base_url']}{TOKEN}/getMe").json()
            assert me["result"]["username"] == DEFAULT_BOT_USERNAME
            with ControlClient(info["control_url"]) as control:
                control.build("command", user_id=USER, command_text="/start")
                assert control.state()["queue"][0]["message"]["text"] == "/start"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=5)
    assert process.returncode == 0
    state = json.loads(state_file.read_text(encoding="utf-8"))
    assert [c["method"] for c in state["calls"]] == ["getMe"]
    assert len(state["queue"]) == 1
