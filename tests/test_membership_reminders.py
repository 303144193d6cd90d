"""Reminders to someone in several memberships (issue 15), through the real Application and
the Bot API stand-in on a fake clock: each says which programme it is for (and nobody in one
membership is told a programme), and its buttons answer for the membership and pair it was
sent for, whichever membership is in use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.jobs import REMINDERS_KEY, ReminderJobs
from conversations.waves import MONTH
from storage.db import iso
from storage.models import Participant, Role
from storage.store import Store
from tests.support.api_standin import BotApiStandin
from tests.support.harness import TgUser, running_app
from tests.test_reminders import BASE, FakeTime, join, settings, texts, use

pytestmark = pytest.mark.both_backends

SIX_MONTHS = BASE + 6 * MONTH
MORGAN, SAM, ALEX, JO = 681_000_001, 681_000_002, 681_000_003, 681_000_004


@dataclass
class Two:
    """Morgan mentors Sam and Alex in North and is mentored by Jo in South."""

    rs: ReminderJobs
    store: Store
    standin: BotApiStandin
    time: FakeTime
    morgan: TgUser
    sam: TgUser
    alex: TgUser
    jo: TgUser
    north_pairs: tuple[int, int]
    south_pair: int
    north_id: int
    south_id: int

    async def member(self, programme_id: int) -> Participant:
        me = await self.store.participants.by_user(MORGAN)
        assert me is not None
        return next(m for m in await self.store.participants.memberships(me)
                    if m.programme_id == programme_id)

    def answer(self) -> str:
        """What the last button press was told (a reminder answers with a toast)."""
        return str(self.standin.calls_of("answerCallbackQuery")[-1].params["text"])

    async def in_use(self) -> int:
        me = await self.store.participants.by_user(MORGAN)
        assert me is not None
        return me.programme_id

    async def events(self, pair_id: int) -> list[tuple[str, int | None]]:
        return [(e.event, e.participant_id)
                for e in await self.rs.planner.lifecycle.history(pair_id)
                if e.event in ("still_meeting", "finish_said", "closed")]


@asynccontextmanager
async def two_programmes(store: Store) -> AsyncIterator[Two]:
    t = FakeTime()
    north = await store.programmes.create("North")
    south = await store.programmes.create("South")
    for programme in (north, south):
        await settings(store, programme.id, quiet_pair_weeks=52, chemistry_overdue_weeks=52)
    codes: dict[str, tuple[int, str, str]] = {}
    for key, programme in (("n1", north), ("n2", north), ("s1", south)):
        pair = await store.programmes.create_pair(programme.id)
        codes[key] = (pair,
                      await store.programmes.create_invite(programme.id, Role.MENTOR, pair),
                      await store.programmes.create_invite(programme.id, Role.MENTEE, pair))
    async with running_app(store) as (app, standin):
        rs = use(app.bot_data[REMINDERS_KEY], t)
        morgan, sam, alex, jo = (TgUser(app, standin, uid, name) for uid, name in (
            (MORGAN, "Morgan"), (SAM, "Sam"), (ALEX, "Alex"), (JO, "Jo")))
        await join(morgan, codes["n1"][1])
        await morgan.send(f"/start {codes['n2'][1]}")  # a further North pair
        await join(sam, codes["n1"][2])
        await join(alex, codes["n2"][2])
        await join(jo, codes["s1"][1])
        await join(morgan, codes["s1"][2])  # South, as a mentee: now in use
        await store.db.execute("UPDATE pairs SET matched_at=?", (iso(BASE),))
        t.at(BASE)
        await rs.planner.plan()
        await store.db.execute("UPDATE reminders SET status='cancelled' WHERE kind='wave'")
        for user in (morgan, sam, alex, jo):
            user.new()
        t.at(SIX_MONTHS)
        await rs.sweep()
        yield Two(rs, store, standin, t, morgan, sam, alex, jo, (codes["n1"][0], codes["n2"][0]),
                  codes["s1"][0], north.id, south.id)


def _message(user: TgUser, starts: str) -> dict[str, Any]:
    found = [m for m in user.standin.sent_messages(user.user_id)
             if m.get("text", "").startswith(starts)]
    assert len(found) == 1, [m.get("text", "")[:60] for m in
                             user.standin.sent_messages(user.user_id)]
    return found[0]


def _button(message: dict[str, Any], label: str) -> str:
    return next(b["callback_data"] for row in message["reply_markup"]["inline_keyboard"]
                for b in row if b["text"] == label)


async def test_reminders_name_the_programme_only_for_someone_in_several_memberships(
        store: Store) -> None:
    async with two_programmes(store) as w:
        morgan = texts(w.morgan.new())
        # one six-month check per membership in this sweep, each saying which
        assert "North, about your pair with Sam:" in morgan
        assert "South, about your pair with Jo:" in morgan
        assert morgan.count("Are you still meeting") == 2
        # Alex's follows in a later sweep, named the same way
        w.time.at(SIX_MONTHS + timedelta(hours=3))
        await w.rs.sweep()
        assert "North, about your pair with Alex:" in texts(w.morgan.new())
        # people in one membership: no programme named; a mentor still hears which mentee
        for user in (w.sam, w.alex):
            said = texts(user.new())
            assert said.startswith("It's about 6 months") and "North" not in said
        jo = texts(w.jo.new())
        assert jo.startswith("About your pair with Morgan:") and "South" not in jo


async def test_a_reminder_button_answers_for_its_own_membership_and_pair(store: Store) -> None:
    async with two_programmes(store) as w:
        north = await w.member(w.north_id)
        south = await w.member(w.south_id)
        assert await w.in_use() == w.south_id
        # North's check tapped while South is in use: North's pair, as North's mentor
        north_check = _message(w.morgan, "North, about your pair with Sam:")
        await w.morgan.press(_button(north_check, "We've finished"), north_check["message_id"])
        answer = w.answer()
        assert "once your partner says so too" in answer
        assert await w.events(w.north_pairs[0]) == [("finish_said", north.id)]
        assert await w.events(w.south_pair) == []
        assert await w.events(w.north_pairs[1]) == []
        assert await w.in_use() == w.south_id  # answering a reminder switches nothing

        # North in use now (/log is North's alone); South's check answers for South
        await w.morgan.send("/log")
        await w.morgan.send("/cancel")
        assert await w.in_use() == w.north_id
        south_check = _message(w.morgan, "South, about your pair with Jo:")
        await w.morgan.press(_button(south_check, "Still meeting"), south_check["message_id"])
        assert "still meeting" in w.answer()
        assert await w.events(w.south_pair) == [("still_meeting", south.id)]
        assert await w.events(w.north_pairs[0]) == [("finish_said", north.id)]
        # the same button again, or North's again: already answered, nothing changes
        await w.morgan.press(_button(south_check, "We've finished"), south_check["message_id"])
        await w.morgan.press(_button(north_check, "Still meeting"), north_check["message_id"])
        assert "expired" in w.answer()
        assert await w.events(w.south_pair) == [("still_meeting", south.id)]
        assert await w.events(w.north_pairs[0]) == [("finish_said", north.id)]
