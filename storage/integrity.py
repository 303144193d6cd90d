"""Tamper evidence for what is not encrypted: consent decisions and entry status.

Answers, names and safety verdicts are AES-GCM ciphertext bound to their row, so a change or
a swap fails to open. Consent-ledger rows and an entry's status (draft, complete, discarded)
are plain columns the bot must query, so someone with write access to the database file could
forge a "yes" or mark a draft complete. Each such row therefore carries an HMAC-SHA256 under
the deployment's integrity key, a system key in the key store wrapped by the master key
(rotated with it), over the row's id and every column that decides who is read:

- consent_ledger.mac: id, participant, subject reference, scope, version, granted, source, at;
- entries.status_mac: id, participant, status.

Every bulk reader checks every row before reading anything (:meth:`Integrity.check`, called
by the consent rule's bulk entry point); a failure stops the job with :class:`TamperError`
naming the row. ``mentorbot doctor`` runs the same check (:func:`problems`).

What it does not catch: deleting the newest ledger rows of a person (their earlier decision
then stands again) or deleting whole entries. Rows are authenticated one by one, not chained.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from typing import Any

from storage.db import Database, iso, utcnow

INTEGRITY_KEY = "integrity"  # the system key's name in keys.system_keys
SIGNED_MARKER = "integrity_signed"

CONSENT_COLUMNS = "id, participant_id, subject_ref, scope, version, granted, source, at, mac"
CONSENT_ROWS = f"SELECT {CONSENT_COLUMNS} FROM consent_ledger ORDER BY id"  # noqa: S608
ENTRY_ROWS = "SELECT id, participant_id, status, status_mac FROM entries ORDER BY id"


class TamperError(Exception):
    """A row fails its integrity check: the database was changed outside mentorbot."""


def _mac(key: bytes, parts: Sequence[Any]) -> bytes:
    return hmac.new(key, json.dumps(list(parts), separators=(",", ":")).encode(),
                    hashlib.sha256).digest()


def consent_mac(key: bytes, row: Sequence[Any]) -> bytes:
    """MAC of a ledger row given in CONSENT_COLUMNS order (the mac itself excluded)."""
    row_id, participant, ref, scope, version, granted, source, at = row[:8]
    return _mac(key, ("consent_ledger", row_id, participant, ref, scope, version,
                      int(granted), source, at))


def status_mac(key: bytes, entry_id: int, participant_id: int, status: str) -> bytes:
    return _mac(key, ("entries", entry_id, participant_id, status))


def _valid(expected: bytes, stored: Any) -> bool:
    return stored is not None and hmac.compare_digest(expected, bytes(stored))


def problems(key: bytes, consent_rows: Iterable[Sequence[Any]],
             entry_rows: Iterable[Sequence[Any]], limit: int = 3) -> tuple[int, list[str]]:
    """(how many rows fail, the first ``limit`` of them in words). Rows in the column order
    of CONSENT_ROWS and ENTRY_ROWS. Row numbers only: nothing a person wrote."""
    failed, named = 0, []
    for row in consent_rows:
        if not _valid(consent_mac(key, row), row[8]):
            failed += 1
            if len(named) < limit:
                named.append(f"consent ledger row {row[0]}")
    for entry_id, participant_id, status, stored in entry_rows:
        if not _valid(status_mac(key, entry_id, participant_id, status), stored):
            failed += 1
            if len(named) < limit:
                named.append(f"the status of entry {entry_id}")
    return failed, named


def describe(failed: int, named: list[str]) -> str:
    more = f" and {failed - len(named)} more" if failed > len(named) else ""
    return (f"{', '.join(named)}{more} failed the integrity check: the database was "
            "changed outside mentorbot (a forged or altered consent decision or entry status)")


FIX = ("stop, keep a copy of the database as it is for investigation, and restore the "
       "latest good backup (mentorbot restore; on PostgreSQL pg_restore or point-in-time "
       "recovery); mentorbot doctor lists what fails")


class Integrity:
    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self.key = key
        self._verified: tuple[int, int] | None = None  # (data_version, total_changes)

    def consent(self, row: Sequence[Any]) -> bytes:
        return consent_mac(self.key, row)

    def status(self, entry_id: int, participant_id: int, status: str) -> bytes:
        return status_mac(self.key, entry_id, participant_id, status)

    async def check(self) -> None:
        """Raise TamperError naming the first failing rows, if any row fails.

        Skipped when nothing has been written since the last clean check: SQLite's
        data_version moves with every commit by another connection (another process, an
        attacker's sqlite3), total_changes with every write of this one.
        """
        stamp = (int(await self.db.scalar("PRAGMA data_version")),
                 int(self.db.conn.total_changes))
        if stamp == self._verified:
            return
        failed, named = problems(self.key, await self.db.fetchall(CONSENT_ROWS),
                                 await self.db.fetchall(ENTRY_ROWS))
        if failed:
            raise TamperError(f"{describe(failed, named)}. To fix: {FIX}.")
        self._verified = stamp

    async def sign_unsigned(self, conn: Any) -> int:
        """Sign every row without a MAC, inside the caller's transaction. Only for rows
        mentorbot itself wrote: legacy rows (below) and bulk writers (reports.synthetic)."""
        async with conn.execute(CONSENT_ROWS.replace(" ORDER BY", " WHERE mac IS NULL "
                                                     "ORDER BY")) as cur:
            consent = list(await cur.fetchall())
        await conn.executemany("UPDATE consent_ledger SET mac=? WHERE id=?",
                               [(self.consent(r), r[0]) for r in consent])
        async with conn.execute(ENTRY_ROWS.replace(" ORDER BY", " WHERE status_mac IS NULL "
                                                   "ORDER BY")) as cur:
            entries = list(await cur.fetchall())
        await conn.executemany("UPDATE entries SET status_mac=? WHERE id=?",
                               [(self.status(r[0], r[1], r[2]), r[0]) for r in entries])
        return len(consent) + len(entries)

    async def sign_consent_row(self, conn: Any, row_id: int) -> None:
        """Sign one ledger row just inserted in the caller's transaction."""
        async with conn.execute(CONSENT_ROWS.replace(" ORDER BY id", " WHERE id=?"),
                                (row_id,)) as cur:
            row = await cur.fetchone()
        await conn.execute("UPDATE consent_ledger SET mac=? WHERE id=?",
                           (self.consent(row), row_id))

    async def sign_legacy(self) -> int:
        """Once per key store: sign the rows written before tamper evidence existed. The
        marker in the key store says it was done; after it, an unsigned row is a forgery
        (the database alone cannot be trusted to say which rows are old)."""
        if await self.db.scalar("SELECT 1 FROM keys.markers WHERE name=?", (SIGNED_MARKER,)):
            return 0
        async with self.db.transaction() as conn:
            count = await self.sign_unsigned(conn)
            await conn.execute("INSERT OR IGNORE INTO keys.markers (name, at) VALUES (?, ?)",
                               (SIGNED_MARKER, iso(utcnow())))
        return count
