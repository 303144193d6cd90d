"""Stored sentence embeddings of typed answers (migration 012), encrypted like the answers.

An embedding is derived from what the person wrote and can be matched back towards it, so it
is personal data: each is sealed with the author's data key (the AAD names the table, entry,
participant and step), lives beside the stored codes, is dropped by the database whenever its
answer changes and goes with the entry when the entry or the person is erased (ON DELETE
CASCADE from ``entries``). What is stored is opaque to this module: a JSON-able value made by
``reports.coding.embeddings.pack``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from storage.db import Database
from storage.vault import Vault

TABLE = "answer_embeddings"


# The one write: only for a complete entry of that participant, only when the answer was
# not written again after the embedding's text was read (``as_of``).
_UPSERT = (
    "INSERT INTO answer_embeddings (entry_id, step_id, model, vectors_ct) "
    "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM entries WHERE id=? AND "
    "participant_id=? AND status='complete') AND EXISTS (SELECT 1 FROM answers "
    "WHERE entry_id=? AND step_id=? AND answered_at <= ?) "
    "ON CONFLICT(entry_id, step_id) DO UPDATE SET model=excluded.model, "
    "vectors_ct=excluded.vectors_ct"
)


class Embeddings:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault

    def _row(self, entry_id: int, step_id: str) -> str:
        return f"{entry_id}:{step_id}"

    async def save_answers(self, model: str,
                           rows: Sequence[tuple[int, int, str, Any, str]]) -> int:
        """Many answers' embeddings, each ``(participant id, entry id, step id, value,
        as_of)`` with the same conditions as :meth:`save`, sealed first and written in one
        transaction (one commit instead of one per answer); return how many were stored."""
        sealed = []
        for participant_id, entry_id, step_id, value, as_of in rows:
            blob = await self.vault.encrypt(participant_id, TABLE, self._row(entry_id, step_id),
                                            "vectors", value)
            sealed.append((entry_id, step_id, model, blob, entry_id, participant_id, entry_id,
                           step_id, as_of))
        if not sealed:
            return 0
        async with self.db.transaction() as conn:
            cur = await conn.executemany(_UPSERT, sealed)  # one trip to the database thread
            return max(0, int(cur.rowcount))

    async def save(self, participant_id: int, entry_id: int, model: str,
                   vectors: Mapping[str, Any], as_of: str) -> int:
        """Store the embeddings of the writer's complete entry, step by step; return how many
        were stored. A step whose answer was written after ``as_of`` is skipped: the
        embedding would describe an answer that is no longer there."""
        stored = 0
        for step_id, value in vectors.items():
            blob = await self.vault.encrypt(participant_id, TABLE, self._row(entry_id, step_id),
                                            "vectors", value)
            stored += await self.db.execute_count(
                _UPSERT, (entry_id, step_id, model, blob, entry_id, participant_id, entry_id,
                          step_id, as_of))
        return stored

    async def load(self, participant_id: int, entry_id: int,
                   model: str | None = None) -> dict[str, Any]:
        """Step id -> stored value for the writer's own entry (only ``model``'s, if given)."""
        rows = await self.db.fetchall(
            "SELECT a.step_id, a.model, a.vectors_ct FROM answer_embeddings a "
            "JOIN entries e ON e.id = a.entry_id WHERE a.entry_id=? AND e.participant_id=?",
            (entry_id, participant_id),
        )
        out: dict[str, Any] = {}
        for row in rows:
            if model is not None and row["model"] != model:
                continue
            out[row["step_id"]] = await self.vault.decrypt(
                participant_id, TABLE, self._row(entry_id, row["step_id"]), "vectors",
                row["vectors_ct"])
        return out

    async def load_many(self, model: str, entries: Collection[tuple[int, int]]
                        ) -> dict[tuple[int, str], Any]:
        """(entry id, step id) -> stored value of ``model`` for many entries, each given as
        (participant id, entry id) and read only if it is that participant's: one query per
        few hundred entries (``mentorbot recode`` codes entries in batches)."""
        from storage.crypto import cipher

        owner = {entry_id: pid for pid, entry_id in entries}
        wanted = sorted(owner)
        out: dict[tuple[int, str], Any] = {}
        prepared: dict[int, Any] = {}
        for at in range(0, len(wanted), 500):  # under SQLite's bound-parameter limit
            part = wanted[at:at + 500]
            rows = await self.db.fetchall(
                _STORED_ROWS.format(", ".join("?" * len(part))), (model, *part))
            for row in rows:
                entry_id, step_id, pid = int(row["entry_id"]), str(row["step_id"]), \
                    int(row["participant_id"])
                if owner.get(entry_id) != pid:
                    continue
                key = prepared.get(pid)
                if key is None:
                    key = prepared[pid] = cipher(await self.vault.dek(pid))
                out[(entry_id, step_id)] = self.vault.decrypt_with(
                    key, pid, TABLE, self._row(entry_id, step_id), "vectors", row["vectors_ct"])
        return out

    async def stored(self, model: str) -> set[tuple[int, str]]:
        """(entry id, step id) of every answer with embeddings from ``model``."""
        rows = await self.db.fetchall(
            "SELECT entry_id, step_id FROM answer_embeddings WHERE model=?", (model,))
        return {(int(r["entry_id"]), str(r["step_id"])) for r in rows}

    async def count(self, model: str | None = None) -> int:
        if model is None:
            return int(await self.db.scalar("SELECT COUNT(*) FROM answer_embeddings"))
        return int(await self.db.scalar(
            "SELECT COUNT(*) FROM answer_embeddings WHERE model=?", (model,)))

    async def save_many(self, rows: list[tuple[int, int, str, str, Any]]) -> int:
        """Bulk form of :meth:`save` for generated programmes (benchmarks): rows of
        (participant id, entry id, step id, model, value), sealed the same way, written in
        one statement. No answered-at check: the caller writes what it just generated."""
        sealed = []
        for pid, entry_id, step_id, model, value in rows:
            blob = await self.vault.encrypt(pid, TABLE, self._row(entry_id, step_id),
                                            "vectors", value)
            sealed.append((entry_id, step_id, model, blob))
        await self.db.executemany(
            "INSERT INTO answer_embeddings (entry_id, step_id, model, vectors_ct) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(entry_id, step_id) DO UPDATE SET "
            "model=excluded.model, vectors_ct=excluded.vectors_ct", sealed)
        return len(sealed)


    async def steps(self, entry_id: int, model: str) -> set[str]:
        """Step ids of the entry's answers that have embeddings from ``model``."""
        rows = await self.db.fetchall(
            "SELECT step_id FROM answer_embeddings WHERE entry_id=? AND model=?",
            (entry_id, model))
        return {str(r["step_id"]) for r in rows}

    async def lacking(self, model: str, typed: Collection[tuple[str, str]], after: int = 0,
                      limit: int = 100) -> list[tuple[int, int, str]]:
        """(entry id, participant id, flow id) of complete entries numbered after ``after``
        with an answer to one of the ``typed`` steps ((flow id, step id): the steps that take
        typed text) that has no embedding from ``model``, in entry order: what the bot's idle
        sweep looks at. An answer that is flagged, or a choice without typed text, has none
        and is looked at again on the next pass."""
        if not typed:
            return []
        keys = sorted({f"{flow}:{step}" for flow, step in typed})
        # one placeholder per step key: a few dozen, and plain IN reads the same on both
        # backends (json_each is SQLite's alone)
        rows = await self.db.fetchall(
            "SELECT e.id, e.participant_id, e.flow FROM entries e "  # noqa: S608
            "WHERE e.status='complete' AND e.id > ? AND EXISTS (SELECT 1 FROM answers a "
            "WHERE a.entry_id = e.id AND (e.flow || ':' || a.step_id) IN "
            f"({', '.join('?' * len(keys))}) "
            "AND NOT EXISTS (SELECT 1 FROM answer_embeddings x WHERE x.entry_id = a.entry_id "
            "AND x.step_id = a.step_id AND x.model = ?)) ORDER BY e.id LIMIT ?",
            (after, *keys, model, limit))
        return [(int(r["id"]), int(r["participant_id"]), str(r["flow"])) for r in rows]

