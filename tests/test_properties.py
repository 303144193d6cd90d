"""Property-based tests of the conversation service (hypothesis, stateful).

Any sequence of texts, button presses (current, stale or forged), commands and restarts,
from several people at once, keeps the invariants: the service never raises, each person
has at most one place in one flow, answers only ever land in the writer's own entries (the
per-person key and associated data prove it), and nothing is saved without `participate`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conversations.catalogue import load_flows
from conversations.service import Response, Sender, Service
from storage.crypto import KeyRing, generate_key
from storage.entries import answer_row
from storage.models import Role
from storage.store import Store

CONSENT = load_flows()["consent"].version
COMMANDS = [
    "reflect",
    "log",
    "checkin",
    "history",
    "mydata",
    "consent",
    "withdraw",
    "pause",
    "resume",
    "timezone",
    "back",
    "skip",
    "cancel",
    "help",
    "framework",
    "start",
    "frobnicate",
    "summary",
]
hostile_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "'; DROP TABLE entries; --",
            "<script>alert(1)</script>",
            "*_bold_*",
            "x" * 4097,
            "\u202e\u0000\ufeff",
            "0",
            "10",
            "11",
            "2026-02-30",
            "Today",
            "Yes",
            "No",
            "Save",
            "I want to end it all",
            "🙂" * 30,
        ]
    ),
)


class Conversations(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="mentorbot-prop-"))
        self.key = generate_key()
        self.store: Store | None = None
        self.service: Service | None = None
        self.people: list[Sender] = []
        self.last: dict[int, Response] = {}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _open(self) -> None:
        self.store = await Store.open(self.folder / "p.sqlite3", KeyRing(self.key), CONSENT)
        self.service = Service(self.store)

    @initialize()
    def setup(self) -> None:
        self.run(self._open())
        assert self.store is not None

        async def invite() -> list[str]:
            assert self.store is not None
            programme = await self.store.programmes.create("Prop")
            pair = await self.store.programmes.create_pair(programme.id)
            return [
                await self.store.programmes.create_invite(programme.id, Role.MENTEE, pair),
                await self.store.programmes.create_invite(programme.id, Role.MENTOR, pair),
                await self.store.programmes.create_invite(programme.id, Role.MENTEE),
            ]

        codes = self.run(invite())
        self.codes = codes
        self.people = [Sender(501, 501, "Ada"), Sender(502, 502, "Bo"), Sender(503, 503, "Cy")]

    def teardown(self) -> None:
        if self.store is not None:
            self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _who(self, n: int) -> Sender:
        return self.people[n % len(self.people)]

    @rule(n=st.integers(0, 2), code=st.integers(0, 3))
    def join(self, n: int, code: int) -> None:
        who = self._who(n)
        payload = self.codes[code] if code < 3 else "not-a-code-at-all"
        assert self.service is not None
        self.last[who.user_id] = self.run(self.service.start(who, payload))

    @rule(n=st.integers(0, 2), text=hostile_text)
    def say(self, n: int, text: str) -> None:
        who = self._who(n)
        assert self.service is not None
        self.last[who.user_id] = self.run(self.service.text(who, text))

    @rule(n=st.integers(0, 2), name=st.sampled_from(COMMANDS[:4] * 3 + COMMANDS))
    def command(self, n: int, name: str) -> None:
        who = self._who(n)
        assert self.service is not None
        self.last[who.user_id] = self.run(self.service.command(who, name))

    @rule(n=st.integers(0, 2), pick=st.integers(0, 20))
    def press_current(self, n: int, pick: int) -> None:
        who = self._who(n)
        buttons = [
            b
            for r in self.last.get(who.user_id, Response()).replies
            for row in r.buttons
            for b in row
        ]
        if not buttons:
            return
        assert self.service is not None
        self.last[who.user_id] = self.run(
            self.service.press(who, buttons[pick % len(buttons)].data)
        )

    # Pressing what is on screen is what people mostly do, so it is drawn twice as often.
    @rule(n=st.integers(0, 2), pick=st.integers(0, 20))
    def press_current_again(self, n: int, pick: int) -> None:
        self.press_current(n, pick)

    @rule(n=st.integers(0, 2), other=st.integers(0, 2), pick=st.integers(0, 20))
    def press_someone_elses(self, n: int, other: int, pick: int) -> None:
        """A button from another person's chat, replayed by this person."""
        who, them = self._who(n), self._who(other)
        buttons = [
            b
            for r in self.last.get(them.user_id, Response()).replies
            for row in r.buttons
            for b in row
        ]
        if not buttons:
            return
        assert self.service is not None
        self.run(self.service.press(who, buttons[pick % len(buttons)].data))

    @rule(n=st.integers(0, 2), data=st.text(max_size=80))
    def press_forged(self, n: int, data: str) -> None:
        assert self.service is not None
        self.run(self.service.press(self._who(n), data))

    @rule()
    def restart(self) -> None:
        assert self.store is not None
        self.run(self.store.close())
        self.run(self._open())

    @invariant()
    def answers_only_in_own_entries_and_only_with_consent(self) -> None:
        if self.store is None:
            return

        async def check() -> None:
            assert self.store is not None
            db = self.store.db
            rows = await db.fetchall(
                "SELECT e.id, e.participant_id, e.consent_snapshot, a.step_id, a.value_ct "
                "FROM entries e LEFT JOIN answers a ON a.entry_id = e.id"
            )
            for r in rows:
                assert json.loads(r["consent_snapshot"])["participate"] is True
                if r["step_id"] is None:
                    continue
                # decrypts only with the entry owner's key and this row's associated data
                await self.store.vault.decrypt(
                    r["participant_id"],
                    "answers",
                    answer_row(r["id"], r["step_id"]),
                    "value",
                    r["value_ct"],
                )
            states = await db.fetchall("SELECT participant_id FROM conversation_state")
            assert len(states) == len({s["participant_id"] for s in states}) <= 3
            for s in states:
                loaded = await self.store.entries.load_state(s["participant_id"])
                assert loaded is not None
                entry_id = loaded[0].get("entry_id")
                if entry_id is not None:
                    owner = await db.scalar(
                        "SELECT participant_id FROM entries WHERE id=?", (entry_id,)
                    )
                    assert owner in (None, s["participant_id"])

        self.run(check())


Conversations.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestConversations = Conversations.TestCase
