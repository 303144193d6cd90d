"""Two webhook processes on one PostgreSQL database, against one (issue #20).

One command starts a throw-away PostgreSQL server (tests/support/pgserver.py), the Bot API
stand-in over HTTP on 127.0.0.1 (tests/support/api_standin.py), and bot processes that are
each the real entry point, ``mentorbot run --webhook`` (tests/support/webhook_proc.py),
configured by the environment alone, on a port of its own, on the same database and key
store database. The benchmark plays Telegram: it POSTs each update to a process and waits
for the reply.

1. **Throughput and latency.** N mentees each do a GROW reflection (10 updates), first
   against one process, then (other mentees, same database) against two, every update sent
   to the next process in turn, so one chat's updates alternate between the processes (the
   cross-process chat turn and ordering are exercised on every update). Latency is from the
   POST to the stand-in receiving the reply. Telegram's 30 messages/s is lifted on both
   sides (``MENTORBOT_SEND_RATE=0``), as in bot_throughput.py, so the figures are the bots'
   own.
2. **SIGKILL.** In the two-process run, the second process is killed with SIGKILL part-way
   (``--kill-at``, a share of all updates sent); from then on every update goes to the
   survivor (a balancer's health check). A person whose update got no reply within
   ``--patience`` seconds sends the answer again, as a person would. At the end every
   answer that was acknowledged (its reply came) must be stored: lost = acknowledged answers
   missing from the database.
3. **Reminder fan-out.** A cohort with every pair's 3-month check-in due at once (as in
   reminder_fanout.py, its own database, matched 3 months and 30 minutes before now, quiet
   hours off, since the processes keep real time), both processes running with the 30/s
   limit on
   and the stand-in enforcing 30/s overall and 1/s per chat with 429s: every reminder must
   go exactly once (0 lost, 0 duplicated) and the combined rate stays under 30/s (the
   worst rolling second is reported too).

    python benchmarks/multi_process.py [--people 100] [--fanout 600]

Ratios and absolutes come last, with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("PTB_TIMEDELTA", "true")
os.environ.setdefault("MENTORBOT_CODING_EMBEDDINGS", "off")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 30


# -- a bot process ------------------------------------------------------------------------
class Proc:
    """One ``mentorbot run --webhook`` process (tests/support/webhook_proc.py)."""

    def __init__(self, db: str, keys: str, api: str, key: str, rate: float) -> None:
        from tests.support.webhook_proc import WebhookProcess

        self.web = WebhookProcess(db, keys, api, key, MENTORBOT_SEND_RATE=str(rate),
                                  MENTORBOT_LOG_LEVEL="WARNING")
        self.url = self.web.url

    @property
    def alive(self) -> bool:
        return self.web.alive

    def wait_ready(self) -> None:
        self.web.wait_ready(120)

    def kill(self) -> None:
        self.web.kill()

    def stop(self) -> None:
        self.web.stop()


class Replies(list):  # type: ignore[type-arg]
    """The stand-in's sent-message log, telling the driver's loop of each new message."""

    def __init__(self, loop: asyncio.AbstractEventLoop, events: dict[int, asyncio.Event]):
        super().__init__()
        self.loop = loop
        self.events = events
        self.texts: dict[int, list[str]] = {}  # what each chat was shown since its last send

    def append(self, item: Any) -> None:
        super().append(item)
        chat = int(item["chat_id"])
        self.texts.setdefault(chat, []).append(str(item.get("text") or ""))
        event = self.events.get(chat)
        if event is not None:
            self.loop.call_soon_threadsafe(event.set)


# -- phase 1 and 2: reflections -----------------------------------------------------------
async def reflections(procs: list[Proc], standin: Any, users: list[int], events: dict[int, Any],
                      patience: float, kill_at: float | None = None) -> dict[str, Any]:
    from benchmarks.bot_throughput import ANSWERS
    from benchmarks.buttons import last_button

    latencies: list[float] = []
    acknowledged: dict[int, list[str]] = {u: [] for u in users}
    total = len(users) * 11
    sent = 0
    turn = 0
    resent = 0
    killed_at: float | None = None

    def target() -> Proc:
        nonlocal turn
        live = [p for p in procs if p.alive]
        turn += 1
        return live[turn % len(live)]

    log: Replies = standin._sent

    def progress(text: str) -> int:
        """Which question a reply shows: 1-4 for the typed ones, 5 past them."""
        found = re.search(r"\((\d)/4\)", text)
        if found:
            return int(found.group(1))
        return 5 if "Anything else you want to note" in text else 0

    async def send(user: int, update: dict[str, Any], past: int | None = None) -> bool:
        """True once a reply came (and, with ``past``, once one shows a later question)."""
        nonlocal sent, killed_at
        event = events[user]
        event.clear()
        log.texts[user] = []
        sent += 1
        if kill_at is not None and killed_at is None and sent >= kill_at * total:
            killed_at = time.perf_counter()
            procs[-1].kill()
        start = time.perf_counter()
        await asyncio.to_thread(target().web.post, update)
        deadline = start + patience
        first = True
        while True:
            try:
                await asyncio.wait_for(event.wait(), max(0.0, deadline - time.perf_counter()))
            except TimeoutError:
                return False
            event.clear()
            if first:
                latencies.append(time.perf_counter() - start)
                first = False
            if past is None or any(progress(t) > past for t in log.texts.get(user, [])):
                return True

    async def person(user: int) -> None:
        nonlocal resent
        # an answer is acknowledged when the bot shows a later question (as in
        # tests/support/crash.py); after the fourth comes the first optional one
        steps = [("/reflect", None, False)] + [
            (a, i + 1, True) for i, a in enumerate(ANSWERS)] + [("/skip", None, False)] * 4
        for text, past, is_answer in steps:
            for _ in range(5):
                if await send(user, standin.text_message(user, text), past):
                    if is_answer:
                        acknowledged[user].append(text)
                    break
                resent += 1  # no reply, or not the next question: the person says it again
        save = last_button(standin.sent_messages(user), "Save")
        for _ in range(5):
            if await send(user, standin.callback_query(user, save or "none")):
                break
            resent += 1

    started = time.perf_counter()
    await asyncio.gather(*(person(u) for u in users))
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "latencies": latencies, "acknowledged": acknowledged,
            "resent": resent, "updates": len(latencies)}


async def lost_answers(store: Any, acknowledged: dict[int, list[str]]) -> tuple[int, int]:
    """Acknowledged answers missing from the database, and how many were acknowledged."""
    lost = total = 0
    for user, texts in acknowledged.items():
        me = await store.participants.by_user(user)
        stored = ""
        if me is not None:
            for entry in await store.entries.of(me.id):
                stored += repr(await store.entries.answers(me.id, entry.id))
        for text in texts:
            total += 1
            if text not in stored:
                lost += 1
    return lost, total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


# -- the run ------------------------------------------------------------------------------
async def main(args: argparse.Namespace) -> None:
    from benchmarks.bot_throughput import consented_mentees
    from benchmarks.reminder_fanout import MARKER
    from benchmarks.reminder_fanout import cohort as fanout_cohort
    from conversations.catalogue import load_flows
    from conversations.waves import MONTH
    from storage import backdating
    from storage.crypto import KeyRing, encode_key, generate_key
    from storage.db import iso, utcnow
    from storage.store import Store
    from tests.support import pgserver
    from tests.support.api_standin import BotApiStandin, LoopbackServer
    from tests.support.harness import TOKEN

    start_load = os.getloadavg()
    key = generate_key()
    key_text = encode_key(key)
    loop = asyncio.get_running_loop()
    with pgserver.running() as server:
        db, keys = server.fresh("bench")
        store = await Store.open(db, KeyRing(key), load_flows()["consent"].version,
                                 keystore=keys)
        one_users = await consented_mentees(store, args.people, "One process")
        # the second and third cohorts: other people, same database
        two_users = await _more_mentees(store, args.people, base=11_000_000)
        standin = BotApiStandin(token=TOKEN)
        events: dict[int, asyncio.Event] = {}
        standin._sent = Replies(loop, events)
        for u in one_users + two_users:
            standin.add_chat(u, "Bench")
            events[u] = asyncio.Event()
        api = LoopbackServer(standin).start_in_thread()
        try:
            # 1: one process
            solo = Proc(db, keys, api.base_url, key_text, 0)
            solo.wait_ready()
            r1 = await reflections([solo], standin, one_users, events, args.patience)
            solo.stop()
            # 2: two processes, the second killed part-way
            pair = [Proc(db, keys, api.base_url, key_text, 0) for _ in range(2)]
            for p in pair:
                p.wait_ready()
            r2 = await reflections(pair, standin, two_users, events, args.patience)
            for p in pair:
                p.stop()
            pair = [Proc(db, keys, api.base_url, key_text, 0) for _ in range(2)]
            for p in pair:
                p.wait_ready()
            third = await _more_mentees(store, args.people, base=12_000_000)
            for u in third:
                standin.add_chat(u, "Bench")
                events[u] = asyncio.Event()
            r3 = await reflections(pair, standin, third, events, args.patience,
                                   kill_at=args.kill_at)
            for p in pair:
                p.stop()
            lost, acked = await lost_answers(store, r3["acknowledged"])
            await store.close()
        finally:
            api.stop()

        # 3: reminder fan-out, both processes, the 30/s limit on
        fdb, fkeys = server.fresh("fanout")
        fstore = await Store.open(fdb, KeyRing(key), load_flows()["consent"].version,
                                  keystore=fkeys)
        fusers = await fanout_cohort(fstore, args.fanout, 1, 0.0)
        # the processes keep real time: due now, at any hour
        await backdating.matched_at(fstore, iso(utcnow() - 3 * MONTH - timedelta(minutes=30)))
        fan_programme = await fstore.programmes.by_name("Fan-out")
        await fstore.programmes.set_setting(fan_programme.id, "reminders", {
            **fan_programme.settings.get("reminders", {}), "quiet_hours": "off"})
        await fstore.close()
        fstandin = BotApiStandin(token=TOKEN, overall_per_second=LIMIT, per_chat_per_second=1,
                                 retry_after=1)
        for u in fusers:
            fstandin.add_chat(u, "Bench")
        fapi = LoopbackServer(fstandin).start_in_thread()
        try:
            fan = [Proc(fdb, fkeys, fapi.base_url, key_text, LIMIT) for _ in range(2)]
            for p in fan:
                p.wait_ready()
            deadline = time.monotonic() + 60 + 3 * args.fanout / LIMIT
            while time.monotonic() < deadline:
                await asyncio.sleep(1)
                got = {int(c.params["chat_id"]) for c in fstandin.calls_of("sendMessage")
                       if c.status == 200 and MARKER in c.params["text"]}
                if len(got) >= len(fusers):
                    await asyncio.sleep(3)  # any duplicate would come now
                    break
            for p in fan:
                p.stop()
        finally:
            fapi.stop()
        accepted = [c for c in fstandin.calls_of("sendMessage")
                    if c.status == 200 and MARKER in c.params["text"]]
        per_chat = Counter(int(c.params["chat_id"]) for c in accepted)
        f_lost = sum(1 for u in fusers if per_chat.get(u, 0) == 0)
        f_dup = sum(n - 1 for n in per_chat.values() if n > 1)
        stamps = sorted(c.ts for c in fstandin.calls_of("sendMessage") if c.status == 200)
        span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
        worst = max((sum(1 for t in stamps[i:i + 200] if t < s + 1.0)
                     for i, s in enumerate(stamps)), default=0)
        n429 = fstandin.count_429

    end_load = os.getloadavg()
    rate1 = r1["updates"] / r1["elapsed"]
    rate2 = r2["updates"] / r2["elapsed"]
    print(f"people: {args.people} concurrent mentees a run, 10 updates each, no think time; "
          "Telegram's 30/s lifted for phases 1-2 (the bots' own capacity)")
    print(f"one process : {rate1:7.1f} updates/s   p50 {pct(r1['latencies'], .5):6.1f} ms   "
          f"p99 {pct(r1['latencies'], .99):6.1f} ms   ({r1['updates']} replies, "
          f"{r1['resent']} resent)")
    print(f"two process : {rate2:7.1f} updates/s   p50 {pct(r2['latencies'], .5):6.1f} ms   "
          f"p99 {pct(r2['latencies'], .99):6.1f} ms   ({r2['updates']} replies, "
          f"{r2['resent']} resent)")
    print(f"ratio two/one: throughput {rate2 / rate1:.2f}; p99 latency "
          f"{pct(r2['latencies'], .99) / max(pct(r1['latencies'], .99), 1e-9):.2f}; p50 "
          f"{pct(r2['latencies'], .5) / max(pct(r1['latencies'], .5), 1e-9):.2f}")
    print(f"SIGKILL of one of two at {args.kill_at:.0%} of the updates: acknowledged answers "
          f"{acked}, lost {lost}; sent again after no reply: {r3['resent']}")
    print(f"reminder fan-out, two processes: {len(fusers)} people due at once, "
          f"{len(accepted)} delivered in {span:.1f} s = {len(stamps) / span:.2f} msg/s "
          f"(limit {LIMIT}; ratio {len(stamps) / span / LIMIT:.3f}); worst rolling second "
          f"{worst}; lost {f_lost}; duplicated {f_dup}; 429s {n429}")
    print("load average: " + " / ".join(f"{x:.2f}" for x in start_load) + " at the start, "
          + " / ".join(f"{x:.2f}" for x in end_load) + f" at the end; {os.cpu_count()} cores")


async def _more_mentees(store: Any, n: int, base: int = 11_000_000) -> list[int]:
    """Like bot_throughput.consented_mentees, under other Telegram ids."""
    from conversations.service import Sender, Service
    from storage.models import Role

    service = Service(store)
    programme = await store.programmes.create(f"Cohort {base}")
    users = []
    for i in range(n):
        pair = await store.programmes.create_pair(programme.id)
        code = await store.programmes.create_invite(programme.id, Role.MENTEE, pair)
        user_id = base + i
        who = Sender(user_id, user_id, "Bench")
        resp = await service.start(who, code)
        for _ in range(4):
            data = next(b.data for r in reversed(resp.replies) for row in r.buttons
                        for b in row if b.data.endswith(":yes"))
            resp = await service.press(who, data)
        me = await store.participants.by_user(user_id)
        await store.participants.set_field(me.id, "preferred_framework", "grow")
        users.append(user_id)
    return users


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--fanout", type=int, default=600)
    parser.add_argument("--kill-at", type=float, default=0.4)
    parser.add_argument("--patience", type=float, default=10.0)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
