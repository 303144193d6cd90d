"""The one place where personal data is encrypted, decrypted and looked up by keyed hash."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.crypto import (
    DecryptionError,
    KeyRing,
    MasterKeyError,
    WrappedKey,
    aad,
    generate_key,
    keyed_hash,
    open_sealed,
    seal,
)
from storage.db import Database, iso, utcnow
from storage.integrity import INTEGRITY_KEY

LOOKUP_KEY = "lookup"
ERASED_PURPOSE = "erased-subject"
# A join writes its key, then its participant row, within well under a second; a pending
# key older than this belongs to a join that crashed.
PENDING_GRACE = timedelta(minutes=10)


def _decode(plaintext: bytes) -> Any:
    # orjson reads the bulk jobs' hundreds of thousands of values several times faster; a value
    # only the standard library reads (NaN, which json.dumps writes) still opens.
    try:
        return orjson.loads(plaintext)
    except orjson.JSONDecodeError:
        return json.loads(plaintext)


def open_value(
    dek: bytes | AESGCM, participant_id: int, table: str, row: str | int, field: str, blob: bytes
) -> Any:
    """A stored value opened with a key the caller already holds (bulk readers, workers)."""
    return _decode(open_sealed(dek, blob, aad(table, row, participant_id, field)))


class SystemSealer:
    """Values sealed with a deployment-wide system key, bound to their table, row and field
    (not to a person: the key is no participant's). Made by :meth:`Vault.sealer`."""

    def __init__(self, key: bytes, table: str, field: str) -> None:
        self._key = key
        self.table = table
        self.field = field

    def seal(self, row: str | int, value: Any) -> bytes:
        plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        return seal(self._key, plaintext, aad(self.table, row, 0, self.field))

    def open(self, row: str | int, blob: bytes) -> Any:
        return _decode(open_sealed(self._key, blob, aad(self.table, row, 0, self.field)))


class ErasedError(Exception):
    """The participant's data key is gone: their data can no longer be read."""


class Vault:
    def __init__(self, db: Database, ring: KeyRing) -> None:
        self.db = db
        self.ring = ring
        self._deks: dict[int, bytes] = {}
        self._lookup: bytes | None = None
        self.integrity_key = b""  # set by load

    async def load(self) -> None:
        self._lookup = await self.system_key(LOOKUP_KEY)
        self.integrity_key = await self.system_key(INTEGRITY_KEY)

    async def system_key(self, name: str) -> bytes:
        """Deployment-wide secrets, created on first use and wrapped by the master key."""
        sql = "SELECT wrapped, kek_id FROM keys.system_keys WHERE name=?"
        row = await self.db.fetchone(sql, (name,))
        if row is None:
            key = generate_key()
            wrapped = self.ring.wrap(key, f"system:{name}")
            await self.db.execute(
                "INSERT OR IGNORE INTO keys.system_keys (name, wrapped, kek_id) VALUES (?, ?, ?)",
                (name, wrapped.blob, wrapped.kek_id),
            )
            row = await self.db.fetchone(sql, (name,))
            assert row is not None
        return self.ring.unwrap(WrappedKey(row["wrapped"], row["kek_id"]), f"system:{name}")

    async def sealer(self, name: str, table: str, field: str) -> SystemSealer:
        """A sealer under the system key ``name`` (created on first use)."""
        return SystemSealer(await self.system_key(name), table, field)

    def lookup_hash(self, purpose: str, value: str | int) -> bytes:
        if self._lookup is None:
            raise RuntimeError("vault not loaded")
        return keyed_hash(self._lookup, purpose, str(value))

    def new_participant_key(self) -> tuple[bytes, WrappedKey, str]:
        subject_ref = "S-" + secrets.token_hex(8)
        dek = generate_key()
        return dek, self.ring.wrap(dek, subject_ref), subject_ref

    async def store_pending_key(self, subject_ref: str, wrapped: WrappedKey) -> None:
        """Commit a joining person's key, on its own, before their participant row exists.

        The database and the key store are two files and SQLite commits them separately, so
        the key goes first: a crash before the participant commit leaves a pending key (no
        use to anyone, removed by sweep_pending), never a participant without a key.
        """
        await self.db.execute(
            "INSERT INTO keys.data_keys (subject_ref, wrapped, kek_id, created_at, pending) "
            "VALUES (?, ?, ?, ?, 1)",
            (subject_ref, wrapped.blob, wrapped.kek_id, iso(utcnow())),
        )

    async def settle_key(self, subject_ref: str) -> None:
        """The participant row is committed: the key is no longer pending."""
        await self.db.execute(
            "UPDATE keys.data_keys SET pending=0 WHERE subject_ref=?", (subject_ref,)
        )

    async def drop_pending_key(self, subject_ref: str) -> None:
        await self.db.execute(
            "DELETE FROM keys.data_keys WHERE subject_ref=? AND pending=1", (subject_ref,)
        )

    async def sweep_pending(self, older_than: timedelta = PENDING_GRACE) -> int:
        """Settle pending keys whose participant was committed, and delete the others once
        they are older than any join still in flight (another process may be mid-join)."""
        # two statements: on PostgreSQL the key store is another database, out of a join's
        # reach
        pending = await self.db.fetchall("SELECT subject_ref FROM keys.data_keys WHERE pending=1")
        if pending:
            refs = {r[0] for r in pending}
            joined = [(r[0],) for r in await self.db.fetchall(
                "SELECT subject_ref FROM participants") if r[0] in refs]
            if joined:
                await self.db.executemany(
                    "UPDATE keys.data_keys SET pending=0 WHERE subject_ref=?", joined)
        return await self.db.execute_count(
            "DELETE FROM keys.data_keys WHERE pending=1 AND created_at <= ?",
            (iso(utcnow() - older_than),),
        )

    def erasure_hash(self, subject_ref: str) -> bytes:
        return self.lookup_hash(ERASED_PURPOSE, subject_ref)

    async def shred(self, subject_ref: str) -> int:
        """Destroy a data key and record the erasure, in one key store transaction:
        everything sealed with the key, anywhere, becomes unreadable, and whatever rows of
        the person a database backup brings back are found and deleted (erased_hashes)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM keys.data_keys WHERE subject_ref=?", (subject_ref,)
            )
            count = cur.rowcount
            await conn.execute(
                "INSERT OR IGNORE INTO keys.erasures (ref_hash, erased_at) VALUES (?, ?)",
                (self.erasure_hash(subject_ref), iso(utcnow())),
            )
        await self.db.conn.execute("PRAGMA keys.wal_checkpoint(TRUNCATE)")
        return count

    async def erased_hashes(self) -> set[bytes]:
        rows = await self.db.fetchall("SELECT ref_hash FROM keys.erasures")
        return {bytes(r[0]) for r in rows}

    def remember(self, participant_id: int, dek: bytes) -> None:
        self._deks[participant_id] = dek

    def forget(self, participant_id: int) -> None:
        self._deks.pop(participant_id, None)

    async def dek(self, participant_id: int) -> bytes:
        cached = self._deks.get(participant_id)
        if cached is not None:
            return cached
        # two reads, not a join: on PostgreSQL the key store is another database
        subject = await self.db.scalar(
            "SELECT subject_ref FROM participants WHERE id=?", (participant_id,))
        row = None if subject is None else await self.db.fetchone(
            "SELECT wrapped, kek_id FROM keys.data_keys WHERE subject_ref=?", (subject,))
        if row is None:
            raise ErasedError("no data key for this participant")
        dek = self.ring.unwrap(WrappedKey(row["wrapped"], row["kek_id"]), subject)
        self._deks[participant_id] = dek
        return dek

    async def encrypt(
        self, participant_id: int, table: str, row: str | int, field: str, value: Any
    ) -> bytes:
        plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        return seal(
            await self.dek(participant_id), plaintext, aad(table, row, participant_id, field)
        )

    async def decrypt(
        self, participant_id: int, table: str, row: str | int, field: str, blob: bytes
    ) -> Any:
        plaintext = open_sealed(
            await self.dek(participant_id), blob, aad(table, row, participant_id, field)
        )
        return _decode(plaintext)

    def decrypt_with(
        self,
        dek: bytes | AESGCM,
        participant_id: int,
        table: str,
        row: str | int,
        field: str,
        blob: bytes,
    ) -> Any:
        """Synchronous decryption for bulk readers that already hold the (prepared) key."""
        return open_value(dek, participant_id, table, row, field, blob)

    async def rotate(self, new_ring: KeyRing) -> int:
        """Re-wrap every data key and system key under ``new_ring``; returns keys re-wrapped.

        One transaction on the key store, so a crash leaves either all old or all new
        wrappings; the database itself is not touched, so the bot keeps running.
        """
        count = 0
        async with self.db.transaction() as conn:
            for table, key_col, subject in (
                ("data_keys", "subject_ref", "{}"),
                ("system_keys", "name", "system:{}"),
            ):
                async with conn.execute(
                    f"SELECT {key_col} AS k, wrapped, kek_id FROM keys.{table}"  # noqa: S608
                ) as cur:
                    rows = list(await cur.fetchall())
                for row in rows:
                    aad_subject = subject.format(row["k"])
                    key = self.ring.unwrap(WrappedKey(row["wrapped"], row["kek_id"]), aad_subject)
                    wrapped = new_ring.wrap(key, aad_subject)
                    await conn.execute(
                        f"UPDATE keys.{table} SET wrapped=?, kek_id=? "  # noqa: S608
                        f"WHERE {key_col}=?",
                        (wrapped.blob, wrapped.kek_id, row["k"]),
                    )
                    count += 1
        self.ring = new_ring
        return count


__all__ = ["DecryptionError", "ErasedError", "MasterKeyError", "Vault"]
