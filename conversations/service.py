"""The transport-free service: one person's input in, replies out.

Both the Telegram adapter and the console chat drive this. It ties the flow engine to
storage: it checks roles and consent, opens entries, saves every answer the moment it is
given, and keeps each person's place so a restart resumes at the same step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from conversations import history
from conversations.capabilities import CORE
from conversations.capabilities.entries import RESUMED_BY
from conversations.catalogue import Texts, load_flows, load_texts
from conversations.commands import Capability, Registry, SavedListener
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
    Text,
)
from conversations.memberships import ACCOUNT_WIDE, MembershipChooser, Memberships
from conversations.model import Flow, FlowState
from conversations.pairs import PairChooser, Pairs
from conversations.responses import Document, Response, Sender, Then
from conversations.safety import DEFAULT_SIGNPOST, assess_async, rule_version, typed_text
from conversations.validation import whole_number
from conversations.waves import BY_ID, due_wave
from storage.db import parse_iso, utcnow
from storage.models import Participant, Role, Scope
from storage.prefs import ChatPrefs
from storage.store import Store

if TYPE_CHECKING:
    from conversations.capabilities.onboarding import Onboarding

log = logging.getLogger(__name__)

FLOW_COMMANDS = ("back", "skip", "cancel")
TYPED = "typed_messages"  # flow context key: ids of the messages typed as answers
# Telegram carries at most 4096 characters a message, both ways. A longer text can still
# arrive, as a paste the Telegram adapter joined from its parts; up to MAX_INPUT it goes
# to the flow, whose own limit then refuses or takes it whole, never cut.
MAX_MESSAGE = 4096
MAX_INPUT = 4 * MAX_MESSAGE
# Numbers in button data (entries, pages) past this are forged: SQLite could not hold them.
MAX_ROW_ID = 10**12


__all__ = ["Document", "Response", "Sender", "Service"]  # the types adapters build on
Active = FlowState | history.Browser | PairChooser | MembershipChooser | None


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
        capabilities: Iterable[Capability] | None = None,
    ) -> None:
        self.store = store
        self.flows = flows or load_flows()
        self.texts = texts or load_texts()
        self.engine = Engine(self.flows)
        self.idle_after = idle_after
        self.clock = clock
        self.signpost_text = signpost_text
        self._seqs: dict[int, int] = {}
        # The one extension point: each capability registers its commands, menus and
        # listeners here. The console runs the listed core; the bot adds its own.
        self.registry = Registry()
        self.onboarding: Onboarding | None = None  # set by the onboarding capability
        self.pairs = Pairs(self)
        self.memberships = Memberships(self)
        for capability in CORE if capabilities is None else capabilities:
            self.install(capability)
        self.prefs = ChatPrefs(store.db)

    def seq(self, me: Participant) -> int:
        """A button generation number no earlier message of this person can carry.

        Milliseconds keep it ahead of anything sent before a restart; the in-memory floor
        keeps flows started within the same millisecond apart.
        """
        seq = max(int(self.clock().timestamp() * 1000) % 10**12, self._seqs.get(me.id, 0) + 1)
        self._seqs[me.id] = seq
        return seq

    def install(self, capability: Capability) -> None:
        capability.register(self.registry, self)

    @property
    def saved_listeners(self) -> list[SavedListener]:
        return self.registry.saved_listeners

    @property
    def consent_flow(self) -> Flow:
        return self.flows["consent"]

    async def start_flow(self, me: Participant, flow_id: str, resp: Response,
                         context: dict[str, Any] | None = None) -> Response:
        """Open a flow that keeps no entry (a menu, consent, settings)."""
        return await self.apply(
            me, self.engine.start(flow_id, context=context, seq=self.seq(me)), resp
        )

    # -- public entry points -----------------------------------------------------------
    async def start(self, sender: Sender, payload: str | None) -> Response:
        if self.onboarding is None:
            return Response().say(self.texts.say("not_here", command="start"))
        return await self.onboarding.start(sender, payload)

    async def welcome(self, me: Participant, first_name: str | None,
                      pair_complete: bool) -> Response:
        """What a person sees once they are in: at the join, or when a held join is approved."""
        assert self.onboarding is not None, "a held join is approved only where people join"
        return await self.onboarding.welcome(me, first_name, pair_complete)

    async def command(self, sender: Sender, name: str, args: str = "") -> Response:
        name = name.lower()
        spec = self.texts.commands.get(name)
        if spec is None:
            return Response().say(self.texts.say("unknown_command", command=name[:32]))
        if name == "start":
            return await self.start(sender, None)
        route = self.registry.commands.get(name)
        me = await self.store.participants.by_user(sender.user_id)
        members = await self.store.participants.memberships(me) if me is not None else []
        # A membership held for a coordinator does nothing but see and erase what is held
        # about the person; their other memberships carry on meanwhile (never offered
        # the held one, nor told anything of it).
        waiting: set[int] = set()
        if not (route and route.while_held):
            waiting = {m.id for m in members if await self.store.held(m.id) is not None}
        able = [m for m in members if m.role.value in spec.roles]
        eligible = [m for m in able if m.id not in waiting]
        if (able and not eligible) or (waiting and len(waiting) == len(members)):
            return Response().say(self.texts.say("join_waiting"))
        if not eligible:
            if me is None:
                if "guest" in spec.roles and name == "help":
                    return self.help_for(None)
                return Response().say(self.texts.say("not_joined"))
            allowed = " and ".join(sorted({r + "s" for r in spec.roles if r != "guest"}))
            return Response().say(
                self.texts.say("wrong_role", command=name, roles=allowed, role=me.role.value)
            )
        assert me is not None
        if name == "help":
            return self.help_for(me, members)
        active, resp = await self._active(me)
        resp.update_id = sender.update_id
        if name in FLOW_COMMANDS:
            if isinstance(active, FlowState):
                return await self._feed(me, active, Command(name), resp)
            if isinstance(active, history.Browser | PairChooser | MembershipChooser) \
                    and name == "cancel":
                await self.store.entries.save_state(me.id, None)
                return resp.say(self.texts.say("cancelled"))
            return resp.say(self.texts.say("nothing_active"))
        if (isinstance(active, FlowState) and not (route and route.in_flow)
                and self.flows[active.flow].kind == "profile"):
            # Optional questions about the person: going on to anything else ends them, and
            # what was answered stays (each answer was saved as it was given).
            await self.store.entries.save_state(me.id, None)
            active = None
        elif isinstance(active, FlowState) and not (route and route.in_flow):
            resp.say(self.texts.say("already_in_flow"))
            resp.replies.extend(self.engine.resume(active).replies)
            return resp
        # Which membership: the one able to run it, asked when several could (never while
        # a flow is open in the one in use: an in-flow command stays with that flow), and
        # which pair in the same question where the command acts on one.
        if (len(eligible) > 1 and name not in ACCOUNT_WIDE
                and not isinstance(active, FlowState)):
            return await self.memberships.ask(me, eligible, name, args.strip()[:200], resp)
        if me.id not in {m.id for m in eligible}:
            me = await self.use(eligible[0], resp, me)
        return await self.run_command(me, name, args, resp, held_checked=True)

    async def use(self, member: Participant, resp: Response,
                  current: Participant) -> Participant:
        """Act in this membership from now on: the chat's menu follows it."""
        if member.id == current.id:
            return current
        fresh = await self.store.participants.use(member)
        if fresh.role is not current.role:
            resp.menu_role = fresh.role.value
        return fresh

    async def run_command(self, me: Participant, name: str, args: str, resp: Response, *,
                          held_checked: bool = False) -> Response:
        """Run a command in this membership (chosen, or the only one able to)."""
        route = self.registry.commands.get(name)
        if (not held_checked and not (route and route.while_held)
                and await self.store.held(me.id) is not None):
            return resp.say(self.texts.say("join_waiting"))
        if not (route and route.before_consent) and me.role is not Role.COORDINATOR:
            consent = await self.store.consent.state(me.id)
            if consent.needs_asking and Scope.PARTICIPATE in consent.decisions:
                resp.say(self.texts.say("consent_reask"))
                return await self.begin(me, "consent", resp)
        if route is None:  # a capability not running here (e.g. reminders in the console)
            return resp.say(self.texts.say("not_here", command=name))
        return await route.run(me, resp, args.strip()[:200])

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
        if isinstance(active, PairChooser):
            return await self.pairs.pressed(me, active, data[:64], resp)
        if isinstance(active, MembershipChooser):
            return await self.memberships.pressed(me, active, data[:64], resp)
        if active is None:
            return resp.say(self.texts.say("stale_button"))
        return await self._feed(me, active, Press(data[:64]), resp)

    def unsupported(self, what: str) -> Response:
        return Response().say(self.texts.say("unsupported", what=what))

    def edited(self) -> Response:
        return Response().say(self.texts.say("edited"))

    # -- commands ----------------------------------------------------------------------
    def help_for(self, me: Participant | None,
                 members: list[Participant] | None = None) -> Response:
        role = me.role.value if me else "guest"
        lines = [self.texts.say("help_header")]
        lines += [
            f"/{c.name} - {c.description}"
            for c in self.texts.commands_for(role)
            if c.name != "start" or me is None  # joining is done once joined
        ]
        others = sorted({m.role.value for m in members or []} - {role})
        if others:
            lines.append(self.texts.say("help_other_memberships",
                                        roles=" and ".join(r + "s" for r in others)))
        return Response().say("\n".join(lines))

    async def next_steps(self, me: Participant, resp: Response) -> None:
        """After consent: the one or two things to do next, not the whole command list."""
        pair = await self.store.programmes.pair_of(me.id, include_closed=True)
        start, closed = await self.timeline(me, pair.id if pair else None)
        done = await self.store.entries.waves_done(me.id, pair.id if pair else None)
        wave = due_wave(start, self.clock(), done, closed)
        if wave is not None:
            resp.say(self.texts.say("next_checkin", wave_label=wave.label))
        resp.say(self.texts.say(f"next_{me.role.value}"))

    async def may_write(self, me: Participant, resp: Response) -> bool:
        consent = await self.store.consent.state(me.id)
        if consent.allows(Scope.PARTICIPATE):
            return True
        resp.say(self.texts.say("needs_consent"))
        return False













    def consent_lines(self, allows: Callable[[Scope], bool]) -> str:
        lines = []
        for step in self.consent_flow.steps:
            assert step.scope is not None
            lines.append(f"• {step.label}: {'yes' if allows(Scope(step.scope)) else 'no'}")
        return "\n".join(lines)

    async def timeline(self, me: Participant, pair_id: int | None = None
                       ) -> tuple[datetime, datetime | None]:
        """When this person's check-ins count from (their pair's match, else their join)
        and when the pair closed: ``pair_id``'s, or their latest pair's."""
        pair = (await self.store.programmes.pair(pair_id) if pair_id is not None
                else await self.store.programmes.pair_of(me.id, include_closed=True))
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
        if "chooser" in raw:
            return PairChooser.load(raw), resp
        if "membership" in raw:
            return MembershipChooser.load(raw), resp
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
    async def open_or_resume(self, me: Participant, flow_id: str, resp: Response, *,
                             wave: str | None = None, pair_id: int | None = None) -> Response:
        """Offer back this flow's unfinished draft (for this wave and pair), else begin.

        Every entry flow resumes here, from the command that started it, so a draft is
        never offered by another flow's command or lost to a fresh start."""
        drafts = [
            e for e in await self.store.entries.of(me.id, "draft")
            if e.flow == flow_id and e.wave == wave
            and (pair_id is None or e.pair_id == pair_id)
        ]
        if drafts:
            outcome = self.engine.start("resume_menu", seq=self.seq(me))
            assert outcome.state is not None
            outcome.state.context = {"entry_id": drafts[0].id, "flow": flow_id}
            return await self.apply(me, outcome, resp)
        return await self.begin(me, flow_id, resp, wave=wave, pair_id=pair_id)

    async def flow_context(
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

    async def begin(
        self, me: Participant, flow_id: str, resp: Response, wave: str | None = None,
        pair_id: int | None = None,
    ) -> Response:
        flow = self.flows[flow_id]
        entry_id = None
        if flow.kind == "entry":
            consent = await self.store.consent.state(me.id)
            if pair_id is None:
                pair = await self.store.programmes.pair_of(me.id)
                pair_id = pair.id if pair else None
            entry_id = await self.store.entries.create(
                me.id, pair_id, flow.id, flow.version, consent.snapshot(), wave
            )
        context = await self.flow_context(me, flow_id, wave)
        return await self.apply(
            me, self.engine.start(flow_id, entry_id, context, seq=self.seq(me)), resp
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
        return await self.apply(me, self.engine.handle(state, inp), resp, previous=state)

    async def apply(
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
        if flow.kind == "profile":
            return await self._profile_event(me, flow, state, event, resp)
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
                for listener in self.registry.saved_listeners:
                    await listener(me, entry_id, flow.id, dict(event.answers))
                for followup in self.registry.followups:
                    await followup(me, flow.id, out)

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
                    resp.say(self.texts.say("cancelled_draft",
                                            command=RESUMED_BY.get(flow.id, "reflect")))
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
            for listener in self.registry.saved_listeners:
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
                out.say(self.texts.say("consent_done", choices=self.consent_lines(state.allows)))
                await self.next_steps(me, out)

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
                await self.apply(me, self.engine.start("erase_confirm", seq=self.seq(me)), out)

            return offer_erasure
        return None

    async def _profile_event(
        self, me: Participant, flow: Flow, state: FlowState, event: Any, resp: Response
    ) -> Then | None:
        """Answers about the person (not an entry). Asked the first time, each is saved,
        encrypted, as it is given; gone through again (/aboutme: ``state.saved`` holds them
        as they were), nothing is written until the summary is saved, so stopping changes
        nothing."""
        if state.saved is not None:
            if isinstance(event, Completed):
                for step in flow.steps:
                    if step.id in event.answers:
                        await self.store.context.save(me.id, step.id, str(event.answers[step.id]))
                    elif step.id in state.saved:  # skipped this time: not kept
                        await self.store.context.clear(me.id, step.id)
            elif isinstance(event, Cancelled):
                resp.say(self.texts.say("about_you_unchanged"))
            return None
        if isinstance(event, Answered):
            await self.store.context.save(me.id, event.step_id, str(event.value))
        elif isinstance(event, Cleared):
            await self.store.context.clear(me.id, event.step_id)
        elif isinstance(event, Cancelled):
            resp.say(self.texts.say("about_you_stopped"))
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
        return self.registry.menus[flow.id](me, state, choice)







    # -- history browser ---------------------------------------------------------------
    async def show_page(self, me: Participant, b: history.Browser, resp: Response) -> Response:
        entries, total = await self.store.entries.page(me.id, b.page * history.PAGE, history.PAGE,
                                                       b.pair_id)
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
        b.seq = self.seq(me)
        resp.changed = True
        kind, arg = action[:1], action[1:]
        number = whole_number(arg, 0, MAX_ROW_ID)
        if kind == "p" and number is not None:
            b.page = number
            return await self.show_page(me, b, resp)
        if kind == "o" and number is not None:
            return await self._show_entry(me, b, number, resp)
        entry = await self.store.entries.get(b.entry_id, me.id) if b.entry_id else None
        if entry is None:
            resp.say(self.texts.say("history_gone"))
            return await self.show_page(me, b, resp)
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
            return await self.show_page(me, b, resp)
        if kind == "e":
            flow = self.flows.get(entry.flow)
            if flow is None or flow.version != entry.flow_version or flow.step(arg) is None:
                return resp.say(self.texts.say("history_old_version"))
            answers = await self.store.entries.answers(me.id, entry.id)
            context = await self.flow_context(me, flow.id, entry.wave)
            outcome = self.engine.edit(flow.id, entry.id, answers, arg, self.seq(me), context)
            return await self.apply(me, outcome, resp)
        resp.changed = False
        return resp.say(self.texts.say("stale_button"))

    async def _show_entry(
        self, me: Participant, b: history.Browser, entry_id: int, resp: Response
    ) -> Response:
        entry = await self.store.entries.get(entry_id, me.id)
        if entry is None or entry.status != "complete":
            resp.say(self.texts.say("history_gone"))
            return await self.show_page(me, b, resp)
        b.entry_id = entry.id
        await self.store.entries.save_state(me.id, b.dump())
        answers = await self.store.entries.answers(me.id, entry.id)
        resp.replies.append(history.entry_reply(b, entry, answers, self.flows.get(entry.flow), me))
        return resp


