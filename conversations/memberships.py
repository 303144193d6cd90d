"""Which membership: one account in several programmes, or mentor in one pair and mentee in
another, says which membership a command is about when more than one could mean it.

A command only one membership can run (``/log`` for someone who mentors in one programme
and is mentored in another) runs in that membership at once, which becomes the one in use:
the chat's command menu and flows follow it. Where several could run it, the person is
shown one button per membership, labelled by the programme's name and the partners' first
names they already know ("North: mentoring Sam, Alex", "South: mentored by Jo"), never
anything they do not.

Where the command acts on one pair (``/log``, ``/checkin``, ``/history``) and a membership
has several the person could mean, the two questions are one: that membership's pairs get a
button each, by programme and the partner's name ("North: Sam", "North: Alex"), beside the
other memberships' buttons ("South: mentored by Jo"), and the tap runs the command in that
membership for that pair. The question waits in the person's state slot like the pair
chooser (conversations/pairs.py), so a restart keeps it; a tap on a membership that has
gone, or a pair that has closed, meanwhile starts nothing, and a forged or stale tap
(conversations/choices.py) changes nothing. Nothing of one membership is shown in another:
entries, history, consent and drafts are all the membership's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conversations.choices import choice_data, parse_choice
from conversations.engine import Button, Reply
from conversations.pairs import PAIR_TAG
from conversations.responses import Response
from storage.models import Participant, Role

if TYPE_CHECKING:
    from conversations.service import Service

# Commands about the person, not one membership: they run in the membership in use and,
# where they touch data, cover every membership (/mydata hands all of them over; a time
# zone, quiet hours or a pause apply to all).
ACCOUNT_WIDE = frozenset({"start", "help", "mydata", "settings", "timezone", "quiet",
                          "pause", "resume", "back", "skip", "cancel"})
MEMBER_TAG = "m"  # button data: conversations/choices.py (pairs use PAIR_TAG)
MAX_PARTNERS = 3  # names on one button


@dataclass
class MembershipChooser:
    """Which membership, or which (membership, pair): ``members`` are offered as a whole,
    ``pairs`` (pair id -> its membership) one by one. A pair id names one membership of an
    account, since nobody sits on both sides of a pair."""

    seq: int
    command: str
    args: str = ""
    members: list[int] = field(default_factory=list)
    pairs: dict[int, int] = field(default_factory=dict)

    def dump(self) -> dict[str, Any]:
        return {"membership": {"seq": self.seq, "command": self.command, "args": self.args,
                               "members": self.members,
                               "pairs": [[p, m] for p, m in self.pairs.items()]}}

    @classmethod
    def load(cls, raw: dict[str, Any]) -> MembershipChooser:
        c = raw["membership"]
        return cls(int(c["seq"]), str(c["command"]), str(c.get("args", "")),
                   [int(m) for m in c["members"]],
                   {int(p): int(m) for p, m in c.get("pairs", [])})

    def data(self, participant_id: int) -> str:
        return choice_data(self.seq, MEMBER_TAG, participant_id)

    def pair_data(self, pair_id: int) -> str:
        return choice_data(self.seq, PAIR_TAG, pair_id)

    def parse(self, data: str) -> tuple[int, int | None] | None:
        """(membership, pair or None) of a button this question offered; else None."""
        picked = parse_choice(data, self.seq, {MEMBER_TAG: self.members, PAIR_TAG: self.pairs})
        if picked is None:
            return None
        tag, item = picked
        return (item, None) if tag == MEMBER_TAG else (self.pairs[item], item)


class Memberships:
    """The memberships a command could mean, their labels, and asking which one."""

    def __init__(self, service: Service) -> None:
        self.sv = service

    async def label(self, member: Participant) -> str:
        programme = await self.sv.store.programmes.get(member.programme_id)
        partners: list[str] = []
        if member.role in (Role.MENTOR, Role.MENTEE):
            for pair in await self.sv.store.programmes.open_pairs_of(member.id):
                name = await self.sv.pairs.partner_name(member, pair.id)
                if name and name not in partners:
                    partners.append(name)
        if partners:
            shown = ", ".join(partners[:MAX_PARTNERS]) + (
                "…" if len(partners) > MAX_PARTNERS else "")
            return self.sv.texts.say(f"membership_{member.role.value}_of",
                                     programme=programme.name, partners=shown)
        return self.sv.texts.say(f"membership_{member.role.value}", programme=programme.name)

    async def ask(self, me: Participant, eligible: list[Participant], command: str,
                  args: str, resp: Response) -> Response:
        """One question: which membership, and, where the command acts on one pair and a
        membership has several it could mean, which pair of it."""
        chooser = MembershipChooser(self.sv.seq(me), command, args)
        rows: list[tuple[Button, ...]] = []
        for member in eligible:
            pairs = (await self.sv.pairs.choices(member, command)
                     if self.sv.pairs.acts_on_pairs(command) else [])
            if not pairs:  # the membership as a whole
                chooser.members.append(member.id)
                rows.append((Button(await self.label(member), chooser.data(member.id)),))
                continue
            programme = (await self.sv.store.programmes.get(member.programme_id)).name
            names = await self.sv.pairs.labels(member, pairs)
            if len(pairs) == 1:
                # the one pair it could mean, named as the membership would be ("North:
                # mentoring Alex"), never a partner the tap would not act on
                (pair,) = pairs
                chooser.pairs[pair.id] = member.id
                rows.append((Button(self.sv.texts.say(
                    f"membership_{member.role.value}_of", programme=programme,
                    partners=names[pair.id]), chooser.pair_data(pair.id)),))
                continue
            for pair in pairs:
                chooser.pairs[pair.id] = member.id
                rows.append((Button(self.sv.texts.say("membership_pair", programme=programme,
                                                      partner=names[pair.id]),
                                    chooser.pair_data(pair.id)),))
        await self.sv.store.entries.save_state(me.id, chooser.dump())
        several = len(chooser.pairs) > len(set(chooser.pairs.values()))
        question = "choose_membership_pair" if several else "choose_membership"
        resp.replies.append(Reply(self.sv.texts.say(question), tuple(rows)))
        return resp

    async def pressed(self, me: Participant, chooser: MembershipChooser, data: str,
                      resp: Response) -> Response:
        picked = chooser.parse(data)
        if picked is None:
            return resp.say(self.sv.texts.say("stale_button"))
        pid, pair_id = picked
        await self.sv.store.entries.save_state(me.id, None)
        resp.changed = True
        chosen = next((m for m in await self.sv.store.participants.memberships(me)
                       if m.id == pid), None)
        if chosen is None:
            return resp.say(self.sv.texts.say("choose_membership_gone"))
        chosen = await self.sv.use(chosen, resp, me)
        if pair_id is None:
            return await self.sv.run_command(chosen, chooser.command, chooser.args, resp)
        with self.sv.pairs.chosen(chosen.id, chooser.command, pair_id):
            return await self.sv.run_command(chosen, chooser.command, chooser.args, resp)
