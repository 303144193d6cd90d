"""Participants: keyed-hash lookup by Telegram id, encrypted chat id and name."""

from __future__ import annotations

import aiosqlite

from storage.db import Database, iso, utcnow
from storage.models import Participant, Role
from storage.vault import Vault

USER_PURPOSE = "telegram-user"


def _row(r: aiosqlite.Row) -> Participant:
    return Participant(
        id=r["id"],
        programme_id=r["programme_id"],
        role=Role(r["role"]),
        status=r["status"],
        timezone=r["timezone"],
        preferred_framework=r["preferred_framework"],
        menu_version=r["menu_version"],
        subject_ref=r["subject_ref"],
        created_at=r["created_at"],
    )


_COLUMNS = (
    "id, programme_id, role, status, timezone, preferred_framework, menu_version, "
    "subject_ref, created_at"
)


class Participants:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault
        # Lookups by Telegram id happen on every update; rows change rarely and only
        # through this class or erasure, which both invalidate.
        self._by_key: dict[bytes, Participant] = {}

    def user_key(self, telegram_user_id: int) -> bytes:
        return self.vault.lookup_hash(USER_PURPOSE, telegram_user_id)

    async def by_user(self, telegram_user_id: int) -> Participant | None:
        key = self.user_key(telegram_user_id)
        cached = self._by_key.get(key)
        if cached is not None:
            return cached
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM participants WHERE user_hmac=?",  # noqa: S608
            (key,),
        )
        if row is None:
            return None
        found = _row(row)
        self._by_key[key] = found
        return found

    def forget(self, participant_id: int) -> None:
        """Drop cached rows for a participant (after a change or erasure)."""
        for key in [k for k, p in self._by_key.items() if p.id == participant_id]:
            del self._by_key[key]

    async def get(self, participant_id: int) -> Participant | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM participants WHERE id=?",  # noqa: S608
            (participant_id,),
        )
        return None if row is None else _row(row)

    async def all(self, programme_id: int | None = None) -> list[Participant]:
        if programme_id is None:
            rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM participants ORDER BY id")  # noqa: S608
        else:
            rows = await self.db.fetchall(
                f"SELECT {_COLUMNS} FROM participants WHERE programme_id=? ORDER BY id",  # noqa: S608
                (programme_id,),
            )
        return [_row(r) for r in rows]

    async def create_in(
        self,
        conn: aiosqlite.Connection,
        *,
        programme_id: int,
        role: Role,
        telegram_user_id: int,
        chat_id: int,
        first_name: str | None,
        subject_ref: str,
        dek: bytes,
    ) -> int:
        """Insert inside the caller's transaction (onboarding claims the invite atomically).

        The data key behind ``subject_ref`` must already be committed to the key store
        (Vault.store_pending_key): this transaction writes the database file only.
        """
        cur = await conn.execute(
            "INSERT INTO participants (programme_id, role, user_hmac, subject_ref, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                programme_id,
                role.value,
                self.user_key(telegram_user_id),
                subject_ref,
                iso(utcnow()),
            ),
        )
        pid = int(cur.lastrowid)
        self.vault.remember(pid, dek)
        chat_ct = await self.vault.encrypt(pid, "participants", pid, "chat_id", chat_id)
        name_ct = await self.vault.encrypt(pid, "participants", pid, "name", first_name or "")
        await conn.execute(
            "UPDATE participants SET chat_ct=?, name_ct=? WHERE id=?", (chat_ct, name_ct, pid)
        )
        return pid

    async def chat_id(self, participant_id: int) -> int | None:
        blob = await self.db.scalar(
            "SELECT chat_ct FROM participants WHERE id=?", (participant_id,)
        )
        if blob is None:
            return None
        return int(
            await self.vault.decrypt(
                participant_id, "participants", participant_id, "chat_id", blob
            )
        )

    async def name(self, participant_id: int) -> str:
        blob = await self.db.scalar(
            "SELECT name_ct FROM participants WHERE id=?", (participant_id,)
        )
        if blob is None:
            return ""
        return str(
            await self.vault.decrypt(participant_id, "participants", participant_id, "name", blob)
        )

    async def update_chat(self, participant_id: int, chat_id: int) -> None:
        blob = await self.vault.encrypt(
            participant_id, "participants", participant_id, "chat_id", chat_id
        )
        await self.db.execute(
            "UPDATE participants SET chat_ct=? WHERE id=?", (blob, participant_id)
        )

    async def set_field(self, participant_id: int, column: str, value: object) -> None:
        if column not in {"status", "timezone", "preferred_framework", "menu_version"}:
            raise ValueError(f"not a settable participant column: {column}")
        await self.db.execute(
            f"UPDATE participants SET {column}=? WHERE id=?",  # noqa: S608
            (value, participant_id),
        )
        self.forget(participant_id)
