"""Writing a whole cohort at once (synthetic programmes for demos and benchmarks).

The chat writes one answer at a time through :class:`storage.entries.Entries`; a synthetic
programme of 100,000 entries would take minutes that way. :class:`CohortWriter` takes plain
people, consent decisions and entries, encrypts them as the bot would (each person's own data
key, the same associated data), and writes them in one transaction per batch with their
tamper-evidence MACs: the result is indistinguishable, to every reader, from what the bot
stores.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from storage.crypto import Cipher, aad, cipher, seal
from storage.db import iso, utcnow
from storage.entries import SAFETY_FIELD, answer_row
from storage.models import Role, Scope
from storage.store import Store

_RISK = {True: b'{"risk":true}', False: b'{"risk":false}'}


def _answer_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class CohortWriter:
    """Collects a batch of people, pairs and entries; :meth:`flush` writes it."""

    def __init__(self, store: Store, next_pid: int, next_entry: int) -> None:
        self.store = store
        self._next_pid = next_pid
        self._next_entry = next_entry
        self._ciphers: dict[int, Cipher] = {}
        self._clear()

    @classmethod
    async def start(cls, store: Store) -> CohortWriter:
        db = store.db
        next_pid = int(await db.scalar("SELECT COALESCE(MAX(id), 0) FROM participants")) + 1
        next_entry = int(await db.scalar("SELECT COALESCE(MAX(id), 0) FROM entries")) + 1
        return cls(store, next_pid, next_entry)

    def _clear(self) -> None:
        self._keys: list[tuple[Any, ...]] = []
        self._people: list[tuple[Any, ...]] = []
        self._accounts: list[tuple[Any, ...]] = []
        self._pairs: list[tuple[Any, ...]] = []
        self._ledger: list[tuple[Any, ...]] = []
        self._entries: list[tuple[Any, ...]] = []
        self._answers: list[tuple[Any, ...]] = []
        self._codes: list[tuple[Any, ...]] = []

    @property
    def next_pid(self) -> int:
        """The id the next :meth:`person` gets."""
        return self._next_pid

    @property
    def pending_entries(self) -> int:
        return len(self._entries)

    def person(self, programme_id: int, role: Role, telegram_user_id: int, created_at: str,
               consents: Iterable[tuple[Scope, bool]], *, version: str | None = None,
               source: str = "synthetic") -> int:
        """A participant with a fresh data key and their consent decisions; their id."""
        vault = self.store.vault
        pid = self._next_pid
        self._next_pid += 1
        dek, wrapped, subject_ref = vault.new_participant_key()
        vault.remember(pid, dek)
        self._ciphers[pid] = cipher(dek)
        self._keys.append((subject_ref, wrapped.blob, wrapped.kek_id, iso(utcnow())))
        key = self.store.participants.user_key(telegram_user_id)
        # the account (one per Telegram user, found again for a further membership) and
        # the membership, with a placeholder in the old lookup column, as the bot writes it
        self._accounts.append((key, created_at))
        self._people.append((pid, programme_id, role.value, secrets.token_bytes(32),
                             subject_ref, created_at, key))
        version = version or self.store.consent.current_version
        for scope, granted in consents:
            self._ledger.append((pid, subject_ref, scope.value, version, int(granted), source,
                                 created_at))
        return pid

    def match(self, pair_id: int, mentor_id: int, mentee_id: int, matched_at: str) -> None:
        self._pairs.append((mentor_id, mentee_id, matched_at, pair_id))

    def entry(self, participant_id: int, pair_id: int | None, flow: str, at: str,
              answers: Mapping[str, Any], *, verdicts: Mapping[str, bool] | None = None,
              judged_by: str | None = None, codes: tuple[str, Any] | None = None,
              flow_version: str = "1") -> int:
        """A complete entry with its answers (and, as the bot stores them, a safety verdict
        per answer and the rule codes as (coder, codes)); its id."""
        prepared = self._ciphers[participant_id]
        eid = self._next_entry
        self._next_entry += 1
        self._entries.append((eid, participant_id, pair_id, flow, flow_version, "complete", "{}",
                              at, at, at))
        for step, value in answers.items():
            row = answer_row(eid, step)
            blob = seal(prepared, _answer_bytes(value),
                        aad("answers", row, participant_id, "value"))
            verdict = None
            if verdicts is not None:
                verdict = seal(prepared, _RISK[verdicts[step]],
                               aad("answers", row, participant_id, SAFETY_FIELD))
            self._answers.append((eid, step, blob, at, verdict,
                                  judged_by if verdicts is not None else None))
        if codes is not None:
            coder, found = codes
            plaintext = json.dumps(found, separators=(",", ":")).encode()
            self._codes.append((eid, coder, seal(prepared, plaintext,
                                                 aad("entry_codes", eid, participant_id,
                                                     "codes"))))
        return eid

    async def flush(self) -> None:
        """Write what was collected, in one transaction, signed like the bot's own rows."""
        store = self.store
        async with store.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO keys.data_keys (subject_ref, wrapped, kek_id, created_at) "
                "VALUES (?, ?, ?, ?)",
                self._keys,
            )
            await conn.executemany(
                "INSERT INTO accounts (user_hmac, created_at) VALUES (?, ?) "
                "ON CONFLICT(user_hmac) DO NOTHING",
                self._accounts,
            )
            await conn.executemany(
                "INSERT INTO participants (id, programme_id, role, user_hmac, subject_ref, "
                "created_at, account_id) "
                "VALUES (?, ?, ?, ?, ?, ?, (SELECT id FROM accounts WHERE user_hmac=?))",
                self._people,
            )
            await conn.execute(
                "UPDATE accounts SET in_use = (SELECT MIN(p.id) FROM participants p "
                "WHERE p.account_id = accounts.id) WHERE in_use IS NULL")
            await conn.executemany(
                "UPDATE pairs SET mentor_id=?, mentee_id=?, state='matched', matched_at=? "
                "WHERE id=?",
                self._pairs,
            )
            await conn.executemany(
                "INSERT INTO consent_ledger (participant_id, subject_ref, scope, version, "
                "granted, source, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                self._ledger,
            )
            await conn.executemany(
                "INSERT INTO entries (id, participant_id, pair_id, flow, flow_version, status, "
                "consent_snapshot, created_at, updated_at, completed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._entries,
            )
            await conn.executemany(
                "INSERT INTO answers (entry_id, step_id, value_ct, answered_at, safety_ct, "
                "safety_rule) VALUES (?, ?, ?, ?, ?, ?)",
                self._answers,
            )
            # after the answers: writing an answer drops its entry's codes
            await conn.executemany(
                "INSERT INTO entry_codes (entry_id, coder, codes_ct) VALUES (?, ?, ?)",
                self._codes,
            )
            # rows this writer wrote get their MACs like the bot's own (storage.integrity)
            await store.integrity.sign_unsigned(conn)
        self._clear()
