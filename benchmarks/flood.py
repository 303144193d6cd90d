"""Members' reply times while unknown accounts flood the bot, against no flood.

Twenty mentees each do a GROW reflection (10 updates, a reply awaited before the next, with
a think time of 1.5 s on average, as people type) through the real Application: polling's
update queue, the per-chat update processor with its flood gate (bot/throttle.py),
AIORateLimiter at Telegram's 30 messages/s, encrypted SQLite on disk, the in-process Bot API
stand-in. After an unmeasured warm-up (the first answers load the safety rule's model), three
runs in this process, the same members each time:

1. no flood (the baseline);
2. the same, while 60 unknown accounts send 10 messages each (600 updates at once);
3. the flood again with the gate switched off, to show what it prevents.

    python benchmarks/flood.py [--members 20] [--strangers 60] [--each 10] [--think 1.5]

Latency is per member update, from the moment it is queued to the end of its handling
(every reply sent). Ratios against the baseline, and absolute figures, come last; the target
is members' p99 with the flood within 2x of the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PTB_TIMEDELTA", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import Update

from benchmarks.bot_throughput import ANSWERS, Timed, consented_mentees, pct
from benchmarks.buttons import last_button
from bot.app import build_application
from conversations.catalogue import load_flows
from storage.crypto import KeyRing, generate_key
from storage.store import Store
from tests.support.api_standin import BotApiStandin, StandinRequest
from tests.support.harness import TOKEN, offline_settings

STRANGER_BASE = 50_000_000


async def member(app: Any, standin: BotApiStandin, timer: Timed, user_id: int,
                 think: float, rng: random.Random, latencies: list[float]) -> None:
    loop = asyncio.get_running_loop()

    async def send(update: dict[str, Any]) -> None:
        await asyncio.sleep(rng.expovariate(1 / think) if think else 0)
        waiter: asyncio.Future[float] = loop.create_future()
        timer.waiters[user_id] = waiter
        queued = time.perf_counter()
        await app.update_queue.put(Update.de_json(update, app.bot))
        latencies.append(await asyncio.wait_for(waiter, 120) - queued)

    await send(standin.text_message(user_id, "/reflect"))
    for text in ANSWERS:
        await send(standin.text_message(user_id, text))
    for _ in range(4):
        await send(standin.text_message(user_id, "/skip"))
    save = last_button(standin.sent_messages(user_id), "Save")
    await send(standin.callback_query(user_id, save or "none"))


async def flood(app: Any, standin: BotApiStandin, strangers: int, each: int) -> None:
    await asyncio.sleep(0.3)  # the members are under way
    for i in range(each):
        for s in range(strangers):
            await app.update_queue.put(Update.de_json(
                standin.text_message(STRANGER_BASE + s, f"hi {i}"), app.bot))


async def setup(folder: Path, n: int) -> tuple[Store, list[int]]:
    store = await Store.open(folder / "flood.sqlite3", KeyRing(generate_key()),
                             load_flows()["consent"].version)
    return store, await consented_mentees(store, n, "Flood benchmark")


async def run(store: Store, users: list[int], args: argparse.Namespace, *, strangers: int,
              gate: bool) -> dict[str, Any]:
    standin = BotApiStandin(token=TOKEN)
    for u in users:
        standin.add_chat(u, "Bench")
    app = build_application(offline_settings(store.db.path), store=store,
                            request=StandinRequest(standin),
                            updates_request=StandinRequest(standin), token=TOKEN)
    app._update_processor = Timed()  # the bot's processor class, with a completion signal
    await app.initialize()
    await app.post_init(app)  # type: ignore[misc]
    timer: Timed = app.update_processor  # type: ignore[assignment]
    gate_obj = timer.gate
    if not gate:
        timer.gate = None
    latencies: list[float] = []
    rng = random.Random(7)
    await app.start()
    started = time.perf_counter()
    jobs = [member(app, standin, timer, u, args.think, rng, latencies) for u in users]
    if strangers:
        jobs.append(flood(app, standin, strangers, args.each))
    await asyncio.gather(*jobs)
    elapsed = time.perf_counter() - started
    await app.stop()
    await app.shutdown()
    to_strangers = sum(len(standin.sent_messages(STRANGER_BASE + s)) for s in range(strangers))
    return {"lat": latencies, "elapsed": elapsed, "to_strangers": to_strangers,
            "dropped": gate_obj.dropped_strangers if (gate and gate_obj) else 0}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--strangers", type=int, default=60)
    parser.add_argument("--each", type=int, default=10)
    parser.add_argument("--think", type=float, default=1.5,
                        help="mean seconds a member takes between a reply and the next message")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, users = await setup(Path(tmp), args.members)
        try:
            warm = argparse.Namespace(**{**vars(args), "think": 0.0})
            await run(store, users[:2], warm, strangers=0, gate=True)
            base = await run(store, users, args, strangers=0, gate=True)
            gated = await run(store, users, args, strangers=args.strangers, gate=True)
            ungated = await run(store, users, args, strangers=args.strangers, gate=False)
        finally:
            await store.close()
    flood_size = args.strangers * args.each
    print(f"members: {args.members}, each a GROW reflection of 10 updates, think time "
          f"{args.think:.2f} s; flood: {args.strangers} unknown accounts x {args.each} "
          f"messages = {flood_size}; Telegram's 30 messages/s applied")
    for name, r in (("no flood", base), ("flood, gate on", gated), ("flood, gate off", ungated)):
        lat = r["lat"]
        print(f"{name:16}: member updates {len(lat):4}   p50 {pct(lat, 0.5):8.1f} ms   "
              f"p99 {pct(lat, 0.99):8.1f} ms   max {max(lat) * 1000:8.1f} ms   "
              f"replies to strangers {r['to_strangers']:4}   run {r['elapsed']:5.1f} s")
    b99 = pct(base["lat"], 0.99)
    print(f"stranger updates dropped by the gate: {gated['dropped']}/{flood_size}")
    print(f"ratio p99 flood (gate on) / no flood: {pct(gated['lat'], 0.99) / b99:.2f} "
          "(target <= 2)")
    print(f"ratio p99 flood (gate off) / no flood: {pct(ungated['lat'], 0.99) / b99:.2f}")
    print(f"ratio p50 flood (gate on) / no flood: "
          f"{pct(gated['lat'], 0.5) / pct(base['lat'], 0.5):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
