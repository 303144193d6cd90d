"""Programmes, pairs and single-use invite codes."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosqlite

from storage.db import Database, iso, parse_iso, utcnow
from storage.models import Invite, Pair, Programme, Role
from storage.vault import Vault

INVITE_PURPOSE = "invite-code"
# 12 random bytes = 96 bits, well over the 64 the threat model asks for, and the
# base32 form (20 chars) fits Telegram's 64-character deep-link limit.
INVITE_BYTES = 12
DEFAULT_INVITE_DAYS = 14
# A link lives long enough to reach someone on leave, short enough that a forwarded or
# forgotten one stops working; 0 or less would make a link that is born expired.
MAX_INVITE_DAYS = 30
MAX_FAILURES = 5
LOCK_MINUTES = (1, 5, 15, 60)
# How many open pairs one mentor may hold in a programme (programme setting, issue 15).
# A mentee holds one open pair at a time: a second relationship starts after a re-match.
PAIR_CAP = "mentor_pair_cap"
DEFAULT_PAIR_CAP = 3
MAX_PAIR_CAP = 20


class ProgrammeError(Exception):
    """A programme or pair operation that cannot be done (duplicate name, unknown name)."""


def pair_cap(programme: Programme, role: Role) -> int:
    """Open pairs one person may hold in this role: the programme's mentor cap, or one."""
    if role is not Role.MENTOR:
        return 1
    raw = programme.settings.get(PAIR_CAP, DEFAULT_PAIR_CAP)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_PAIR_CAP:
        return DEFAULT_PAIR_CAP
    return raw


def seat(role: Role) -> str:
    """The pairs column a person in this role sits in."""
    if role is Role.MENTOR:
        return "mentor_id"
    if role is Role.MENTEE:
        return "mentee_id"
    raise ProgrammeError(f"a {role.value} has no seat in a pair")


async def open_seats(conn: aiosqlite.Connection, participant_id: int, role: Role) -> int:
    """How many pairs that are not closed this person sits in, in this role."""
    async with conn.execute(
        f"SELECT COUNT(*) FROM pairs WHERE {seat(role)}=? AND state != 'closed'",  # noqa: S608
        (participant_id,),
    ) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class InviteRow:
    """An invite as a coordinator or admin sees it: numbers and dates, never the code."""

    id: int
    pair_id: int | None
    role: Role
    created_at: str
    expires_at: str
    used_at: str | None
    revoked_at: str | None

    def status(self, now: datetime) -> str:
        if self.revoked_at:
            return "revoked"
        if self.used_at:
            return "used"
        return "expired" if parse_iso(self.expires_at) < now else "open"


def new_code() -> str:
    import base64

    return base64.b32encode(secrets.token_bytes(INVITE_BYTES)).decode().rstrip("=").lower()


def _pair(r: aiosqlite.Row) -> Pair:
    return Pair(
        r["id"],
        r["programme_id"],
        r["mentor_id"],
        r["mentee_id"],
        r["state"],
        r["created_at"],
        r["matched_at"],
    )


