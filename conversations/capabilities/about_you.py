"""The "about you" questions, once, straight after a person's first starting check-in.

Asked only of someone whose current consent allows ``evaluation``: the evaluator's report is
the answers' only use, so without that consent they are not collected at all. A person is
asked once (the 'asked' marker in storage.participant_context), whether they answer, skip or
stop: a re-matched mentee's new starting check-in does not ask again.

/aboutme shows the answers held and goes through the same questions again, each offering its
current answer; nothing changes until the summary is saved. It acts on the membership in use
(the answers belong to it) and, like the first asking, only under ``evaluation`` consent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conversations.about_you import ABOUT_YOU
from conversations.commands import Registry
from conversations.engine import display, shorten
from conversations.responses import Response
from storage.models import Participant, Role, Scope

if TYPE_CHECKING:
    from conversations.service import Service

STARTING_CHECKIN = "baseline"


class AboutYou:
    def __init__(self, service: Service) -> None:
        self.sv = service

    def register(self, registry: Registry) -> None:
        registry.after_saved(self.offer)
        registry.command("aboutme", self.aboutme)

    async def aboutme(self, me: Participant, resp: Response, args: str = "") -> Response:
        store = self.sv.store
        if ABOUT_YOU not in self.sv.flows:
            return resp.say(self.sv.texts.say("not_here", command="aboutme"))
        if not await store.consent.may_use(me.id, Scope.EVALUATION):
            return resp.say(self.sv.texts.say("about_you_needs_evaluation"))
        flow = self.sv.flows[ABOUT_YOU]
        held = await store.context.of(me.id)
        answers = {s.id: held[s.id] for s in flow.steps if s.id in held}
        if answers:
            lines = "\n".join(f"• {s.label}: {shorten(display(s, answers[s.id]))}"
                              for s in flow.steps if s.id in answers)
            resp.say(self.sv.texts.say("about_you_current", answers=lines))
        else:
            resp.say(self.sv.texts.say("about_you_none_yet"))
        # Put to the person now: the starting check-in need not ask again.
        await store.context.mark_asked(me.id)
        context = await self.sv.flow_context(me, ABOUT_YOU, None)
        return await self.sv.apply(
            me, self.sv.engine.revisit(ABOUT_YOU, answers, self.sv.seq(me), context), resp)

    async def offer(self, me: Participant, flow_id: str, resp: Response) -> None:
        if flow_id != STARTING_CHECKIN or ABOUT_YOU not in self.sv.flows:
            return
        if me.role not in (Role.MENTEE, Role.MENTOR):
            return
        store = self.sv.store
        if await store.context.asked(me.id):
            return
        if not await store.consent.may_use(me.id, Scope.EVALUATION):
            return
        # marked before the first question: stopping half way is an answer too
        await store.context.mark_asked(me.id)
        context = await self.sv.flow_context(me, ABOUT_YOU, None)
        await self.sv.start_flow(me, ABOUT_YOU, resp, context=context)


def register(registry: Registry, service: Service) -> None:
    AboutYou(service).register(registry)
