"""Read consented entries out of the encrypted store, in bulk, for the offline jobs.

The consent rule lives in storage.consent: an entry is read only when its author's
*current* decision allows the scope, so a withdrawal applies to everything written before
it. Answers flagged for safety signposting are returned marked, so no report or export
ever quotes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.crypto import DecryptionError
from storage.models import Role, Scope
from storage.store import Store
from storage.vault import ErasedError

BATCH = 2000


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


@dataclass(frozen=True)
class PersonRecord:
    participant_id: int
    subject_ref: str
    role: Role
    programme_id: int
    created_at: str


async def consenting(store: Store, scope: Scope) -> set[int]:
    """People whose current consent allows ``scope`` (and who still participate)."""
    allowed = await store.consent.consenting(scope)
    if scope is not Scope.PARTICIPATE:
        allowed &= await store.consent.consenting(Scope.PARTICIPATE)
    return allowed


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


async def entries(
    store: Store,
    scope: Scope,
    *,
    programme_id: int | None = None,
    flows: Iterable[str] | None = None,
) -> AsyncIterator[EntryRecord]:
    """Complete entries whose authors currently consent to ``scope``, oldest first."""
    allowed = await consenting(store, scope)
    if not allowed:
        return
    who = await people(store, allowed)
    flow_filter = set(flows) if flows is not None else None
    ciphers: dict[int, AESGCM] = {}
    last_id = 0
    while True:
        rows = await store.db.fetchall(
            "SELECT id, participant_id, pair_id, flow, flow_version, wave, created_at, "
            "completed_at FROM entries WHERE status='complete' AND id > ? ORDER BY id LIMIT ?",
            (last_id, BATCH),
        )
        if not rows:
            return
        last_id = rows[-1]["id"]
        batch = [
            r
            for r in rows
            if r["participant_id"] in allowed
            and (flow_filter is None or r["flow"] in flow_filter)
            and (programme_id is None or who[r["participant_id"]].programme_id == programme_id)
        ]
        if not batch:
            continue
        records = {
            r["id"]: EntryRecord(
                r["id"],
                r["participant_id"],
                who[r["participant_id"]].subject_ref,
                who[r["participant_id"]].role,
                who[r["participant_id"]].programme_id,
                r["pair_id"],
                r["flow"],
                r["flow_version"],
                r["wave"],
                r["created_at"],
                r["completed_at"],
            )
            for r in batch
        }
        marks = ",".join("?" * len(records))
        answers = await store.db.fetchall(
            f"SELECT entry_id, step_id, value_ct, flags FROM answers "  # noqa: S608
            f"WHERE entry_id IN ({marks}) ORDER BY entry_id, rowid",
            tuple(records),
        )
        for a in answers:
            record = records[a["entry_id"]]
            pid = record.participant_id
            try:
                cipher = ciphers.get(pid)
                if cipher is None:
                    cipher = ciphers[pid] = AESGCM(await store.vault.dek(pid))
                record.answers[a["step_id"]] = store.vault.decrypt_with(
                    cipher,
                    pid,
                    "answers",
                    f"{record.entry_id}:{a['step_id']}",
                    "value",
                    a["value_ct"],
                )
            except (ErasedError, DecryptionError):
                continue  # erased mid-run, or a damaged row: never guess
            if "signpost" in a["flags"]:
                record.flagged.add(a["step_id"])
        for record in records.values():
            yield record
