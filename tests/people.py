"""Scripted people for service-level tests: join, consent, reflect, and read replies."""

from __future__ import annotations

from dataclasses import dataclass, field

from conversations.service import Response, Sender, Service
from storage.models import Role
from storage.store import Store

GROW_ANSWERS = {
    "goal": "Get ready for my appraisal with Dr Okafor",
    "reality": "The ward is short-staffed and my manager Jo is not supportive",
    "options": "My mentor shared how they handled their first appraisal",
    "will": "Book protected time with Jo by Friday",
}


@dataclass
class Person:
    service: Service
    sender: Sender
    last: Response = field(default_factory=Response)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.last.replies]

    @property
    def said(self) -> str:
        return "\n".join(self.texts)

    def button(self, label: str) -> str:
        for reply in reversed(self.last.replies):
            for row in reply.buttons:
                for b in row:
                    if b.label == label:
                        return b.data
        raise AssertionError(f"no {label!r} button in: {self.said}")

    async def start(self, code: str | None) -> Response:
        self.last = await self.service.start(self.sender, code)
        return self.last

    async def cmd(self, name: str) -> Response:
        self.last = await self.service.command(self.sender, name)
        return self.last

    async def say(self, text: str) -> Response:
        self.last = await self.service.text(self.sender, text)
        return self.last

    async def tap(self, label: str) -> Response:
        self.last = await self.service.press(self.sender, self.button(label))
        return self.last

    async def press_raw(self, data: str) -> Response:
        self.last = await self.service.press(self.sender, data)
        return self.last

    async def choose_framework(self, label: str = "GROW") -> None:
        await self.tap(
            next(
                b.label
                for r in self.last.replies
                for row in r.buttons
                for b in row
                if b.label.startswith(label)
            )
        )

    async def consent_all(self, answer: str = "Yes") -> None:
        await self.tap("Yes, keep them")
        for _ in range(3):
            await self.tap(answer)

    async def grow(self, answers: dict[str, str] | None = None) -> None:
        await self.cmd("reflect")
        if "Which reflection would you like" in self.said:
            await self.choose_framework("GROW")
        for step in ("goal", "reality", "options", "will"):
            await self.say((answers or GROW_ANSWERS)[step])
        await self.skip_to_summary()
        await self.tap("Save")

    async def log_session(self, learned: str | None = None) -> Response:
        """A mentor logs a formal video session through the real episode-log flow."""
        from conversations.catalogue import load_flows
        from conversations.scripted import walk

        await self.cmd("log")
        answers = {
            "when": "_today",
            "kind": "EP_FORMAL_SESSION",
            "mode": "MODE_VIDEO",
            "phase": "unsure",
            "climate": "SC_GROWTH",
        }
        if learned is not None:
            answers["learned"] = learned
        self.last = await walk(
            self.service, self.sender, load_flows()["episode_log"], self.last, answers
        )
        return self.last

    async def skip_to_summary(self) -> None:
        for _ in range(10):
            if "Save it, or change an answer" in self.said:
                return
            await self.cmd("skip")
        raise AssertionError(f"never reached the summary: {self.said}")


@dataclass
class Cohort:
    store: Store
    service: Service
    programme_id: int
    pair_id: int
    mentor_code: str
    mentee_code: str

    @classmethod
    async def create(cls, store: Store, service: Service) -> Cohort:
        programme = await store.programmes.create("Test programme")
        pair_id = await store.programmes.create_pair(programme.id)
        mentor = await store.programmes.create_invite(programme.id, Role.MENTOR, pair_id)
        mentee = await store.programmes.create_invite(programme.id, Role.MENTEE, pair_id)
        return cls(store, service, programme.id, pair_id, mentor, mentee)

    def person(self, user_id: int, name: str = "Robin") -> Person:
        return Person(self.service, Sender(user_id, user_id + 1_000_000, name))

    async def joined_mentee(
        self, user_id: int = 7001, name: str = "Robin", framework: str | None = "grow"
    ) -> Person:
        """A mentee who has joined, consented and (by default) already chosen GROW."""
        p = self.person(user_id, name)
        await p.start(self.mentee_code)
        await p.consent_all()
        if framework:
            me = await self.store.participants.by_user(user_id)
            assert me is not None
            await self.store.participants.set_field(me.id, "preferred_framework", framework)
        return p

    async def joined_mentor(self, user_id: int = 7002, name: str = "Morgan") -> Person:
        p = self.person(user_id, name)
        await p.start(self.mentor_code)
        await p.consent_all()
        return p
