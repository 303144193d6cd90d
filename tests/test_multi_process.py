"""Several bot processes on one PostgreSQL database (issue #20): each mechanism of
storage.coordination and its users tested with two independent instances, each on
connections of its own, as two processes would have them."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from telegram import Chat, Message, Update, User

from bot.processor import PerChatUpdateProcessor
from bot.sendrate import SHARED_SHARE, SharedRateLimiter
from conversations.service import Service
from storage.coordination import ARRIVAL_LEASE, PgCoordination, chat_key
from storage.crypto import KeyRing
from storage.reminder_queue import SEND_LEASE, Kind, NewReminder, ReminderStore
from storage.store import Store
from tests.conftest import Place
from tests.people import Cohort

ON_PG = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def second(place: Place, master_key: bytes) -> AsyncIterator[Store]:
    """The same programme opened a second time: another process's store."""
    other = await place.open(KeyRing(master_key))
    yield other
    await other.close()


async def _reminders(store: Store, cohort: Cohort, n: int) -> list[int]:
    await cohort.joined_mentee()
    people = await store.participants.in_use()
    repo = ReminderStore(store)
    ids = []
    for i in range(n):
        rid = await repo.schedule(NewReminder(Kind.QUIET_PAIR, people[i % len(people)].id, None,
                                              NOW, f"test-{i}"), NOW)
        assert rid is not None
        ids.append(rid)
    return ids


@ON_PG
async def test_two_claimers_claim_every_reminder_exactly_once(
        store: Store, second: Store, cohort: Cohort) -> None:
    ids = await _reminders(store, cohort, 60)
    one, two = ReminderStore(store), ReminderStore(second)
    assert one.lease == SEND_LEASE["postgresql"] > timedelta(0)

    assert [r.id for r in await one.due(NOW)] == [r.id for r in await two.due(NOW)] == ids
    # both sweeps read every row as due and claim each at the same moment
    a: list[int] = []
    b: list[int] = []
    for rid in ids:
        got_a, got_b = await asyncio.gather(one.claim([rid], NOW), two.claim([rid], NOW))
        a += got_a
        b += got_b
    assert set(a).isdisjoint(b)
    assert sorted(a + b) == ids
    # claimed rows are nobody else's due work while the lease runs
    assert await one.due(NOW + timedelta(seconds=30)) == []


@ON_PG
async def test_a_killed_claimers_lease_runs_out_and_another_sends_it(
        store: Store, second: Store, cohort: Cohort) -> None:
    (rid,) = await _reminders(store, cohort, 1)
    killed, survivor = ReminderStore(store), ReminderStore(second)
    assert await killed.claim([rid], NOW) == [rid]  # ... and the process died mid-send
    within = NOW + SEND_LEASE["postgresql"] - timedelta(seconds=1)
    assert await survivor.claim([rid], within) == []
    assert [r.id for r in await survivor.due(within)] == []
    after = NOW + SEND_LEASE["postgresql"] + timedelta(seconds=1)
    assert [r.id for r in await survivor.due(after)] == [rid]
    assert await survivor.claim([rid], after) == [rid]
    await survivor.mark_sent([rid], after)
    assert await killed.claim([rid], after + timedelta(hours=1)) == []


@ON_PG
async def test_a_job_claim_goes_to_one_process_and_is_taken_over_after_its_lease(
        store: Store, second: Store) -> None:
    a, b = await store.coordination(), await second.coordination()
    assert isinstance(a, PgCoordination) and isinstance(b, PgCoordination)
    results = await asyncio.gather(*[c.claim("digest-7", "2026-W10") for c in (a, b) * 4])
    assert sorted(results) == [False] * 7 + [True]
    assert not await b.claim("digest-7", "2026-W10", lease=60)
    assert await b.claim("digest-7", "2026-W10", lease=0)  # the claimer never finished
    await b.done("digest-7", "2026-W10")
    assert not await a.claim("digest-7", "2026-W10", lease=0)  # done is done


async def _eventually(check: Any, seconds: float = 5.0) -> bool:
    """A closed connection's session ends on the server a moment later, its locks with it."""
    deadline = time.monotonic() + seconds
    while True:
        if await check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


