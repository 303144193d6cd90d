"""Update throughput and handling latency of the real bot, against a bare echo bot.

N simulated mentees each do a full GROW reflection (11 updates: /reflect, four answers,
four /skip, the summary's Save press and nothing else) at the same time, through the real
Application (AIORateLimiter, per-chat ordering, encrypted SQLite on disk) and the
in-process Bot API stand-in. The baseline is a bare Application on the same stand-in whose
handlers only echo, driven by the same people with the same updates.

    python benchmarks/bot_throughput.py [--people 200] [--think 0.2] [--embeddings both]

The real bot runs with save-time embeddings on (the default: a low-priority child process
embeds each saved entry, bot/embedder.py) and with them off (``MENTORBOT_CODING_EMBEDDINGS=
off``), one after the other in the same run, at the same offered load (the same people, the
same think times from the same seed), so the p99 reply times can be compared; ``--embeddings
on`` or ``off`` runs only one. For the run with embeddings it also says how many of the
saved answers had their embeddings stored when the last reply went out, and how long the
worker took after that to finish the rest.

Latency is measured per update, from the moment it is queued to the end of its handling
(every reply sent). Telegram's bot-wide 30 messages/s limit is lifted on both sides, so
the figures show the bot's own capacity, not Telegram's. Ratios and absolutes come last.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PTB_TIMEDELTA", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    CallbackQueryHandler,
    MessageHandler,
    filters,
)

from benchmarks.buttons import last_button
from bot.app import build_application
from bot.coding import CODER_KEY
from bot.processor import PerChatUpdateProcessor
from conversations.catalogue import load_flows
from conversations.service import Sender, Service
from storage.crypto import KeyRing, generate_key
from storage.models import Role
from storage.store import Store
from tests.support.api_standin import BotApiStandin, StandinRequest
from tests.support.harness import TOKEN, offline_settings

ANSWERS = (
    "Get ready for my appraisal next month",
    "Short-staffed ward, and my manager is stretched",
    "My mentor shared how they prepared for theirs",
    "Write three examples by Friday",
)


class Timed(PerChatUpdateProcessor):
    """The bot's own update processor, plus a signal when an update is fully handled."""

    def __init__(self) -> None:
        super().__init__(256)
        self.waiters: dict[int, asyncio.Future[float]] = {}

    async def do_process_update(self, update: object, coroutine: Any) -> None:
        await super().do_process_update(update, coroutine)
        waiter = self.waiters.pop(self._key(update), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(time.perf_counter())


THINK = 0.0  # mean seconds a person takes between a reply and their next message
RNG = random.Random(5)  # reseeded before each run, so each run is offered the same load


async def person(
    app: Any, standin: BotApiStandin, timer: Timed, user_id: int, latencies: list[float]
) -> None:
    """One mentee's GROW reflection, each update sent after the reply to the last."""
    loop = asyncio.get_running_loop()

    async def send(update: dict[str, Any]) -> None:
        if THINK:
            await asyncio.sleep(RNG.expovariate(1 / THINK))
        waiter: asyncio.Future[float] = loop.create_future()
        timer.waiters[user_id] = waiter
        queued = time.perf_counter()
        await app.update_queue.put(Update.de_json(update, app.bot))
        replied = await asyncio.wait_for(waiter, 30)
        latencies.append(replied - queued)

    await send(standin.text_message(user_id, "/reflect"))
    for text in ANSWERS:
        await send(standin.text_message(user_id, text))
    for _ in range(4):
        await send(standin.text_message(user_id, "/skip"))
    save = last_button(standin.sent_messages(user_id), "Save", "echo")
    await send(standin.callback_query(user_id, save or "none"))


async def drive(app: Any, standin: BotApiStandin, users: list[int]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    timer = app.update_processor
    await app.start()
    started = time.perf_counter()
    await asyncio.gather(*(person(app, standin, timer, u, latencies) for u in users))
    elapsed = time.perf_counter() - started
    await app.stop()
    return elapsed, latencies


async def consented_mentees(store: Store, n: int, programme_name: str) -> list[int]:
    """``n`` mentees joined through the real flows, every consent given, GROW chosen: their
    Telegram user ids."""
    service = Service(store)
    programme = await store.programmes.create(programme_name)
    users = []
    for i in range(n):
        pair = await store.programmes.create_pair(programme.id)
        code = await store.programmes.create_invite(programme.id, Role.MENTEE, pair)
        user_id = 10_000_000 + i
        who = Sender(user_id, user_id, "Bench")
        resp = await service.start(who, code)
        for _ in range(4):
            data = next(
                b.data
                for r in reversed(resp.replies)
                for row in r.buttons
                for b in row
                if b.data.endswith(":yes")
            )
            resp = await service.press(who, data)
        me = await store.participants.by_user(user_id)
        assert me is not None
        await store.participants.set_field(me.id, "preferred_framework", "grow")
        users.append(user_id)
    return users


async def real_bot(n: int, folder: Path, embeddings: bool) -> tuple[float, list[float], int, str]:
    os.environ["MENTORBOT_CODING_EMBEDDINGS"] = "on" if embeddings else "off"
    global RNG
    RNG = random.Random(5)
    store = await Store.open(
        folder / "bench.sqlite3", KeyRing(generate_key()), load_flows()["consent"].version
    )
    users = await consented_mentees(store, n, "Benchmark")
    standin = BotApiStandin(token=TOKEN)
    for u in users:
        standin.add_chat(u, "Bench")
    app = build_application(
        offline_settings(folder / "bench.sqlite3"),
        store=store,
        request=StandinRequest(standin),
        updates_request=StandinRequest(standin),
        token=TOKEN,
        overall_rate=0,
    )
    app._update_processor = Timed()  # same processor class, with a completion signal
    await app.initialize()
    await app.post_init(app)  # type: ignore[misc]
    elapsed, latencies = await drive(app, standin, users)
    note = ""
    coder = app.bot_data.get(CODER_KEY)
    if embeddings and coder is not None and coder.worker is not None:
        at_last_reply = await store.embeddings.count()
        start = time.perf_counter()
        await asyncio.wait_for(coder.drain(), 600)
        note = (f"   embeddings stored: {at_last_reply} answers at the last reply, "
                f"{await store.embeddings.count()} {time.perf_counter() - start:.1f} s later")
    elif embeddings:
        note = "   (embeddings unavailable: semantic extra missing)"
    await app.shutdown()
    await app.post_shutdown(app)  # type: ignore[misc]
    saved = await store.entries.complete_count()
    await store.close()
    return elapsed, latencies, saved, note


async def echo_bot(n: int) -> tuple[float, list[float]]:
    standin = BotApiStandin(token=TOKEN)
    users = [20_000_000 + i for i in range(n)]
    for u in users:
        standin.add_chat(u, "Bench")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("echo", callback_data="echo")]])

    async def echo(update: Update, _: Any) -> None:
        assert update.effective_chat is not None
        await update.effective_chat.send_message("echo", reply_markup=markup)

    async def press(update: Update, _: Any) -> None:
        assert update.callback_query is not None and update.effective_chat is not None
        await update.callback_query.answer()
        await update.effective_chat.send_message("echo")

    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .request(StandinRequest(standin))
        .get_updates_request(StandinRequest(standin))
        .rate_limiter(AIORateLimiter(overall_max_rate=0, max_retries=3))
        .concurrent_updates(Timed())
        .build()
    )
    app.add_handler(MessageHandler(filters.ALL, echo))
    app.add_handler(CallbackQueryHandler(press))
    await app.initialize()
    elapsed, latencies = await drive(app, standin, users)
    await app.shutdown()
    return elapsed, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds between a reply and the next message (0: flat out)",
    )
    parser.add_argument("--embeddings", choices=("both", "on", "off"), default="both",
                        help="run the bot with save-time embeddings on, off, or both (default)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each (alternating off/on, on/off, ...); the figures "
                             "are of all their updates together, each run's p99 is listed")
    args = parser.parse_args()
    global THINK
    THINK = args.think
    start_load = os.getloadavg()
    runs: dict[str, tuple[float, list[float], int, str]] = {}
    each: dict[str, list[str]] = {}
    modes = ("off", "on") if args.embeddings == "both" else (args.embeddings,)
    for r in range(args.rounds):
        for mode_name in (modes if r % 2 == 0 else modes[::-1]):
            with tempfile.TemporaryDirectory() as tmp:
                got = await real_bot(args.people, Path(tmp), mode_name == "on")
            load = os.getloadavg()[0]
            each.setdefault(mode_name, []).append(
                f"p99 {pct(got[1], 0.99):.0f} ms (load {load:.1f})")
            if mode_name in runs:
                s0, l0, n0, _ = runs[mode_name]
                got = (s0 + got[0], l0 + got[1], n0 + got[2], got[3])
            runs[mode_name] = got
    global RNG
    RNG = random.Random(5)
    echo_s, echo_lat = await echo_bot(args.people)
    echo_rate = len(echo_lat) / echo_s
    mode = f"think time {args.think:.2f} s" if args.think else "no think time (saturation)"
    updates = len(next(iter(runs.values()))[1]) // args.rounds
    print(f"people: {args.people} concurrent mentees, {mode}, {updates} updates each run, "
          f"{args.rounds} run(s) of each")
    for name, listed in each.items():
        print(f"runs with embeddings {name}: " + "; ".join(listed))
    for name, (bot_s, bot_lat, saved, note) in runs.items():
        print(
            f"mentorbot, embeddings {name:3s}: {len(bot_lat) / bot_s:8.1f} updates/s   "
            f"p50 {pct(bot_lat, 0.5):6.1f} ms   p99 {pct(bot_lat, 0.99):6.1f} ms   "
            f"reflections saved {saved}/{args.people * args.rounds}{note}"
        )
    print(
        f"echo bot               : {echo_rate:8.1f} updates/s   p50 {pct(echo_lat, 0.5):6.1f} ms"
        f"   p99 {pct(echo_lat, 0.99):6.1f} ms"
    )
    if "on" in runs and "off" in runs:
        on, off = runs["on"][1], runs["off"][1]
        print(f"ratio embeddings on/off p99 latency: {pct(on, 0.99) / pct(off, 0.99):.2f} "
              f"(target <= 1.10); p50: {pct(on, 0.5) / pct(off, 0.5):.2f}; throughput: "
              f"{(len(on) / runs['on'][0]) / (len(off) / runs['off'][0]):.2f}")
    for name, (bot_s, bot_lat, _, _) in runs.items():
        print(f"ratio mentorbot (embeddings {name})/echo throughput: "
              f"{len(bot_lat) / bot_s / echo_rate:.2f}; p50 latency: "
              f"{statistics.median(bot_lat) / statistics.median(echo_lat):.2f}")
    end_load = os.getloadavg()
    print("load average: " + " / ".join(f"{x:.2f}" for x in start_load) + " at the start, "
          + " / ".join(f"{x:.2f}" for x in end_load) + f" at the end; {os.cpu_count()} cores")


if __name__ == "__main__":
    asyncio.run(main())
