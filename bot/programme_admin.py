"""Running a programme: pairs, invites, erasure on request and settings, for coordinators in
the chat (/pairs, /invites, /revoke, /reissue, /erase, /programme) and admins in the CLI.

Both front ends call the same functions, which return plain text. What a coordinator sees
is numbers and labels: pair numbers with lifecycle state, phase and weeks since last
contact for counted pairs only (every member agrees to programme summaries); invite numbers
with pair, role and status. Never a name, a username, a Telegram id, entry text or a code
of any topic. An erasure on request names the person by pair number and role, asks for a
confirmation, and is recorded in the audit log by role only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from conversations import programme_settings
from conversations.commands import Registry
from conversations.responses import Response
from conversations.validation import whole_number
from reports.coordinator import PHASE_LABELS, STATE_LABELS, pair_rows
from storage import personal_data
from storage.db import parse_iso, utcnow
from storage.models import Participant, Programme, Role
from storage.programmes import DEFAULT_INVITE_DAYS, ProgrammeError
from storage.store import Store

if TYPE_CHECKING:
    from conversations.service import Service

MAX_NUMBER = 10**9
Link = Callable[[str], str]
SEATS = {"mentor": Role.MENTOR, "mentee": Role.MENTEE}


def _day(ts: str) -> str:
    return parse_iso(ts).strftime("%d %b %Y")


async def pairs_text(store: Store, programme: Programme, now: datetime | None = None) -> str:
    rows, others = await pair_rows(store, programme.id, now=now or utcnow())
    lines = [f"Pairs in {programme.name} (counted pairs only):"]
    for r in rows:
        contact = ("closed" if r.weeks_since_contact is None
                   else f"last contact {r.weeks_since_contact} week(s) ago")
        lines.append(f"Pair {r.pair_id}: {STATE_LABELS.get(r.state, r.state)} · "
                     f"{PHASE_LABELS.get(r.phase, r.phase)} · {contact}")
    if not rows:
        lines.append("None yet.")
    if others:
        lines.append(f"{others} more pair(s) not listed: not matched yet, or a member has not "
                     "agreed to programme summaries.")
    return "\n".join(lines)


async def invites_text(store: Store, programme: Programme, now: datetime | None = None) -> str:
    now = now or utcnow()
    invites = await store.programmes.invites(programme.id)
    lines = [f"Invites in {programme.name} (number, pair, role, state):"]
    for i in invites[-60:]:
        state = i.status(now)
        when = {"open": f"expires {_day(i.expires_at)}",
                "expired": f"expired {_day(i.expires_at)}",
                "used": f"used {_day(i.used_at or i.created_at)}",
                "revoked": f"withdrawn {_day(i.revoked_at or i.created_at)}"}[state]
        pair = f"pair {i.pair_id}" if i.pair_id else "no pair"
        lines.append(f"#{i.id}: {pair}, {i.role.value}, {state} ({when})")
    if not invites:
        lines.append("None yet.")
    return "\n".join(lines)


async def revoke(store: Store, programme: Programme, invite_id: int, actor: str) -> str:
    found = await store.programmes.revoke_invite(programme.id, invite_id)
    await store.audit.record(actor, "invite_revoked", invite=invite_id)
    return f"Invite #{found.id} ({found.role.value}) is withdrawn: its link opens nothing now."


async def reissue(store: Store, programme: Programme, invite_id: int, actor: str, link: Link,
                  days: int = DEFAULT_INVITE_DAYS) -> str:
    old, code = await store.programmes.reissue_invite(programme.id, invite_id, days)
    await store.audit.record(actor, "invite_reissued", invite=invite_id)
    pair = f" for pair {old.pair_id}" if old.pair_id else ""
    return (f"Invite #{old.id} is withdrawn. New {old.role.value} invite{pair}, expiring in "
            f"{days} days:\n{code}  {link(code)}")


async def erase_target(store: Store, programme: Programme, pair_id: int,
                       role: Role, every: bool | None = None) -> tuple[int | None, str]:
    """Who ``/erase`` would erase, and what to say before asking to confirm.

    ``every`` is the shell admin's choice (None in the chat): one membership, the one in
    this pair's seat, or all the person holds. A coordinator is never told of a person's
    memberships in other programmes or roles, and erases only the one in their programme."""
    pid = await store.programmes.member(programme.id, pair_id, role)
    if pid is None:
        return None, (f"Pair {pair_id} in {programme.name} has no {role.value} to erase "
                      "(no such pair, not joined yet, or erased already).")
    others = [p.id for p in await store.programmes.pairs_of(pid) if p.id != pair_id]
    also = (f" This person is also in pair(s) {', '.join(str(p) for p in others)}: they are "
            "erased from those too." if others else "")
    if every is not None:
        me = await store.participants.get(pid)
        more = len(await store.participants.memberships(me)) - 1 if me else 0
        if more and every:
            also += (f" They hold {more} other membership(s) (another programme or role): "
                     "erased too (--all).")
        elif more:
            also += (f" They hold {more} other membership(s) (another programme or role): "
                     "those stay (--all erases them too).")
    return pid, (f"This erases the {role.value} of pair {pair_id}: everything they wrote, their "
                 f"consent record and their data key, for good.{also}")


async def erase(store: Store, programme: Programme, pair_id: int, role: Role, actor: str,
                actor_id: int | None = None, every: bool = False) -> str:
    pid, _ = await erase_target(store, programme, pair_id, role)
    if pid is None:
        return f"Pair {pair_id} has no {role.value} to erase."
    report = await (store.erase_all(pid) if every else store.erase(pid))
    # by role only: the audit row links to the person who asked for it, never to the erased
    await store.audit.record(actor, "erased_on_request", actor_id, role=role.value,
                             memberships="all" if every else "one",
                             count=report.deleted.get(personal_data.PROFILE, 0))
    return (f"Erased: the {role.value} of pair {pair_id}. Their seat in the pair is empty; "
            "the pair's number and the pair events that name no one stay.")


def settings_text(programme: Programme) -> str:
    lines = [f"Settings of {programme.name}:"]
    lines += [f"{k} = {v}" for k, v in programme_settings.current(programme.settings).items()]
    return "\n".join(lines)


async def change_settings(store: Store, programme: Programme, assignments: list[str],
                          actor: str) -> Programme:
    """Apply ``key=value`` changes together, or none (SettingError says why)."""
    settings = dict(programme.settings)
    for assignment in assignments:
        settings = programme_settings.changed(settings, assignment)
    for key in sorted(set(settings) | set(programme.settings)):
        if settings.get(key) != programme.settings.get(key):
            await store.programmes.set_setting(programme.id, key, settings.get(key))
    await store.audit.record(actor, "programme_settings_changed",
                             keys=",".join(a.partition("=")[0].strip() for a in assignments))
    return await store.programmes.get(programme.id)


class ProgrammeAdmin:
    """The coordinator's chat commands over the functions above. Transport-free."""

    def __init__(self, link: Link | None = None) -> None:
        self.link: Link = link or (lambda code: f"/start {code}")

    def register(self, registry: Registry, service: Service) -> None:
        self.sv = service
        self.store = service.store
        for name, run in (("pairs", self.pairs), ("invites", self.invites),
                          ("revoke", self.revoke), ("reissue", self.reissue),
                          ("erase", self.erase), ("programme", self.programme)):
            registry.command(name, run)

    def say(self, key: str, **kw: object) -> str:
        return self.sv.texts.say(key, **kw)

    async def _programme(self, me: Participant) -> Programme:
        return await self.store.programmes.get(me.programme_id)

    async def pairs(self, me: Participant, resp: Response, args: str) -> Response:
        return resp.say(await pairs_text(self.store, await self._programme(me), self.sv.clock()))

    async def invites(self, me: Participant, resp: Response, args: str) -> Response:
        return resp.say(await invites_text(self.store, await self._programme(me),
                                           self.sv.clock()))

    async def revoke(self, me: Participant, resp: Response, args: str) -> Response:
        number = whole_number(args.lstrip("#"), 1, MAX_NUMBER) if args else None
        if number is None:
            return resp.say(self.say("admin_revoke_usage"))
        try:
            text = await revoke(self.store, await self._programme(me), number, "coordinator")
        except ProgrammeError as exc:
            return resp.say(str(exc))
        resp.changed = True
        return resp.say(text)

    async def reissue(self, me: Participant, resp: Response, args: str) -> Response:
        number = whole_number(args.lstrip("#"), 1, MAX_NUMBER) if args else None
        if number is None:
            return resp.say(self.say("admin_reissue_usage"))
        try:
            text = await reissue(self.store, await self._programme(me), number, "coordinator",
                                 self.link)
        except ProgrammeError as exc:
            return resp.say(str(exc))
        resp.changed = True
        return resp.say(text)

    async def erase(self, me: Participant, resp: Response, args: str) -> Response:
        parts = args.lower().split()
        number = whole_number(parts[0].lstrip("#"), 1, MAX_NUMBER) if parts else None
        role = SEATS.get(parts[1]) if len(parts) > 1 else None
        if number is None or role is None:
            return resp.say(self.say("admin_erase_usage"))
        programme = await self._programme(me)
        pid, preview = await erase_target(self.store, programme, number, role)
        if pid is None:
            return resp.say(preview)
        if len(parts) < 3 or parts[2] != "yes":
            return resp.say(preview + "\n" + self.say("admin_erase_confirm", pair=number,
                                                       role=role.value))
        resp.changed = True
        return resp.say(await erase(self.store, programme, number, role, "coordinator", me.id))

    async def programme(self, me: Participant, resp: Response, args: str) -> Response:
        programme = await self._programme(me)
        if not args.strip():
            return resp.say(settings_text(programme) + "\n" + self.say("admin_settings_how"))
        try:
            updated = await change_settings(self.store, programme, args.split(), "coordinator")
        except programme_settings.SettingError as exc:
            return resp.say(self.say("admin_settings_bad", reason=str(exc)))
        resp.changed = True
        return resp.say(self.say("admin_settings_done") + "\n" + settings_text(updated))
