"""The consented bulk reader: complete entries whose authors' consent allows a scope, opened.

Reports and exports read through here and nowhere else. The consent rule is the one in
:mod:`storage.consent`; the decision whether an answer may be quoted is the caller's (the
safety rule lives above storage), passed in as a ``judge`` that sees each opened answer and
can open the verdict stored with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    Set,
)
from dataclasses import dataclass, field
from typing import Any

from storage.crypto import Cipher, DecryptionError, WrappedKey, cipher
from storage.entries import SAFETY_FIELD
from storage.integrity import FIX, TamperError
from storage.models import Role, Scope
from storage.store import Store
from storage.vault import open_value

BATCH = 2000

UNREADABLE = object()  # a stored verdict that does not open (damaged or moved)
Verdict = Callable[[], Any]  # the stored verdict opened: None if none, or UNREADABLE
# (answer value, its stored verdict on demand, the rule version that judged it) -> never quote
Judge = Callable[[Any, Verdict, "str | None"], bool]


@dataclass
class EntryRecord:
    entry_id: int
    participant_id: int
    subject_ref: str
    role: Role
    programme_id: int
    pair_id: int | None
    flow: str
    flow_version: str
    wave: str | None
    created_at: str
    completed_at: str | None
    answers: dict[str, Any] = field(default_factory=dict)
    flagged: set[str] = field(default_factory=set)  # step ids never to quote
    codes: tuple[str, Any] | None = None  # (coder, stored rule codes), where read and present


@dataclass(frozen=True)
class PersonRecord:
    participant_id: int
    subject_ref: str
    role: Role
    programme_id: int
    created_at: str


async def consenting(store: Store, scope: Scope) -> set[int]:
    """People whose data ``scope`` may use now (storage.consent's rule).

    Every bulk reader starts here, so this is where the database's tamper evidence is
    checked first (storage.integrity): a forged consent row or entry status stops the job.
    """
    await store.integrity.check()
    return await store.consent.consenting(scope)


async def data_keys(store: Store, ids: set[int]) -> dict[int, bytes]:
    """Data keys of ``ids`` from one query.

    Asking the vault one participant at a time costs a database round trip each, which at
    10,000 participants was half the extraction time. A participant whose key is gone (erased)
    simply has no key, and their answers are skipped as before.
    """
    # two reads joined here: on PostgreSQL the key store is another database
    wanted = {r["subject_ref"]: r["id"] for r in await store.db.fetchall(
        "SELECT id, subject_ref FROM participants") if r["id"] in ids}
    rows = await store.db.fetchall("SELECT subject_ref, wrapped, kek_id FROM keys.data_keys")
    ring = store.vault.ring
    # a wrong master key raises MasterKeyError here, as the vault would
    return {
        wanted[r["subject_ref"]]: ring.unwrap(WrappedKey(r["wrapped"], r["kek_id"]),
                                              r["subject_ref"])
        for r in rows
        if r["subject_ref"] in wanted
    }


async def _ciphers(store: Store, ids: set[int]) -> dict[int, Cipher]:
    return {pid: cipher(key) for pid, key in (await data_keys(store, ids)).items()}


async def first_names(store: Store, ids: Iterable[int]) -> dict[int, str]:
    """First names as participants gave them, for masking them out of quotes (never shown).

    What ``store.participants.name`` returns, read in one query instead of one per person.
    """
    wanted = set(ids)
    if not wanted:
        return {}
    ciphers = await _ciphers(store, wanted)
    rows = await store.db.fetchall("SELECT id, name_ct FROM participants")
    out: dict[int, str] = {}
    for r in rows:
        prepared = ciphers.get(r["id"])
        if prepared is None or r["name_ct"] is None:
            continue
        try:
            name = store.vault.decrypt_with(
                prepared, r["id"], "participants", r["id"], "name", r["name_ct"]
            )
        except DecryptionError:
            # a name that does not open would go unmasked in every quote and export: stop
            raise TamperError(
                f"the name of participant {r['id']} does not open with their key: the "
                "database was changed outside mentorbot (a ciphertext moved or "
                f"altered). To fix: {FIX}.") from None
        if isinstance(name, str) and name.strip():
            out[r["id"]] = name.strip()
    return out


async def mask_names(store: Store, people: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """The first names to mask out of each person's text: their own and every partner's
    they were ever paired with (a mentee writes their mentor's name, consenting or not; the
    name is only ever used to mask it). The evaluator and exports both mask with these."""
    wanted = set(people)
    partner: dict[int, set[int]] = {}
    for p in await store.db.fetchall("SELECT mentor_id, mentee_id FROM pairs"):
        members = [m for m in (p["mentor_id"], p["mentee_id"]) if m is not None]
        for m in members:
            partner.setdefault(m, set()).update(x for x in members if x != m)
    names = await first_names(store, wanted | {x for m in wanted for x in partner.get(m, ())})
    return {m: tuple(sorted({names[x] for x in (m, *partner.get(m, ())) if x in names}))
            for m in wanted}


async def people(store: Store, ids: Iterable[int] | None = None) -> dict[int, PersonRecord]:
    rows = await store.db.fetchall(
        "SELECT id, subject_ref, role, programme_id, created_at FROM participants ORDER BY id"
    )
    wanted = None if ids is None else set(ids)
    return {
        r["id"]: PersonRecord(
            r["id"], r["subject_ref"], Role(r["role"]), r["programme_id"], r["created_at"]
        )
        for r in rows
        if wanted is None or r["id"] in wanted
    }


def _verdict(prepared: Cipher, pid: int, row: str, verdict_ct: bytes | None) -> Verdict:
    def opened() -> Any:
        if verdict_ct is None:
            return None
        try:
            return open_value(prepared, pid, "answers", row, SAFETY_FIELD, verdict_ct)
        except DecryptionError:
            return UNREADABLE
    return opened


def open_batch(
    batch: Iterable[Any],
    answers: Iterable[Any],
    who: Mapping[int, PersonRecord],
    ciphers: Mapping[int, Cipher],
    codes: Iterable[Any] = (),
    judge: Judge | None = None,
) -> list[EntryRecord]:
    """Entry rows and their answer rows (and stored codes), opened: the one decryption loop
    of every bulk reader. ``judge`` marks the answers never to quote."""
    # positional: the rows may be sqlite3.Row or (in worker processes, quicker) plain tuples,
    # in the column order of _ENTRY_ROWS and _ANSWER_ROWS
    records = {}
    for r in batch:
        person = who[r[1]]
        records[r[0]] = EntryRecord(r[0], r[1], person.subject_ref, person.role,
                                    person.programme_id, r[2], r[3], r[4], r[5], r[6], r[7])
    for entry_id, step_id, value_ct, verdict_ct, judged_by in answers:
        record = records[entry_id]
        pid = record.participant_id
        prepared = ciphers.get(pid)
        if prepared is None:
            continue  # erased before the run started: nothing of theirs can be read
        row = f"{entry_id}:{step_id}"
        try:
            value = record.answers[step_id] = open_value(prepared, pid, "answers", row, "value",
                                                         value_ct)
        except DecryptionError:
            # moved or altered in the file: stop rather than leave the answer out unnoticed
            raise TamperError(
                f"answer {row} does not open with its author's key: the database was "
                "changed outside mentorbot (a ciphertext moved or altered). To fix: "
                f"{FIX}.") from None
        if judge is not None and judge(value, _verdict(prepared, pid, row, verdict_ct),
                                       judged_by):
            record.flagged.add(step_id)
    for entry_id, coder, codes_ct in codes:
        record = records[entry_id]
        prepared = ciphers.get(record.participant_id)
        if prepared is None:
            continue
        try:
            record.codes = (coder, open_value(prepared, record.participant_id, "entry_codes",
                                              entry_id, "codes", codes_ct))
        except DecryptionError:
            continue  # coded again by whoever needs them
    return list(records.values())


_ENTRY_ROWS = (
    "SELECT id, participant_id, pair_id, flow, flow_version, wave, created_at, completed_at "
    "FROM entries WHERE status='complete' AND id > ? AND id <= ? ORDER BY id LIMIT ?"
)
# the same rows from one server-side cursor (PostgreSQL), fetched BATCH at a time
_ENTRY_STREAM = _ENTRY_ROWS.replace(" LIMIT ?", "")
_ANSWER_ROWS = (
    "SELECT entry_id, step_id, value_ct, safety_ct, safety_rule FROM answers "
    "WHERE entry_id IN ({}) "
    "ORDER BY entry_id, rowid"
)
_CODE_ROWS = "SELECT entry_id, coder, codes_ct FROM entry_codes WHERE entry_id IN ({})"
LAST_ID = 2**63 - 1


async def entries(
    store: Store,
    scope: Scope,
    *,
    programme_id: int | None = None,
    flows: Iterable[str] | None = None,
    judge: Judge | None = None,
) -> AsyncIterator[EntryRecord]:
    """Complete entries whose authors currently consent to ``scope``, oldest first."""
    allowed = await consenting(store, scope)
    if not allowed:
        return
    who = await people(store, allowed)
    flow_filter = set(flows) if flows is not None else None
    ciphers = await _ciphers(store, allowed)

    async with _entry_rows(store) as (next_rows, query):

        async def fetch() -> tuple[list[Any], list[Any]] | None:
            """The next batch: (entry rows, answer rows), or None at the end."""
            while True:
                rows = await next_rows()
                if not rows:
                    return None
                batch = [
                    r
                    for r in rows
                    if r["participant_id"] in allowed
                    and (flow_filter is None or r["flow"] in flow_filter)
                    and (programme_id is None
                         or who[r["participant_id"]].programme_id == programme_id)
                ]
                if not batch:
                    continue
                answers = await query(
                    _ANSWER_ROWS.format(",".join("?" * len(batch))),
                    tuple(r["id"] for r in batch),
                )
                return batch, list(answers)

        # SQLite works in aiosqlite's thread (outside the GIL) while this coroutine decrypts,
        # so the next batch is always being read while the current one is opened: about a
        # third less wall time on large programmes.
        pending: asyncio.Task[tuple[list[Any], list[Any]] | None] = asyncio.ensure_future(
            fetch())
        try:
            while True:
                fetched = await pending
                if fetched is None:
                    return
                batch, answers = fetched
                pending = asyncio.ensure_future(fetch())
                for record in open_batch(batch, answers, who, ciphers, judge=judge):
                    yield record
        finally:
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending


RowsQuery = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]


@contextlib.asynccontextmanager
async def _entry_rows(
    store: Store,
) -> AsyncIterator[tuple[Callable[[], Awaitable[list[Any]]], RowsQuery]]:
    """The complete entries batch by batch (an empty batch at the end), and how to read
    their answers: on PostgreSQL from one server-side cursor in one read-only snapshot, so
    a report reads one state of the data, never pages that straddle a commit; on SQLite by
    key, page by page."""
    if store.db.dialect == "postgresql":
        async with store.db.snapshot_read() as snap:  # type: ignore[attr-defined]
            cursor = await snap.stream(_ENTRY_STREAM, (0, LAST_ID))
            yield (lambda: cursor.fetchmany(BATCH)), snap.fetchall
        return
    after = 0

    async def page() -> list[Any]:
        nonlocal after
        rows = await store.db.fetchall(_ENTRY_ROWS, (after, LAST_ID, BATCH))
        if rows:
            after = rows[-1]["id"]
        return list(rows)

    yield page, store.db.fetchall


@dataclass(frozen=True)
class Snapshot:
    """What a bulk job needs to read the entries one scope allows, in other processes too.

    Taken by :func:`snapshot` through the consent rule, with the data keys of the people it
    allows; :func:`read_range` then reads any id range of it from the database file, so
    several processes can each open a share. It holds data keys: it passes between this
    program's own processes through pipes and is never written anywhere.
    """

    db_path: str
    people: dict[int, PersonRecord]  # the people the scope allows
    keys: dict[int, bytes]
    entry_ids: list[int]  # their complete entries, ascending, when the snapshot was taken


async def snapshot(store: Store, scope: Scope) -> Snapshot:
    allowed = await consenting(store, scope)
    who = await people(store, allowed) if allowed else {}
    keys = await data_keys(store, allowed) if allowed else {}
    ids: list[int] = []
    if allowed:
        rows = await store.db.fetchall(
            "SELECT id, participant_id FROM entries WHERE status='complete' ORDER BY id"
        )
        ids = [r["id"] for r in rows if r["participant_id"] in allowed]
    return Snapshot(str(store.db.path), who, keys, ids)


def split(ids: list[int], parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive (after, upto] id ranges holding about equal numbers of ``ids``."""
    if not ids or parts <= 1:
        return [(0, ids[-1] if ids else 0)]
    cuts = sorted({ids[len(ids) * k // parts - 1] for k in range(1, parts)
                   if len(ids) * k // parts > 0} - {ids[-1]})
    bounds = [0, *cuts, ids[-1]]
    return list(itertools.pairwise(bounds))


def _reader(target: str) -> tuple[Any, Callable[[str, Sequence[Any]], list[Any]]]:
    """A read-only connection of a worker's own and how to query it: the SQLite file, or
    the PostgreSQL database (plain tuples either way, in the statements' column order)."""
    from storage import dialect
    from storage.pg import is_postgres

    if is_postgres(target):
        import psycopg

        pg = psycopg.connect(target, autocommit=True,
                             options="-c default_transaction_read_only=on")

        def pg_query(sql: str, params: Sequence[Any]) -> list[Any]:
            return pg.execute(dialect.statement(sql).sql, tuple(params)).fetchall()
        return pg, pg_query
    import sqlite3
    from urllib.parse import quote

    lite = sqlite3.connect(f"file:{quote(target)}?mode=ro", uri=True, check_same_thread=False)

    def lite_query(sql: str, params: Sequence[Any]) -> list[Any]:
        return lite.execute(sql, params).fetchall()
    return lite, lite_query


def _range_reader(target: str, after: int, upto: int) -> tuple[
        Any, Callable[[str, Sequence[Any]], list[Any]], Generator[list[Any], None, None]]:
    """:func:`_reader`, and the complete entries with ids in (after, upto] batch by batch:
    on SQLite read by key page by page; on PostgreSQL from one server-side cursor in one
    REPEATABLE READ, READ ONLY transaction, so the answers and codes read with each batch
    are of the same snapshot as the entries, whatever commits meanwhile."""
    from storage import dialect
    from storage.pg import is_postgres

    if is_postgres(target):
        import psycopg

        pg = psycopg.connect(target)
        pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        pg.read_only = True

        def pg_query(sql: str, params: Sequence[Any]) -> list[Any]:
            return pg.execute(dialect.statement(sql).sql, tuple(params)).fetchall()

        def pg_batches() -> Generator[list[Any], None, None]:
            with pg.cursor("mentorbot_bulk") as cur:
                cur.execute(dialect.statement(_ENTRY_STREAM).sql, (after, upto))
                while rows := cur.fetchmany(BATCH):
                    yield rows
        return pg, pg_query, pg_batches()
    lite, lite_query = _reader(target)

    def lite_batches() -> Generator[list[Any], None, None]:
        start = after
        while rows := lite_query(_ENTRY_ROWS, (start, upto, BATCH)):
            start = rows[-1][0]
            yield rows
    return lite, lite_query, lite_batches()


def read_range(snap: Snapshot, after: int, upto: int, with_codes: bool = True,
               judge: Judge | None = None) -> Iterator[EntryRecord]:
    """The snapshot's entries with ids in (after, upto], oldest first, opened, with their
    stored codes unless ``with_codes`` is false.

    Synchronous, on a read-only connection of its own: meant for a worker process. The next
    batch is read in a thread (SQLite works outside the GIL) while this one is decrypted.
    """
    from concurrent.futures import ThreadPoolExecutor

    conn, query, batches = _range_reader(snap.db_path, after, upto)
    allowed: Set[int] = snap.people.keys()
    ciphers = {pid: cipher(key) for pid, key in snap.keys.items()}

    def fetch() -> tuple[list[Any], list[Any], list[Any]] | None:
        for rows in batches:
            batch = [r for r in rows if r[1] in allowed]  # (id, participant_id, ...)
            if batch:
                marks = ",".join("?" * len(batch))
                ids = [r[0] for r in batch]
                answers = query(_ANSWER_ROWS.format(marks), ids)
                codes = query(_CODE_ROWS.format(marks), ids) if with_codes else []
                return batch, answers, codes
        return None

    try:
        with ThreadPoolExecutor(1, thread_name_prefix="mentorbot-read") as reader:
            pending = reader.submit(fetch)
            while (fetched := pending.result()) is not None:
                batch, answers, codes = fetched
                pending = reader.submit(fetch)
                yield from open_batch(batch, answers, snap.people, ciphers, codes, judge)
    finally:
        batches.close()  # the named cursor first
        conn.close()
