"""Entries: /reflect, /framework, /log and /checkin, and the menus that lead into them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conversations.commands import Registry
from conversations.model import FlowState
from conversations.responses import Response, Then
from conversations.waves import due_wave, next_wave
from storage.models import Pair, Participant

if TYPE_CHECKING:
    from conversations.service import Service

REFLECTIONS = ("grow", "oskar")
# The command that starts each entry flow, and so offers back its unfinished draft.
RESUMED_BY = {"grow": "reflect", "oskar": "reflect", "episode_log": "log",
              "baseline": "checkin", "checkin": "checkin"}


class Entries:
    """Reflections, session logs and wave check-ins: opening, resuming, choosing a framework."""

    def __init__(self, service: Service) -> None:
        self.sv = service

    def register(self, registry: Registry) -> None:
        registry.command("reflect", self.reflect)
        registry.command("framework", self.framework)
        registry.command("log", self.log)
        registry.command("checkin", self.checkin)
        registry.menu("resume_menu", self.resume_menu)
        registry.menu("reflect_menu", self.reflect_menu)
        self.sv.pairs.on_chosen("log", self.log_for)
        self.sv.pairs.on_chosen("checkin", self.checkin_for, self.checkin_pairs)

    async def reflect(self, me: Participant, resp: Response, args: str = "") -> Response:
        if not await self.sv.may_write(me, resp):
            return resp
        if me.preferred_framework not in REFLECTIONS:
            return await self.sv.start_flow(me, "reflect_menu", resp)
        return await self.sv.open_or_resume(me, me.preferred_framework, resp)

    async def framework(self, me: Participant, resp: Response, args: str = "") -> Response:
        return await self.sv.start_flow(me, "reflect_menu", resp)

    async def log(self, me: Participant, resp: Response, args: str = "") -> Response:
        if not await self.sv.may_write(me, resp):
            return resp
        return await self.sv.pairs.act(me, "log", resp)

    async def log_for(self, me: Participant, pair_id: int | None, resp: Response) -> Response:
        return await self.sv.open_or_resume(me, "episode_log", resp, pair_id=pair_id)

    async def checkin(self, me: Participant, resp: Response, args: str = "") -> Response:
        if not await self.sv.may_write(me, resp):
            return resp
        return await self.sv.pairs.act(me, "checkin", resp)

    async def checkin_pairs(self, me: Participant) -> list[Pair]:
        """The matched pairs, open or closed, with a check-in due now (a closed pair's
        closing and follow-up check-ins too); with one or none, nobody is asked."""
        now = self.sv.clock()
        out = []
        for pair in await self.sv.store.programmes.pairs_of(me.id):
            if pair.matched_at is None or pair.mentor_id is None or pair.mentee_id is None:
                continue
            start, closed = await self.sv.timeline(me, pair.id)
            done = await self.sv.store.entries.waves_done(me.id, pair.id)
            if due_wave(start, now, done, closed) is not None:
                out.append(pair)
        return out

    async def checkin_for(self, me: Participant, pair_id: int | None,
                          resp: Response) -> Response:
        """The wave due for this pair (check-ins count per relationship: a mentor's second
        mentee, or a re-matched mentee's new pair, starts its own from the baseline)."""
        start, closed = await self.sv.timeline(me, pair_id)
        if pair_id is None:
            pair = await self.sv.store.programmes.pair_of(me.id, include_closed=True)
            pair_id = pair.id if pair else None
        now = self.sv.clock()
        done = await self.sv.store.entries.waves_done(me.id, pair_id)
        wave = due_wave(start, now, done, closed)
        if wave is None:
            upcoming = next_wave(start, now, closed)
            if upcoming is None:
                return resp.say(self.sv.texts.say("nothing_active"))
            return resp.say(
                self.sv.texts.say(
                    "no_checkin_due",
                    wave_label=upcoming[0].label,
                    date=upcoming[1].strftime("%d %b %Y"),
                )
            )
        return await self.sv.open_or_resume(me, wave.flow, resp, wave=wave.id, pair_id=pair_id)

    def resume_menu(self, me: Participant, state: FlowState, choice: Any) -> Then:
        entry_id = int(state.context["entry_id"])
        target = self.sv.flows[state.context["flow"]]

        async def go(out: Response) -> None:
            if choice == "restart":
                entry = await self.sv.store.entries.get(entry_id, me.id)
                await self.sv.store.entries.delete(me.id, entry_id)
                await self.sv.begin(me, target.id, out, wave=entry.wave if entry else None,
                                    pair_id=entry.pair_id if entry else None)
                return
            entry = await self.sv.store.entries.get(entry_id, me.id)
            answers = await self.sv.store.entries.answers(me.id, entry_id)
            context = await self.sv.flow_context(me, target.id, entry.wave if entry else None)
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
            await self.sv.store.entries.save_state(me.id, resumed.model_dump(mode="json"))
            out.replies.extend(self.sv.engine.resume(resumed).replies)

        return go

    def reflect_menu(self, me: Participant, state: FlowState, choice: Any) -> Then:
        async def go(out: Response) -> None:
            await self.sv.store.participants.set_field(me.id, "preferred_framework", choice)
            title = self.sv.flows[choice].title
            programme = state.context.get("programme")  # one of several memberships
            out.say(self.sv.texts.say("framework_set_in", framework=title, programme=programme)
                    if programme else self.sv.texts.say("framework_set", framework=title))
            if state.context.get("settings"):
                return  # changed from /settings: no reflection was asked for
            fresh = await self.sv.store.participants.get(me.id)
            assert fresh is not None
            # /framework opens a reflection after the choice: only with consent to keep it
            if await self.sv.may_write(fresh, out):
                await self.sv.open_or_resume(fresh, choice, out)

        return go


def register(registry: Registry, service: Service) -> None:
    Entries(service).register(registry)
