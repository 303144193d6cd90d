"""Coordinator summaries released over time: no pair's change can be found by subtraction.

The rule (reports/releases.py): a figure group takes new values only when, against every
earlier release of it, 0 or at least k = 5 pairs contribute differently.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reports.coordinator import ATTENTION_LINE, compute_summary, release_summary, write_report
from reports.releases import decide, fingerprints
from reports.synthetic import generate_cohort
from storage.models import Role, Scope
from storage.store import Store
from tests.support.harness import TgUser, running_app

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends

NOW = datetime(2030, 1, 15, 12, tzinfo=UTC)
FIGURES = ("pairs_counted", "pairs_by_state", "pairs_by_phase", "attention",
           "reflection_completion", "checkin_response", "mentor_load")


async def _programme(store: Store, pairs: int) -> int:
    await generate_cohort(store, pairs=pairs, sessions=2, consent_rate=1.0)
    (programme,) = await store.programmes.all()
    return programme.id


async def _withdraw_pair(store: Store, index: int) -> None:
    """The mentee of the index-th pair stops programme summaries: the pair leaves the count."""
    rows = await store.db.fetchall("SELECT mentee_id FROM pairs ORDER BY id")
    pid = int(rows[index]["mentee_id"])
    ref = await store.db.scalar("SELECT subject_ref FROM participants WHERE id=?", (pid,))
    await store.consent.record(pid, str(ref), Scope.PROGRAMME_SUMMARY, False, "test")


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary.get(k) for k in FIGURES}


async def test_one_pair_leaving_changes_no_released_figure(store: Store) -> None:
    pid = await _programme(store, 12)
    first = await release_summary(store, pid, now=NOW)
    assert first["pairs_counted"] == 12 and first["held"] == {}

    await _withdraw_pair(store, 0)
    later = NOW + timedelta(days=1)
    raw = await compute_summary(store, pid, now=later)
    # without the rule, subtracting the releases would single the pair out
    assert raw["pairs_counted"] == 11
    assert json.loads(json.dumps(_figures(raw))) != _figures(first)

    second = await release_summary(store, pid, now=later)
    assert _figures(second) == _figures(first)  # nothing to subtract
    assert second["held"]["pairs"] == NOW.date().isoformat()

    # four more pairs leave: five changed since the first release, so figures move on
    for i in range(1, 5):
        await _withdraw_pair(store, i)
    third = await release_summary(store, pid, now=later + timedelta(days=1))
    assert third["pairs_counted"] == 7 and "pairs" not in third["held"]
    assert third["pairs_counted"] == (await compute_summary(
        store, pid, now=later + timedelta(days=1)))["pairs_counted"]


def test_every_earlier_release_is_compared_not_only_the_last() -> None:
    base = {p: "active" for p in range(1, 11)}
    history = []
    d = decide("pairs", {"n": 10}, base, history, 5, "2030-01-01")
    assert d.new_release is not None
    history.append(d.new_release)
    moved = {**base, **{p: "closed" for p in range(1, 6)}}  # five pairs change
    d = decide("pairs", {"n": "five closed"}, moved, history, 5, "2030-01-02")
    assert d.held_since is None and d.new_release is not None
    history.append(d.new_release)
    # four change back and one other changes: five against the last release, one against
    # the first, whose difference would be that one pair's change alone
    trap = {**base, 5: "closed", 6: "closed"}
    d = decide("pairs", {"n": "trap"}, trap, history, 5, "2030-01-03")
    assert d.held_since == "2030-01-02" and d.figures == {"n": "five closed"}
    assert d.new_release is None
    # an unchanged group is released as it is, and not recorded twice
    d = decide("pairs", {"n": "five closed"}, moved, history, 5, "2030-01-04")
    assert d.held_since is None and d.new_release is None
    assert fingerprints(moved) == history[-1].fingerprints


async def test_the_chat_summary_is_the_same_around_one_pairs_change(store: Store) -> None:
    pid = await _programme(store, 6)
    code = await store.programmes.create_invite(pid, Role.COORDINATOR)
    async with running_app(store) as (app, standin):
        lead = TgUser(app, standin, 591_000_001, "Philippa")
        await lead.send(f"/start {code}")
        before = lead.last_texts(await lead.send("/summary"))
        assert "6 pairs counted" in before
        await _withdraw_pair(store, 2)
        assert (await compute_summary(store, pid))["pairs_counted"] == 5
        after = lead.last_texts(await lead.send("/summary"))
        assert "6 pairs counted" in after and "5 pairs counted" not in after
        assert "As released earlier" in after and "pairs, lifecycle and phase" in after
        # the attention list names pairs as consent stands now: the withdrawn pair leaves it
        # at once (never named again); every count stays as released
        listed = ATTENTION_LINE
        assert f"{listed}chemistry meeting overdue, pairs 1, 2, 3, 4, 5, 6." in before
        assert f"{listed}chemistry meeting overdue, pairs 1, 2, 4, 5, 6." in after
        strip = [line for line in after.splitlines()
                 if not line.startswith(("As released", listed))]
        assert strip == [line for line in before.splitlines() if not line.startswith(listed)]


async def test_files_record_releases_and_stay_deterministic(store: Store, tmp_path: Path) -> None:
    pid = await _programme(store, 8)
    a = await write_report(store, pid, tmp_path / "a", now=NOW)
    await _withdraw_pair(store, 0)
    b = await write_report(store, pid, tmp_path / "b", now=NOW)
    # the withdrawal is one pair: the second file shows the first release's figures
    ja = json.loads(a[0].read_text(encoding="utf-8"))
    jb = json.loads(b[0].read_text(encoding="utf-8"))
    assert _figures(ja) == _figures(jb) and jb["held"]
    assert "Shown as released earlier" in b[1].read_text(encoding="utf-8")
    c = await write_report(store, pid, tmp_path / "c", now=NOW)
    assert [p.read_bytes() for p in b] == [p.read_bytes() for p in c]
    rows = await store.db.fetchall("SELECT fingerprints, figures FROM summary_releases")
    assert rows
    for r in rows:  # pair ids and digests only: no person, no text
        assert all(len(v) == 16 for v in json.loads(r["fingerprints"]).values())


async def test_a_too_small_summary_is_no_release_to_subtract_from(store: Store) -> None:
    pid = await _programme(store, 7)
    for i in range(3):
        await _withdraw_pair(store, i)
    small = await release_summary(store, pid, now=NOW)
    assert small["too_small"] is True and small["pairs_counted"] == "<5"
    rows = await store.db.fetchall("SELECT mentee_id FROM pairs ORDER BY id")
    ref = await store.db.scalar("SELECT subject_ref FROM participants WHERE id=?",
                                (rows[0]["mentee_id"],))
    await store.consent.record(int(rows[0]["mentee_id"]), str(ref), Scope.PROGRAMME_SUMMARY,
                               True, "test")
    shown = await release_summary(store, pid, now=NOW + timedelta(days=1))
    assert shown["pairs_counted"] == 5 and shown["held"] == {}
    # and from a shown summary, one pair leaving is held as before
    await _withdraw_pair(store, 3)
    again = await release_summary(store, pid, now=NOW + timedelta(days=2))
    assert again["pairs_counted"] == 5 and "pairs" in again["held"]