def _update(uid: int, chat: int = 4242) -> Update:
    user = User(id=chat, first_name="x", is_bot=False)
    msg = Message(message_id=uid, date=NOW, chat=Chat(id=chat, type="private"), from_user=user,
                  text="t")
    return Update(update_id=uid, message=msg)


def _processor(store: Store, shared: PgCoordination) -> PerChatUpdateProcessor:
    p = PerChatUpdateProcessor(64)
    p.shared = shared
    p.turn_key = lambda c: chat_key(store.vault.lookup_hash("chat-turn", c))
    return p


@ON_PG
async def test_one_chats_updates_across_two_processes_never_overlap_and_keep_their_order(
        store: Store, second: Store) -> None:
    one = _processor(store, await store.coordination())  # type: ignore[arg-type]
    two = _processor(second, await second.coordination())  # type: ignore[arg-type]
    done: list[int] = []
    running: list[int] = []
    overlaps = 0

    async def handle(uid: int) -> None:
        nonlocal overlaps
        if running:
            overlaps += 1
        running.append(uid)
        await asyncio.sleep(0.05 if uid == 1 else 0.005)  # the other process tries meanwhile
        running.remove(uid)
        done.append(uid)

    async def deliver(proc: PerChatUpdateProcessor, uid: int, delay: float) -> None:
        await asyncio.sleep(delay)
        await proc.do_process_update(_update(uid), handle(uid))

    # 1 takes the chat; while it is handled, 2..30 reach the two processes shuffled (a
    # balancer may deliver that way); each must wait for every older one that has arrived
    order = list(range(2, 31))
    random.Random(7).shuffle(order)
    tasks = [deliver(one, 1, 0.0)] + [
        deliver(one if uid % 2 else two, uid, 0.002 + i * 0.0002) for i, uid in enumerate(order)]
    # another chat meanwhile is not held up by this one
    other: list[int] = []

    async def other_chat() -> None:
        async def note() -> None:
            other.append(1)

        await asyncio.sleep(0.02)
        await two.do_process_update(_update(999, chat=77), note())

    await asyncio.gather(*tasks, other_chat())
    assert overlaps == 0
    assert done == sorted(done) == list(range(1, 31))
    assert other == [1]


@ON_PG
async def test_a_copy_of_an_update_another_process_holds_is_dropped(
        store: Store, second: Store) -> None:
    one = _processor(store, await store.coordination())  # type: ignore[arg-type]
    two = _processor(second, await second.coordination())  # type: ignore[arg-type]
    ran: list[str] = []

    async def slow(name: str) -> None:
        await asyncio.sleep(0.05)
        ran.append(name)

    await asyncio.gather(one.do_process_update(_update(500), slow("one")),
                         two.do_process_update(_update(500), slow("two")))
    assert len(ran) == 1


@ON_PG
async def test_a_killed_processs_turn_and_arrival_stop_holding_the_chat(
        place: Place, master_key: bytes, store: Store, second: Store) -> None:
    a_live = await second.coordination()
    assert isinstance(a_live, PgCoordination)
    dying = await place.open(KeyRing(master_key))
    a = await dying.coordination()
    b = await store.coordination()
    assert isinstance(a, PgCoordination) and isinstance(b, PgCoordination)
    key = chat_key(store.vault.lookup_hash("chat-turn", 4242))
    assert await a.arrive(key, 10) and await a.try_turn(key, 10)
    assert await b.arrive(key, 11)
    assert not await b.try_turn(key, 11)  # 10 is being handled
    await a.conn.close()  # the process is gone: the server drops its session's lock
    await dying.close()
    # 10's arrival row stays, but its holder has gone: 11 goes next
    assert await _eventually(lambda: b.try_turn(key, 11))
    await b.end_turn(key, 11)
    # a live process's arrival holds its place until the lease has passed
    assert await b.arrive(key, 20)
    assert not await a_live.try_turn(key, 21)
    async with b.conn.cursor() as cur:
        await cur.execute("UPDATE chat_arrivals SET arrived_at = arrived_at - %s "
                          "WHERE update_id = 20", (ARRIVAL_LEASE + 1,))
    assert await a_live.try_turn(key, 21)
    await a_live.end_turn(key, 21)
    # a copy of 10 redelivered by Telegram is taken over, not dropped
    assert await b.arrive(key, 10)


