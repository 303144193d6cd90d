"""The reminders queue: the table every scheduled nudge lives in, and each send's record.

A row's life: ``pending`` (with ``due_at``, the earliest it may go) → claimed (``claimed_at``
set and ``attempts`` counted, just before the Bot API call) → ``sent`` / ``skipped``, or back
to pending with a later ``due_at`` when a send failed for a passing reason. ``dedupe_key`` is
UNIQUE, so scheduling the same reminder twice (a restart, a re-run planner, an edited log)
inserts it once.

A claim is a lease. SQLite is one process: a claim still set when a sweep reads the row was
left by a process that stopped mid-send, and is taken again at once. On PostgreSQL several
processes sweep the same table (issue #20): a claim set by one of them keeps the row from
the others until it is ``SEND_LEASE`` old, so each reminder is sent by exactly one process,
and the rows of a process killed mid-send go out again once their lease has run out. Both
are the same portable statements with a different lease.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import aiosqlite

from storage.db import Database, iso, parse_iso
from storage.store import Store

# From claim to outcome a live process takes seconds (its pacer lets at most a window's
# worth of sends wait for the shared send rate), or a few Telegram retry_after waits.
SEND_LEASE = {"sqlite": timedelta(0), "postgresql": timedelta(minutes=3)}


class Kind(StrEnum):
    REFLECTION = "reflection"  # to the mentee, after the mentor logs a session
    QUIET_PAIR = "quiet_pair"  # to both, after a long gap without contact
    WAVE = "wave"  # a wave check-in on its date
    SIX_MONTH = "six_month"  # the six-month (or end-of-extension) check, to both
    CHEMISTRY = "chemistry"  # to coordinators: no chemistry meeting weeks after matching


@dataclass(frozen=True)
class NewReminder:
    kind: Kind
    participant_id: int
    pair_id: int | None
    due_at: datetime
    key: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reminder:
    id: int
    kind: Kind
    participant_id: int
    pair_id: int | None
    due_at: datetime
    status: str
    attempts: int
    claimed_at: datetime | None
    sent_at: datetime | None
    reason: str | None
    acted: str | None
    snoozes: int
    detail: dict[str, Any]
    dedupe_key: str
    created_at: datetime

    @property
    def root_key(self) -> str:
        """The key of the reminder this one was snoozed from (its own key if none)."""
        return self.dedupe_key.split("#", 1)[0]


def _when(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


def _row(r: aiosqlite.Row) -> Reminder:
    return Reminder(
        id=r["id"],
        kind=Kind(r["kind"]),
        participant_id=r["participant_id"],
        pair_id=r["pair_id"],
        due_at=parse_iso(r["due_at"]),
        status=r["status"],
        attempts=r["attempts"],
        claimed_at=_when(r["claimed_at"]),
        sent_at=_when(r["sent_at"]),
        reason=r["reason"],
        acted=r["acted"],
        snoozes=r["snoozes"],
        detail=json.loads(r["detail"]),
        dedupe_key=r["dedupe_key"],
        created_at=parse_iso(r["created_at"]),
    )


def _marks(ids: Sequence[int]) -> str:
    return ",".join("?" * len(ids))


class ReminderStore:
    def __init__(self, store: Store) -> None:
        self.db: Database = store.db
        self.lease = SEND_LEASE.get(self.db.dialect, SEND_LEASE["postgresql"])
        # erasure clears reminders, quiet hours and pair events: storage.personal_data

    # -- scheduling --------------------------------------------------------------------
    async def schedule(self, item: NewReminder, now: datetime) -> int | None:
        """Insert unless the key exists; the new row's id, or None if it was already there."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(self._INSERT, self._values(item, now))
            return int(cur.lastrowid) if cur.rowcount == 1 else None

    async def schedule_many(self, items: Iterable[NewReminder], now: datetime) -> int:
        rows = [self._values(i, now) for i in items]
        if not rows:
            return 0
        async with self.db.transaction() as conn:
            before = conn.total_changes
            await conn.executemany(self._INSERT, rows)
            return conn.total_changes - before

    _INSERT = (
        "INSERT OR IGNORE INTO reminders (kind, participant_id, pair_id, due_at, detail, "
        "dedupe_key, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)"
    )

    @staticmethod
    def _values(item: NewReminder, now: datetime) -> tuple[Any, ...]:
        return (
            item.kind.value,
            item.participant_id,
            item.pair_id,
            iso(item.due_at),
            json.dumps(item.detail, sort_keys=True),
            item.key,
            iso(now),
            iso(now),
        )

    # -- reading -----------------------------------------------------------------------
    async def get(self, reminder_id: int) -> Reminder | None:
        row = await self.db.fetchone("SELECT * FROM reminders WHERE id=?", (reminder_id,))
        return None if row is None else _row(row)

    async def by_key(self, key: str) -> Reminder | None:
        row = await self.db.fetchone("SELECT * FROM reminders WHERE dedupe_key=?", (key,))
        return None if row is None else _row(row)

    async def of(self, participant_id: int) -> list[Reminder]:
        rows = await self.db.fetchall(
            "SELECT * FROM reminders WHERE participant_id=? ORDER BY due_at, id",
            (participant_id,),
        )
        return [_row(r) for r in rows]

    async def due(self, now: datetime, limit: int = 10_000) -> list[Reminder]:
        rows = await self.db.fetchall(
            "SELECT * FROM reminders WHERE status='pending' AND due_at <= ? "
            "AND (claimed_at IS NULL OR claimed_at <= ?) ORDER BY due_at, id LIMIT ?",
            (iso(now), iso(now - self.lease), limit),
        )
        return [_row(r) for r in rows]

    async def pending(self, kinds: Iterable[Kind] | None = None) -> list[Reminder]:
        if kinds is None:
            rows = await self.db.fetchall("SELECT * FROM reminders WHERE status='pending'")
        else:
            wanted = [k.value for k in kinds]
            rows = await self.db.fetchall(
                f"SELECT * FROM reminders WHERE status='pending' AND kind IN ({_marks(wanted)})",  # noqa: S608
                wanted,
            )
        return [_row(r) for r in rows]

    async def next_due(self) -> datetime | None:
        value = await self.db.scalar("SELECT MIN(due_at) FROM reminders WHERE status='pending'")
        return _when(value)

    async def interrupted(self) -> int:
        """Rows claimed for sending whose outcome was never written (the process stopped)."""
        return int(
            await self.db.scalar(
                "SELECT COUNT(*) FROM reminders WHERE status='pending' AND claimed_at IS NOT NULL"
            )
        )

    async def counts(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT status, COUNT(*) FROM reminders GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}

    async def last_sent(
        self, participant_ids: Sequence[int], since: datetime
    ) -> dict[int, datetime]:
        if not participant_ids:
            return {}
        rows = await self.db.fetchall(
            "SELECT participant_id, MAX(sent_at) FROM reminders WHERE status='sent' "  # noqa: S608
            f"AND sent_at > ? AND participant_id IN ({_marks(participant_ids)}) "
            "GROUP BY participant_id",
            (iso(since), *participant_ids),
        )
        return {int(r[0]): parse_iso(r[1]) for r in rows}

    async def last_blocked(self, participant_id: int) -> datetime | None:
        return _when(
            await self.db.scalar(
                "SELECT MAX(updated_at) FROM reminders "
                "WHERE participant_id=? AND reason='blocked'",
                (participant_id,),
            )
        )

    async def busy_since(self, participant_ids: Sequence[int]) -> dict[int, datetime]:
        """When each person last moved in a conversation (an open flow or history page)."""
        if not participant_ids:
            return {}
        rows = await self.db.fetchall(
            "SELECT participant_id, updated_at FROM conversation_state "  # noqa: S608
            f"WHERE participant_id IN ({_marks(participant_ids)})",
            tuple(participant_ids),
        )
        return {int(r[0]): parse_iso(r[1]) for r in rows}

    async def reflected_since(self, participant_id: int, since: datetime) -> bool:
        found = await self.db.scalar(
            "SELECT 1 FROM entries WHERE participant_id=? AND status='complete' "
            "AND flow IN ('grow', 'oskar') AND completed_at >= ? LIMIT 1",
            (participant_id, iso(since)),
        )
        return found is not None

    # -- sending -----------------------------------------------------------------------
    async def claim(self, ids: Sequence[int], now: datetime) -> list[int]:
        """Mark rows as being sent; only rows still pending and not under another claim's
        lease are claimed (see the module's docstring). On PostgreSQL a second claimer's
        UPDATE waits for the first's commit and then finds the row claimed."""
        claimed = []
        cutoff = iso(now - self.lease)
        async with self.db.transaction() as conn:
            for rid in ids:
                cur = await conn.execute(
                    "UPDATE reminders SET attempts=attempts+1, claimed_at=?, updated_at=? "
                    "WHERE id=? AND status='pending' AND (claimed_at IS NULL OR claimed_at <= ?)",
                    (iso(now), iso(now), rid, cutoff),
                )
                if cur.rowcount == 1:
                    claimed.append(rid)
        return claimed

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        await self._set(
            ids, "status='sent', sent_at=?, claimed_at=NULL, reason=NULL", (iso(now),), now
        )

    async def skip(self, ids: Sequence[int], reason: str, now: datetime) -> None:
        await self._set(ids, "status='skipped', claimed_at=NULL, reason=?", (reason,), now)

    async def cancel(self, ids: Sequence[int], reason: str, now: datetime) -> None:
        await self._set(
            ids, "status='cancelled', claimed_at=NULL, reason=?", (reason,), now, pending=True
        )

    async def defer(self, ids: Sequence[int], until: datetime, reason: str, now: datetime) -> None:
        await self._set(
            ids, "due_at=?, claimed_at=NULL, reason=?", (iso(until), reason), now, pending=True
        )

    async def cancel_where(
        self,
        now: datetime,
        reason: str,
        *,
        pair_id: int | None = None,
        participant_id: int | None = None,
        kinds: Iterable[Kind] = (),
        key: str | None = None,
    ) -> int:
        clauses, params = ["status='pending'"], []
        if pair_id is not None:
            clauses.append("pair_id=?")
            params.append(pair_id)
        if participant_id is not None:
            clauses.append("participant_id=?")
            params.append(participant_id)
        wanted = [k.value for k in kinds]
        if wanted:
            clauses.append(f"kind IN ({_marks(wanted)})")
            params.extend(wanted)
        if key is not None:
            clauses.append("(dedupe_key=? OR dedupe_key LIKE ?)")
            params.extend((key, key + "#%"))
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE reminders SET status='cancelled', claimed_at=NULL, reason=?, "  # noqa: S608
                "updated_at=? WHERE " + " AND ".join(clauses),
                (reason, iso(now), *params),
            )
            return cur.rowcount

    async def _set(
        self,
        ids: Sequence[int],
        assignments: str,
        params: tuple[Any, ...],
        now: datetime,
        pending: bool = False,
    ) -> None:
        if not ids:
            return
        only = " AND status='pending'" if pending else ""
        await self.db.execute(
            f"UPDATE reminders SET {assignments}, updated_at=? "  # noqa: S608
            f"WHERE id IN ({_marks(ids)}){only}",
            (*params, iso(now), *ids),
        )

    # -- people pressing buttons -------------------------------------------------------
    async def snooze(
        self, reminder_id: int, participant_id: int, until: datetime, now: datetime
    ) -> int | None:
        """A later copy of a sent reminder; None when it was already acted on or isn't theirs."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE reminders SET acted='snoozed', updated_at=? WHERE id=? "
                "AND participant_id=? AND status='sent' AND acted IS NULL",
                (iso(now), reminder_id, participant_id),
            )
            if cur.rowcount != 1:
                return None
            async with conn.execute("SELECT * FROM reminders WHERE id=?", (reminder_id,)) as c:
                row = await c.fetchone()
            assert row is not None
            source = _row(row)
            cur = await conn.execute(
                "INSERT OR IGNORE INTO reminders (kind, participant_id, pair_id, due_at, detail, "
                "dedupe_key, created_at, updated_at, snoozes) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    source.kind.value,
                    participant_id,
                    source.pair_id,
                    iso(until),
                    json.dumps(source.detail, sort_keys=True),
                    f"{source.root_key}#z{source.snoozes + 1}",
                    iso(now),
                    iso(now),
                    source.snoozes + 1,
                ),
            )
            return int(cur.lastrowid) if cur.rowcount == 1 else None

    async def act(self, reminder_id: int, participant_id: int, action: str, now: datetime) -> bool:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE reminders SET acted=?, updated_at=? WHERE id=? AND participant_id=? "
                "AND status='sent' AND acted IS NULL",
                (action, iso(now), reminder_id, participant_id),
            )
            return cur.rowcount == 1

    # -- a person's own quiet hours ----------------------------------------------------
    async def quiet_hours(self, participant_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        if not participant_ids:
            return {}
        rows = await self.db.fetchall(
            "SELECT participant_id, quiet_start, quiet_end FROM reminder_prefs "  # noqa: S608
            f"WHERE participant_id IN ({_marks(participant_ids)})",
            tuple(participant_ids),
        )
        return {int(r[0]): (r[1], r[2]) for r in rows}

    async def set_quiet_hours(
        self, participant_id: int, start: str, end: str, now: datetime
    ) -> None:
        await self.db.execute(
            "INSERT INTO reminder_prefs (participant_id, quiet_start, quiet_end, updated_at) "
            "VALUES (?,?,?,?) ON CONFLICT(participant_id) DO UPDATE SET "
            "quiet_start=excluded.quiet_start, quiet_end=excluded.quiet_end, "
            "updated_at=excluded.updated_at",
            (participant_id, start, end, iso(now)),
        )

    async def clear_quiet_hours(self, participant_id: int) -> None:
        await self.db.execute(
            "DELETE FROM reminder_prefs WHERE participant_id=?", (participant_id,)
        )

    # -- facts the planner reads about people and pairs ---------------------------------
    async def unreachable(self) -> dict[bytes, int]:
        """Account lookup hash -> a membership id of everyone marked unreachable."""
        rows = await self.db.fetchall(
            "SELECT p.id, a.user_hmac FROM participants p JOIN accounts a "
            "ON a.id = p.account_id WHERE p.status='unreachable'"
        )
        return {bytes(r["user_hmac"]): int(r["id"]) for r in rows}

    async def user_key(self, participant_id: int) -> bytes | None:
        row = await self.db.fetchone(
            "SELECT a.user_hmac FROM participants p JOIN accounts a ON a.id = p.account_id "
            "WHERE p.id=?", (participant_id,)
        )
        return bytes(row[0]) if row is not None else None

    async def waves_done(self) -> dict[tuple[int, int | None], set[str]]:
        """The waves each participant has a complete check-in for, per pair (check-ins
        count per relationship)."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT participant_id, pair_id, wave FROM entries "
            "WHERE status='complete' AND wave IS NOT NULL"
        )
        out: dict[tuple[int, int | None], set[str]] = {}
        for r in rows:
            out.setdefault((int(r[0]), r[1]), set()).add(str(r[2]))
        return out

    async def closed_pairs(self) -> dict[int, datetime]:
        rows = await self.db.fetchall(
            "SELECT id, closed_at FROM pairs WHERE closed_at IS NOT NULL"
        )
        return {int(r[0]): datetime.fromisoformat(r[1]) for r in rows}
