"""Reminder fan-out: N participants due at the same minute, against Telegram's limits.

A cohort of pairs matched together three months ago has its 3-month check-in due now, so
every participant (2,000 by default) has one reminder due at once. The real Application
(JobQueue sweep, pacer, AIORateLimiter, encrypted SQLite on disk) sends them over HTTP to
a loopback Bot API stand-in that enforces 30 messages/s overall and 1 message/s per chat
by answering 429 with retry_after, as Telegram does.

    python benchmarks/reminder_fanout.py [--people 2000] [--per-mentor 3] [--multi 0.2]

Each mentor holds --per-mentor pairs (joined through further invites, as in a programme where
mentors take two or three mentees), so a mentor has that many check-ins due at once. A
person gets one reminder per sweep and the next after the programme's spacing, so the
fan-out measured is one message to every participant; a mentor's message names the mentee.
With --multi, that share of people also hold a membership in a second programme (one of
each two mentors the other there), so they have one check-in due per membership: two
messages to one chat, each naming its programme, and a message lost is counted per
membership.

The achieved rate is measured from the start of the sweep that sent them (planning done,
selection included) to the last message the stand-in accepted. At 30/s, 2,000 messages
take at least 67 s. Lost and duplicated messages are counted from what the stand-in
accepted per chat. Ratios and absolutes come last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("PTB_TIMEDELTA", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import build_application
from bot.jobs import REMINDERS_KEY, ReminderJobs
from bot.render import MENU_VERSION
from conversations.catalogue import load_flows
from conversations.waves import MONTH
from storage import backdating
from storage.crypto import KeyRing, generate_key
from storage.db import iso
from storage.models import Role, Scope
from storage.programmes import PAIR_CAP
from storage.store import Store
from tests.support.api_standin import BotApiStandin, LoopbackServer
from tests.support.harness import TOKEN, offline_settings

LIMIT = 30  # Telegram's bot-wide messages per second
# A Wednesday noon in London: the benchmark's clock, so quiet hours never interfere
# whenever it is run. It advances in real time from the moment the bot starts.
NOON = datetime(2026, 6, 3, 11, 0, tzinfo=UTC)
MARKER = "3-month check-in is ready"


async def cohort(store: Store, people: int, per_mentor: int = 1,
                 multi: float = 0.0) -> list[int]:
    programme = await store.programmes.create(
        "Fan-out", {"reminders": {"quiet_pair_weeks": 52, "chemistry_overdue_weeks": 52},
                    PAIR_CAP: max(per_mentor, 1)}
    )
    users: list[int] = []
    mentor_uid = 0
    while len(users) < people:
        for n in range(per_mentor):
            if len(users) >= people:
                break
            pair = await store.programmes.create_pair(programme.id)
            for role in (Role.MENTOR, Role.MENTEE):
                if role is Role.MENTOR and n > 0:
                    user_id = mentor_uid  # the same mentor, joining a further pair
                else:
                    user_id = 30_000_000 + len(users)
                    users.append(user_id)
                code = await store.programmes.create_invite(programme.id, role, pair)
                result = await store.join(code, user_id, user_id, f"P{user_id % 100_000}")
                me = await store.participants.get(result.participant_id or 0)
                assert result.ok and me is not None, result
                if role is Role.MENTOR:
                    mentor_uid = user_id
                if result.again:
                    continue
                # Check-in reminders go only to people who let us keep their entries.
                await store.consent.record(
                    me.id, me.subject_ref, Scope.PARTICIPATE, True, source="benchmark"
                )
    # Some people hold a second membership: a second programme, where one of them mentors
    # another (so some are mentee in one programme and mentor in the other). Each
    # membership has its own check-in due, so they get two messages, one per membership,
    # each naming its programme.
    extra = int(len(users) * multi) // 2 * 2
    if extra:
        second = await store.programmes.create(
            "Fan-out B", {"reminders": {"quiet_pair_weeks": 52, "chemistry_overdue_weeks": 52}})
        chosen = users[-extra:]
        for mentor_id, mentee_id in zip(chosen[::2], chosen[1::2], strict=True):
            pair = await store.programmes.create_pair(second.id)
            for role, user_id in ((Role.MENTOR, mentor_id), (Role.MENTEE, mentee_id)):
                code = await store.programmes.create_invite(second.id, role, pair)
                result = await store.join(code, user_id, user_id, f"P{user_id % 100_000}")
                me = await store.participants.get(result.participant_id or 0)
                assert result.ok and result.membership and me is not None, result
                await store.consent.record(
                    me.id, me.subject_ref, Scope.PARTICIPATE, True, source="benchmark")
    matched = NOON - 3 * MONTH - timedelta(minutes=30)
    await backdating.matched_at(store, iso(matched))
    # Everyone already has their command menu, so start-up sends nothing but reminders
    # (one statement for 2,000 people: a fixture, built fast).
    await store.db.execute("UPDATE participants SET menu_version=?", (MENU_VERSION,))
    return users


async def run(people: int, folder: Path, per_mentor: int = 1,
              multi: float = 0.0) -> dict[str, float]:
    setup = time.perf_counter()
    store = await Store.open(
        folder / "fanout.sqlite3", KeyRing(generate_key()), load_flows()["consent"].version
    )
    users = await cohort(store, people, per_mentor, multi)
    # one message expected per membership in the first round (a mentor's further pairs
    # follow after the spacing)
    memberships = Counter(
        int(r[0]) for r in await store.db.fetchall(
            "SELECT a.id FROM participants p JOIN accounts a ON a.id = p.account_id"))
    per_account = sorted(memberships.values())
    setup_s = time.perf_counter() - setup

    standin = BotApiStandin(
        token=TOKEN, overall_per_second=LIMIT, per_chat_per_second=1, retry_after=1
    )
    for u in users:
        standin.add_chat(u, "Bench")
    server = LoopbackServer(standin).start_in_thread()
    try:
        app = build_application(
            offline_settings(folder / "fanout.sqlite3", telegram_api_base_url=server.base_url),
            store=store,
            token=TOKEN,
        )
        await app.initialize()
        await app.post_init(app)  # type: ignore[misc]
        rs: ReminderJobs = app.bot_data[REMINDERS_KEY]
        origin = time.monotonic()
        rs.clock = lambda: NOON + timedelta(seconds=time.monotonic() - origin)
        plan_started = time.perf_counter()
        planned = await rs.planner.plan()
        plan_s = time.perf_counter() - plan_started
        due_rows = await rs.planner.repo.due(rs.clock())
        due = len(due_rows)
        # one message per person now; a mentor's further check-ins follow, spaced
        due_people = len({r.participant_id for r in due_rows})

        started: list[float] = []
        sweep = rs.sweep

        async def timed_sweep() -> object:
            started.append(time.monotonic())
            return await sweep()

        rs.sweep = timed_sweep  # type: ignore[method-assign]
        await app.start()  # the JobQueue's first sweep runs a second later
        deadline = time.monotonic() + 30 + 3 * people / LIMIT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            counts = await rs.planner.repo.counts()
            if (counts.get("sent", 0) + counts.get("skipped", 0) >= due_people
                    and not rs._lock.locked()):
                break
        await app.stop()
        await app.shutdown()
    finally:
        server.stop()

    accepted = [
        c
        for c in standin.calls_of("sendMessage")
        if c.status == 200 and MARKER in c.params["text"]
    ]
    # a person in two programmes gets one message per membership, each naming its programme
    per_chat: dict[int, set[str]] = {}
    for c in accepted:
        per_chat.setdefault(int(c.params["chat_id"]), set()).add(
            "B" if c.params["text"].startswith("Fan-out B") else "A")
    expected = {u: {"A"} for u in users}
    if multi:
        for u in users[-(int(len(users) * multi) // 2 * 2):]:
            expected[u] = {"A", "B"}
    lost = sum(len(want - per_chat.get(u, set())) for u, want in expected.items())
    # the same message twice in one chat (a mentor's messages about different mentees differ)
    per_message = Counter((int(c.params["chat_id"]), c.params["text"]) for c in accepted)
    duplicates = sum(n - 1 for n in per_message.values() if n > 1)
    first_sweep = started[0] if started else accepted[0].ts
    elapsed = max(c.ts for c in accepted) - first_sweep if accepted else float("nan")
    status = await rs.planner.repo.counts()
    await store.close()
    return {
        "setup_s": setup_s,
        "planned": planned,
        "plan_s": plan_s,
        "due": due,
        "due_people": due_people,
        "delivered": len(accepted),
        "elapsed": elapsed,
        "rate": len(accepted) / elapsed if accepted else 0.0,
        "lost": lost,
        "duplicates": duplicates,
        "n429": standin.count_429,
        "retry_after_surfaced": rs.totals.retry_after,
        "rows_sent": status.get("sent", 0),
        "sweeps": len(started),
        "multi_people": sum(1 for n in per_account if n > 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--per-mentor", type=int, default=3,
                        help="pairs each mentor holds (1: one pair per person)")
    parser.add_argument("--multi", type=float, default=0.2,
                        help="share of people who also hold a membership in a second "
                             "programme (mentor of one another there)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = await run(args.people, Path(tmp), args.per_mentor, args.multi)
    print(f"people: {args.people} participants, mentors holding {args.per_mentor} pair(s) "
          f"each, {int(r['multi_people'])} of them also in a second programme; every pair's "
          f"check-in due at the same minute")
    print(
        f"setup: cohort joined and consented in {r['setup_s']:.1f} s; planner wrote "
        f"{int(r['planned'])} reminder rows in {r['plan_s']:.2f} s; {int(r['due'])} due now "
        f"for {int(r['due_people'])} people"
    )
    print(f"stand-in limits: {LIMIT} msg/s overall, 1 msg/s per chat, 429 retry_after=1")
    print(
        f"fan-out: {int(r['delivered'])} delivered in {r['elapsed']:.1f} s "
        f"({int(r['sweeps'])} sweep calls; rows marked sent: {int(r['rows_sent'])})"
    )
    print(f"achieved rate: {r['rate']:.2f} msg/s")
    print(json.dumps({k: round(v, 3) for k, v in r.items()}, sort_keys=True))
    print(f"ratio achieved/limit ({LIMIT} msg/s): {r['rate'] / LIMIT:.3f}")
    print(f"messages lost: {int(r['lost'])}")
    print(f"duplicates: {int(r['duplicates'])}")
    print(f"429s received: {int(r['n429'])}")


if __name__ == "__main__":
    asyncio.run(main())
