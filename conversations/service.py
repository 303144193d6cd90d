"""The transport-free service: one person's input in, replies out.

Both the Telegram adapter and the console chat drive this. It ties the flow engine to
storage: it checks roles and consent, opens entries, saves every answer the moment it is
given, and keeps each person's place so a restart resumes at the same step.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from conversations import history, mydata
from conversations.answers import Answer
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
)
from conversations.model import Flow, FlowState
from conversations.safety import DEFAULT_SIGNPOST, assess_async, rule_version, typed_text
from conversations.validation import whole_number
from conversations.waves import BY_ID, due_wave, next_wave
from storage.db import parse_iso, utcnow
from storage.models import Participant, Role, Scope
from storage.prefs import ChatPrefs
from storage.store import Held, Store

log = logging.getLogger(__name__)

FLOW_COMMANDS = ("back", "skip", "cancel")
TYPED = "typed_messages"  # flow context key: ids of the messages typed as answers
REFLECTIONS = ("grow", "oskar")
# Telegram carries at most 4096 characters a message, both ways. A longer text can still
# arrive, as a paste the Telegram adapter joined from its parts; up to MAX_INPUT it goes
# to the flow, whose own limit then refuses or takes it whole, never cut.
MAX_MESSAGE = 4096
MAX_INPUT = 4 * MAX_MESSAGE
# Numbers in button data (entries, pages) past this are forged: SQLite could not hold them.
MAX_ROW_ID = 10**12


@dataclass(frozen=True)
class Sender:
    user_id: int
    chat_id: int
    first_name: str | None = None
    update_id: int | None = None  # set by the Telegram adapter, for redelivery checks
    message_id: int | None = None  # the person's message, for tidying the chat later


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
    signposted: bool = False
    update_id: int | None = None
    message_id: int | None = None  # the person's message being answered
    # Chat tidying: the person's messages to delete, and whether the pressed message goes too.
    delete_messages: list[int] = field(default_factory=list)
    delete_pressed: bool = False

    def say(self, text: str, **kw: Any) -> Response:
        self.replies.append(Reply(text, **kw))
        return self


Then = Callable[[Response], Awaitable[object]]
# An extra command: (the person, the response being built, the text after the command).
CommandHandler = Callable[[Participant, Response, str], Awaitable[Response]]
# Told after an entry is saved: (the person, the entry id, its flow id, its answers).
SavedListener = Callable[[Participant, int, str, dict[str, Any]], Awaitable[None]]
Active = FlowState | history.Browser | None


class Service:
    def __init__(
        self,
        store: Store,
        *,
        flows: dict[str, Flow] | None = None,
        texts: Texts | None = None,
        idle_after: timedelta = timedelta(hours=12),
        clock: Callable[[], datetime] = utcnow,
        signpost_text: str = DEFAULT_SIGNPOST,
    ) -> None:
        self.store = store
        self.flows = flows or load_flows()
        self.texts = texts or load_texts()
        self.engine = Engine(self.flows)
        self.idle_after = idle_after
        self.clock = clock
        self.signpost_text = signpost_text
        self._seqs: dict[int, int] = {}
        # Extension points: capabilities outside this module (reminders, coordinator
        # tools) add commands and hear about saved entries without editing the service.
        self.extra_commands: dict[str, CommandHandler] = {}
        self.saved_listeners: list[SavedListener] = []
        # told when a join is held for a coordinator's approval (bot.coordinator)
        self.held_listeners: list[Callable[[Held], Awaitable[None]]] = []
        self.prefs = ChatPrefs(store.db)

    def _seq(self, me: Participant) -> int:
        """A button generation number no earlier message of this person can carry.

        Milliseconds keep it ahead of anything sent before a restart; the in-memory floor
        keeps flows started within the same millisecond apart.
        """
        seq = max(int(self.clock().timestamp() * 1000) % 10**12, self._seqs.get(me.id, 0) + 1)
        self._seqs[me.id] = seq
        return seq

    @property
    def consent_flow(self) -> Flow:
        return self.flows["consent"]

    # -- public entry points -----------------------------------------------------------
    async def start(self, sender: Sender, payload: str | None) -> Response:
        me = await self.store.participants.by_user(sender.user_id)
        if me is not None and await self.store.held(me.id) is not None:
            return Response().say(self.texts.say("join_waiting"))
        if not payload:
            if me is None:
                return Response().say(self.texts.say("welcome_guest"))
            return self._help(me)
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
        assert result.participant_id is not None
        me = await self.store.participants.get(result.participant_id)
        assert me is not None
        programme = await self.store.programmes.get(me.programme_id)
        if result.awaiting_approval:
            held = await self.store.held(me.id)
            if held is not None:
                for listener in self.held_listeners:
                    await listener(held)
            return Response(changed=True).say(self.texts.say(
                "join_held", name=sender.first_name or "there", programme=programme.name))
        return await self.welcome(me, sender.first_name, result.pair_complete)

    async def welcome(self, me: Participant, first_name: str | None,
                      pair_complete: bool) -> Response:
        """What a person sees once they are in: at the join, or when a held join is approved."""
        programme = await self.store.programmes.get(me.programme_id)
        resp = Response(menu_role=me.role.value, changed=True)
        resp.say(
            self.texts.say(
                f"joined_{me.role.value}",
                name=first_name or "there",
                programme=programme.name,
            )
        )
        if pair_complete:
            resp.say(self.texts.say("pair_complete"))
        if me.role is Role.COORDINATOR:
            resp.replies.extend(self._help(me).replies)
            return resp
        return await self._begin(me, "consent", resp)

    async def command(self, sender: Sender, name: str, args: str = "") -> Response:
        name = name.lower()
        spec = self.texts.commands.get(name)
        if spec is None:
            return Response().say(self.texts.say("unknown_command", command=name[:32]))
        if name == "start":
            return await self.start(sender, None)
        me = await self.store.participants.by_user(sender.user_id)
        # held for a coordinator: nothing but seeing and erasing what is held about them
        if (me is not None and name not in ("withdraw", "mydata")
                and await self.store.held(me.id) is not None):
            return Response().say(self.texts.say("join_waiting"))
        role = me.role.value if me else "guest"
        if role not in spec.roles:
            if me is None:
                return Response().say(self.texts.say("not_joined"))
            allowed = " and ".join(sorted({r + "s" for r in spec.roles if r != "guest"}))
            return Response().say(
                self.texts.say("wrong_role", command=name, roles=allowed, role=role)
            )
        if name == "help":
            return self._help(me)
        assert me is not None
        active, resp = await self._active(me)
        resp.update_id = sender.update_id
        if name in FLOW_COMMANDS:
            if isinstance(active, FlowState):
                return await self._feed(me, active, Command(name), resp)
            if isinstance(active, history.Browser) and name == "cancel":
                await self.store.entries.save_state(me.id, None)
                return resp.say(self.texts.say("cancelled"))
            return resp.say(self.texts.say("nothing_active"))
        if isinstance(active, FlowState) and name not in ("withdraw", "mydata", "pause"):
            resp.say(self.texts.say("already_in_flow"))
            resp.replies.extend(self.engine.resume(active).replies)
            return resp
        if name not in ("withdraw", "mydata", "consent") and me.role is not Role.COORDINATOR:
            consent = await self.store.consent.state(me.id)
            if consent.needs_asking and Scope.PARTICIPATE in consent.decisions:
                resp.say(self.texts.say("consent_reask"))
                return await self._begin(me, "consent", resp)
        if name in self.extra_commands:
            return await self.extra_commands[name](me, resp, args.strip()[:200])
        handler: Callable[[Participant, Response], Awaitable[Response]] | None = getattr(
            self, f"_cmd_{name}", None
        )
        if handler is None:  # a capability not running here (e.g. reminders in the console)
            return resp.say(self.texts.say("not_here", command=name))
        return await handler(me, resp)

    async def text(self, sender: Sender, text: str) -> Response:
        if len(text) > MAX_INPUT:
            return Response().say(self.texts.say("too_long", length=len(text), limit=MAX_INPUT))
        me = await self.store.participants.by_user(sender.user_id)
        if me is None:
            return Response().say(self.texts.say("not_joined"))
        if await self.store.held(me.id) is not None:
            return Response().say(self.texts.say("join_waiting"))
        active, resp = await self._active(me)
        resp.update_id = sender.update_id
        resp.message_id = sender.message_id
        if not isinstance(active, FlowState):
            return resp.say(self.texts.say("no_flow_text"))
        return await self._feed(me, active, Text(text), resp)

    async def press(self, sender: Sender, data: str) -> Response:
        me = await self.store.participants.by_user(sender.user_id)
        if me is None:
            return Response().say(self.texts.say("not_joined"))
        # a held person has had no buttons but /withdraw's (and /mydata's): let those work
        active, resp = await self._active(me)
        resp.update_id = sender.update_id
        if isinstance(active, history.Browser):
            return await self._browse(me, active, data[:64], resp)
        if active is None:
            return resp.say(self.texts.say("stale_button"))
        return await self._feed(me, active, Press(data[:64]), resp)

    def unsupported(self, what: str) -> Response:
        return Response().say(self.texts.say("unsupported", what=what))

    def edited(self) -> Response:
        return Response().say(self.texts.say("edited"))

    # -- commands ----------------------------------------------------------------------
    def _help(self, me: Participant | None) -> Response:
        role = me.role.value if me else "guest"
        lines = [self.texts.say("help_header")]
        lines += [
            f"/{c.name} - {c.description}"
            for c in self.texts.commands_for(role)
            if c.name != "start" or me is None  # joining is done once joined
        ]
        return Response().say("\n".join(lines))

    async def _next_steps(self, me: Participant, resp: Response) -> None:
        """After consent: the one or two things to do next, not the whole command list."""
        start, closed = await self._timeline(me)
        wave = due_wave(start, self.clock(), await self.store.entries.waves_done(me.id), closed)
        if wave is not None:
            resp.say(self.texts.say("next_checkin", wave_label=wave.label))
        resp.say(self.texts.say(f"next_{me.role.value}"))

    async def _may_write(self, me: Participant, resp: Response) -> bool:
        consent = await self.store.consent.state(me.id)
        if consent.allows(Scope.PARTICIPATE):
            return True
        resp.say(self.texts.say("needs_consent"))
        return False

    async def _cmd_reflect(self, me: Participant, resp: Response) -> Response:
        if not await self._may_write(me, resp):
            return resp
        if me.preferred_framework not in REFLECTIONS:
            return await self._apply(
                me, self.engine.start("reflect_menu", seq=self._seq(me)), resp
            )
        return await self._open_or_resume(me, me.preferred_framework, resp)

    async def _cmd_framework(self, me: Participant, resp: Response) -> Response:
        return await self._apply(me, self.engine.start("reflect_menu", seq=self._seq(me)), resp)

    async def _cmd_log(self, me: Participant, resp: Response) -> Response:
        if not await self._may_write(me, resp):
            return resp
        return await self._open_or_resume(me, "episode_log", resp)

    async def _cmd_checkin(self, me: Participant, resp: Response) -> Response:
        if not await self._may_write(me, resp):
            return resp
        start, closed = await self._timeline(me)
        now = self.clock()
        wave = due_wave(start, now, await self.store.entries.waves_done(me.id), closed)
        if wave is None:
            upcoming = next_wave(start, now, closed)
            if upcoming is None:
                return resp.say(self.texts.say("nothing_active"))
            return resp.say(
                self.texts.say(
                    "no_checkin_due",
                    wave_label=upcoming[0].label,
                    date=upcoming[1].strftime("%d %b %Y"),
                )
            )
        return await self._begin(me, wave.flow, resp, wave=wave.id)

    async def _cmd_consent(self, me: Participant, resp: Response) -> Response:
        state = await self.store.consent.state(me.id)
        resp.say(self.texts.say("consent_current", choices=self._consent_lines(state.allows)))
        return await self._begin(me, "consent", resp)

    async def _cmd_history(self, me: Participant, resp: Response) -> Response:
        return await self._show_page(me, history.Browser(self._seq(me)), resp)

    async def _cmd_mydata(self, me: Participant, resp: Response) -> Response:
        data = await mydata.collect(self.store, me, self.flows)
        caption = self.texts.say("mydata_caption")
        resp.documents.append(Document("mentorbot-my-data.json", mydata.as_json(data), caption))
        resp.documents.append(Document("mentorbot-my-data.csv", mydata.as_csv(data)))
        await self.store.audit.record("participant", "data_copy_sent", me.id)
        return resp

    async def _cmd_withdraw(self, me: Participant, resp: Response) -> Response:
        return await self._apply(me, self.engine.start("withdraw", seq=self._seq(me)), resp)

    async def _cmd_pause(self, me: Participant, resp: Response) -> Response:
        await self.store.participants.set_field(me.id, "status", "paused")
        await self.store.audit.record("participant", "reminders_paused", me.id)
        resp.changed = True
        return resp.say(self.texts.say("paused"))

    async def _cmd_resume(self, me: Participant, resp: Response) -> Response:
        await self.store.participants.set_field(me.id, "status", "active")
        await self.store.audit.record("participant", "reminders_resumed", me.id)
        resp.changed = True
        return resp.say(self.texts.say("resumed"))

    async def _cmd_settings(self, me: Participant, resp: Response) -> Response:
        framework = self.flows.get(me.preferred_framework or "")
        lines = [
            self.texts.say(
                "settings_framework", framework=framework.title if framework else "not chosen"
            )
            if me.role is Role.MENTEE
            else "",
            self.texts.say("settings_timezone", tz=me.timezone),
            self.texts.say("settings_reminders_" + ("off" if me.status == "paused" else "on")),
            self.texts.say(
                "settings_tidy_" + ("on" if await self.prefs.tidy_chat(me.id) else "off")
            ),
        ]
        context = {"current": "\n".join(line for line in lines if line)}
        return await self._apply(
            me, self.engine.start("settings", context=context, seq=self._seq(me)), resp
        )

    async def _cmd_timezone(self, me: Participant, resp: Response) -> Response:
        return await self._apply(me, self.engine.start("timezone", seq=self._seq(me)), resp)

    def _consent_lines(self, allows: Callable[[Scope], bool]) -> str:
        lines = []
        for step in self.consent_flow.steps:
            assert step.scope is not None
            lines.append(f"• {step.label}: {'yes' if allows(Scope(step.scope)) else 'no'}")
        return "\n".join(lines)

    async def _timeline(self, me: Participant) -> tuple[datetime, datetime | None]:
        pair = await self.store.programmes.pair_of(me.id, include_closed=True)
        start = (
            parse_iso(pair.matched_at) if pair and pair.matched_at else parse_iso(me.created_at)
        )
        closed = await self.store.programmes.closed_at(pair.id) if pair else None
        return start, closed

    # -- state slot --------------------------------------------------------------------
    async def _active(self, me: Participant) -> tuple[Active, Response]:
        resp = Response()
        loaded = await self.store.entries.load_state(me.id)
        if loaded is None:
            return None, resp
        raw, updated_at = loaded
        if "browser" in raw:
            return history.Browser.load(raw), resp
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

    # -- flows -------------------------------------------------------------------------
    async def _open_or_resume(self, me: Participant, flow_id: str, resp: Response) -> Response:
        drafts = [e for e in await self.store.entries.of(me.id, "draft") if e.flow == flow_id]
        if drafts:
            outcome = self.engine.start("resume_menu", seq=self._seq(me))
            assert outcome.state is not None
            outcome.state.context = {"entry_id": drafts[0].id, "flow": flow_id}
            return await self._apply(me, outcome, resp)
        return await self._begin(me, flow_id, resp)

    async def _flow_context(
        self, me: Participant, flow_id: str, wave: str | None
    ) -> dict[str, Any]:
        context: dict[str, Any] = {
            "partner": "mentee" if me.role is Role.MENTOR else "mentor",
        }
        if wave is not None:
            context["wave_label"] = BY_ID[wave].label
            context["wave"] = wave
        if flow_id == "oskar":
            last = await self.store.entries.latest(me.id, "oskar")
            if last is not None:
                answers = await self.store.entries.answers(me.id, last.id)
                if "scaling" in answers:
                    context["last_scale_note"] = f" Last time you said {answers['scaling']}."
                if "affirm_action" in answers:
                    context["last_action_note"] = (
                        f" Last time your next step was: {answers['affirm_action']}"
                    )
        return context

    async def _begin(
        self, me: Participant, flow_id: str, resp: Response, wave: str | None = None
    ) -> Response:
        flow = self.flows[flow_id]
        entry_id = None
        if flow.kind == "entry":
            consent = await self.store.consent.state(me.id)
            pair = await self.store.programmes.pair_of(me.id)
            entry_id = await self.store.entries.create(
                me.id, pair.id if pair else None, flow.id, flow.version, consent.snapshot(), wave
            )
        context = await self._flow_context(me, flow_id, wave)
        return await self._apply(
            me, self.engine.start(flow_id, entry_id, context, seq=self._seq(me)), resp
        )

    async def _feed(
        self, me: Participant, state: FlowState, inp: Input, resp: Response
    ) -> Response:
        seen = state.last_update_id
        if resp.update_id is not None and seen is not None and resp.update_id <= seen:
            # Redelivered after a crash and already applied: repeat where we are (the
            # reply may have been lost with the process), change nothing.
            resp.replies.extend(self.engine.resume(state).replies)
            return resp
        return await self._apply(me, self.engine.handle(state, inp), resp, previous=state)

    async def _apply(
        self,
        me: Participant,
        outcome: Outcome,
        resp: Response,
        previous: FlowState | None = None,
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
            follow = await self._on_event(me, flow, state, event, resp)
            if follow is not None:
                then.append(follow)
        if outcome.state is not None and resp.update_id is not None:
            outcome.state.last_update_id = resp.update_id
        if outcome.state is not None and resp.message_id is not None and flow.kind == "entry":
            # Remembered (ids only) so the chat can be tidied once the entry is saved.
            outcome.state.context.setdefault(TYPED, []).append(resp.message_id)
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
        return self._menu_event(me, flow, state, event)

    async def _entry_event(
        self, me: Participant, flow: Flow, state: FlowState, event: Any, resp: Response
    ) -> Then | None:
        assert state.entry_id is not None
        if isinstance(event, Answered):
            typed = typed_text(event.value)
            verdict = await assess_async(typed)
            await self.store.entries.save_answer(me.id, state.entry_id, event.step_id,
                                                 event.value, (verdict.risk, rule_version()))
            if verdict.risk:
                # Said before the next question, and the flow carries on: stopping
                # abruptly after a disclosure would feel like being dismissed. Nothing but
                # the encrypted verdict records it.
                resp.say(self.signpost_text)
                resp.signposted = True
        elif isinstance(event, Cleared):
            await self.store.entries.clear_answer(me.id, state.entry_id, event.step_id)
        elif isinstance(event, Completed):
            await self.store.entries.set_status(me.id, state.entry_id, "complete")
            await self.store.audit.record("participant", f"entry_saved:{flow.id}", me.id)
            if await self.prefs.tidy_chat(me.id):
                resp.delete_messages.extend(int(m) for m in state.context.get(TYPED, []))
                resp.delete_pressed = True
            entry_id = state.entry_id

            async def tell(out: Response) -> None:
                for listener in self.saved_listeners:
                    await listener(me, entry_id, flow.id, dict(event.answers))

            return tell
        elif isinstance(event, Cancelled):
            if state.saved is not None:
                # Stopping an edit of a saved entry undoes the edit, never the entry.
                await self._undo_edit(me, flow, state)
                resp.say(self.texts.say("edit_undone"))
            elif event.reason == "discard":
                await self.store.entries.delete(me.id, state.entry_id)
            else:
                entry = await self.store.entries.get(state.entry_id, me.id)
                if entry is not None and entry.status == "draft":
                    resp.say(self.texts.say("cancelled_draft"))
                else:
                    resp.say(self.texts.say("cancelled"))
        return None

    async def _undo_edit(self, me: Participant, flow: Flow, state: FlowState) -> None:
        assert state.entry_id is not None and state.saved is not None
        current = await self.store.entries.answers(me.id, state.entry_id)
        changed = False
        for step_id in current.keys() | state.saved.keys():
            if step_id not in state.saved:
                await self.store.entries.clear_answer(me.id, state.entry_id, step_id)
            elif current.get(step_id) != state.saved[step_id]:
                # Judged again by the same rule, so the restored answer keeps the verdict
                # it had when it was saved instead of waiting to be judged.
                typed = typed_text(state.saved[step_id])
                verdict = await assess_async(typed)
                await self.store.entries.save_answer(
                    me.id,
                    state.entry_id,
                    step_id,
                    state.saved[step_id],
                    (verdict.risk, rule_version()),
                )
            else:
                continue
            changed = True
        if changed:
            # Writing an answer drops the entry's stored codes; listeners code it again.
            for listener in self.saved_listeners:
                await listener(me, state.entry_id, flow.id, dict(state.saved))
        await self.store.audit.record("participant", "entry_edit_undone", me.id)

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
                await self._next_steps(me, out)

            return done
        elif isinstance(event, Cancelled):
            if event.reason != "declined":
                resp.say(self.texts.say("cancelled"))
                return None
            kept = len(await self.store.entries.of(me.id))
            if not kept:
                resp.say(self.texts.say("consent_declined"))
                return None

            async def offer_erasure(out: Response) -> None:
                # Saying "I won't keep any" while earlier entries stay would be untrue:
                # say what stays, and put erasure one tap away.
                out.say(self.texts.say("consent_declined_kept", count=kept))
                await self._apply(me, self.engine.start("erase_confirm", seq=self._seq(me)), out)

            return offer_erasure
        return None

    def _menu_event(
        self, me: Participant, flow: Flow, state: FlowState, event: Any
    ) -> Then | None:
        if isinstance(event, Cancelled):

            async def stopped(out: Response) -> None:
                out.say(self.texts.say("cancelled"))

            return stopped
        if not isinstance(event, Completed):
            return None
        choice = event.answers.get("choice")
        handler: Callable[[Participant, FlowState, Any], Then] = getattr(self, f"_menu_{flow.id}")
        return handler(me, state, choice)

    def _menu_resume_menu(self, me: Participant, state: FlowState, choice: Any) -> Then:
        entry_id = int(state.context["entry_id"])
        target = self.flows[state.context["flow"]]

        async def go(out: Response) -> None:
            if choice == "restart":
                entry = await self.store.entries.get(entry_id, me.id)
                await self.store.entries.delete(me.id, entry_id)
                await self._begin(me, target.id, out, wave=entry.wave if entry else None)
                return
            entry = await self.store.entries.get(entry_id, me.id)
            answers = await self.store.entries.answers(me.id, entry_id)
            context = await self._flow_context(me, target.id, entry.wave if entry else None)
            resumed = FlowState(
                flow=target.id,
                version=target.version,
                entry_id=entry_id,
                answers=answers,
                seq=state.seq + 1,
                context=context,
            )
            pending = [i for i, s in enumerate(target.steps) if s.id not in answers]
            resumed.index = pending[0] if pending else len(target.steps) - 1
            resumed.trail = list(range(resumed.index))
            if not pending:
                resumed.mode = "summary"
            resumed.last_update_id = out.update_id
            await self.store.entries.save_state(me.id, resumed.model_dump(mode="json"))
            out.replies.extend(self.engine.resume(resumed).replies)

        return go

    def _menu_reflect_menu(self, me: Participant, state: FlowState, choice: Any) -> Then:
        async def go(out: Response) -> None:
            await self.store.participants.set_field(me.id, "preferred_framework", choice)
            out.say(self.texts.say("framework_set", framework=self.flows[choice].title))
            if state.context.get("settings"):
                return  # changed from /settings: no reflection was asked for
            fresh = await self.store.participants.get(me.id)
            assert fresh is not None
            await self._open_or_resume(fresh, choice, out)

        return go

    def _menu_withdraw(self, me: Participant, state: FlowState, choice: Any) -> Then:
        async def go(out: Response) -> None:
            if choice == "erase":
                await self._apply(me, self.engine.start("erase_confirm", seq=self._seq(me)), out)
                return
            scope = Scope(choice)
            await self.store.consent.record(me.id, me.subject_ref, scope, False, "withdraw")
            await self.store.audit.record("participant", f"withdrew:{scope.value}", me.id)
            label = next(s.label for s in self.consent_flow.steps if s.scope == scope.value)
            out.say(self.texts.say("withdraw_done", scope=label))

        return go

    def _menu_erase_confirm(self, me: Participant, state: FlowState, choice: Any) -> Then:
        async def go(out: Response) -> None:
            if choice != "yes":
                out.say(self.texts.say("erase_kept_nothing"))
                return
            report = await self.store.erase(me.id)
            lines = "\n".join(
                f"• {_TABLE_WORDS.get(table, table)}: {count}"
                for table, count in report.deleted.items()
                if count
            )
            out.say(self.texts.say("erase_done", deleted=lines, kept="; ".join(report.kept)))
            out.menu_role = "guest"

        return go

    def _menu_settings(self, me: Participant, state: FlowState, choice: Any) -> Then:
        async def go(out: Response) -> None:
            fresh = await self.store.participants.get(me.id)
            assert fresh is not None
            if choice == "framework":
                if fresh.role is not Role.MENTEE:
                    out.say(self.texts.say("settings_mentees_only"))
                    return
                outcome = self.engine.start(
                    "reflect_menu", context={"settings": True}, seq=self._seq(fresh)
                )
                await self._apply(fresh, outcome, out)
            elif choice == "timezone":
                await self._cmd_timezone(fresh, out)
            elif choice == "quiet":
                out.say(self.texts.say("settings_quiet"))
            elif choice == "reminders":
                if fresh.status == "paused":
                    await self._cmd_resume(fresh, out)
                else:
                    await self._cmd_pause(fresh, out)
            elif choice == "tidy":
                on = not await self.prefs.tidy_chat(fresh.id)
                await self.prefs.set_tidy_chat(fresh.id, on)
                await self.store.audit.record("participant", f"tidy_chat:{int(on)}", fresh.id)
                out.say(self.texts.say("tidy_" + ("on" if on else "off")))

        return go

    def _menu_timezone(self, me: Participant, state: FlowState, choice: Any) -> Then:
        async def go(out: Response) -> None:
            name = (Answer.decode(choice).other or "") if isinstance(choice, dict) else str(choice)
            name = name.strip().replace(" ", "_")
            if "/" not in name and name != "UTC":
                name = name.replace("_", "/", 1)  # button ids use _ for /
            if name not in _ZONES:
                out.say(self.texts.say("timezone_unknown", tz=name[:64]))
                return
            ZoneInfo(name)
            await self.store.participants.set_field(me.id, "timezone", name)
            out.say(self.texts.say("timezone_set", tz=name))

        return go

    # -- history browser ---------------------------------------------------------------
    async def _show_page(self, me: Participant, b: history.Browser, resp: Response) -> Response:
        entries, total = await self.store.entries.page(me.id, b.page * history.PAGE, history.PAGE)
        if total == 0:
            await self.store.entries.save_state(me.id, None)
            return resp.say(self.texts.say("history_empty"))
        pages = -(-total // history.PAGE)
        b.page = min(b.page, pages - 1)
        b.entry_id = None
        await self.store.entries.save_state(me.id, b.dump())
        header = self.texts.say("history_header", page=b.page + 1, pages=pages)
        resp.replies.append(history.list_reply(b, entries, total, me, self.flows, header))
        return resp

    async def _browse(
        self, me: Participant, b: history.Browser, data: str, resp: Response
    ) -> Response:
        action = history.parse(b, data)
        if action is None:
            return resp.say(self.texts.say("stale_button"))
        b.seq = self._seq(me)
        resp.changed = True
        kind, arg = action[:1], action[1:]
        number = whole_number(arg, 0, MAX_ROW_ID)
        if kind == "p" and number is not None:
            b.page = number
            return await self._show_page(me, b, resp)
        if kind == "o" and number is not None:
            return await self._show_entry(me, b, number, resp)
        entry = await self.store.entries.get(b.entry_id, me.id) if b.entry_id else None
        if entry is None:
            resp.say(self.texts.say("history_gone"))
            return await self._show_page(me, b, resp)
        if kind == "d" and arg == "":
            await self.store.entries.save_state(me.id, b.dump())
            return resp.say(
                self.texts.say("history_delete_confirm"),
                buttons=(
                    (
                        history.Button("Yes, delete it", b.data("dy")),
                        history.Button("No, keep it", b.data(f"o{entry.id}")),
                    ),
                ),
            )
        if kind == "d" and arg == "y":
            await self.store.entries.delete(me.id, entry.id)
            await self.store.audit.record("participant", "entry_deleted", me.id)
            resp.say(self.texts.say("history_deleted"))
            return await self._show_page(me, b, resp)
        if kind == "e":
            flow = self.flows.get(entry.flow)
            if flow is None or flow.version != entry.flow_version or flow.step(arg) is None:
                return resp.say(self.texts.say("history_old_version"))
            answers = await self.store.entries.answers(me.id, entry.id)
            context = await self._flow_context(me, flow.id, entry.wave)
            outcome = self.engine.edit(flow.id, entry.id, answers, arg, self._seq(me), context)
            return await self._apply(me, outcome, resp)
        resp.changed = False
        return resp.say(self.texts.say("stale_button"))

    async def _show_entry(
        self, me: Participant, b: history.Browser, entry_id: int, resp: Response
    ) -> Response:
        entry = await self.store.entries.get(entry_id, me.id)
        if entry is None or entry.status != "complete":
            resp.say(self.texts.say("history_gone"))
            return await self._show_page(me, b, resp)
        b.entry_id = entry.id
        await self.store.entries.save_state(me.id, b.dump())
        answers = await self.store.entries.answers(me.id, entry.id)
        resp.replies.append(history.entry_reply(b, entry, answers, self.flows.get(entry.flow), me))
        return resp


_ZONES = available_timezones()
_TABLE_WORDS = {
    "answers": "answers",
    "entries": "entries (reflections, logs and check-ins, including drafts)",
    "conversation_state": "your place in a conversation",
    "audit_log": "activity records about you",
    "consent_ledger": "your earlier consent decisions",
    "pair_links": "your link to your mentoring pair",
    "reminders": "scheduled reminders",
    "reminder_prefs": "your quiet hours",
    "pair_events": "milestones from your session logs",
    "participant_and_data_key": "your profile, chat details and encryption key",
}