@ON_PG
async def test_the_shared_send_rate_holds_across_two_limiters(
        store: Store, second: Store) -> None:
    rate = 60.0
    limiters = []
    for s in (store, second):
        lim = SharedRateLimiter(overall_max_rate=rate)
        lim.share(await s.coordination())  # type: ignore[arg-type]
        limiters.append(lim)
    times: list[float] = []

    async def send() -> bool:
        times.append(time.monotonic())
        return True

    async def one(i: int) -> Any:
        return await limiters[i % 2].process_request(send, (), {}, "sendMessage",
                                                     {"chat_id": 1000 + i}, None)

    await asyncio.gather(*[one(i) for i in range(72)])
    times.sort()
    allowed = rate * SHARED_SHARE
    worst = max(sum(1 for t in times if s <= t < s + 1.0) for s in times)
    # slots are 1/allowed apart on the server's clock; a late wake-up on a loaded machine
    # bunches sends a little, which the share below the rate is there to absorb
    assert worst <= rate
    # and it is the processes together that are limited: one alone would be twice as fast
    assert times[-1] - times[0] >= (len(times) - 1) / allowed * 0.9


@ON_PG
async def test_several_processes_migrate_at_once_on_a_new_database(
        place: Place, master_key: bytes, pg_server: Any) -> None:
    # every process starts at once: one migrates, the others wait and find nothing to do
    db, keys = pg_server.fresh()  # not migrated yet (the place is a migrated copy)
    new = Place("postgresql", db, keys)
    opened = await asyncio.gather(*[new.open(KeyRing(master_key)) for _ in range(3)])
    try:
        assert len({await s.db.schema_version() for s in opened}) == 1
        assert all([(await s.coordination()).shared for s in opened])
    finally:
        for s in opened:
            await s.close()


async def test_sqlite_keeps_one_process_and_nothing_shared(tmp_path: Any, master_key: bytes
                                                           ) -> None:
    from conversations.catalogue import load_flows

    s = await Store.open(tmp_path / "x.sqlite3", KeyRing(master_key),
                         load_flows()["consent"].version)
    try:
        assert not (await s.coordination()).shared
        assert ReminderStore(s).lease == timedelta(0)
        Service(s)
    finally:
        await s.close()


@ON_PG
async def test_one_persons_answers_handled_by_two_processes_in_turn_all_land_in_their_steps(
        store: Store, second: Store, cohort: Cohort) -> None:
    """Neither process may trust what it remembers of a person: the other may have moved
    them on (the conversation state and the membership are read from the database)."""
    mentee = await cohort.joined_mentee()
    other = Service(second)
    answers = ["my goal", "where I am", "what I could do", "what I will do"]
    await mentee.cmd("reflect")
    for i, text in enumerate(answers):
        mentee.service = other if i % 2 == 0 else cohort.service
        await mentee.say(text)
    me = await store.participants.by_user(7001)
    assert me is not None
    (entry,) = await store.entries.of(me.id)
    stored = await second.entries.answers(me.id, entry.id)
    assert all(text in repr(stored[step]) for text, step in
               zip(answers, ("goal", "reality", "options", "will"), strict=True))


@ON_PG
async def test_a_dead_processs_recorded_update_is_adopted_and_still_goes_first(
        place: Place, master_key: bytes, store: Store) -> None:
    dying = await place.open(KeyRing(master_key))
    a = await dying.coordination()
    b = await store.coordination()
    assert isinstance(a, PgCoordination) and isinstance(b, PgCoordination)
    key = chat_key(store.vault.lookup_hash("chat-turn", 4242))
    update = {"update_id": 10, "message": {"text": "my private answer"}}
    assert await a.record(key, 10, update)  # written before the webhook's 200
    assert not await b.record(key, 10, update)  # a copy: its live holder has it
    async with b.conn.cursor() as cur:
        await cur.execute("SELECT body FROM chat_arrivals WHERE update_id = 10")
        (body,) = await cur.fetchone()  # type: ignore[misc]
    assert b"private" not in bytes(body)  # sealed
    assert await b.adopt() == []  # its holder lives
    await a.conn.close()  # killed before handling it
    await dying.close()
    assert await b.record(key, 11, {"update_id": 11})
    # 10's holder is gone, but 10 was acknowledged and not handled: 11 still waits for it
    await asyncio.sleep(0.2)
    assert not await b.try_turn(key, 11)
    adopted: list[Any] = []

    async def taken() -> bool:
        adopted.extend(await b.adopt())
        return bool(adopted)

    assert await _eventually(taken)
    assert adopted == [(10, update)]
    assert not await b.try_turn(key, 11)  # adopted: it goes first
    assert await b.try_turn(key, 10)
    await b.end_turn(key, 10)
    assert await b.try_turn(key, 11)
    await b.end_turn(key, 11)
    assert await b.adopt() == []


