"""Onboarding: /start with an invite code, a held join, the welcome and consent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conversations.commands import Registry
from conversations.responses import Response, Sender
from storage.models import Participant, Role

if TYPE_CHECKING:
    from conversations.service import Service


class Onboarding:
    """Joining from an invite link, being held for approval, and the welcome."""

    def __init__(self, service: Service) -> None:
        self.sv = service

    def register(self, registry: Registry) -> None:
        # /start is the one way in for someone not yet joined, so the service calls it
        # directly rather than through a command route (which needs a participant).
        self.sv.onboarding = self

    async def start(self, sender: Sender, payload: str | None) -> Response:
        me = await self.sv.store.participants.by_user(sender.user_id)
        if me is not None and await self.sv.store.held(me.id) is not None:
            return Response().say(self.sv.texts.say("join_waiting"))
        if not payload:
            if me is None:
                return Response().say(self.sv.texts.say("welcome_guest"))
            return self.sv.help_for(me)
        if me is not None:
            return Response().say(self.sv.texts.say("already_joined"))
        result = await self.sv.store.join(
            payload.strip(), sender.user_id, sender.chat_id, sender.first_name
        )
        if not result.ok:
            if result.reason == "locked":
                minutes = max(1, -(-result.wait_seconds // 60))
                return Response().say(self.sv.texts.say("invite_locked", minutes=minutes))
            if result.reason == "already":
                return Response().say(self.sv.texts.say("already_joined"))
            return Response().say(self.sv.texts.say(f"invite_{result.reason}"))
        assert result.participant_id is not None
        me = await self.sv.store.participants.get(result.participant_id)
        assert me is not None
        programme = await self.sv.store.programmes.get(me.programme_id)
        if result.awaiting_approval:
            held = await self.sv.store.held(me.id)
            if held is not None:
                for listener in self.sv.registry.held_listeners:
                    await listener(held)
            return Response(changed=True).say(
                self.sv.texts.say(
                    "join_held", name=sender.first_name or "there", programme=programme.name
                )
            )
        return await self.welcome(me, sender.first_name, result.pair_complete)

    async def welcome(
        self, me: Participant, first_name: str | None, pair_complete: bool
    ) -> Response:
        """What a person sees once they are in: at the join, or when a held join is approved."""
        programme = await self.sv.store.programmes.get(me.programme_id)
        resp = Response(menu_role=me.role.value, changed=True)
        resp.say(
            self.sv.texts.say(
                f"joined_{me.role.value}",
                name=first_name or "there",
                programme=programme.name,
            )
        )
        if pair_complete:
            resp.say(self.sv.texts.say("pair_complete"))
        if me.role is Role.COORDINATOR:
            resp.replies.extend(self.sv.help_for(me).replies)
            return resp
        return await self.sv.begin(me, "consent", resp)


def register(registry: Registry, service: Service) -> None:
    Onboarding(service).register(registry)
