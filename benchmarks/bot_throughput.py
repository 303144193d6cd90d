"""Update throughput and handling latency of the real bot, against a bare echo bot.

N simulated mentees each do a full GROW reflection (11 updates: /reflect, four answers,
four /skip, the summary's Save press and nothing else) at the same time, through the real
Application (AIORateLimiter, per-chat ordering, encrypted SQLite on disk) and the
in-process Bot API stand-in. The baseline is a bare Application on the same stand-in whose
handlers only echo, driven by the same people with the same updates.

    python benchmarks/bot_throughput.py [--people 200]

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

from bot.app import build_application
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
RNG = random.Random(5)


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
    save = None
    for message in reversed(standin.sent_messages(user_id)):
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if button["text"] in ("Save", "echo"):
                    save = button["callback_data"]
        if save:
            break
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


async def real_bot(n: int, folder: Path) -> tuple[float, list[float], int]:
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
    await app.shutdown()
    saved = await store.entries.complete_count()
    await store.close()
    return elapsed, latencies, saved


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
    args = parser.parse_args()
    global THINK
    THINK = args.think
    with tempfile.TemporaryDirectory() as tmp:
        bot_s, bot_lat, saved = await real_bot(args.people, Path(tmp))
    echo_s, echo_lat = await echo_bot(args.people)
    bot_rate, echo_rate = len(bot_lat) / bot_s, len(echo_lat) / echo_s
    mode = f"think time {args.think:.2f} s" if args.think else "no think time (saturation)"
    print(f"people: {args.people} concurrent mentees, {mode}, {len(bot_lat)} updates each run")
    print(
        f"mentorbot: {bot_rate:8.1f} updates/s   p50 {pct(bot_lat, 0.5):6.1f} ms   "
        f"p99 {pct(bot_lat, 0.99):6.1f} ms   reflections saved {saved}/{args.people}"
    )
    print(
        f"echo bot : {echo_rate:8.1f} updates/s   p50 {pct(echo_lat, 0.5):6.1f} ms   "
        f"p99 {pct(echo_lat, 0.99):6.1f} ms"
    )
    print(f"ratio mentorbot/echo throughput: {bot_rate / echo_rate:.2f}")
    latency_ratio = statistics.median(bot_lat) / statistics.median(echo_lat)
    print(f"ratio mentorbot/echo p50 latency: {latency_ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
