"""Consent: /consent, /withdraw and the two-tap erasure behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conversations.commands import Registry
from conversations.model import FlowState
from conversations.responses import Response, Then
from storage import personal_data
from storage.models import Participant, Scope

if TYPE_CHECKING:
    from conversations.service import Service

class ConsentChoices:
    """Seeing and changing consent, withdrawing one use, erasing everything."""

    def __init__(self, service: Service) -> None:
        self.sv = service

    def register(self, registry: Registry) -> None:
        registry.command("consent", self.consent, before_consent=True)
        # A person may stop a use or erase everything at any moment, even mid-flow or
        # while a coordinator has yet to confirm their place.
        registry.command(
            "withdraw", self.withdraw, while_held=True, in_flow=True, before_consent=True
        )
        registry.menu("withdraw", self.withdraw_menu)
        registry.menu("erase_confirm", self.erase_confirm)

    async def consent(self, me: Participant, resp: Response, args: str = "") -> Response:
        state = await self.sv.store.consent.state(me.id)
        resp.say(self.sv.texts.say("consent_current", choices=self.sv.consent_lines(state.allows)))
        return await self.sv.begin(me, "consent", resp)

    async def withdraw(self, me: Participant, resp: Response, args: str = "") -> Response:
        return await self.sv.start_flow(me, "withdraw", resp)

    def withdraw_menu(self, me: Participant, state: FlowState, choice: Any) -> Then:
        async def go(out: Response) -> None:
            if choice == "erase":
                # the person's own erasure: every membership they hold, the account last
                await self.sv.start_flow(me, "erase_confirm", out, context={"all": True})
                return
            scope = Scope(choice)
            await self.sv.store.consent.record(me.id, me.subject_ref, scope, False, "withdraw")
            await self.sv.store.audit.record("participant", f"withdrew:{scope.value}", me.id)
            label = next(s.label for s in self.sv.consent_flow.steps if s.scope == scope.value)
            out.say(self.sv.texts.say("withdraw_done", scope=label))

        return go

    def erase_confirm(self, me: Participant, state: FlowState, choice: Any) -> Then:
        async def go(out: Response) -> None:
            if choice != "yes":
                out.say(self.sv.texts.say("erase_kept_nothing"))
                return
            # From /withdraw: everything, in every membership. Offered after saying No to
            # keeping entries in one membership: that membership's entries only.
            everything = bool(state.context.get("all"))
            report = await (self.sv.store.erase_all(me.id) if everything
                            else self.sv.store.erase(me.id))
            lines = "\n".join(
                f"• {personal_data.describe(table)}: {count}"
                for table, count in report.deleted.items()
                if count
            )
            out.say(self.sv.texts.say("erase_done", deleted=lines, kept="; ".join(report.kept)))
            rest = await self.sv.store.participants.by_user_account(me)
            out.menu_role = "guest" if rest is None else rest.role.value

        return go


def register(registry: Registry, service: Service) -> None:
    ConsentChoices(service).register(registry)
