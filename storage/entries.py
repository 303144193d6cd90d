"""Entries and their answers, each answer encrypted and written the moment it is given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

from storage.crypto import DecryptionError
from storage.db import Database, iso, utcnow
from storage.integrity import Integrity
from storage.models import Entry
from storage.vault import ErasedError, Vault

SAFETY_FIELD = "safety"  # the associated data's field name of an answer's verdict
LEGACY_RULE = "legacy"  # flags written before verdicts were encrypted (migration 005)


def _entry(r: aiosqlite.Row) -> Entry:
    return Entry(
        r["id"],
        r["participant_id"],
        r["pair_id"],
        r["flow"],
        r["flow_version"],
        r["status"],
        r["created_at"],
        r["updated_at"],
        r["completed_at"],
        r["wave"] if "wave" in r.keys() else None,  # noqa: SIM118
    )


def answer_row(entry_id: int, step_id: str) -> str:
    return f"{entry_id}:{step_id}"


# The one write of an entry's codes: only for a complete entry of that participant, only when
# no answer was written after the codes' texts were read (``as_of``).
_SAVE_CODES = (
    "INSERT INTO entry_codes (entry_id, coder, codes_ct) SELECT ?, ?, ? WHERE EXISTS "
    "(SELECT 1 FROM entries WHERE id=? AND participant_id=? AND status='complete') "
    "AND NOT EXISTS (SELECT 1 FROM answers WHERE entry_id=? AND answered_at > ?) "
    "ON CONFLICT(entry_id) DO UPDATE SET coder=excluded.coder, codes_ct=excluded.codes_ct"
)


class Entries:
    def __init__(self, db: Database, vault: Vault, integrity: Integrity) -> None:
        self.db = db
        self.vault = vault
        self.integrity = integrity
        # Each person's place in a flow, as last written by this process, where it is the
        # only writer (SQLite). On PostgreSQL another process may have moved the person on
        # since (issue #20): the place is read from the database every time.
        self._states: dict[int, tuple[dict[str, Any], str] | None] = {}
        self._cache = db.dialect == "sqlite"

    async def create(
        self,
        participant_id: int,
        pair_id: int | None,
        flow: str,
        flow_version: str,
        consent_snapshot: str,
        wave: str | None = None,
    ) -> int:
        now = iso(utcnow())
        async with self.db.transaction() as conn:  # the row and its status MAC, one commit
            cur = await conn.execute(
                "INSERT INTO entries (participant_id, pair_id, flow, flow_version, status, "
                "consent_snapshot, created_at, updated_at, wave) "
                "VALUES (?, ?, ?, ?, 'draft', ?, ?, ?, ?)",
                (participant_id, pair_id, flow, flow_version, consent_snapshot, now, now, wave),
            )
            entry_id = int(cur.lastrowid or 0)
            await conn.execute("UPDATE entries SET status_mac=? WHERE id=?",
                               (self.integrity.status(entry_id, participant_id, "draft"),
                                entry_id))
        return entry_id

    async def flagged_steps(self, participant_id: int, entry_id: int) -> set[str]:
        """Steps of the writer's own entry whose answer the safety rule flagged: never coded,
        quoted or shown to anyone else. A verdict that cannot be opened counts as a flag."""
        rows = await self.db.fetchall(
            "SELECT a.step_id, a.safety_ct FROM answers a JOIN entries e ON e.id = a.entry_id "
            "WHERE a.entry_id=? AND e.participant_id=? AND a.safety_ct IS NOT NULL",
            (entry_id, participant_id),
        )
        out = set()
        for r in rows:
            if await self._verdict(participant_id, entry_id, r["step_id"], r["safety_ct"]):
                out.add(r["step_id"])
        return out

    async def _verdict(self, participant_id: int, entry_id: int, step_id: str,
                       blob: bytes) -> bool:
        try:
            value = await self.vault.decrypt(participant_id, "answers",
                                             answer_row(entry_id, step_id), SAFETY_FIELD, blob)
        except (DecryptionError, ErasedError):
            return True  # a damaged or moved verdict never lets an answer out
        return bool(value.get("risk", True)) if isinstance(value, dict) else True

    async def set_safety(self, participant_id: int, entry_id: int, step_id: str, risk: bool,
                         rule: str) -> bool:
        """Store a new verdict on one answer (``mentorbot recode``); False if the answer is
        gone or not the writer's."""
        blob = await self.vault.encrypt(participant_id, "answers",
                                        answer_row(entry_id, step_id), SAFETY_FIELD,
                                        {"risk": bool(risk)})
        return await self.db.execute_count(
            "UPDATE answers SET safety_ct=?, safety_rule=? WHERE entry_id=? AND step_id=? "
            "AND entry_id IN (SELECT id FROM entries WHERE participant_id=?)",
            (blob, rule, entry_id, step_id, participant_id),
        ) == 1

    async def unjudged(self, rule: str) -> int:
        """Answers whose verdict is missing or came from another version of the rule."""
        return int(await self.db.scalar(
            "SELECT COUNT(*) FROM answers WHERE safety_rule IS NULL OR safety_rule != ?",
            (rule,),
        ))

    async def complete_count(self) -> int:
        """Complete entries of everyone (an upper bound for sizing bulk jobs)."""
        return int(await self.db.scalar("SELECT COUNT(*) FROM entries WHERE status='complete'")
                   or 0)

    async def answer_count(self) -> int:
        """Answers stored, of everyone."""
        return int(await self.db.scalar("SELECT COUNT(*) FROM answers") or 0)

    async def complete_counts(self) -> dict[int, int]:
        """Complete entries per participant."""
        return {int(r["participant_id"]): int(r["n"]) for r in await self.db.fetchall(
            "SELECT participant_id, COUNT(*) AS n FROM entries WHERE status='complete' "
            "GROUP BY participant_id")}

    async def first_complete(self) -> dict[int, str]:
        """Each participant's earliest complete entry's creation time."""
        return {int(r["participant_id"]): r["first"] for r in await self.db.fetchall(
            "SELECT participant_id, MIN(created_at) AS first FROM entries "
            "WHERE status='complete' GROUP BY participant_id") if r["first"]}

    async def unfinished(self, participant_ids: set[int]) -> list[aiosqlite.Row]:
        """Metadata of entries begun and not finished (participant_id, pair_id, flow,
        created_at): no answer is read."""
        if not participant_ids:
            return []
        marks = ",".join("?" * len(participant_ids))
        return await self.db.fetchall(
            "SELECT participant_id, pair_id, flow, created_at FROM entries "  # noqa: S608
            f"WHERE status != 'complete' AND participant_id IN ({marks})",
            tuple(sorted(participant_ids)),
        )

    async def to_judge(self, rule: str, after: int = 0, limit: int = 500
                       ) -> list[tuple[int, int, int, str, Any, bool | None]]:
        """Answers (after ``rowid``) not judged by ``rule``, opened: (rowid, participant,
        entry, step, value, stored risk or None). Erased people's answers are skipped."""
        rows = await self.db.fetchall(
            "SELECT a.rowid AS rid, e.participant_id, a.entry_id, a.step_id, a.value_ct, "
            "a.safety_ct FROM answers a JOIN entries e ON e.id = a.entry_id "
            "WHERE a.rowid > ? AND (a.safety_rule IS NULL OR a.safety_rule != ?) "
            "ORDER BY a.rowid LIMIT ?",
            (after, rule, limit),
        )
        out: list[tuple[int, int, int, str, Any, bool | None]] = []
        for r in rows:
            pid, entry_id, step_id = r["participant_id"], r["entry_id"], r["step_id"]
            try:
                value = await self.vault.decrypt(pid, "answers", answer_row(entry_id, step_id),
                                                 "value", r["value_ct"])
            except (DecryptionError, ErasedError):
                value = None
            old = None if r["safety_ct"] is None else await self._verdict(
                pid, entry_id, step_id, r["safety_ct"])
            out.append((r["rid"], pid, entry_id, step_id, value, old))
        return out

    async def seal_legacy_flags(self) -> int:
        """Move flags written in plain text before migration 005 into encrypted verdicts."""
        rows = await self.db.fetchall(
            "SELECT a.entry_id, a.step_id, e.participant_id FROM answers a "
            "JOIN entries e ON e.id = a.entry_id WHERE a.flags != ''"
        )
        sealed = 0
        for r in rows:
            try:
                blob = await self.vault.encrypt(
                    r["participant_id"], "answers", answer_row(r["entry_id"], r["step_id"]),
                    SAFETY_FIELD, {"risk": True})
            except ErasedError:
                continue  # the person's rows go with their erasure
            sealed += await self.db.execute_count(
                "UPDATE answers SET safety_ct=?, safety_rule=?, flags='' "
                "WHERE entry_id=? AND step_id=?",
                (blob, LEGACY_RULE, r["entry_id"], r["step_id"]),
            )
        return sealed

    async def latest(self, participant_id: int, flow: str) -> Entry | None:
        row = await self.db.fetchone(
            "SELECT * FROM entries WHERE participant_id=? AND flow=? AND status='complete' "
            "ORDER BY id DESC LIMIT 1",
            (participant_id, flow),
        )
        return None if row is None else _entry(row)

    async def waves_done(self, participant_id: int, pair_id: int | None = None) -> set[str]:
        """The waves this person answered for this pair (None: outside any pair)."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT wave FROM entries WHERE participant_id=? AND status='complete' "
            "AND wave IS NOT NULL AND pair_id IS ?",
            (participant_id, pair_id),
        )
        return {r["wave"] for r in rows}

    async def page(self, participant_id: int, offset: int, limit: int,
                   pair_id: int | None = None) -> tuple[list[Entry], int]:
        """Saved entries, newest first, for /history (only one pair's, if given)."""
        where = "participant_id=? AND status='complete'" + (
            "" if pair_id is None else " AND pair_id=?")
        params: tuple[int, ...] = (participant_id,) if pair_id is None else (
            participant_id, pair_id)
        total = int(
            await self.db.scalar(
                f"SELECT COUNT(*) FROM entries WHERE {where}",  # noqa: S608
                params,
            )
        )
        rows = await self.db.fetchall(
            f"SELECT * FROM entries WHERE {where} "  # noqa: S608
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_entry(r) for r in rows], total

    async def get(self, entry_id: int, participant_id: int) -> Entry | None:
        """Only ever by (entry, owner): nobody can reach another person's entry by its id."""
        row = await self.db.fetchone(
            "SELECT * FROM entries WHERE id=? AND participant_id=?", (entry_id, participant_id)
        )
        return None if row is None else _entry(row)

    async def save_answer(
        self,
        participant_id: int,
        entry_id: int,
        step_id: str,
        value: Any,
        safety: tuple[bool, str] | None = None,
    ) -> None:
        """Write an answer with the safety rule's verdict on it, ``(risk, rule version)``;
        without one the answer waits to be judged (recode, or any report that reads it)."""
        row = answer_row(entry_id, step_id)
        blob = await self.vault.encrypt(participant_id, "answers", row, "value", value)
        verdict, rule = None, None
        if safety is not None:
            verdict = await self.vault.encrypt(participant_id, "answers", row, SAFETY_FIELD,
                                               {"risk": bool(safety[0])})
            rule = safety[1]
        # One statement, with the ownership check inside it: an answer can only ever be
        # written into the writer's own entry, and never without its verdict beside it.
        changed = await self.db.execute_count(
            "INSERT INTO answers (entry_id, step_id, value_ct, answered_at, safety_ct, "
            "safety_rule) SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS "
            "(SELECT 1 FROM entries WHERE id=? AND participant_id=? AND status != 'discarded') "
            "ON CONFLICT(entry_id, step_id) DO UPDATE SET value_ct=excluded.value_ct, "
            "answered_at=excluded.answered_at, safety_ct=excluded.safety_ct, "
            "safety_rule=excluded.safety_rule",
            (entry_id, step_id, blob, iso(utcnow()), verdict, rule, entry_id, participant_id),
        )
        if changed != 1:
            raise LookupError("entry does not belong to this participant")

    async def save_codes(self, participant_id: int, entry_id: int, coder: str, codes: Any,
                         as_of: str) -> bool:
        """Store the rule codes of a complete entry, made from its answers as at ``as_of``.

        Encrypted under the author's key like the answers. Not stored (False) when the entry
        is not the writer's, is not complete, or an answer changed after ``as_of``: codes
        must describe the answers as they are (the database drops them on every change).
        """
        blob = await self.vault.encrypt(participant_id, "entry_codes", entry_id, "codes", codes)
        changed = await self.db.execute_count(
            _SAVE_CODES, (entry_id, coder, blob, entry_id, participant_id, entry_id, as_of))
        return changed == 1

    async def save_codes_many(self, coder: str,
                              rows: Sequence[tuple[int, int, Any, str]]) -> int:
        """:meth:`save_codes` for many entries, each ``(participant id, entry id, codes,
        as_of)`` under the same conditions, sealed first and written in one transaction;
        return how many were stored."""
        sealed = []
        for participant_id, entry_id, codes, as_of in rows:
            blob = await self.vault.encrypt(participant_id, "entry_codes", entry_id, "codes",
                                            codes)
            sealed.append((entry_id, coder, blob, entry_id, participant_id, entry_id, as_of))
        if not sealed:
            return 0
        async with self.db.transaction() as conn:
            cur = await conn.executemany(_SAVE_CODES, sealed)
            return max(0, int(cur.rowcount))

    async def codes(self, participant_id: int, entry_id: int) -> tuple[str, Any] | None:
        """(coder, codes) stored for the writer's own entry, or None."""
        row = await self.db.fetchone(
            "SELECT c.coder, c.codes_ct FROM entry_codes c JOIN entries e ON e.id = c.entry_id "
            "WHERE c.entry_id=? AND e.participant_id=?",
            (entry_id, participant_id),
        )
        if row is None:
            return None
        value = await self.vault.decrypt(participant_id, "entry_codes", entry_id, "codes",
                                         row["codes_ct"])
        return row["coder"], value

    async def clear_answer(self, participant_id: int, entry_id: int, step_id: str) -> None:
        await self.db.execute(
            "DELETE FROM answers WHERE entry_id=? AND step_id=? AND entry_id IN "
            "(SELECT id FROM entries WHERE participant_id=?)",
            (entry_id, step_id, participant_id),
        )

    async def answers(self, participant_id: int, entry_id: int) -> dict[str, Any]:
        rows = await self.db.fetchall(
            "SELECT a.step_id, a.value_ct FROM answers a JOIN entries e ON e.id = a.entry_id "
            "WHERE a.entry_id=? AND e.participant_id=? ORDER BY a.rowid",
            (entry_id, participant_id),
        )
        return {
            r["step_id"]: await self.vault.decrypt(
                participant_id,
                "answers",
                answer_row(entry_id, r["step_id"]),
                "value",
                r["value_ct"],
            )
            for r in rows
        }

    async def set_status(self, participant_id: int, entry_id: int, status: str) -> None:
        now = iso(utcnow())
        await self.db.execute(
            "UPDATE entries SET status=?, status_mac=?, updated_at=?, "
            "completed_at=CASE WHEN ?='complete' THEN COALESCE(completed_at, ?) "
            "ELSE completed_at END WHERE id=? AND participant_id=?",
            (status, self.integrity.status(entry_id, participant_id, status), now, status, now,
             entry_id, participant_id),
        )

    async def of(self, participant_id: int, status: str | None = None) -> list[Entry]:
        if status is None:
            rows = await self.db.fetchall(
                "SELECT * FROM entries WHERE participant_id=? ORDER BY id DESC", (participant_id,)
            )
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM entries WHERE participant_id=? AND status=? ORDER BY id DESC",
                (participant_id, status),
            )
        return [_entry(r) for r in rows]

    async def delete(self, participant_id: int, entry_id: int) -> bool:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM entries WHERE id=? AND participant_id=?", (entry_id, participant_id)
            )
            return cur.rowcount == 1

    # -- conversation state (the engine's position, encrypted like everything else) ---
    async def save_state(self, participant_id: int, state: dict[str, Any] | None) -> None:
        """Write-through: the database is the truth, the cache only spares a read."""
        if state is None:
            await self.db.execute(
                "DELETE FROM conversation_state WHERE participant_id=?", (participant_id,)
            )
            self._states[participant_id] = None
            return
        blob = await self.vault.encrypt(
            participant_id, "conversation_state", participant_id, "state", state
        )
        now = iso(utcnow())
        await self.db.execute(
            "INSERT INTO conversation_state (participant_id, state_ct, updated_at) VALUES (?,?,?)"
            " ON CONFLICT(participant_id) DO UPDATE SET state_ct=excluded.state_ct, "
            "updated_at=excluded.updated_at",
            (participant_id, blob, now),
        )
        self._states[participant_id] = (state, now)  # callers pass a fresh dump, never reused

    async def load_state(self, participant_id: int) -> tuple[dict[str, Any], str] | None:
        if self._cache and participant_id in self._states:
            cached = self._states[participant_id]
            return None if cached is None else cached
        row = await self.db.fetchone(
            "SELECT state_ct, updated_at FROM conversation_state WHERE participant_id=?",
            (participant_id,),
        )
        if row is None:
            self._states[participant_id] = None
            return None
        state = await self.vault.decrypt(
            participant_id, "conversation_state", participant_id, "state", row["state_ct"]
        )
        self._states[participant_id] = (state, row["updated_at"])
        return state, row["updated_at"]

    def forget(self, participant_id: int) -> None:
        self._states.pop(participant_id, None)