@ON_PG
async def test_a_dropped_recorded_update_stops_holding_its_chat(store: Store) -> None:
    b = await store.coordination()
    assert isinstance(b, PgCoordination)
    key = chat_key(store.vault.lookup_hash("chat-turn", 4242))
    assert await b.record(key, 30, {"update_id": 30})
    assert not await b.try_turn(key, 31)
    await b.drop(30)  # the flood gate dropped it
    assert await b.try_turn(key, 31)
    await b.end_turn(key, 31)


@ON_PG
async def test_no_acknowledged_update_is_lost_when_its_webhook_process_is_sigkilled(
        place: Place, master_key: bytes, store: Store) -> None:
    """Real ``mentorbot run --webhook`` processes: one acknowledges two updates of a chat
    (HTTP 200) that it cannot handle yet, and is killed; the next process handles both, in
    order, once."""
    from storage.crypto import encode_key
    from tests.support.api_standin import BotApiStandin, LoopbackServer
    from tests.support.harness import TOKEN
    from tests.support.webhook_proc import WebhookProcess

    standin = BotApiStandin(token=TOKEN)
    api = LoopbackServer(standin).start_in_thread()
    chat = 5_550_001
    holder = await store.coordination()
    assert isinstance(holder, PgCoordination)
    key = chat_key(store.vault.lookup_hash("chat-turn", chat))
    procs: list[WebhookProcess] = []
    try:
        def start() -> WebhookProcess:
            proc = WebhookProcess(str(place.db), place.keystore, api.base_url,
                                  encode_key(master_key))
            procs.append(proc)
            return proc.wait_ready()

        first = await asyncio.to_thread(start)
        # the chat's turn is busy (another process is handling its previous update)
        assert await holder.try_turn(key)
        one = standin.text_message(chat, "/start")
        two = standin.text_message(chat, "/help")
        assert await asyncio.to_thread(first.post, one) == 200
        assert await asyncio.to_thread(first.post, two) == 200
        await asyncio.sleep(0.5)
        assert standin.sent_messages(chat) == []  # acknowledged, not handled yet
        first.kill()
        await holder.end_turn(key)
        await asyncio.to_thread(start)

        async def answered(n: int) -> bool:
            return len(standin.sent_messages(chat)) >= n

        assert await _eventually(lambda: answered(2), 30.0)
        await asyncio.sleep(1.5)  # a second adoption would come now
        replies = [m["text"] for m in standin.sent_messages(chat)]
        assert len(replies) == 2  # each once
        assert "To join" in replies[0] and "/help" in replies[1]  # in the order they came
    finally:
        for proc in procs:
            proc.stop()
        api.stop()


