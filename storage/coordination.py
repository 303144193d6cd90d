"""What several bot processes on one PostgreSQL database share (issue #20).

SQLite is one process by design (``storage.lock`` keeps a second bot out), so there
:class:`LocalCoordination` does nothing: the process's own asyncio locks, limiter and
sweep are the whole story. On PostgreSQL two or more ``mentorbot run --webhook`` processes
serve one programme behind one URL, and :class:`PgCoordination` gives them:

- **a chat's turn** (:meth:`PgCoordination.try_turn`): a session advisory lock per chat,
  keyed by a keyed hash of the chat id (``Vault.lookup_hash``; never the Telegram id
  itself), taken on a connection of its own. Only one process handles a chat at a time;
  the server drops the lock when a process dies. Updates that reached any process are
  recorded on arrival in ``chat_arrivals`` (update id, the chat's keyed hash, the server's
  clock, the recording connection's server process), and a chat's turn goes to its oldest
  waiting update, so two processes never take a chat's updates out of order. The same row
  is the shared de-duplication: a copy of an update another live process holds is dropped;
  one whose holder died (its server process is gone), or that has waited longer than
  ``ARRIVAL_LEASE``, neither holds up the chat nor keeps a copy out. Handled updates leave
  the table; the conversation state's ``last_update_id`` catches a copy that comes after
  that, as on SQLite.
- **an acknowledged update is recorded** (:meth:`PgCoordination.record`): behind the
  webhook an update's arrival row is written with the update itself, sealed with a system
  key of the vault (``INBOX_KEY``; it holds what a person typed), before the HTTP 200 that
  tells Telegram it has been delivered. Until the update has been handled the row stays; if
  its holder dies first, a live process adopts it (:meth:`PgCoordination.adopt`, every
  process looks about once a second, and at start-up) and handles it, so a SIGKILL loses no
  acknowledged update. Such an arrival keeps holding the chat's newer updates back while its
  holder is dead (for ``ARRIVAL_LEASE`` from its arrival or adoption), so the chat's order
  holds through a takeover too.
- **send slots** (:meth:`PgCoordination.send_slot`): Telegram's bot-wide limit is shared
  by the processes, not granted to each. One row holds the next free moment on the server's
  clock; each message takes the next one (1/rate apart) in one statement and waits until
  it, so every process together stays under the rate without polling. A 429's
  ``retry_after`` moves the row on for every process (:meth:`hold_sends`).
- **one-off claims** (:meth:`PgCoordination.claim`): a weekly digest (or any job that runs
  in every process) is done by the process whose claim row goes in first; a claim not
  marked done within its lease can be taken over, so a killed claimer loses nothing.

Running bots against key rotation is ``storage.lock``'s (an advisory lock there too).

The tables are PostgreSQL's own and are created under the migration lock. They hold update
ids, keyed hashes, times and schedule ids; the one exception is a recorded update's body,
sealed, and only until it has been handled (seconds; at most ``INBOX_KEEP`` if no process
ever comes back). Nothing here logs.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from storage.db import Database

ARRIVAL_LEASE = 30.0  # seconds an arrival holds its place before others may go past it
INBOX_KEY = "update-inbox"  # the vault's system key that seals an acknowledged update
INBOX_KEEP = 86400.0  # Telegram keeps an update for 24 hours; an unhandled one no longer
CLAIM_LEASE = 300.0  # seconds a one-off claim (a digest) holds before another may take it

_SCHEMA = (
    # the server's clock in seconds: one clock for every process's leases and slots
    "CREATE OR REPLACE FUNCTION mentorbot_now() RETURNS double precision LANGUAGE sql "
    "VOLATILE AS 'SELECT extract(epoch from clock_timestamp())'",
    # an arrival's holder is the server process of the coordination connection that
    # recorded it: once that has gone (its bot process died), the arrival holds nobody up
    "CREATE OR REPLACE FUNCTION mentorbot_alive(holder int) RETURNS boolean LANGUAGE sql "
    "STABLE AS 'SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = holder)'",
    "CREATE TABLE IF NOT EXISTS chat_arrivals (update_id BIGINT PRIMARY KEY, "
    "chat_key BIGINT NOT NULL, arrived_at DOUBLE PRECISION NOT NULL, holder INT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS chat_arrivals_chat ON chat_arrivals (chat_key, update_id)",
    # the acknowledged update itself, sealed (record): NULL for an arrival the processor
    # recorded (polling, tests), which nobody adopts
    "ALTER TABLE chat_arrivals ADD COLUMN IF NOT EXISTS body BYTEA",
    "CREATE TABLE IF NOT EXISTS send_slots (name TEXT PRIMARY KEY, "
    "next_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS job_claims (name TEXT NOT NULL, period TEXT NOT NULL, "
    "claimed_at DOUBLE PRECISION NOT NULL, done BIGINT NOT NULL DEFAULT 0, "
    "PRIMARY KEY (name, period))",
)


class LocalCoordination:
    """SQLite: one process; nothing to share."""

    shared = False

    async def arrive(self, chat_key: int, update_id: int) -> bool:
        return True

    async def record(self, chat_key: int, update_id: int, update: dict[str, Any]) -> bool:
        return True

    async def adopt(self) -> list[tuple[int, dict[str, Any]]]:
        return []

    async def drop(self, update_id: int) -> None:
        return None

    async def try_turn(self, chat_key: int, update_id: int | None = None) -> bool:
        return True

    async def end_turn(self, chat_key: int, update_id: int | None = None) -> None:
        return None

    async def send_slot(self, name: str = "telegram", rate: float = 30.0) -> float:
        return 0.0

    async def hold_sends(self, seconds: float, name: str = "telegram") -> None:
        return None

    async def claim(self, name: str, period: str, lease: float = CLAIM_LEASE) -> bool:
        return True

    async def done(self, name: str, period: str) -> None:
        return None

    async def close(self) -> None:
        return None


class PgCoordination:
    """PostgreSQL: see the module's docstring. One connection of its own, autocommit."""

    shared = True

    def __init__(self, conn: Any, inbox: Any = None) -> None:
        self.conn = conn
        self._held: set[int] = set()
        self._inbox = inbox  # storage.vault.SystemSealer of recorded updates

    @classmethod
    async def open(cls, url: str, vault: Any = None) -> PgCoordination:
        from storage.pg import MIGRATION_LOCK, _connect

        conn = await _connect(url, "database")
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                for sql in _SCHEMA:
                    await conn.execute(sql)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        inbox = None if vault is None else await vault.sealer(INBOX_KEY, "chat_arrivals",
                                                              "body")
        made = cls(conn, inbox)
        await made.forget_arrivals()  # what killed processes left; a start-up clears it
        return made

    async def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        async with self.conn.cursor() as cur:
            await cur.execute(sql, params)
            return await cur.fetchone()

    # -- a chat's turn -----------------------------------------------------------------
    async def arrive(self, chat_key: int, update_id: int) -> bool:
        """Record an update's arrival; False if another live process already holds it."""
        row = await self._one(
            "INSERT INTO chat_arrivals (update_id, chat_key, arrived_at, holder) "
            "VALUES (%s, %s, mentorbot_now(), pg_backend_pid()) ON CONFLICT (update_id) "
            "DO UPDATE SET arrived_at = EXCLUDED.arrived_at, holder = EXCLUDED.holder "
            "WHERE chat_arrivals.arrived_at < EXCLUDED.arrived_at - %s "
            "OR NOT mentorbot_alive(chat_arrivals.holder) RETURNING 1",
            (update_id, chat_key, ARRIVAL_LEASE))
        return row is not None

    def _seal(self, update_id: int, update: dict[str, Any]) -> bytes:
        if self._inbox is None:
            raise RuntimeError("coordination opened without the vault: nothing to seal with")
        return self._inbox.seal(update_id, update)

    def _open(self, update_id: int, blob: bytes) -> dict[str, Any]:
        assert self._inbox is not None
        value = self._inbox.open(update_id, bytes(blob))
        return value if isinstance(value, dict) else {}

    async def record(self, chat_key: int, update_id: int, update: dict[str, Any]) -> bool:
        """Record an update's arrival with the update itself, sealed, before it is
        acknowledged: a process that dies before handling it leaves it for another to
        adopt. True if this process now holds it (new, or taken over from a dead holder);
        False if a live process already holds it (a copy: recorded all the same)."""
        row = await self._one(
            "INSERT INTO chat_arrivals (update_id, chat_key, arrived_at, holder, body) "
            "VALUES (%s, %s, mentorbot_now(), pg_backend_pid(), %s) ON CONFLICT (update_id) "
            "DO UPDATE SET arrived_at = EXCLUDED.arrived_at, holder = EXCLUDED.holder, "
            "body = EXCLUDED.body WHERE chat_arrivals.arrived_at < EXCLUDED.arrived_at - %s "
            "OR NOT mentorbot_alive(chat_arrivals.holder) RETURNING 1",
            (update_id, chat_key, self._seal(update_id, update), ARRIVAL_LEASE))
        return row is not None

    async def adopt(self) -> list[tuple[int, dict[str, Any]]]:
        """The recorded, unhandled updates whose holder has died, now this process's,
        oldest first, opened."""
        async with self.conn.cursor() as cur:
            await cur.execute(
                "UPDATE chat_arrivals SET holder = pg_backend_pid(), arrived_at = mentorbot_now() "
                "WHERE body IS NOT NULL AND NOT mentorbot_alive(holder) "
                "RETURNING update_id, body")
            rows = await cur.fetchall()
        return [(int(uid), self._open(int(uid), body)) for uid, body in sorted(rows)]

    async def drop(self, update_id: int) -> None:
        """An update that will not be handled (the flood gate dropped it): forgotten."""
        await self._one("WITH gone AS (DELETE FROM chat_arrivals WHERE update_id = %s) "
                        "SELECT 1", (update_id,))

    async def try_turn(self, chat_key: int, update_id: int | None = None) -> bool:
        """Take the chat's turn across processes if it is free and no older update of the
        chat (recorded by :meth:`arrive`, in any process) is waiting; False to try again.
        Callers serialise a chat within their process (bot.processor) and do not hold
        that while they wait, so an older update in the same process can go first."""
        # CASE evaluates in order: the lock is only taken when no older update waits
        row = await self._one(
            "SELECT CASE WHEN %s::bigint IS NOT NULL AND EXISTS (SELECT 1 FROM "
            "chat_arrivals a WHERE a.chat_key = %s AND a.update_id < %s AND a.arrived_at > "
            "mentorbot_now() - %s AND (a.body IS NOT NULL OR mentorbot_alive(a.holder))) "
            "THEN 0 WHEN pg_try_advisory_lock(%s) THEN 1 ELSE 0 END",
            (update_id, chat_key, update_id, ARRIVAL_LEASE, chat_key))
        return bool(row[0] == 1)

    async def end_turn(self, chat_key: int, update_id: int | None = None) -> None:
        """The chat's turn given back and its update forgotten (it has been handled)."""
        await self._release(chat_key, update_id)

    async def _release(self, chat_key: int, update_id: int | None) -> None:
        # cancelled or failed, the lock must still go (it would otherwise live as long as
        # the process); shielded so a cancellation cannot stop halfway
        async def release() -> None:
            if update_id is None:
                await self._one("SELECT pg_advisory_unlock(%s)", (chat_key,))
            else:
                await self._one(
                    "WITH gone AS (DELETE FROM chat_arrivals WHERE update_id = %s) "
                    "SELECT pg_advisory_unlock(%s)", (update_id, chat_key))

        await asyncio.shield(release())

    async def forget_arrivals(self, older_than: float = 3600.0) -> int:
        """Arrivals a killed process left behind (they stopped counting after the lease);
        a recorded, unhandled update only once Telegram itself would have given it up."""
        async with self.conn.cursor() as cur:
            await cur.execute("DELETE FROM chat_arrivals WHERE arrived_at < mentorbot_now() - %s "
                              "AND (body IS NULL OR arrived_at < mentorbot_now() - %s)",
                              (older_than, INBOX_KEEP))
            return max(0, cur.rowcount)

    # -- send slots --------------------------------------------------------------------
    async def send_slot(self, name: str = "telegram", rate: float = 30.0) -> float:
        """Seconds to wait before sending, the slot taken for this process."""
        step = 1.0 / rate
        row = await self._one(
            "INSERT INTO send_slots AS s (name, next_at) VALUES (%s, mentorbot_now() + %s) "
            "ON CONFLICT (name) DO UPDATE SET next_at = GREATEST(s.next_at, mentorbot_now()) + %s "
            "RETURNING next_at - %s - mentorbot_now()",
            (name, step, step, step))
        return max(0.0, float(row[0]))

    async def hold_sends(self, seconds: float, name: str = "telegram") -> None:
        """Telegram said wait: no process's next slot comes before then."""
        await self._one(
            "INSERT INTO send_slots AS s (name, next_at) VALUES (%s, mentorbot_now() + %s) "
            "ON CONFLICT (name) DO UPDATE SET next_at = GREATEST(s.next_at, mentorbot_now() + %s) "
            "RETURNING 1", (name, seconds, seconds))

    # -- one-off claims ----------------------------------------------------------------
    async def claim(self, name: str, period: str, lease: float = CLAIM_LEASE) -> bool:
        """True for exactly one process per (name, period), or for a taker-over once the
        claim is older than ``lease`` and not done."""
        row = await self._one(
            "INSERT INTO job_claims AS c (name, period, claimed_at) "
            "VALUES (%s, %s, mentorbot_now()) ON CONFLICT (name, period) DO UPDATE "
            "SET claimed_at = EXCLUDED.claimed_at "
            "WHERE c.done = 0 AND c.claimed_at < EXCLUDED.claimed_at - %s RETURNING 1",
            (name, period, lease))
        return row is not None

    async def done(self, name: str, period: str) -> None:
        await self._one("UPDATE job_claims SET done = 1 WHERE name = %s AND period = %s "
                        "RETURNING 1", (name, period))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.conn.close()


async def open_for(db: Database, vault: Any = None) -> LocalCoordination | PgCoordination:
    """The coordination for ``db``: shared on PostgreSQL, local on SQLite. ``vault``
    (storage.vault.Vault) seals recorded updates."""
    if db.dialect != "postgresql":
        return LocalCoordination()
    return await PgCoordination.open(str(db.url), vault)  # type: ignore[attr-defined]


def chat_key(digest: bytes) -> int:
    """An advisory lock key from a keyed hash (``Vault.lookup_hash``): a signed 64-bit int."""
    return int.from_bytes(digest[:8], "big", signed=True)
