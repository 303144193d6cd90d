"""Coordinator summaries: consent, small-cell suppression, no personal data, chat and files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.coordinator import DIGEST_KEY, JOB_PREFIX, CoordinatorTools, parse_schedule
from reports.codebook import load_codebook
from reports.coordinator import compute_summary, render_html, render_text, to_json, write_report
from reports.suppression import TOTAL, WITHHELD
from reports.synthetic import generate_cohort
from storage.lifecycle import Lifecycle
from storage.models import Role, Scope
from storage.store import Store
from tests.support.harness import TgUser, running_app

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends

NOW = datetime(2030, 1, 15, 12, tzinfo=UTC)
LEAD_ID, LEAD_NAME, LEAD_USER = 591_234_567, "Philippa", "pip_lead"


async def _programme(store: Store, pairs: int) -> int:
    await generate_cohort(store, pairs=pairs, sessions=2, consent_rate=1.0)
    (programme,) = await store.programmes.all()
    return programme.id


async def _pairs(store: Store) -> list[tuple[int, int, int]]:
    rows = await store.db.fetchall("SELECT id, mentor_id, mentee_id FROM pairs ORDER BY id")
    return [(r["id"], r["mentor_id"], r["mentee_id"]) for r in rows]


async def _stop_summary(store: Store, participant_id: int) -> None:
    ref = await store.db.scalar("SELECT subject_ref FROM participants WHERE id=?",
                                (participant_id,))
    await store.consent.record(participant_id, str(ref), Scope.PROGRAMME_SUMMARY, False, "test")


async def test_only_pairs_whose_members_consent_count_and_small_programmes_say_so(
    store: Store,
) -> None:
    pid = await _programme(store, 7)
    assert (await compute_summary(store, pid, now=NOW))["pairs_counted"] == 7
    pairs = await _pairs(store)
    await _stop_summary(store, pairs[0][1])  # a mentor withdraws: their whole pair drops out
    assert (await compute_summary(store, pid, now=NOW))["pairs_counted"] == 6
    ref = await store.db.scalar("SELECT subject_ref FROM participants WHERE id=?",
                                (pairs[1][2],))
    await store.consent.record(pairs[1][2], str(ref), Scope.PARTICIPATE, False, "test")
    assert (await compute_summary(store, pid, now=NOW))["pairs_counted"] == 5
    await _stop_summary(store, pairs[2][2])
    summary = await compute_summary(store, pid, now=NOW)
    assert summary["too_small"] is True and summary["pairs_counted"] == "<5"
    assert set(summary) == {"version", "programme", "as_of", "threshold", "rules", "too_small",
                            "pairs_counted"}  # no figure of any kind
    assert "too small to summarise" in render_text(summary)
    assert "too small to summarise" in render_html(summary)


async def test_small_cells_and_the_complementary_cell_are_suppressed(store: Store) -> None:
    pid = await _programme(store, 12)
    life = Lifecycle(store.db)
    await life.ensure_matched(NOW)
    pairs = await _pairs(store)
    # 9 pairs meeting, 3 closed
    for pair_id, _, _ in pairs[:9]:
        await life.record(pair_id, "session_held", at=NOW - timedelta(days=3), source="system",
                          now=NOW)
    for pair_id, _, _ in pairs[9:]:
        await life.record(pair_id, "closed", at=NOW - timedelta(days=2), source="coordinator",
                          now=NOW)
    summary = await compute_summary(store, pid, now=NOW)
    states = summary["pairs_by_state"]
    assert summary["pairs_counted"] == 12
    # zeros describe no one and are shown as 0; the one small cell (3 closed) would be
    # 12 - 9 with every other cell shown, so the 9 is withheld beside it
    assert states["closed"] == "<5" and states["matched"] == 0
    assert states["active"] == WITHHELD
    assert not any(isinstance(v, int) and 0 < v < 5 for v in states.values())
    # all 9 open pairs have met: 0 overdue is shown as 0, with its rate
    chemistry = summary["attention"]["chemistry_overdue"]
    assert chemistry["overdue"] == 0 and chemistry["not_overdue"] == 9
    assert chemistry[TOTAL] == 9 and chemistry["rate"] == 0.0
    assert summary["needing_attention"]["chemistry_overdue"] == []
    phases = summary["pairs_by_phase"]
    assert not any(isinstance(v, int) and 0 < v < 5 for v in phases.values())
    for block in ("chemistry_overdue", "quiet"):
        cells = summary["attention"].get(block)
        if cells is not None:
            shown = [v for k, v in cells.items() if k not in (TOTAL, "rate")]
            assert not any(isinstance(v, int) and 0 < v < 5 for v in shown)
            if "<5" in shown:
                assert WITHHELD in shown and cells["rate"] is None
    for row in summary["reflection_completion"] + summary["checkin_response"]:
        for key in ("completed", "not_completed", "responded", "not_responded"):
            value = row.get(key)
            assert not (isinstance(value, int) and 0 < value < 5)
    # no per-person or per-pair rows, no codes of sensitive topics, no free text
    text = to_json(summary)
    for code in load_codebook().sensitive_ids():
        assert code not in text
    assert "TOPIC_" not in text and "P-" not in text and "D-" not in text


async def test_files_are_deterministic_and_escaped(store: Store, tmp_path: Path) -> None:
    await generate_cohort(store, pairs=6, sessions=2, consent_rate=1.0,
                          programme="<script>alert(1)</script>")
    (programme,) = await store.programmes.all()
    a = await write_report(store, programme.id, tmp_path / "a", now=NOW)
    b = await write_report(store, programme.id, tmp_path / "b", now=NOW)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    html = (tmp_path / "a" / "coordinator.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html
    data = json.loads((tmp_path / "a" / "coordinator.json").read_text(encoding="utf-8"))
    assert data["pairs_counted"] == 6 and data["as_of"] == "2030-01-15"


def test_digest_schedule_parsing() -> None:
    assert parse_schedule("mon 08:30") == (1, datetime(2000, 1, 1, 8, 30).time())
    assert parse_schedule("Sunday 23:59")[0] == 0  # type: ignore[index]
    for bad in ("", "mon", "mon 8", "mon 24:00", "funday 08:00", "mon 08:3"):
        assert parse_schedule(bad) is None


async def test_summary_and_digest_in_the_chat(store: Store) -> None:
    pid = await _programme(store, 6)
    code = await store.programmes.create_invite(pid, Role.COORDINATOR)
    mentee_code = await store.programmes.create_invite(pid, Role.MENTEE)
    async with running_app(store) as (app, standin):
        lead = TgUser(app, standin, LEAD_ID, LEAD_NAME, LEAD_USER)
        await lead.send(f"/start {code}")
        said = lead.last_texts(await lead.send("/summary"))
        assert "Programme summary" in said and "6 pairs counted" in said
        for needle in (LEAD_NAME, LEAD_USER, str(LEAD_ID)):
            assert needle not in said

        # other roles are refused, and nothing changes
        other = TgUser(app, standin, LEAD_ID + 1, "Mina")
        await other.send(f"/start {mentee_code}")
        refused = other.last_texts(await other.send("/summary"))
        assert "Programme summary" not in refused and "coordinator" in refused

        said = lead.last_texts(await lead.send("/digest mon 08:30"))
        assert "Monday at 08:30" in said
        assert app.job_queue is not None
        jobs = [j for j in app.job_queue.jobs() if j.name and j.name.startswith(JOB_PREFIX)]
        assert len(jobs) == 1
        for needle in (LEAD_NAME, LEAD_USER, str(LEAD_ID)):
            assert needle not in jobs[0].name  # type: ignore[operator]
        assert "Monday at 08:30" in lead.last_texts(await lead.send("/digest"))
        assert "couldn't read" in lead.last_texts(await lead.send("/digest someday"))

        tools = app.bot_data[DIGEST_KEY]
        assert isinstance(tools, CoordinatorTools)
        me = await store.participants.by_user(LEAD_ID)
        assert me is not None
        assert await tools.digest_for(me.id)
        digest = lead.last_texts(lead.new())
        assert "weekly programme summary" in digest and "6 pairs counted" in digest

        await lead.send("/digest off")
        assert not [j for j in app.job_queue.jobs()
                    if j.name and j.name.startswith(JOB_PREFIX) and not j.removed]
    # the schedule survives a restart only while it is set
    async with running_app(store) as (app, _):
        assert app.job_queue is not None
        assert not [j for j in app.job_queue.jobs() if j.name and j.name.startswith(JOB_PREFIX)]


async def test_a_twelve_pair_summary_shows_zeros_and_names_only_consenting_pairs(
    store: Store,
) -> None:
    pid = await _programme(store, 12)
    pairs = await _pairs(store)
    declined = pairs[4][0]
    await _stop_summary(store, pairs[4][2])  # this pair's mentee declines summaries
    code = await store.programmes.create_invite(pid, Role.COORDINATOR)
    async with running_app(store) as (app, standin):
        lead = TgUser(app, standin, LEAD_ID, LEAD_NAME)
        await lead.send(f"/start {code}")
        text = lead.last_texts(await lead.send("/summary"))
    assert "11 pairs counted" in text
    # zero counts are shown as 0, not hidden like small ones
    assert "Closed 0" in text and "Extended 0" in text
    summary = await compute_summary(store, pid, now=NOW)
    assert summary["pairs_by_state"]["closed"] == 0
    # the attention list names counted pairs by number and never the declined one
    needing = summary["needing_attention"]
    named = set(needing["chemistry_overdue"]) | set(needing["quiet"])
    assert named and declined not in named
    assert named <= {p for p, _, _ in pairs}
    lines = [line for line in text.splitlines() if line.startswith("Needing attention")]
    assert lines and all(f" {declined}," not in line and f" {declined}." not in line
                         for line in lines)
    for figure in (summary["attention"]["chemistry_overdue"], summary["attention"]["quiet"]):
        shown = [v for k, v in figure.items() if k not in (TOTAL, "rate")]
        if all(isinstance(v, int) for v in shown):
            assert figure["rate"] is not None  # a rate whenever both counts are shown
