"""The one place where personal data is encrypted, decrypted and looked up by keyed hash."""

from __future__ import annotations

import json
import secrets
from typing import Any

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
from storage.db import Database

LOOKUP_KEY = "lookup"


class ErasedError(Exception):
    """The participant's data key is gone: their data can no longer be read."""


class Vault:
    def __init__(self, db: Database, ring: KeyRing) -> None:
        self.db = db
        self.ring = ring
        self._deks: dict[int, bytes] = {}
        self._lookup: bytes | None = None

    async def load(self) -> None:
        self._lookup = await self.system_key(LOOKUP_KEY)

    async def system_key(self, name: str) -> bytes:
        """Deployment-wide secrets, created on first use and wrapped by the master key."""
        row = await self.db.fetchone(
            "SELECT wrapped, kek_id FROM system_keys WHERE name=?", (name,)
        )
        if row is None:
            key = generate_key()
            wrapped = self.ring.wrap(key, f"system:{name}")
            await self.db.execute(
                "INSERT OR IGNORE INTO system_keys (name, wrapped, kek_id) VALUES (?, ?, ?)",
                (name, wrapped.blob, wrapped.kek_id),
            )
            row = await self.db.fetchone(
                "SELECT wrapped, kek_id FROM system_keys WHERE name=?", (name,)
            )
            assert row is not None
        return self.ring.unwrap(WrappedKey(row["wrapped"], row["kek_id"]), f"system:{name}")

    def lookup_hash(self, purpose: str, value: str | int) -> bytes:
        if self._lookup is None:
            raise RuntimeError("vault not loaded")
        return keyed_hash(self._lookup, purpose, str(value))

    def new_participant_key(self) -> tuple[bytes, WrappedKey, str]:
        subject_ref = "S-" + secrets.token_hex(8)
        dek = generate_key()
        return dek, self.ring.wrap(dek, subject_ref), subject_ref

    def remember(self, participant_id: int, dek: bytes) -> None:
        self._deks[participant_id] = dek

    def forget(self, participant_id: int) -> None:
        self._deks.pop(participant_id, None)

    async def dek(self, participant_id: int) -> bytes:
        cached = self._deks.get(participant_id)
        if cached is not None:
            return cached
        row = await self.db.fetchone(
            "SELECT wrapped_dek, kek_id, subject_ref FROM participants WHERE id=?",
            (participant_id,),
        )
        if row is None:
            raise ErasedError("no data key for this participant")
        dek = self.ring.unwrap(WrappedKey(row["wrapped_dek"], row["kek_id"]), row["subject_ref"])
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
        return json.loads(plaintext)

    def decrypt_with(
        self, dek: bytes, participant_id: int, table: str, row: str | int, field: str, blob: bytes
    ) -> Any:
        """Synchronous decryption for bulk readers that already hold the data key."""
        return json.loads(open_sealed(dek, blob, aad(table, row, participant_id, field)))

    async def rotate(self, new_ring: KeyRing) -> int:
        """Re-wrap every data key and system key under ``new_ring``; returns keys re-wrapped.

        Runs as one transaction, so a crash leaves either all old or all new wrappings, and
        readers with the old key keep working until the commit.
        """
        count = 0
        async with self.db.transaction() as conn:
            async with conn.execute(
                "SELECT id, wrapped_dek, kek_id, subject_ref FROM participants"
            ) as cur:
                rows = list(await cur.fetchall())
            for row in rows:
                dek = self.ring.unwrap(
                    WrappedKey(row["wrapped_dek"], row["kek_id"]), row["subject_ref"]
                )
                wrapped = new_ring.wrap(dek, row["subject_ref"])
                await conn.execute(
                    "UPDATE participants SET wrapped_dek=?, kek_id=? WHERE id=?",
                    (wrapped.blob, wrapped.kek_id, row["id"]),
                )
                count += 1
            async with conn.execute("SELECT name, wrapped, kek_id FROM system_keys") as cur:
                rows = list(await cur.fetchall())
            for row in rows:
                key = self.ring.unwrap(
                    WrappedKey(row["wrapped"], row["kek_id"]), f"system:{row['name']}"
                )
                wrapped = new_ring.wrap(key, f"system:{row['name']}")
                await conn.execute(
                    "UPDATE system_keys SET wrapped=?, kek_id=? WHERE name=?",
                    (wrapped.blob, wrapped.kek_id, row["name"]),
                )
                count += 1
        self.ring = new_ring
        return count


__all__ = ["DecryptionError", "ErasedError", "MasterKeyError", "Vault"]
