"""The transport-free service: one person's input in, replies out.

Both the Telegram adapter and the console chat drive this. It ties the flow engine to
storage: it checks roles and consent, opens entries, saves every answer the moment it is
given, and keeps each person's place in a flow so a restart resumes at the same step.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from conversations.catalogue import Texts, load_flows, load_texts
from conversations.engine import (
    Answered,
    Cancelled,
    Cleared,
    Command,
    Completed,
    Engine,
    Input,
    Outcome,
    Press,
    Reply,
    Text,
    display,
)
from conversations.model import Flow, FlowState
from storage.db import parse_iso, utcnow
from storage.models import Participant, Role, Scope
from storage.store import Store

log = logging.getLogger(__name__)

Then = Callable[["Response"], Awaitable[object]]

FLOW_COMMANDS = ("back", "skip", "cancel")
# Telegram delivers at most 4096 characters; anything longer is refused whole rather than
# cut, so no answer is silently truncated.
MAX_MESSAGE = 4096


@dataclass(frozen=True)
class Sender:
    user_id: int
    chat_id: int
    first_name: str | None = None


@dataclass(frozen=True)
class Document:
    filename: str
    content: bytes
    caption: str = ""


@dataclass
class Response:
    replies: list[Reply] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    menu_role: str | None = None  # set when the person's command menu must change
    changed: bool = False  # whether anything was written

    def say(self, text: str, **kw: Any) -> Response:
        self.replies.append(Reply(text, **kw))
        return self


class Service:
    def __init__(
        self,
        store: Store,
        *,
        flows: dict[str, Flow] | None = None,
        texts: Texts | None = None,
        idle_after: timedelta = timedelta(hours=12),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.flows = flows or load_flows()
        self.texts = texts or load_texts()
        self.engine = Engine(self.flows)
        self.idle_after = idle_after
        self.clock = clock

    @property
    def consent_flow(self) -> Flow:
        return self.flows["consent"]

    # -- public entry points -----------------------------------------------------------
    async def start(self, sender: Sender, payload: str | None) -> Response:
        me = await self.store.participants.by_user(sender.user_id)
        if not payload:
            if me is None:
                return Response().say(self.texts.say("welcome_guest"))
            return await self._help(me)
        if me is not None:
            return Response().say(self.texts.say("already_joined"))
        result = await self.store.join(
            payload.strip(), sender.user_id, sender.chat_id, sender.first_name
        )
        if not result.ok:
            if result.reason == "locked":
                minutes = max(1, -(-result.wait_seconds // 60))
                return Response().say(self.texts.say("invite_locked", minutes=minutes))
            if result.reason == "already":
                return Response().say(self.texts.say("already_joined"))
            return Response().say(self.texts.say(f"invite_{result.reason}"))
        assert result.participant_id is not None and result.role is not None
        me = await self.store.participants.get(result.participant_id)
        assert me is not None
        programme = await self.store.programmes.get(me.programme_id)
        resp = Response(menu_role=me.role.value, changed=True)
        resp.say(
            self.texts.say(
                f"joined_{me.role.value}",
                name=sender.first_name or "there",
                programme=programme.name,
            )
        )
        if result.pair_complete:
            resp.say(self.texts.say("pair_complete"))
        if me.role is Role.COORDINATOR:
            return resp
        return await self._begin(me, "consent", resp)

    async def command(self, sender: Sender, name: str) -> Response:
        name = name.lower()
        spec = self.texts.commands.get(name)
        if spec is None:
            return Response().say(self.texts.say("unknown_command", command=name[:32]))
        me = await self.store.participants.by_user(sender.user_id)
        role = me.role.value if me else "guest"
        if name == "start":
            return await self.start(sender, None)
        if role not in spec.roles:
            if me is None:
                return Response().say(self.texts.say("not_joined"))
            allowed = " and ".join(sorted({r + "s" for r in spec.roles if r != "guest"}))
            return Response().say(
                self.texts.say("wrong_role", command=name, roles=allowed, role=role)
            )
        assert me is not None or name == "help"
        if name == "help":
            return await self._help(me)
        assert me is not None
        state, resp = await self._active(me)
        if name in FLOW_COMMANDS:
            if state is None:
                return resp.say(self.texts.say("nothing_active"))
            return await self._feed(me, state, Command(name), resp)
        if state is not None:
            resp.say(self.texts.say("already_in_flow"))
            resp.replies.extend(self.engine.resume(state).replies)
            return resp
        handler = getattr(self, f"_cmd_{name}")
        return await handler(me, resp)

    async def text(self, sender: Sender, text: str) -> Response:
        if len(text) > MAX_MESSAGE:
            return Response().say(self.texts.say("too_long", length=len(text), limit=MAX_MESSAGE))
        me = await self.store.participants.by_user(sender.user_id)
        if me is None:
            return Response().say(self.texts.say("not_joined"))
        state, resp = await self._active(me)
        if state is None:
            return resp.say(self.texts.say("no_flow_text"))
        return await self._feed(me, state, Text(text), resp)

    async def press(self, sender: Sender, data: str) -> Response:
        me = await self.store.participants.by_user(sender.user_id)
        if me is None:
            return Response().say(self.texts.say("not_joined"))
        state, resp = await self._active(me)
        if state is None:
            return resp.say(self.texts.say("stale_button"))
        return await self._feed(me, state, Press(data[:64]), resp)

    def unsupported(self, what: str) -> Response:
        return Response().say(self.texts.say("unsupported", what=what))

    def edited(self) -> Response:
        return Response().say(self.texts.say("edited"))

    # -- commands ----------------------------------------------------------------------
    async def _help(self, me: Participant | None) -> Response:
        role = me.role.value if me else "guest"
        lines = [self.texts.say("help_header")]
        lines += [f"/{c.name} - {c.description}" for c in self.texts.commands_for(role)]
        return Response().say("\n".join(lines))

    async def _cmd_reflect(self, me: Participant, resp: Response) -> Response:
        consent = await self.store.consent.state(me.id)
        if consent.needs_asking:
            return await self._reask_consent(me, resp)
        if not consent.allows(Scope.PARTICIPATE):
            return resp.say(self.texts.say("needs_consent"))
        flow_id = "grow"
        drafts = [e for e in await self.store.entries.of(me.id, "draft") if e.flow == flow_id]
        if drafts:
            outcome = self.engine.start("resume_menu")
            assert outcome.state is not None
            outcome.state.context = {"entry_id": drafts[0].id, "flow": flow_id}
            return await self._apply(me, outcome, resp)
        return await self._begin(me, flow_id, resp)

    async def _cmd_consent(self, me: Participant, resp: Response) -> Response:
        state = await self.store.consent.state(me.id)
        resp.say(self.texts.say("consent_current", choices=self._consent_lines(state.allows)))
        return await self._begin(me, "consent", resp)

    async def _reask_consent(self, me: Participant, resp: Response) -> Response:
        resp.say(self.texts.say("consent_reask"))
        return await self._begin(me, "consent", resp)

    def _consent_lines(self, allows: Callable[[Scope], bool]) -> str:
        lines = []
        for step in self.consent_flow.steps:
            assert step.scope is not None
            lines.append(f"• {step.label}: {'yes' if allows(Scope(step.scope)) else 'no'}")
        return "\n".join(lines)

    # -- flow plumbing -----------------------------------------------------------------
    async def _active(self, me: Participant) -> tuple[FlowState | None, Response]:
        resp = Response()
        loaded = await self.store.entries.load_state(me.id)
        if loaded is None:
            return None, resp
        raw, updated_at = loaded
        state = FlowState.model_validate(raw)
        flow = self.flows.get(state.flow)
        if flow is None or flow.version != state.version:
            # The flow changed under a release: the draft entry is kept, the place is not.
            await self.store.entries.save_state(me.id, None)
            return None, resp
        if self.clock() - parse_iso(updated_at) > self.idle_after:
            await self.store.entries.save_state(me.id, None)
            if flow.kind == "entry":
                resp.say(self.texts.say("idle_closed"))
            return None, resp
        return state, resp

    async def _begin(self, me: Participant, flow_id: str, resp: Response) -> Response:
        flow = self.flows[flow_id]
        entry_id = None
        if flow.kind == "entry":
            consent = await self.store.consent.state(me.id)
            pair = await self.store.programmes.pair_of(me.id)
            entry_id = await self.store.entries.create(
                me.id, pair.id if pair else None, flow.id, flow.version, consent.snapshot()
            )
        return await self._apply(me, self.engine.start(flow_id, entry_id), resp)

    async def _feed(
        self, me: Participant, state: FlowState, inp: Input, resp: Response
    ) -> Response:
        return await self._apply(me, self.engine.handle(state, inp), resp, previous=state)

    async def _apply(
        self, me: Participant, outcome: Outcome, resp: Response, previous: FlowState | None = None
    ) -> Response:
        state = outcome.state or previous
        assert state is not None
        flow = self.flows[state.flow]
        if outcome.rejected:
            resp.replies.extend(outcome.replies)
            return resp
        resp.changed = True
        then: list[Then] = []
        for event in outcome.events:
            step_then = await self._on_event(me, flow, state, event, resp)
            if step_then is not None:
                then.append(step_then)
        # The place is saved after the answers, so a crash between the two re-asks a
        # question whose answer is already stored (and overwritten) rather than losing one.
        await self.store.entries.save_state(
            me.id, outcome.state.model_dump(mode="json") if outcome.state else None
        )
        resp.replies.extend(outcome.replies)
        # Follow-ups (a closing message, the next flow) run once this flow's place is
        # settled, so a follow-up that starts a flow saves its own state last.
        for follow in then:
            await follow(resp)
        return resp

    async def _on_event(
        self, me: Participant, flow: Flow, state: FlowState, event: Any, resp: Response
    ) -> Then | None:
        if flow.kind == "entry":
            return await self._entry_event(me, flow, state, event, resp)
        if flow.kind == "consent":
            return await self._consent_event(me, flow, event, resp)
        return await self._menu_event(me, flow, state, event)

    async def _entry_event(
        self, me: Participant, flow: Flow, state: FlowState, event: Any, resp: Response
    ) -> Then | None:
        assert state.entry_id is not None
        if isinstance(event, Answered):
            await self.store.entries.save_answer(me.id, state.entry_id, event.step_id, event.value)
        elif isinstance(event, Cleared):
            await self.store.entries.clear_answer(me.id, state.entry_id, event.step_id)
        elif isinstance(event, Completed):
            await self.store.entries.set_status(me.id, state.entry_id, "complete")
            await self.store.audit.record("participant", f"entry_saved:{flow.id}", me.id)
        elif isinstance(event, Cancelled):
            if event.reason == "discard":
                await self.store.entries.delete(me.id, state.entry_id)
            else:
                resp.say(self.texts.say("cancelled_draft"))
        return None

    async def _consent_event(
        self, me: Participant, flow: Flow, event: Any, resp: Response
    ) -> Then | None:
        if isinstance(event, Answered):
            step = flow.step(event.step_id)
            assert step is not None and step.scope is not None
            await self.store.consent.record(
                me.id,
                me.subject_ref,
                Scope(step.scope),
                event.value == "yes",
                source="chat",
                version=flow.version,
            )
        elif isinstance(event, Completed):

            async def done(out: Response) -> None:
                state = await self.store.consent.state(me.id)
                out.say(self.texts.say("consent_done", choices=self._consent_lines(state.allows)))
                out.replies.extend((await self._help(me)).replies)

            return done
        elif isinstance(event, Cancelled):
            resp.say(
                self.texts.say("consent_declined" if event.reason == "declined" else "cancelled")
            )
        return None

    async def _menu_event(
        self, me: Participant, flow: Flow, state: FlowState, event: Any
    ) -> Then | None:
        if isinstance(event, Cancelled):

            async def stopped(out: Response) -> None:
                out.say(self.texts.say("cancelled"))

            return stopped
        if not isinstance(event, Completed) or flow.id != "resume_menu":
            return None
        entry_id = int(state.context["entry_id"])
        target = self.flows[state.context["flow"]]
        if event.answers.get("choice") == "restart":

            async def restart(out: Response) -> None:
                await self.store.entries.delete(me.id, entry_id)
                await self._begin(me, target.id, out)

            return restart

        async def carry_on(out: Response) -> None:
            answers = await self.store.entries.answers(me.id, entry_id)
            resumed = FlowState(
                flow=target.id,
                version=target.version,
                entry_id=entry_id,
                answers=answers,
                seq=state.seq + 1,
            )
            pending = [i for i, s in enumerate(target.steps) if s.id not in answers]
            resumed.index = pending[0] if pending else len(target.steps) - 1
            resumed.trail = list(range(resumed.index))
            if not pending:
                resumed.mode = "summary"
            await self.store.entries.save_state(me.id, resumed.model_dump(mode="json"))
            out.replies.extend(self.engine.resume(resumed).replies)

        return carry_on


def summarise(flow: Flow, answers: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s.label, display(s, answers[s.id])) for s in flow.steps if s.id in answers]
