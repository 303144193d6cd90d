"""Self-service: /history, /mydata, /settings, /timezone, /pause and /resume."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, available_timezones

from conversations import history, mydata
from conversations.answers import Answer
from conversations.commands import Registry
from conversations.model import FlowState
from conversations.responses import Document, Response, Then
from storage.models import Participant, Role

if TYPE_CHECKING:
    from conversations.service import Service

class SelfService:
    """What a person does for themselves: history, a copy of their data, settings, pausing."""

    def __init__(self, service: Service) -> None:
        self.sv = service

    def register(self, registry: Registry) -> None:
        registry.command("history", self.history)
        self.sv.pairs.on_chosen("history", self.history_for)
        # A copy of what is held is never withheld: not mid-flow, not before consent.
        registry.command("mydata", self.mydata, while_held=True, in_flow=True, before_consent=True)
        registry.command("settings", self.settings)
        registry.command("timezone", self.timezone)
        registry.command("pause", self.pause, in_flow=True)
        registry.command("resume", self.resume)
        registry.menu("settings", self.settings_menu)
        registry.menu("timezone", self.timezone_menu)

    async def history(self, me: Participant, resp: Response, args: str = "") -> Response:
        return await self.sv.pairs.act(me, "history", resp)

    async def history_for(self, me: Participant, pair_id: int | None,
                          resp: Response) -> Response:
        # One pair's entries only when there was a choice: with one pair, everything.
        several = len(await self.sv.pairs.choices(me, "history")) > 1
        browser = history.Browser(self.sv.seq(me), pair_id=pair_id if several else None)
        return await self.sv.show_page(me, browser, resp)

    async def mydata(self, me: Participant, resp: Response, args: str = "") -> Response:
        # every membership of the person, grouped (conversations.mydata.collect_all)
        data = await mydata.collect_all(self.sv.store, me, self.sv.flows)
        caption = self.sv.texts.say("mydata_caption")
        resp.documents.append(Document("mentorbot-my-data.json", mydata.as_json(data), caption))
        resp.documents.append(Document("mentorbot-my-data.csv", mydata.as_csv(data)))
        await self.sv.store.audit.record("participant", "data_copy_sent", me.id)
        return resp

    async def settings(self, me: Participant, resp: Response, args: str = "") -> Response:
        """The person's settings. Time zone, quiet hours, reminders on or off and chat
        tidying are the person's, for every membership; the reflection framework is each
        mentee membership's own, so with several it is shown per programme and changing
        it asks which (``/settings framework`` goes straight to that choice)."""
        if args.strip().lower() == "framework":
            if me.role is Role.MENTEE:
                return await self.framework_for(me, resp)
            return await self.choose_framework(me, resp)
        members = await self.sv.store.participants.memberships(me)
        lines = [
            self.sv.texts.say("settings_timezone", tz=me.timezone),
            self.sv.texts.say("settings_reminders_" + ("off" if me.status == "paused" else "on")),
            self.sv.texts.say(
                "settings_tidy_" + ("on" if await self.sv.prefs.tidy_chat(me.id) else "off")
            ),
        ]
        if len(members) > 1:
            lines.append(self.sv.texts.say("settings_all_memberships"))
            for member in members:
                if member.role is Role.MENTEE:
                    programme = await self.sv.store.programmes.get(member.programme_id)
                    lines.append(self.sv.texts.say("settings_framework_in",
                                                   programme=programme.name,
                                                   framework=self._framework(member)))
        elif me.role is Role.MENTEE:
            lines.insert(0, self.sv.texts.say("settings_framework",
                                              framework=self._framework(me)))
        context = {"current": "\n".join(lines)}
        return await self.sv.start_flow(me, "settings", resp, context=context)

    def _framework(self, member: Participant) -> str:
        flow = self.sv.flows.get(member.preferred_framework or "")
        return flow.title if flow else "not chosen"

    async def choose_framework(self, me: Participant, resp: Response) -> Response:
        """Which reflection: for the person's one mentee membership (whichever is in use),
        or, with several, after asking which."""
        mentees = [m for m in await self.sv.store.participants.memberships(me)
                   if m.role is Role.MENTEE and await self.sv.store.held(m.id) is None]
        if not mentees:
            return resp.say(self.sv.texts.say("settings_mentees_only"))
        if len(mentees) > 1:
            return await self.sv.memberships.ask(me, mentees, "settings", "framework", resp)
        target = await self.sv.use(mentees[0], resp, me)  # the question waits in its slot
        return await self.framework_for(target, resp)

    async def framework_for(self, me: Participant, resp: Response) -> Response:
        """The GROW-or-OSKAR question for this mentee membership, naming its programme when
        the person has others; no reflection is opened after it."""
        context: dict[str, Any] = {"settings": True}
        if len(await self.sv.store.participants.memberships(me)) > 1:
            context["programme"] = (await self.sv.store.programmes.get(me.programme_id)).name
        outcome = self.sv.engine.start("reflect_menu", context=context, seq=self.sv.seq(me))
        return await self.sv.apply(me, outcome, resp)

    async def timezone(self, me: Participant, resp: Response, args: str = "") -> Response:
        return await self.sv.start_flow(me, "timezone", resp)

    async def pause(self, me: Participant, resp: Response, args: str = "") -> Response:
        await self.sv.store.participants.set_field(me.id, "status", "paused")
        await self.sv.store.audit.record("participant", "reminders_paused", me.id)
        resp.changed = True
        return resp.say(self.sv.texts.say("paused"))

    async def resume(self, me: Participant, resp: Response, args: str = "") -> Response:
        await self.sv.store.participants.set_field(me.id, "status", "active")
        await self.sv.store.audit.record("participant", "reminders_resumed", me.id)
        resp.changed = True
        return resp.say(self.sv.texts.say("resumed"))

    def settings_menu(self, me: Participant, state: FlowState, choice: Any) -> Then:
        async def go(out: Response) -> None:
            fresh = await self.sv.store.participants.get(me.id)
            assert fresh is not None
            if choice == "framework":
                await self.choose_framework(fresh, out)
            elif choice == "timezone":
                await self.timezone(fresh, out)
            elif choice == "quiet":
                out.say(self.sv.texts.say("settings_quiet"))
            elif choice == "reminders":
                if fresh.status == "paused":
                    await self.resume(fresh, out)
                else:
                    await self.pause(fresh, out)
            elif choice == "tidy":
                on = not await self.sv.prefs.tidy_chat(fresh.id)
                await self.sv.prefs.set_tidy_chat(fresh.id, on)  # for every membership
                await self.sv.store.audit.record("participant", f"tidy_chat:{int(on)}", fresh.id)
                out.say(self.sv.texts.say("tidy_" + ("on" if on else "off")))

        return go

    def timezone_menu(self, me: Participant, state: FlowState, choice: Any) -> Then:
        async def go(out: Response) -> None:
            name = (Answer.decode(choice).other or "") if isinstance(choice, dict) else str(choice)
            name = name.strip().replace(" ", "_")
            if "/" not in name and name != "UTC":
                name = name.replace("_", "/", 1)  # button ids use _ for /
            if name not in _ZONES:
                out.say(self.sv.texts.say("timezone_unknown", tz=name[:64]))
                return
            ZoneInfo(name)
            await self.sv.store.participants.set_field(me.id, "timezone", name)
            out.say(self.sv.texts.say("timezone_set", tz=name))

        return go

_ZONES = available_timezones()


def register(registry: Registry, service: Service) -> None:
    SelfService(service).register(registry)
