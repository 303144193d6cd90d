"""Pair lifecycle in the chat: a coordinator's /close and /extend, anyone's /quiet.

Each change is a pair event (``storage.lifecycle``); the reminder planner then re-plans the
pair, so a closed pair's nudges stop and an extended pair's six-month check moves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conversations.capabilities.reminder_planning import ReminderPlanner
from conversations.commands import Registry
from conversations.reminder_rules import QuietHours, planned_end, zone
from conversations.responses import Response
from conversations.validation import whole_number
from storage.lifecycle import PairFacts
from storage.models import Participant

if TYPE_CHECKING:
    from conversations.service import Service

# SQLite's integers go far beyond this; a number past it is a typing slip, not a pair.
MAX_PAIR_NUMBER = 10**9


class PairLifecycle:
    def __init__(self, planner: ReminderPlanner) -> None:
        self.planner = planner
        self.texts = planner.texts
        self.store = planner.store

    def register(self, registry: Registry, service: Service) -> None:
        registry.command("close", self.close)
        registry.command("extend", self.extend)
        registry.command("quiet", self.quiet)

    async def _coordinator_pair(
        self, me: Participant, resp: Response, args: str, usage: str, **extra: object
    ) -> tuple[PairFacts | None, list[str]]:
        parts = args.split()
        number = whole_number(parts[0].lstrip("#"), 1, MAX_PAIR_NUMBER) if parts else None
        if number is None:
            resp.say(self.texts.say(usage, pairs=await self._open_pairs(me), **extra))
            return None, parts
        facts = (await self.planner.lifecycle.facts([number])).get(number)
        if facts is None or facts.programme_id != me.programme_id:
            # The same answer for "no such pair" and "another programme's pair".
            resp.say(self.texts.say("rem_pair_unknown", pair=number))
            return None, parts
        if facts.matched_at is None:
            resp.say(self.texts.say("rem_pair_unmatched", pair=number))
            return None, parts
        if facts.closed:
            resp.say(self.texts.say("rem_pair_already_closed", pair=number))
            return None, parts
        return facts, parts

    async def _open_pairs(self, me: Participant) -> str:
        await self.planner.lifecycle.ensure_matched(self.planner.clock())
        numbers = [
            f.pair_id
            for f in (await self.planner.lifecycle.facts()).values()
            if f.programme_id == me.programme_id and f.matched_at is not None and not f.closed
        ]
        if not numbers:
            return self.texts.say("rem_no_open_pairs")
        return self.texts.say("rem_open_pairs", pairs=", ".join(str(n) for n in numbers[:60]))

    async def close(self, me: Participant, resp: Response, args: str) -> Response:
        facts, parts = await self._coordinator_pair(me, resp, args, "rem_close_usage")
        if facts is None:
            return resp
        rematch = len(parts) > 1 and parts[1].lower().replace("-", "") in ("rematch", "nofit")
        event = "rematched" if rematch else "closed"
        now = self.planner.clock()
        await self.planner.lifecycle.record(
            facts.pair_id,
            event,
            at=now,
            source="coordinator",
            now=now,
            detail={"by": "coordinator"},
        )
        await self.store.audit.record("coordinator", f"pair_{event}", me.id, pair=facts.pair_id)
        await self.planner.pair_changed(facts.pair_id, now)
        resp.changed = True
        return resp.say(self.texts.say(f"rem_{event}", pair=facts.pair_id))

    async def extend(self, me: Participant, resp: Response, args: str) -> Response:
        settings = await self.planner.settings_for(me.programme_id)
        facts, parts = await self._coordinator_pair(
            me, resp, args, "rem_extend_usage", months=settings.extend_months
        )
        if facts is None:
            return resp
        months = settings.extend_months
        if len(parts) > 1:
            typed = whole_number(parts[1], 1, 12)
            if typed is None:
                return resp.say(self.texts.say("rem_extend_usage", months=months, pairs=""))
            months = typed
        now = self.planner.clock()
        await self.planner.lifecycle.record(
            facts.pair_id,
            "extended",
            at=now,
            source="coordinator",
            now=now,
            detail={"months": months},
        )
        await self.store.audit.record("coordinator", "pair_extended", me.id, pair=facts.pair_id)
        await self.planner.pair_changed(facts.pair_id, now)
        updated = (await self.planner.lifecycle.facts([facts.pair_id]))[facts.pair_id]
        end = planned_end(updated, settings)
        assert end is not None
        resp.changed = True
        return resp.say(
            self.texts.say(
                "rem_extended",
                pair=facts.pair_id,
                months=months,
                date=end.astimezone(zone(me.timezone)).strftime("%d %b %Y"),
            )
        )

    async def quiet(self, me: Participant, resp: Response, args: str) -> Response:
        settings = await self.planner.settings_for(me.programme_id)
        tz = me.timezone
        word = args.strip().lower()
        if not word:
            quiet = await self.planner.quiet_for(me, settings)
            if quiet.off:
                return resp.say(self.texts.say("rem_quiet_none", tz=tz))
            start, end = quiet.strings()
            return resp.say(self.texts.say("rem_quiet_show", start=start, end=end, tz=tz))
        now = self.planner.clock()
        # quiet hours are the person's, whatever the membership: set for all of them
        members = await self.store.participants.memberships(me)
        if word == "default":
            for member in members:
                await self.planner.repo.clear_quiet_hours(member.id)
            start, end = settings.quiet_hours.strings()
            resp.changed = True
            return resp.say(self.texts.say("rem_quiet_default", start=start, end=end, tz=tz))
        try:
            quiet = QuietHours.parse(word)
        except ValueError:
            return resp.say(self.texts.say("rem_quiet_bad"))
        start, end = quiet.strings()
        for member in members:
            await self.planner.repo.set_quiet_hours(member.id, start, end, now)
        resp.changed = True
        if quiet.off:
            return resp.say(self.texts.say("rem_quiet_off", tz=tz))
        return resp.say(self.texts.say("rem_quiet_set", start=start, end=end, tz=tz))