_STORED_ROWS = (
    "SELECT a.entry_id, a.step_id, e.participant_id, a.vectors_ct FROM answer_embeddings a "
    "JOIN entries e ON e.id = a.entry_id WHERE a.model=? AND a.entry_id IN ({})"
)
_PRESENT_ROWS = (
    "SELECT entry_id, step_id FROM answer_embeddings WHERE model=? AND entry_id IN ({})"
)
_CODE_ROWS = (
    "SELECT c.entry_id, e.participant_id, c.codes_ct FROM entry_codes c "
    "JOIN entries e ON e.id = c.entry_id WHERE c.coder=? AND c.entry_id IN ({})"
)


class StoredReader:
    """Stored embeddings opened in bulk, synchronously, on a read-only connection of its own:
    for the report's worker processes, which code chunks of answers and read the chunk's
    embeddings in one query (``keys``: the data keys of the people the job may read, as in
    ``storage.bulk.Snapshot``; they pass between this program's processes, never to disk).

    An answer whose embedding is missing, from another model or does not open is simply
    absent from what :meth:`fetch` returns: the caller codes it with the rules alone.
    """

    def __init__(self, db_path: str, keys: Mapping[int, bytes], model: str) -> None:
        from storage.bulk import _reader  # read-only, SQLite or PostgreSQL
        from storage.crypto import cipher

        self.model = model
        self._conn, self._query = _reader(db_path)
        self._ciphers = {pid: cipher(key) for pid, key in keys.items()}

    def _rows(self, sql: str, first: Any, entry_ids: list[int]) -> Iterator[Any]:
        """``sql``'s rows for the given entries (``first`` bound before them), in parts
        under SQLite's bound-parameter limit."""
        wanted = sorted(set(entry_ids))
        for at in range(0, len(wanted), 900):
            part = wanted[at:at + 900]
            yield from self._query(sql.format(",".join("?" * len(part))), (first, *part))

    def _open(self, pid: int, table: str, row: str | int, field: str, blob: bytes) -> Any:
        """A value of a person this job may read, opened; None where it is not one (or
        erased since) or does not open: derived data, the caller codes the answer instead."""
        from storage.crypto import DecryptionError
        from storage.vault import open_value

        prepared = self._ciphers.get(pid)
        if prepared is None:
            return None
        try:
            return open_value(prepared, pid, table, row, field, blob)
        except DecryptionError:
            return None

    def fetch(self, entry_ids: list[int]) -> dict[tuple[int, str], Any]:
        out: dict[tuple[int, str], Any] = {}
        for entry_id, step_id, pid, blob in self._rows(_STORED_ROWS, self.model, entry_ids):
            value = self._open(pid, TABLE, f"{entry_id}:{step_id}", "vectors", blob)
            if value is not None:
                out[(entry_id, step_id)] = value
        return out

    def present(self, entry_ids: list[int]) -> set[tuple[int, str]]:
        """(entry id, step id) of the answers with an embedding from this model: read, not
        opened (the report counts what the stored codes were made from)."""
        return {(int(entry_id), str(step_id))
                for entry_id, step_id in self._rows(_PRESENT_ROWS, self.model, entry_ids)}

    def codes(self, entry_ids: list[int], coder: str) -> dict[int, Any]:
        """Entry id -> the codes stored with it by ``coder`` (``storage/entries.py``,
        ``entry_codes``), opened; an entry without them, or whose codes do not open, is
        absent (the caller codes it)."""
        out: dict[int, Any] = {}
        for entry_id, pid, blob in self._rows(_CODE_ROWS, coder, entry_ids):
            value = self._open(pid, "entry_codes", entry_id, "codes", blob)
            if value is not None:
                out[int(entry_id)] = value
        return out

    def close(self) -> None:
        self._conn.close()
