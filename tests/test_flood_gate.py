"""Flood control (bot/throttle.py): budgets per chat and for strangers, not timed.

The gate's clock is injected, so refills happen when the test says time has passed; the
Application test sends through the update processor, as polling and the webhook do.
"""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Update

from bot.throttle import FloodGate, Limits
from storage.store import Store
from tests.people import Cohort
from tests.support.harness import TgUser, running_app

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _gate(members: set[int], clock: Clock, **limits: float) -> tuple[FloodGate, list[int]]:
    told: list[int] = []

    async def is_member(user_id: int) -> bool:
        return user_id in members

    async def notify(chat_id: int) -> None:
        told.append(chat_id)

    return FloodGate(is_member, notify, Limits(**limits), clock), told


async def test_strangers_share_one_small_budget_and_members_keep_theirs() -> None:
    clock = Clock()
    gate, _ = _gate({1}, clock, stranger_burst=5, strangers_burst=10, strangers_rate=1.0)
    admitted = 0
    for stranger in range(100, 160):  # 60 unknown accounts, 10 messages each
        for _ in range(10):
            admitted += await gate.admit(stranger, stranger)
    assert admitted == 10  # the shared burst, whoever sent them
    assert gate.dropped_strangers == 590
    # a member is never held back by strangers
    assert all([await gate.admit(1, 1) for _ in range(20)])
    clock.now += 3  # three seconds: three more strangers get through, one each
    assert [await gate.admit(s, s) for s in (200, 201, 202, 203)] == [True, True, True, False]


async def test_one_stranger_cannot_use_up_the_shared_budget() -> None:
    clock = Clock()
    gate, _ = _gate(set(), clock, stranger_burst=3, stranger_rate=0.1, strangers_burst=10)
    assert [await gate.admit(7, 7) for _ in range(5)] == [True, True, True, False, False]
    assert await gate.admit(8, 8)  # another newcomer still gets in
    clock.now += 10  # one token back for the first stranger
    assert [await gate.admit(7, 7) for _ in range(2)] == [True, False]


async def test_a_flooding_member_is_slowed_and_told_once() -> None:
    clock = Clock()
    gate, told = _gate({1}, clock, chat_burst=5, chat_rate=1.0, notice_every=60)
    assert [await gate.admit(1, 1) for _ in range(8)] == [True] * 5 + [False] * 3
    assert told == [1] and gate.dropped_members == 3
    clock.now += 2
    assert [await gate.admit(1, 1) for _ in range(3)] == [True, True, False]
    assert told == [1]  # within a minute: not told again
    clock.now += 60
    assert await gate.admit(1, 1)
    assert not [await gate.admit(1, 1) for _ in range(60)][-1]
    assert told == [1, 1]


async def test_the_application_drops_a_stranger_flood_and_answers_members(
    store: Store, cohort: Cohort
) -> None:
    limits = Limits(stranger_burst=5, stranger_rate=1e-9, strangers_burst=10,
                    strangers_rate=1e-9)
    async with running_app(store, flood_limits=limits) as (app, standin):
        processor = app.update_processor

        async def through_processor(update: dict[str, Any]) -> None:
            parsed = Update.de_json(update, app.bot)
            await processor.process_update(parsed, app.process_update(parsed))

        mentee = TgUser(app, standin, 7001)
        await mentee.join(cohort.mentee_code)
        mentee.new()
        strangers = range(700_000_000, 700_000_060)
        for user_id in strangers:
            for i in range(10):
                await through_processor(standin.text_message(user_id, f"hello {i}"))
            if user_id % 20 == 0:  # the member keeps talking in the middle of it
                await through_processor(standin.text_message(7001, "/help"))
                assert "/reflect" in mentee.last_texts(mentee.new())
        answered = [m for u in strangers for m in standin.sent_messages(u)]
        assert len(answered) == 10  # the shared burst; the other 590 cost no reply
        assert all("don't know you yet" in m["text"] for m in answered)
        await through_processor(standin.text_message(7001, "/reflect"))
        assert mentee.new()  # answered as ever
