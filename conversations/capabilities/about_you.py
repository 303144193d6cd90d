"""The "about you" questions, once, straight after a person's first starting check-in.

Asked only of someone whose current consent allows ``evaluation``: the evaluator's report is
the answers' only use, so without that consent they are not collected at all. A person is
asked once (the 'asked' marker in storage.participant_context), whether they answer, skip or
stop: a re-matched mentee's new starting check-in does not ask again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conversations.about_you import ABOUT_YOU
from conversations.commands import Registry
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
