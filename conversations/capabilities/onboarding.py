"""Onboarding: /start with an invite code, a held join, the welcome and consent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conversations.commands import Registry
from conversations.engine import Reply
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
        if not payload:
            if me is None:
                return Response().say(self.sv.texts.say("welcome_guest"))
            if await self.sv.store.held(me.id) is not None:
                return Response().say(self.sv.texts.say("join_waiting"))
            return self.sv.help_for(me)
        # A join waiting for a coordinator holds up only itself: another programme's
        # invite, or another pair's, can be opened meanwhile.
        result = await self.sv.store.join(
            payload.strip(), sender.user_id, sender.chat_id, sender.first_name
        )
        if not result.ok:
            if result.reason == "locked":
                minutes = max(1, -(-result.wait_seconds // 60))
                return Response().say(self.sv.texts.say("invite_locked", minutes=minutes))
            if result.reason == "waiting" or (
                    result.reason == "already" and result.participant_id is not None
                    and await self.sv.store.held(result.participant_id) is not None):
                # this invite's membership is the one waiting: said as such, nothing taken
                return Response().say(self.sv.texts.say(
                    "join_waiting_further" if result.reason == "waiting" else "join_waiting"))
            if result.reason == "already":
                return Response().say(self.sv.texts.say("already_joined"))
            if result.reason == "cap" and me is not None:
                # the membership the further pair was for (perhaps not the one in use)
                member = (await self.sv.store.participants.get(result.participant_id)
                          if result.participant_id else None) or me
                for note in self.sv.registry.note_listeners:
                    await note(member.programme_id, self.sv.texts.say(
                        "coord_pair_cap", role=member.role.value, pair=result.pair_id or "-",
                        cap=result.cap))
                return Response().say(self.sv.texts.say(
                    f"pair_cap_{member.role.value}", cap=result.cap))
            return Response().say(self.sv.texts.say(f"invite_{result.reason}"))
        assert result.participant_id is not None
        me = await self.sv.store.participants.get(result.participant_id)
        assert me is not None
        if result.again:
            if me.account_id is not None:
                me = await self.sv.store.participants.use(me)  # the pair's membership
            resp = await self.another_pair(me, result.pair_id, result.pair_complete)
            resp.menu_role = me.role.value
            return resp
        programme = await self.sv.store.programmes.get(me.programme_id)
        if result.awaiting_approval:
            held = await self.sv.store.held(me.id)
            if held is not None:
                for listener in self.sv.registry.held_listeners:
                    await listener(held)
            resp = Response(changed=True).say(
                self.sv.texts.say(
                    "join_held", name=sender.first_name or "there", programme=programme.name
                )
            )
            if result.membership:  # the membership in use stays in use meanwhile
                resp.say(self.sv.texts.say("join_held_others"))
            return resp
        resp = await self.welcome(me, sender.first_name, result.pair_complete)
        for other in await self.sv.store.participants.memberships(me):
            if other.id != me.id and await self.sv.store.held(other.id) is not None:
                # their own other join, still waiting: said so, by its programme only
                waiting = await self.sv.store.programmes.get(other.programme_id)
                resp.replies.insert(1, self._line("join_still_waiting",
                                                  programme=waiting.name))
        return resp

    def _line(self, key: str, **values: object) -> Reply:
        return Reply(self.sv.texts.say(key, **values))

    async def another_pair(self, me: Participant, pair_id: int | None,
                           pair_complete: bool) -> Response:
        """A further pair for someone already in: consent stands (asked again only if its
        version changed), and the partner is named once they have joined."""
        resp = Response(changed=True)
        partner = await self.sv.pairs.partner_name(me, pair_id) if pair_id else None
        if pair_complete and partner:
            resp.say(self.sv.texts.say("joined_another_pair", partner=partner))
        else:
            resp.say(self.sv.texts.say("joined_another_pair_waiting"))
        consent = await self.sv.store.consent.state(me.id)
        if consent.needs_asking:
            resp.say(self.sv.texts.say("consent_reask"))
            return await self.sv.begin(me, "consent", resp)
        return resp

    async def welcome(self, me: Participant, first_name: str | None,
                      pair_complete: bool, *, membership: bool = False) -> Response:
        """What a person sees once they are in: at the join, or when a held join is approved.

        A new membership of an existing account (another programme, or the other role) gets
        the same welcome and its own consent questions: nothing agreed elsewhere counts."""
        programme = await self.sv.store.programmes.get(me.programme_id)
        resp = Response(menu_role=me.role.value, changed=True)
        resp.say(
            self.sv.texts.say(
                f"joined_{me.role.value}",
                name=first_name or "there",
                programme=programme.name,
            )
        )
        if membership or len(await self.sv.store.participants.memberships(me)) > 1:
            resp.say(self.sv.texts.say("joined_membership"))
        if pair_complete:
            resp.say(self.sv.texts.say("pair_complete"))
        if me.role is Role.COORDINATOR:
            resp.replies.extend(self.sv.help_for(me).replies)
            return resp
        return await self.sv.begin(me, "consent", resp)


def register(registry: Registry, service: Service) -> None:
    Onboarding(service).register(registry)
