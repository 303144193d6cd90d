"""Participants: one row per *membership* (a programme and a role, with its pair links),
grouped under an account (one Telegram user, found by the keyed hash of their id).

Since migration 015 an account may hold several memberships: several programmes, or mentor
in one pair and mentee in another. Each membership keeps its own data key, chat id and first
name (encrypted under that key), entries and consent; the account holds the lookup hash,
the time zone and which membership is in use (the one the chat's menu and flows follow).
"""

from __future__ import annotations

import secrets

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
        account_id=r["account_id"],
    )


_NAMES = ("id", "programme_id", "role", "status", "timezone", "preferred_framework",
          "menu_version", "subject_ref", "created_at", "account_id")
_COLUMNS = ", ".join(_NAMES)
_P_COLUMNS = ", ".join(f"p.{n}" for n in _NAMES)
# What a person sets once for all their memberships (kept on every membership row too, so
# readers of one membership need no join).
ACCOUNT_WIDE = frozenset({"status", "timezone"})
# Preference tables kept alike on every membership of an account (set on all of them at
# once; a new membership copies them): the person's own quiet hours and chat tidying.
SHARED_PREFS = {"reminder_prefs": ("quiet_start", "quiet_end", "updated_at"),
                "chat_prefs": ("tidy_chat", "updated_at")}


