"""Which membership: one account in several programmes, or mentor in one pair and mentee in
another, says which membership a command is about when more than one could mean it.

A command only one membership can run (``/log`` for someone who mentors in one programme
and is mentored in another) runs in that membership at once, which becomes the one in use:
the chat's command menu and flows follow it. Where several could run it, the person is
shown one button per membership, labelled by the programme's name and the partners' first
names they already know ("North: mentoring Sam, Alex", "South: mentored by Jo"), never
anything they do not. The question waits in the person's state slot like the pair chooser
(conversations/pairs.py), so a restart keeps it; a tap on a membership that has gone
meanwhile starts nothing. Nothing of one membership is shown in another: entries, history,
consent and drafts are all the membership's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conversations.engine import Button, Reply
from conversations.responses import Response
from conversations.validation import whole_number
from storage.models import Participant, Role

if TYPE_CHECKING:
    from conversations.service import Service

# Commands about the person, not one membership: they run in the membership in use and,
# where they touch data, cover every membership (/mydata hands all of them over; a time
# zone, quiet hours or a pause apply to all).
ACCOUNT_WIDE = frozenset({"start", "help", "mydata", "settings", "timezone", "quiet",
                          "pause", "resume", "back", "skip", "cancel"})
MAX_ID = 10**12
MAX_PARTNERS = 3  # names on one button


@dataclass
class MembershipChooser:
    seq: int
    command: str
    args: str = ""
    members: list[int] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        return {"membership": {"seq": self.seq, "command": self.command, "args": self.args,
                               "members": self.members}}

    @classmethod
    def load(cls, raw: dict[str, Any]) -> MembershipChooser:
        c = raw["membership"]
        return cls(int(c["seq"]), str(c["command"]), str(c.get("args", "")),
                   [int(m) for m in c["members"]])

    def data(self, participant_id: int) -> str:
        return f"{self.seq}:m{participant_id}"

    def parse(self, data: str) -> int | None:
        seq, _, rest = data.partition(":")
        if seq != str(self.seq) or not rest.startswith("m"):
            return None
        pid = whole_number(rest[1:], 1, MAX_ID)
        return pid if pid in self.members else None


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
        chooser = MembershipChooser(self.sv.seq(me), command, args, [m.id for m in eligible])
        await self.sv.store.entries.save_state(me.id, chooser.dump())
        labels = [await self.label(m) for m in eligible]
        rows = tuple((Button(label, chooser.data(m.id)),) for m, label in zip(eligible, labels,
                                                                              strict=True))
        resp.replies.append(Reply(self.sv.texts.say("choose_membership"), rows))
        return resp

    async def pressed(self, me: Participant, chooser: MembershipChooser, data: str,
                      resp: Response) -> Response:
        pid = chooser.parse(data)
        if pid is None:
            return resp.say(self.sv.texts.say("stale_button"))
        await self.sv.store.entries.save_state(me.id, None)
        resp.changed = True
        chosen = next((m for m in await self.sv.store.participants.memberships(me)
                       if m.id == pid), None)
        if chosen is None:
            return resp.say(self.sv.texts.say("choose_membership_gone"))
        chosen = await self.sv.use(chosen, resp, me)
        return await self.sv.run_command(chosen, chooser.command, chooser.args, resp)
