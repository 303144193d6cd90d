"""The crash runner: SIGKILL `mentorbot run` at random moments while people reflect.

The bot runs as a real process, long polling a Bot API stand-in on 127.0.0.1. Simulated
people go through joining, consent and a GROW reflection, reading what the bot shows and
acting on it as a person would: when no reply comes (the process died), they send
/reflect, which shows where they are. A killer sends SIGKILL at random moments and
restarts the bot straight away. At the end:

- every answer the bot acknowledged (it showed the next question) is in the database;
- after every restart each person resumed at the step after their last acknowledged one;
- every person finished; PRAGMA integrity_check passes on the database and key store.

The full runs are benchmarks/crash_test.py and benchmarks/fault_injection.py; CI runs
smaller ones through tests/test_crash.py and tests/test_faults.py.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from conversations.catalogue import load_flows
from storage.crypto import KeyRing, encode_key, generate_key
from storage.models import Role
from storage.store import Store
from tests.support.api_standin import BotApiStandin, LoopbackServer
from tests.support.harness import TOKEN

ROOT = Path(__file__).resolve().parents[2]

STEPS = ("goal", "reality", "options", "will")
STEP_MARK = re.compile(r"\((\d)/4\) (Goal|Reality|Options|Will)")


@dataclass
class Person:
    user_id: int
    code: str
    seen: int = 0  # messages of ours already read
    waiting_since: float | None = None
    pending: tuple[str, str] | None = None  # (step, text) sent and not yet acknowledged
    acked: list[tuple[str, str]] = field(default_factory=list)  # every round's
    round_acked: int = -1  # highest step acknowledged in the current reflection
    sent: int = 0
    rounds: int = 0
    done: bool = False
    resumed_wrong: int = 0


@dataclass
class Result:
    kills: int
    people: int
    finished: int
    acknowledged: int
    lost: int
    resumed_wrong: int
    integrity: str
    seconds: float
    faults_injected: int = 0


class Bot:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def buttons(standin: BotApiStandin, chat: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in standin.sent_messages(chat):
        current = standin.message(chat, m["message_id"]) or m
        for row in (current.get("reply_markup") or {}).get("inline_keyboard", []):
            for b in row:
                out[b["text"]] = b["callback_data"]
    return out


def act(standin: BotApiStandin, p: Person, now: float) -> None:
    """Read what the bot said since last time and do what a person would."""
    messages = standin.sent_messages(p.user_id)
    fresh = [m.get("text", "") for m in messages[p.seen :]]
    p.seen = len(messages)
    waited = now - (p.waiting_since or now)
    if not fresh:
        if p.waiting_since is not None and waited > 4.0:
            # No answer: the bot may have died. Ask where we are, as a person would.
            push_text(standin, p, "/reflect", now)
        return
    # A person acts on the last message they can act on: a notice after it ("I lost touch
    # with Telegram...") does not hide the "Saved." or the question above it.
    actionable = [m for m in fresh if STEP_MARK.search(m) or any(k in m for k, _ in REPLIES)]
    said = actionable[-1] if actionable else fresh[-1]
    shown = STEP_MARK.search(said)
    if shown is not None:
        index = int(shown.group(1)) - 1
        if p.pending is not None:
            pending_index = STEPS.index(p.pending[0])
            if index > pending_index:
                p.acked.append(p.pending)
                p.round_acked = max(p.round_acked, pending_index)
            elif index == pending_index and waited < 4.0:
                # The same question again while our answer is still on its way (a late
                # echo of an earlier /reflect): answering twice would shift answers.
                return
        if index < p.round_acked + 1:
            p.resumed_wrong += 1  # the bot forgot an answer it had acknowledged
        p.sent += 1
        p.pending = (STEPS[index], f"{STEPS[index]} {p.user_id}-{p.sent}")
        push_text(standin, p, p.pending[1], now)
        return
    if p.pending is not None and p.pending[0] == "will" and "Anything else" in said:
        p.acked.append(p.pending)
        p.pending = None
    reply = next((r for key, r in REPLIES if key in said), None)
    if reply == "rejoin":
        # The /start was fetched but died with the process before it was handled (the
        # library confirms a batch before handling it): open the invite link again.
        reply = f"/start {p.code}"
    if reply is None:
        if waited > 4.0:
            push_text(standin, p, "/reflect", now)
        return
    if reply == "done":
        p.rounds += 1
        p.done, p.pending, p.round_acked, p.waiting_since = True, None, -1, None
    elif reply.startswith("tap:"):
        label = reply[4:]
        data = buttons(standin, p.user_id).get(label)
        if data is not None:
            standin.push_update(standin.callback_query(p.user_id, data))
            p.waiting_since = now
    else:
        push_text(standin, p, reply, now)


# What a person does on seeing a message (first match wins); "wait" means a late echo.
REPLIES = (
    ("Saved", "done"),
    ("May I keep your reflections", "tap:Yes, keep them"),
    ("anonymised summaries", "tap:Yes"),
    ("evaluator analyse", "tap:Yes"),
    ("research data", "tap:Yes"),
    ("Which reflection", "tap:GROW: goal, reality, options, will"),
    ("unfinished one", "tap:Carry on"),
    ("Save it, or change", "tap:Save"),
    ("Anything else", "/skip"),
    ("helped most", "/skip"),
    ("learning about", "/skip"),
    ("get in the way", "/skip"),
    ("Your choices are saved", "/reflect"),
    ("Here's what you can do", "/reflect"),
    ("Next: send /reflect", "/reflect"),
    ("need your consent", "/consent"),
    ("open the invite link", "rejoin"),
)


def push_text(standin: BotApiStandin, p: Person, text: str, now: float) -> None:
    standin.push_update(standin.text_message(p.user_id, text))
    p.waiting_since = now


async def prepare(db: Path, key: bytes, people: int) -> list[str]:
    store = await Store.open(db, KeyRing(key), load_flows()["consent"].version)
    programme = await store.programmes.create("Crash test")
    codes = []
    for _ in range(people):
        pair = await store.programmes.create_pair(programme.id)
        codes.append(await store.programmes.create_invite(programme.id, Role.MENTEE, pair))
    await store.close()
    return codes


async def stored_answers(db: Path, key: bytes, users: list[int]) -> set[tuple[int, str, str]]:
    """Every (user, step, text) held in the database, decrypted, across all entries."""
    store = await Store.open(db, KeyRing(key), load_flows()["consent"].version)
    out: set[tuple[int, str, str]] = set()
    try:
        for user_id in users:
            person = await store.participants.by_user(user_id)
            if person is None:
                continue
            for entry in await store.entries.of(person.id):
                for step, value in (await store.entries.answers(person.id, entry.id)).items():
                    out.add((user_id, step, str(value)))
        return out
    finally:
        await store.close()


def run(
    kills: int,
    people: int,
    seed: int = 1,
    timeout: float = 600,
    faults: dict[str, float] | None = None,
    blocked: int = 0,
) -> Result:
    """``faults``: stand-in fault rates (fault_429, fault_500, fault_502, fault_drop,
    fault_slow); ``blocked``: how many people have blocked the bot (403 on every send)."""
    rng = random.Random(seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mentorbot-crash-") as tmp:
        db = Path(tmp) / "crash.sqlite3"
        key = generate_key()
        codes = asyncio.run(prepare(db, key, people))
        blocked_ids = {900_100_000 + n for n in range(blocked)}
        standin = BotApiStandin(
            token=TOKEN, fault_seed=seed, blocked_chats=blocked_ids, **(faults or {})
        )
        server = LoopbackServer(standin).start_in_thread()
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": server.base_url,
            "MENTORBOT_DB": str(db),
            "MENTORBOT_MASTER_KEY": encode_key(key),
            "NO_PROXY": "127.0.0.1,localhost",
            "PTB_TIMEDELTA": "true",
            "MENTORBOT_LOG_LEVEL": "WARNING",
        }
        crowd = [Person(900_100_000 + n, code) for n, code in enumerate(codes)]
        bot = Bot(env)
        bot.start()
        for p in crowd:
            standin.push_update(standin.text_message(p.user_id, f"/start {p.code}"))
            p.waiting_since = time.monotonic()
        done_kills = 0
        next_kill = time.monotonic() + rng.uniform(1.5, 3.0)
        try:
            while time.monotonic() - started < timeout:
                now = time.monotonic()
                if bot.proc is not None and bot.proc.poll() is not None:
                    # It exited on its own (the Bot API failed it at start-up): a
                    # supervisor such as systemd's Restart= starts it again.
                    bot.start()
                for p in crowd:
                    if not p.done:
                        act(standin, p, now)
                if all(p.done for p in crowd if p.user_id not in blocked_ids) and (
                    done_kills >= kills
                ):
                    break
                if done_kills < kills and now >= next_kill:
                    bot.kill()
                    done_kills += 1
                    bot.start()
                    next_kill = now + rng.uniform(0.4, 2.0)
                if all(p.done for p in crowd if p.user_id not in blocked_ids) and (
                    done_kills < kills
                ):
                    # Everyone finished early: start a second round so kills land mid-flow.
                    for p in crowd:
                        if p.user_id not in blocked_ids:
                            p.done = False
                            push_text(standin, p, "/reflect", now)
                time.sleep(0.02)
        finally:
            bot.stop()
            server.stop()
        stored = asyncio.run(stored_answers(db, key, [p.user_id for p in crowd]))
        acknowledged = lost = 0
        for p in crowd:
            for step, text in p.acked:
                acknowledged += 1
                lost += (p.user_id, step, text) not in stored
        checks = []
        for path in (db, Path(str(db) + ".keys")):
            with sqlite3.connect(path) as conn:
                checks.append(conn.execute("PRAGMA integrity_check").fetchone()[0])
        integrity = "ok" if all(c == "ok" for c in checks) else ";".join(checks)
    injected = sum(standin.fault_counts.values()) + sum(
        1 for c in standin.calls if getattr(c, "status", None) == 403
    )
    return Result(
        done_kills,
        people - blocked,
        sum(p.rounds > 0 for p in crowd if p.user_id not in blocked_ids),
        acknowledged,
        lost,
        sum(p.resumed_wrong for p in crowd),
        integrity,
        time.monotonic() - started,
        injected,
    )


def faults(rate: float) -> dict[str, float]:
    """Bot API faults at ``rate`` (429s and 500s; half as many 502s, drops, slow answers)."""
    return {
        "fault_429": rate,
        "fault_500": rate,
        "fault_502": rate / 2,
        "fault_drop": rate / 2,
        "fault_slow": rate / 2,
    }
