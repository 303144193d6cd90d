"""The bulk readers (storage.bulk): what they return does not depend on the batch size, and
on PostgreSQL a report or export reads one snapshot, whatever commits while it reads."""

from __future__ import annotations

from typing import Any

import pytest

from reports import extract
from reports.synthetic import generate_cohort
from storage import bulk
from storage.models import Scope
from storage.store import Store

pytestmark = pytest.mark.both_backends


def _seen(records: Any) -> list[tuple[int, str, dict[str, Any], set[str], Any]]:
    return [(r.entry_id, r.flow, r.answers, r.flagged, r.codes) for r in records]


async def _complete(store: Store) -> list[int]:
    rows = await store.db.fetchall("SELECT id FROM entries WHERE status='complete' ORDER BY id")
    return [r["id"] for r in rows]


async def test_batch_size_changes_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    await generate_cohort(store, pairs=6, sessions=3, seed=11)
    snap = await extract.snapshot(store, Scope.RESEARCH_EXPORT)
    assert len(snap.entry_ids) > 20
    whole = _seen(extract.read_range(snap, 0, snap.entry_ids[-1]))
    streamed = [r async for r in extract.entries(store, Scope.RESEARCH_EXPORT)]
    monkeypatch.setattr(bulk, "BATCH", 3)
    assert _seen(extract.read_range(snap, 0, snap.entry_ids[-1])) == whole
    small = [r async for r in extract.entries(store, Scope.RESEARCH_EXPORT)]
    assert [r[0] for r in whole] == snap.entry_ids
    assert all(r[2] for r in whole)  # every entry with its answers, opened
    # the async reader reads no codes; otherwise the same records, oldest first
    assert [s[:4] for s in _seen(small)] == [s[:4] for s in _seen(streamed)]
    assert [s[:4] for s in _seen(small)] == [s[:4] for s in whole]
    # a range reads just its own entries
    mid = snap.entry_ids[len(snap.entry_ids) // 2]
    assert [r[0] for r in _seen(extract.read_range(snap, mid, snap.entry_ids[-1]))] == [
        i for i in snap.entry_ids if i > mid]


# SQLite's reader pages by key on a file opened read-only (unchanged): a commit between two
# pages is seen there, so the snapshot is PostgreSQL's promise only
async def test_export_reader_sees_one_snapshot(store: Store, backend: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite's bulk reader pages by key: PostgreSQL's promise only")
    await generate_cohort(store, pairs=4, sessions=3, seed=3)
    snap = await extract.snapshot(store, Scope.RESEARCH_EXPORT)
    before = _seen(extract.read_range(snap, 0, snap.entry_ids[-1]))
    monkeypatch.setattr(bulk, "BATCH", 2)  # many batches: the write lands between them
    reading = extract.read_range(snap, 0, snap.entry_ids[-1])
    first = next(reading)
    last = (await _complete(store))[-1]
    await store.db.execute("UPDATE entries SET status='discarded' WHERE id=?", (last,))
    assert last not in await _complete(store)  # committed, seen by everyone else
    assert _seen([first, *reading]) == before


async def test_report_reader_sees_one_snapshot(store: Store, backend: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite's bulk reader pages by key: PostgreSQL's promise only")
    await generate_cohort(store, pairs=4, sessions=3, seed=3)
    before = _seen([r async for r in extract.entries(store, Scope.EVALUATION)])
    monkeypatch.setattr(bulk, "BATCH", 2)
    reading = extract.entries(store, Scope.EVALUATION)
    first = await anext(reading)
    last = before[-1][0]
    await store.db.execute("UPDATE entries SET status='discarded' WHERE id=?", (last,))
    assert last not in await _complete(store)
    assert _seen([first, *[r async for r in reading]]) == before
