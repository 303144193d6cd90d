"""Which pair: a mentor with several mentees says which one a log, check-in or look back is about.

A person in one pair is never asked. A mentor in several is shown one button per mentee,
labelled with the first name that mentor already knows (their mentee's Telegram first name,
as the bot greeted them), with the pair number only when two names are the same. The
choice waits in the person's state slot like a flow, so a restart keeps it; a tap on a
pair that closed meanwhile starts nothing. Someone in several memberships is asked once
for the membership and the pair together (conversations/memberships.py), which hands the
pair chosen there to :meth:`Pairs.act` through :meth:`Pairs.chosen`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conversations.choices import choice_data, parse_choice
from conversations.engine import Button, Reply
from conversations.responses import Response
from storage.models import Pair, Participant, Role

if TYPE_CHECKING:
    from conversations.service import Service

# What to do once the pair is known: (the person, the pair or None, the response so far).
PairAction = Callable[[Participant, "int | None", Response], Awaitable[Response]]
# Which pairs a purpose could mean for this person, when not the default (open, matched).
Candidates = Callable[[Participant], Awaitable[list[Pair]]]
# Purposes that look back over closed pairs too; the others act on open, matched pairs.
LOOKING_BACK = frozenset({"history"})
PAIR_TAG = "p"  # button data: conversations/choices.py


@dataclass
class PairChooser:
    seq: int
    purpose: str
    pairs: list[int] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        return {"chooser": {"seq": self.seq, "purpose": self.purpose, "pairs": self.pairs}}

    @classmethod
    def load(cls, raw: dict[str, Any]) -> PairChooser:
        c = raw["chooser"]
        return cls(int(c["seq"]), str(c["purpose"]), [int(p) for p in c["pairs"]])

    def data(self, pair_id: int) -> str:
        return choice_data(self.seq, PAIR_TAG, pair_id)

    def parse(self, data: str) -> int | None:
        picked = parse_choice(data, self.seq, {PAIR_TAG: self.pairs})
        return None if picked is None else picked[1]


class Pairs:
    """The pairs a person acts on, their partners' names, and asking which one."""

    def __init__(self, service: Service) -> None:
        self.sv = service
        self.actions: dict[str, PairAction] = {}
        self.candidates: dict[str, Candidates] = {}
        # (membership, purpose) -> the pair already chosen in the membership question
        self._chosen: dict[tuple[int, str], int] = {}

    def on_chosen(self, purpose: str, action: PairAction,
                  candidates: Candidates | None = None) -> None:
        if purpose in self.actions:
            raise ValueError(f"pair action {purpose!r} is registered twice")
        self.actions[purpose] = action
        if candidates is not None:
            self.candidates[purpose] = candidates

    async def choices(self, me: Participant, purpose: str) -> list[Pair]:
        """The pairs this person could mean: open and matched, or (looking back) any
        they sat in with a partner, or what the purpose says (check-ins: pairs with one
        due, which a re-matched mentee may have two of)."""
        if purpose in self.candidates:
            return await self.candidates[purpose](me)
        if me.role is not Role.MENTOR:
            return []
        if purpose in LOOKING_BACK:
            pairs = await self.sv.store.programmes.pairs_of(me.id)
            return [p for p in pairs if p.matched_at is not None]
        pairs = await self.sv.store.programmes.open_pairs_of(me.id)
        return [p for p in pairs if p.mentor_id is not None and p.mentee_id is not None]

    async def partner_name(self, me: Participant, pair_id: int | None) -> str | None:
        if pair_id is None:
            return None
        pair = await self.sv.store.programmes.pair(pair_id)
        if pair is None:
            return None
        partner = pair.mentee_id if me.role is Role.MENTOR else pair.mentor_id
        if partner is None or partner == me.id:
            return None
        return (await self.sv.store.participants.name(partner)).strip() or None

    async def labels(self, me: Participant, pairs: list[Pair]) -> dict[int, str]:
        names = {p.id: await self.partner_name(me, p.id) for p in pairs}
        seen: dict[str, int] = {}
        for name in names.values():
            if name:
                seen[name.casefold()] = seen.get(name.casefold(), 0) + 1
        out = {}
        for pair_id, name in names.items():
            if not name:
                out[pair_id] = f"Pair {pair_id}"
            elif seen[name.casefold()] > 1:
                out[pair_id] = f"{name} (pair {pair_id})"
            else:
                out[pair_id] = name
        return out

    def acts_on_pairs(self, purpose: str) -> bool:
        return purpose in self.actions

    @contextmanager
    def chosen(self, member_id: int, purpose: str, pair_id: int) -> Iterator[None]:
        """While the command runs, ``act`` takes this pair as chosen (the person picked it
        with the membership) instead of asking; forgotten afterwards whatever happened (a
        command that stopped early, for consent say, leaves nothing behind)."""
        key = (member_id, purpose)
        self._chosen[key] = pair_id
        try:
            yield
        finally:
            self._chosen.pop(key, None)

    async def act(self, me: Participant, purpose: str, resp: Response) -> Response:
        """Run ``purpose`` for the one pair this person means, asking first if they have
        several. With none or one, no question: the action gets that pair or None."""
        pairs = await self.choices(me, purpose)
        preset = self._chosen.pop((me.id, purpose), None)
        if preset is not None:
            if preset not in {p.id for p in pairs}:  # closed since the question
                return resp.say(self.sv.texts.say("choose_pair_gone"))
            return await self.actions[purpose](me, preset, resp)
        if len(pairs) <= 1:
            return await self.actions[purpose](me, pairs[0].id if pairs else None, resp)
        chooser = PairChooser(self.sv.seq(me), purpose, [p.id for p in pairs])
        await self.sv.store.entries.save_state(me.id, chooser.dump())
        labels = await self.labels(me, pairs)
        rows = tuple((Button(labels[p.id], chooser.data(p.id)),) for p in pairs)
        question = "choose_pair" if me.role is Role.MENTOR else "choose_pair_mentor"
        resp.replies.append(Reply(self.sv.texts.say(question), rows))
        return resp

    async def pressed(self, me: Participant, chooser: PairChooser, data: str,
                      resp: Response) -> Response:
        pair_id = chooser.parse(data)
        if pair_id is None:
            return resp.say(self.sv.texts.say("stale_button"))
        await self.sv.store.entries.save_state(me.id, None)
        resp.changed = True
        if pair_id not in {p.id for p in await self.choices(me, chooser.purpose)}:
            return resp.say(self.sv.texts.say("choose_pair_gone"))
        return await self.actions[chooser.purpose](me, pair_id, resp)
