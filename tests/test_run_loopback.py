"""`mentorbot run` as a real process, long polling a Bot API stand-in on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.crypto import encode_key, generate_key
from tests.conftest import Place
from tests.support.api_standin import BotApiStandin, LoopbackServer
from tests.support.harness import TOKEN

ROOT = Path(__file__).resolve().parents[1]


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the bot")


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


@pytest.fixture
def server() -> LoopbackServer:
    standin = BotApiStandin(token=TOKEN)
    srv = LoopbackServer(standin).start_in_thread()
    yield srv
    srv.stop()


@pytest.mark.both_backends
def test_run_completes_the_journey_over_loopback(server: LoopbackServer, tmp_path: Path,
                                                 place: Place) -> None:
    standin = server.standin
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": server.base_url,
        "MENTORBOT_DB": str(place.db),
        "MENTORBOT_KEYSTORE": place.keystore or "",
        "MENTORBOT_MASTER_KEY": encode_key(generate_key()),
        "MENTORBOT_LOG_LEVEL": "DEBUG",
        "NO_PROXY": "127.0.0.1,localhost",
        "PTB_TIMEDELTA": "true",
    }
    cli(env, "programme", "create", "Loopback")
    codes = [
        line.split()[1]
        for line in cli(env, "dyad", "create", "--programme", "Loopback").splitlines()
        if line.startswith(("mentor:", "mentee:"))
    ]
    mentee_code = codes[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    user = 424_242_4242
    try:

        def texts() -> str:
            return "\n".join(m.get("text", "") for m in standin.sent_messages(user))

        def buttons() -> dict[str, str]:
            out = {}
            for m in standin.sent_messages(user):
                current = standin.message(user, m["message_id"]) or m
                for row in (current.get("reply_markup") or {}).get("inline_keyboard", []):
                    for b in row:
                        out[b["text"]] = b["callback_data"]
            return out

        def say(text: str, expect: str) -> None:
            standin.push_update(standin.text_message(user, text, first_name="Loopy"))
            wait_for(lambda: expect in texts())

        def tap(label: str, expect: str) -> None:
            standin.push_update(standin.callback_query(user, buttons()[label]))
            wait_for(lambda: expect in texts())

        say(f"/start {mentee_code}", "May I keep your reflections")
        tap("Yes, keep them", "anonymised summaries")
        tap("Yes", "evaluator")
        tap("Yes", "research data")
        tap("Yes", "Your choices are saved")
        say("/reflect", "Which reflection")
        tap("GROW: goal, reality, options, will", "(1/4) Goal")
        say("loopback goal", "(2/4) Reality")
        say("loopback reality", "(3/4) Options")
        say("loopback options", "(4/4) Will")
        say("loopback will", "Anything else")
        for expect in ("helped most", "learning about", "get in the way", "Save it, or change"):
            say("/skip", expect)
        tap("Save", "Saved")
        assert {c["method"] if isinstance(c, dict) else c.method for c in standin.calls} >= {
            "getMe",
            "getUpdates",
            "sendMessage",
            "setMyCommands",
            "answerCallbackQuery",
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    # the process logged JSON lines without the person's words, name or id
    for secret in ("loopback goal", "Loopy", str(user), TOKEN.split(":")[1]):
        assert secret not in output
    reader = ("import psycopg,sys; c=psycopg.connect(sys.argv[1])" if place.keystore
              else "import sqlite3,sys; c=sqlite3.connect(sys.argv[1])")
    rows = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{reader}; "
            "q=\"select count(*) from entries where status='complete'\"; "
            "print(c.execute(q).fetchone()[0])",
            str(place.db),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert rows.stdout.strip() == "1"