@ON_PG
async def test_digest_schedules_changed_in_one_process_are_followed_by_the_other(
        store: Store, second: Store) -> None:
    from bot.coordinator import DIGEST_KEY, JOB_PREFIX, CoordinatorTools
    from storage.models import Role
    from tests.support.api_standin import BotApiStandin
    from tests.support.harness import TOKEN, TgUser, running_app

    programme = await store.programmes.create("Two processes")
    code = await store.programmes.create_invite(programme.id, Role.COORDINATOR)

    def digest_jobs(app: Any) -> list[Any]:
        return [j for j in app.job_queue.jobs()
                if j.name and j.name.startswith(JOB_PREFIX) and not j.removed]

    standin = BotApiStandin(token=TOKEN)
    async with running_app(store, standin) as (one, _), running_app(second, standin) as (two, _):
        lead = TgUser(one, standin, 8_800_001, "Lead")
        await lead.send(f"/start {code}")
        assert "Monday at 08:30" in lead.last_texts(await lead.send("/digest mon 08:30"))
        b = two.bot_data[DIGEST_KEY]
        assert isinstance(b, CoordinatorTools)
        assert digest_jobs(two) == []  # the other process started before it was set
        await b.restore()  # its sync job (every DIGEST_SYNC seconds on PostgreSQL)
        (job,) = digest_jobs(two)
        me = await store.participants.by_user(8_800_001)
        assert me is not None and job.data == me.id
        # stopped through the first process: the second's job, firing before its next
        # sync, reads the schedule first and sends nothing
        await lead.send("/digest off")
        before = len(standin.sent_messages(8_800_001))

        class Fired:
            def __init__(self, job: Any) -> None:
                self.job = job
                self.job_queue = two.job_queue

        await b.send_digest(Fired(job))  # type: ignore[arg-type]
        assert len(standin.sent_messages(8_800_001)) == before
        assert digest_jobs(two) == []  # and it followed the database
        # set again, elsewhere: the next sync schedules it here too
        await lead.send("/digest tue 09:00")
        await b.restore()
        (job,) = digest_jobs(two)
        await b.send_digest(Fired(job))  # type: ignore[arg-type]
        assert "weekly programme summary" in lead.last_texts(lead.new())


@ON_PG
async def test_programme_settings_changed_by_another_process_apply_outside_a_sweep(
        store: Store, second: Store) -> None:
    from conversations.capabilities.reminder_planning import ReminderPlanner

    programme = await store.programmes.create("Settings")
    planner = ReminderPlanner(store)

    async def months() -> int:
        return (await planner.settings_for(programme.id)).check_after_months

    async def set_months(n: int) -> None:  # another process (or the CLI) changes them
        await second.programmes.set_setting(programme.id, "reminders",
                                            {"check_after_months": n})

    assert await months() == 6
    await set_months(9)
    assert await months() == 9
    # within one sweep they are read once
    planner.new_sweep()
    assert await months() == 9
    await set_months(4)
    assert await months() == 9
    planner.end_sweep()
    assert await months() == 4


def test_the_bot_wide_rate_is_a_setting(tmp_path: Any) -> None:
    from bot.app import build_application
    from tests.support.harness import TOKEN, offline_settings

    def limiter(**extra: Any) -> SharedRateLimiter:
        app = build_application(offline_settings(tmp_path / "x.sqlite3", **extra), token=TOKEN)
        found = app.bot.rate_limiter
        assert isinstance(found, SharedRateLimiter)
        return found

    default = limiter()
    assert default.bot_wide is not None and default.bot_wide.rate == 30
    assert limiter(mentorbot_send_rate=0).bot_wide is None  # none, e.g. for a stand-in
    raised = limiter(mentorbot_send_rate=100).bot_wide
    assert raised is not None and raised.rate == 100


@ON_PG
async def test_what_the_flood_gate_drops_behind_the_webhook_costs_no_database_write(
        store: Store) -> None:
    from bot.throttle import FloodGate, Limits

    async def stranger(user_id: int) -> bool:
        return False

    shared = await store.coordination()
    assert isinstance(shared, PgCoordination)
    proc = _processor(store, shared)
    proc.gate = FloodGate(stranger, None, Limits(stranger_burst=2, strangers_burst=100))
    verdicts = [await proc.record(_update(700 + i), {"update_id": 700 + i}) for i in range(5)]
    assert verdicts == [True, True, False, False, False]
    async with shared.conn.cursor() as cur:
        await cur.execute("SELECT update_id FROM chat_arrivals ORDER BY update_id")
        assert [r[0] for r in await cur.fetchall()] == [700, 701]
    ran: list[int] = []

    async def handle(uid: int) -> None:
        ran.append(uid)

    for uid in (700, 701):  # admitted once: the processor does not ask the gate again
        await proc.do_process_update(_update(uid), handle(uid))
    assert ran == [700, 701]
    async with shared.conn.cursor() as cur:
        await cur.execute("SELECT count(*) FROM chat_arrivals")
        assert (await cur.fetchone())[0] == 0  # type: ignore[index]