class Participants:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault
        # Lookups by Telegram id happen on every update; rows change rarely and only
        # through this class or erasure, which both invalidate. On PostgreSQL another
        # process may change them (issue #20): there every lookup reads the database.
        self._by_key: dict[bytes, Participant] = {}
        self._cache = db.dialect == "sqlite"

    def user_key(self, telegram_user_id: int) -> bytes:
        return self.vault.lookup_hash(USER_PURPOSE, telegram_user_id)

    async def by_user(self, telegram_user_id: int) -> Participant | None:
        """The membership in use of this Telegram user's account (else their first)."""
        key = self.user_key(telegram_user_id)
        cached = self._by_key.get(key) if self._cache else None
        if cached is not None:
            return cached
        row = await self.db.fetchone(
            f"SELECT {_P_COLUMNS} FROM accounts a JOIN participants p ON p.account_id = a.id "  # noqa: S608
            "WHERE a.user_hmac=? ORDER BY CASE WHEN p.id = a.in_use THEN 0 ELSE 1 END, p.id "
            "LIMIT 1",
            (key,),
        )
        if row is None:
            return None
        found = _row(row)
        if self._cache:
            self._by_key[key] = found
        return found

    async def by_user_account(self, me: Participant) -> Participant | None:
        """The membership now in use of ``me``'s account: after an erasure of ``me``, one
        of the others, or None when none is left."""
        if me.account_id is None:
            return await self.get(me.id)
        row = await self.db.fetchone(
            f"SELECT {_P_COLUMNS} FROM accounts a JOIN participants p ON p.account_id = a.id "  # noqa: S608
            "WHERE a.id=? ORDER BY CASE WHEN p.id = a.in_use THEN 0 ELSE 1 END, p.id LIMIT 1",
            (me.account_id,),
        )
        return None if row is None else _row(row)

    async def memberships(self, me: Participant) -> list[Participant]:
        """Every membership of this person's account, oldest first (``me`` among them)."""
        if me.account_id is None:
            return [me]
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM participants WHERE account_id=? ORDER BY id",  # noqa: S608
            (me.account_id,),
        )
        return [_row(r) for r in rows] or [me]

    async def membership_counts(self) -> dict[int, int]:
        """Memberships per account id (a reminder names the programme only for someone
        in several)."""
        rows = await self.db.fetchall(
            "SELECT account_id, COUNT(*) FROM participants WHERE account_id IS NOT NULL "
            "GROUP BY account_id")
        return {int(r[0]): int(r[1]) for r in rows}

    async def membership_of(self, telegram_user_id: int,
                            participant_id: int) -> Participant | None:
        """That membership, if it belongs to this Telegram user (a reminder's button is
        answered by the membership it was sent for, whichever is in use)."""
        row = await self.db.fetchone(
            f"SELECT {_P_COLUMNS} FROM accounts a JOIN participants p ON p.account_id = a.id "  # noqa: S608
            "WHERE a.user_hmac=? AND p.id=?",
            (self.user_key(telegram_user_id), participant_id),
        )
        return None if row is None else _row(row)

    async def use(self, me: Participant) -> Participant:
        """Make this membership the one in use for its account; returns it fresh."""
        if me.account_id is not None:
            await self.db.execute("UPDATE accounts SET in_use=? WHERE id=?",
                                  (me.id, me.account_id))
        self._forget_account(me.account_id)
        return await self.get(me.id) or me

    async def in_use(self) -> list[Participant]:
        """The membership in use of every account (whose menu the chat shows)."""
        rows = await self.db.fetchall(
            f"SELECT {_P_COLUMNS} FROM participants p JOIN accounts a ON a.id = p.account_id "  # noqa: S608
            "WHERE p.id = COALESCE(a.in_use, "
            "(SELECT MIN(q.id) FROM participants q WHERE q.account_id = a.id)) ORDER BY p.id"
        )
        return [_row(r) for r in rows]

    def forget(self, participant_id: int) -> None:
        """Drop cached rows for a participant (after a change or erasure)."""
        for key in [k for k, p in self._by_key.items() if p.id == participant_id]:
            del self._by_key[key]

    def forget_all(self) -> None:
        self._by_key.clear()

    def _forget_account(self, account_id: int | None) -> None:
        for key in [k for k, p in self._by_key.items() if p.account_id == account_id]:
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
        take_use: bool = True,
    ) -> int:
        """Insert a membership inside the caller's transaction (onboarding claims the invite
        atomically), under the person's account, created with their first membership.

        A further membership starts with what the person set for all of them (ACCOUNT_WIDE
        and SHARED_PREFS): the time zone, a pause, their own quiet hours, chat tidying. It
        becomes the one in use unless ``take_use`` is False (a join held for approval: the
        account's first membership is in use all the same).

        The data key behind ``subject_ref`` must already be committed to the key store
        (Vault.store_pending_key): this transaction writes the database file only.
        """
        key = self.user_key(telegram_user_id)
        now = iso(utcnow())
        async with conn.execute(
            "SELECT id, timezone FROM accounts WHERE user_hmac=?", (key,)
        ) as c:
            account = await c.fetchone()
        if account is None:
            cur = await conn.execute(
                "INSERT INTO accounts (user_hmac, created_at) VALUES (?, ?)", (key, now))
            account_id, timezone = int(cur.lastrowid), "Europe/London"
        else:
            account_id, timezone = int(account[0]), str(account[1])
        # participants.user_hmac is no longer the lookup key (accounts.user_hmac is) but
        # keeps its UNIQUE constraint: a random placeholder that links to nothing.
        cur = await conn.execute(
            "INSERT INTO participants (programme_id, role, user_hmac, subject_ref, created_at, "
            "account_id, timezone) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (programme_id, role.value, secrets.token_bytes(32), subject_ref, now, account_id,
             timezone),
        )
        pid = int(cur.lastrowid)
        if account is not None:
            await self._inherit(conn, pid, account_id)
        if take_use or account is None:
            # the newest membership is the one in use: its welcome and consent come next
            await conn.execute("UPDATE accounts SET in_use=? WHERE id=?", (pid, account_id))
        self._forget_account(account_id)
        self.vault.remember(pid, dek)
        chat_ct = await self.vault.encrypt(pid, "participants", pid, "chat_id", chat_id)
        name_ct = await self.vault.encrypt(pid, "participants", pid, "name", first_name or "")
        await conn.execute(
            "UPDATE participants SET chat_ct=?, name_ct=? WHERE id=?", (chat_ct, name_ct, pid)
        )
        return pid

    @staticmethod
    async def _inherit(conn: aiosqlite.Connection, pid: int, account_id: int) -> None:
        """Copy the account's person-wide settings onto its new membership ``pid`` from the
        account's newest other membership (they are kept the same on all of them)."""
        async with conn.execute(
            "SELECT id, status FROM participants WHERE account_id=? AND id<>? "
            "ORDER BY id DESC LIMIT 1", (account_id, pid)) as c:
            sibling = await c.fetchone()
        if sibling is None:
            return
        if sibling[1] == "paused":  # unreachable is about the chat, found out by sending
            await conn.execute("UPDATE participants SET status='paused' WHERE id=?", (pid,))
        for table, columns in SHARED_PREFS.items():
            names = ", ".join(columns)
            await conn.execute(
                f"INSERT INTO {table} (participant_id, {names}) "  # noqa: S608
                f"SELECT ?, {names} FROM {table} WHERE participant_id=?", (pid, sibling[0]))

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
        if column not in ACCOUNT_WIDE:
            await self.db.execute(
                f"UPDATE participants SET {column}=? WHERE id=?",  # noqa: S608
                (value, participant_id),
            )
            self.forget(participant_id)
            return
        # A time zone, a pause or a blocked chat is the person's, whatever the membership:
        # every membership of the account changes with it (and the account's time zone,
        # which a new membership starts from).
        async with self.db.transaction() as conn:
            await conn.execute(
                f"UPDATE participants SET {column}=? WHERE id=? OR account_id IN "  # noqa: S608
                "(SELECT account_id FROM participants WHERE id=? AND account_id IS NOT NULL)",
                (value, participant_id, participant_id),
            )
            if column == "timezone":
                await conn.execute(
                    "UPDATE accounts SET timezone=? WHERE id IN "
                    "(SELECT account_id FROM participants WHERE id=?)",
                    (value, participant_id),
                )
        account = await self.db.scalar(
            "SELECT account_id FROM participants WHERE id=?", (participant_id,))
        self.forget(participant_id)
        self._forget_account(account)
