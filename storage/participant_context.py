"""Participant context ("for whom"): the optional answers about a person's role and how
they came to the programme, each sealed with the person's own data key.

The answers are choice ids from the ``about_you`` flow (staff group, band, ...), never free
text. Reading them for a report is the reports' business and goes through
:meth:`ParticipantContext.of_many`, which callers give only the people whose current consent
allows ``evaluation`` (reports.extract); nothing here decides consent.
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.db import Database, iso, utcnow
from storage.vault import ErasedError, Vault

TABLE = "participant_context"
ASKED = "asked"  # the marker row: the questions were put to the person (asked once)
FIELD = "answer"


class ParticipantContext:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault

    async def asked(self, participant_id: int) -> bool:
        return bool(await self.db.scalar(
            "SELECT 1 FROM participant_context WHERE participant_id=? AND question=?",
            (participant_id, ASKED)))

    async def mark_asked(self, participant_id: int) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO participant_context (participant_id, question, answer_ct, "
            "updated_at) VALUES (?, ?, NULL, ?)", (participant_id, ASKED, iso(utcnow())))

    async def save(self, participant_id: int, question: str, answer: str) -> None:
        if question == ASKED:
            raise ValueError("'asked' is the marker row, not a question")
        blob = await self.vault.encrypt(participant_id, TABLE, question, FIELD, answer)
        await self.db.execute(
            "INSERT INTO participant_context (participant_id, question, answer_ct, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(participant_id, question) DO UPDATE SET "
            "answer_ct=excluded.answer_ct, updated_at=excluded.updated_at",
            (participant_id, question, blob, iso(utcnow())))

    async def save_many(self, answers: Iterable[tuple[int, str, str]]) -> None:
        """Many people's answers at once, each marked asked (synthetic cohorts for the
        benchmarks, written as the chat would leave them), in one transaction."""
        now = iso(utcnow())
        rows: list[tuple[int, str, bytes | None, str]] = []
        for pid, question, answer in answers:
            rows.append((pid, question,
                         await self.vault.encrypt(pid, TABLE, question, FIELD, answer), now))
        for pid in sorted({r[0] for r in rows}):
            rows.append((pid, ASKED, None, now))
        await self.db.executemany(
            "INSERT INTO participant_context (participant_id, question, answer_ct, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(participant_id, question) DO UPDATE SET "
            "answer_ct=excluded.answer_ct, updated_at=excluded.updated_at", rows)

    async def clear(self, participant_id: int, question: str) -> None:
        """A question skipped after all (/back, then /skip): nothing of it is kept."""
        await self.db.execute(
            "DELETE FROM participant_context WHERE participant_id=? AND question=? "
            "AND question<>?", (participant_id, question, ASKED))

    async def of(self, participant_id: int) -> dict[str, str]:
        """The person's answers, by question (decrypted: for the person and the report)."""
        rows = await self.db.fetchall(
            "SELECT question, answer_ct FROM participant_context WHERE participant_id=? "
            "AND answer_ct IS NOT NULL ORDER BY question", (participant_id,))
        return {r["question"]: str(await self.vault.decrypt(
            participant_id, TABLE, r["question"], FIELD, r["answer_ct"])) for r in rows}

    async def of_many(self, participant_ids: Iterable[int]) -> dict[int, dict[str, str]]:
        """Answers of these people (the caller has applied the consent rule), read in one
        query. A person whose key is gone (erased) has none."""
        wanted = set(participant_ids)
        out: dict[int, dict[str, str]] = {}
        if not wanted:
            return out
        rows = await self.db.fetchall(
            "SELECT participant_id, question, answer_ct FROM participant_context "
            "WHERE answer_ct IS NOT NULL ORDER BY participant_id, question")
        for r in rows:
            pid = int(r["participant_id"])
            if pid not in wanted:
                continue
            try:
                value = await self.vault.decrypt(pid, TABLE, r["question"], FIELD,
                                                 r["answer_ct"])
            except ErasedError:
                continue
            out.setdefault(pid, {})[r["question"]] = str(value)
        return out