class Programmes:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault

    # -- programmes ------------------------------------------------------------------
    async def create(self, name: str, settings: dict[str, object] | None = None) -> Programme:
        name = name.strip()
        if not name:
            raise ProgrammeError("a programme needs a name")
        if await self.db.scalar("SELECT 1 FROM programmes WHERE name=?", (name,)):
            raise ProgrammeError(f"a programme called {name!r} already exists")
        pid = await self.db.execute(
            "INSERT INTO programmes (name, settings, created_at) VALUES (?, ?, ?)",
            (name, json.dumps(settings or {}, sort_keys=True), iso(utcnow())),
        )
        return Programme(pid, name, settings or {})

    async def by_name(self, name: str) -> Programme:
        row = await self.db.fetchone(
            "SELECT id, name, settings FROM programmes WHERE name=?", (name.strip(),)
        )
        if row is None:
            raise ProgrammeError(
                f"no programme called {name!r} (create it with 'mentorbot programme create')"
            )
        return Programme(row["id"], row["name"], json.loads(row["settings"]))

    async def get(self, programme_id: int) -> Programme:
        row = await self.db.fetchone(
            "SELECT id, name, settings FROM programmes WHERE id=?", (programme_id,)
        )
        if row is None:
            raise ProgrammeError("no such programme")
        return Programme(row["id"], row["name"], json.loads(row["settings"]))

    async def all(self) -> list[Programme]:
        rows = await self.db.fetchall("SELECT id, name, settings FROM programmes ORDER BY id")
        return [Programme(r["id"], r["name"], json.loads(r["settings"])) for r in rows]

    async def set_setting(self, programme_id: int, key: str, value: object) -> None:
        """Change one key of the programme's settings JSON, keeping the others."""
        programme = await self.get(programme_id)
        settings = {**programme.settings, key: value}
        await self.db.execute("UPDATE programmes SET settings=? WHERE id=?",
                              (json.dumps(settings, sort_keys=True), programme_id))

    # -- pairs -----------------------------------------------------------------------
    async def create_pair(self, programme_id: int) -> int:
        return await self.db.execute(
            "INSERT INTO pairs (programme_id, state, created_at) VALUES (?, 'invited', ?)",
            (programme_id, iso(utcnow())),
        )

    async def pair(self, pair_id: int) -> Pair | None:
        row = await self.db.fetchone("SELECT * FROM pairs WHERE id=?", (pair_id,))
        return None if row is None else _pair(row)

    async def pair_of(self, participant_id: int, include_closed: bool = False) -> Pair | None:
        closed = "" if include_closed else "AND state != 'closed' "
        row = await self.db.fetchone(
            "SELECT * FROM pairs WHERE (mentor_id=? OR mentee_id=?) "  # noqa: S608
            + closed
            + "ORDER BY id DESC LIMIT 1",
            (participant_id, participant_id),
        )
        return None if row is None else _pair(row)

    async def open_pairs_of(self, participant_id: int) -> list[Pair]:
        """Every pair this person sits in that is not closed, oldest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM pairs WHERE (mentor_id=? OR mentee_id=?) AND state != 'closed' "
            "ORDER BY id",
            (participant_id, participant_id),
        )
        return [_pair(r) for r in rows]

    async def pairs_of(self, participant_id: int) -> list[Pair]:
        """Every pair this person sits in, closed ones too, oldest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM pairs WHERE mentor_id=? OR mentee_id=? ORDER BY id",
            (participant_id, participant_id),
        )
        return [_pair(r) for r in rows]

    async def pair_with(self, programme_id: int, from_pair: int, role: Role) -> tuple[int, int]:
        """Re-matching: a new pair seating the person who holds ``role`` in ``from_pair``.

        Returns (new pair id, that person's participant id). The new pair is a new
        relationship (its own number, lifecycle, phases and check-ins, matched when the new
        partner joins); the person's earlier entries stay theirs, with the earlier pair.
        The person must not be over their cap: a mentee's earlier pair must be closed
        first (/close N rematch), a mentor may hold up to the programme's cap.
        """
        column = seat(role)
        programme = await self.get(programme_id)
        async with self.db.transaction() as conn:
            async with conn.execute(
                f"SELECT {column} FROM pairs WHERE id=? AND programme_id=?",  # noqa: S608
                (from_pair, programme_id),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                raise ProgrammeError(f"there is no pair {from_pair} in {programme.name}")
            if row[0] is None:
                raise ProgrammeError(
                    f"pair {from_pair} has no {role.value} (not joined yet, or erased)")
            pid = int(row[0])
            cap = pair_cap(programme, role)
            if await open_seats(conn, pid, role) >= cap:
                raise ProgrammeError(
                    f"the {role.value} of pair {from_pair} already holds {cap} open pair(s)"
                    + (f"; close pair {from_pair} first (/close {from_pair} rematch)"
                       if role is Role.MENTEE else f" (the programme's cap, {PAIR_CAP})")
                )
            cur2 = await conn.execute(
                f"INSERT INTO pairs (programme_id, {column}, state, created_at) "  # noqa: S608
                "VALUES (?, ?, 'invited', ?)",
                (programme_id, pid, iso(utcnow())),
            )
            return int(cur2.lastrowid or 0), pid

    async def rematch(self, programme_id: int, from_pair: int, role: Role,
                      days: int = DEFAULT_INVITE_DAYS) -> tuple[int, str]:
        """Re-matching in one call: a new pair for the ``role`` of ``from_pair`` and an
        invite for the new partner. Returns (new pair id, the partner's invite code)."""
        self.check_invite_days(days)
        pair_id, _ = await self.pair_with(programme_id, from_pair, role)
        other = Role.MENTEE if role is Role.MENTOR else Role.MENTOR
        return pair_id, await self.create_invite(programme_id, other, pair_id, days)

    async def member(self, programme_id: int, pair_id: int, role: Role) -> int | None:
        """The participant in ``role``'s seat of this programme's pair, if any."""
        value = await self.db.scalar(
            f"SELECT {seat(role)} FROM pairs WHERE id=? AND programme_id=?",  # noqa: S608
            (pair_id, programme_id),
        )
        return None if value is None else int(value)

    async def closed_at(self, pair_id: int) -> datetime | None:
        value = await self.db.scalar("SELECT closed_at FROM pairs WHERE id=?", (pair_id,))
        return parse_iso(value) if value else None

    async def pairs(self, programme_id: int | None = None) -> list[Pair]:
        if programme_id is None:
            rows = await self.db.fetchall("SELECT * FROM pairs ORDER BY id")
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM pairs WHERE programme_id=? ORDER BY id", (programme_id,)
            )
        return [_pair(r) for r in rows]

    # -- invites ---------------------------------------------------------------------
    def code_hash(self, code: str) -> bytes:
        return self.vault.lookup_hash(INVITE_PURPOSE, code.strip().lower())

    @staticmethod
    def check_invite_days(days: int) -> int:
        """The invite lifetime rule; ProgrammeError says what is allowed."""
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_INVITE_DAYS:
            raise ProgrammeError(
                f"--days must be a whole number of days from 1 to {MAX_INVITE_DAYS} "
                f"(default {DEFAULT_INVITE_DAYS}), not {days}"
            )
        return days

    async def create_invite(
        self,
        programme_id: int,
        role: Role,
        pair_id: int | None = None,
        days: int = DEFAULT_INVITE_DAYS,
    ) -> str:
        self.check_invite_days(days)
        code = new_code()
        now = utcnow()
        await self.db.execute(
            "INSERT INTO invites (code_hash, programme_id, pair_id, role, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.code_hash(code),
                programme_id,
                pair_id,
                role.value,
                iso(now),
                iso(now + timedelta(days=days)),
            ),
        )
        return code

    async def find_invite(self, code: str) -> Invite | None:
        row = await self.db.fetchone(
            "SELECT id, programme_id, pair_id, role, expires_at, used_at, revoked_at, used_by "
            "FROM invites WHERE code_hash=?",
            (self.code_hash(code),),
        )
        if row is None:
            return None
        return Invite(
            row["id"],
            row["programme_id"],
            row["pair_id"],
            Role(row["role"]),
            row["expires_at"],
            row["used_at"],
            row["revoked_at"],
            row["used_by"],
        )

    async def invites(self, programme_id: int) -> list[InviteRow]:
        rows = await self.db.fetchall(
            "SELECT id, pair_id, role, created_at, expires_at, used_at, revoked_at "
            "FROM invites WHERE programme_id=? ORDER BY id",
            (programme_id,),
        )
        return [
            InviteRow(r["id"], r["pair_id"], Role(r["role"]), r["created_at"], r["expires_at"],
                      r["used_at"], r["revoked_at"])
            for r in rows
        ]

    async def revoke_invite(self, programme_id: int, invite_id: int) -> InviteRow:
        """Withdraw an unused invite; ProgrammeError when it is not this programme's or
        cannot be withdrawn (used already: the person is in, erase them instead)."""
        found = {i.id: i for i in await self.invites(programme_id)}.get(invite_id)
        if found is None:
            raise ProgrammeError(f"there is no invite {invite_id} in this programme")
        if found.used_at:
            raise ProgrammeError(f"invite {invite_id} has been used already")
        if found.revoked_at:
            raise ProgrammeError(f"invite {invite_id} is withdrawn already")
        if not await self.db.execute_count(
            "UPDATE invites SET revoked_at=? WHERE id=? AND used_at IS NULL "
            "AND revoked_at IS NULL", (iso(utcnow()), invite_id),
        ):
            raise ProgrammeError(f"invite {invite_id} was used a moment ago")
        return found

    async def reissue_invite(self, programme_id: int, invite_id: int,
                             days: int = DEFAULT_INVITE_DAYS) -> tuple[InviteRow, str]:
        """Withdraw an unused invite and make a new code for the same pair and role."""
        self.check_invite_days(days)
        old = await self.revoke_invite(programme_id, invite_id)
        code = await self.create_invite(programme_id, old.role, old.pair_id, days)
        return old, code

    # -- slowing down guessing -------------------------------------------------------
    async def locked_for(self, user_hmac: bytes) -> int:
        """Seconds this person must wait before another code is tried (0 = may try)."""
        until = await self.db.scalar(
            "SELECT locked_until FROM invite_failures WHERE user_hmac=?", (user_hmac,)
        )
        if not until:
            return 0
        remaining = (parse_iso(until) - utcnow()).total_seconds()
        return max(0, int(remaining) + 1) if remaining > 0 else 0

    async def record_failure(self, user_hmac: bytes) -> None:
        now = utcnow()
        async with self.db.transaction() as conn:
            async with conn.execute(
                "SELECT failures FROM invite_failures WHERE user_hmac=?", (user_hmac,)
            ) as cur:
                row = await cur.fetchone()
            failures = (row[0] if row else 0) + 1
            locked = None
            if failures >= MAX_FAILURES:
                step = min(failures - MAX_FAILURES, len(LOCK_MINUTES) - 1)
                locked = iso(now + timedelta(minutes=LOCK_MINUTES[step]))
            await conn.execute(
                "INSERT INTO invite_failures (user_hmac, failures, last_at, locked_until) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(user_hmac) DO UPDATE SET "
                "failures=excluded.failures, last_at=excluded.last_at, "
                "locked_until=excluded.locked_until",
                (user_hmac, failures, iso(now), locked),
            )

    async def clear_failures(self, user_hmac: bytes) -> None:
        await self.db.execute("DELETE FROM invite_failures WHERE user_hmac=?", (user_hmac,))
