"""Relationship phases: forward moves, the two regressions the model names, closure, Kram."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.phases import (
    DIRECTION,
    KRAM_PRE,
    MOVING_ON,
    PHASES,
    PROGRESSION,
    RAPPORT,
    WINDING_UP,
    PairHistory,
    allowed,
    infer,
)
from storage.store import Store
from tests.people import Cohort
from tests.test_report_evaluator import START, episode, pair_ids, report, write_entry

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends


def views(*phases: str, every: int = 30, first: int = 10) -> list[tuple[int, str]]:
    return [(first + k * every, p) for k, p in enumerate(phases)]


def path(history: PairHistory) -> list[str]:
    return [p.phase for p in infer(history).points]


def test_mentor_views_move_the_pair_forward_one_phase_at_a_time() -> None:
    history = PairHistory(
        events=[(0, "matched"), (10, "EP_CHEMISTRY_MEETING")],
        views=views(RAPPORT, DIRECTION, PROGRESSION, PROGRESSION),
    )
    timeline = infer(history)
    assert [s.phase for s in timeline.segments] == [RAPPORT, DIRECTION, PROGRESSION]
    assert all(t.kind == "forward" for t in timeline.transitions)
    assert timeline.current == PROGRESSION
    assert "mentor's view" in timeline.transitions[0].sources


def test_a_jump_is_taken_one_step_per_observation() -> None:
    # the mentor says "progression" at once; the model only moves one phase per point
    history = PairHistory(
        events=[(0, "matched")], views=views(PROGRESSION, PROGRESSION, PROGRESSION)
    )
    phases = path(history)
    assert phases[0] == RAPPORT
    assert all(allowed(a, b) for a, b in itertools.pairwise(phases))
    assert phases[-1] == PROGRESSION


def test_regression_to_building_rapport_is_inferred_and_shown() -> None:
    history = PairHistory(
        events=[(0, "matched")],
        views=views(RAPPORT, DIRECTION, PROGRESSION, PROGRESSION, RAPPORT, DIRECTION, PROGRESSION),
        signals=[(130, RAPPORT, 0.85)],  # "tension between us"
    )
    timeline = infer(history)
    (regression,) = timeline.regressions
    assert (regression.from_phase, regression.to_phase) == (PROGRESSION, RAPPORT)
    assert regression.day == 130
    assert timeline.current == PROGRESSION
    assert timeline.to_json()["transitions"][2]["kind"] == "regression"


def test_regression_to_setting_direction() -> None:
    history = PairHistory(views=views(RAPPORT, DIRECTION, PROGRESSION, PROGRESSION, DIRECTION))
    (regression,) = infer(history).regressions
    assert (regression.from_phase, regression.to_phase) == (PROGRESSION, DIRECTION)


def test_one_weak_text_cue_does_not_make_a_regression() -> None:
    history = PairHistory(
        views=views(RAPPORT, DIRECTION, PROGRESSION, PROGRESSION), signals=[(95, RAPPORT, 0.6)]
    )
    assert infer(history).regressions == ()


def test_no_backward_move_after_winding_up() -> None:
    history = PairHistory(views=views(RAPPORT, DIRECTION, PROGRESSION, WINDING_UP, RAPPORT))
    phases = path(history)
    assert phases[-1] in (WINDING_UP, MOVING_ON)
    assert all(allowed(a, b) for a, b in itertools.pairwise(phases))


def test_closure_winds_up_and_contact_afterwards_is_moving_on() -> None:
    history = PairHistory(
        events=[(0, "matched"), (150, "EP_CLOSING_SESSION"), (152, "closed")],
        views=views(RAPPORT, DIRECTION, PROGRESSION, PROGRESSION),
        contacts=[200, 240],
    )
    timeline = infer(history)
    phases = [p.phase for p in timeline.points]
    assert WINDING_UP in phases and phases[-1] == MOVING_ON
    assert [k for k, _, _ in timeline.kram][-2:] == ["KRAM_SEPARATION", "KRAM_REDEFINITION"]


def test_kram_crosswalk_with_pre_initiation() -> None:
    history = PairHistory(
        events=[(0, "matched"), (21, "EP_CHEMISTRY_MEETING")],
        views=views(RAPPORT, DIRECTION, PROGRESSION, first=21),
    )
    kram = [k for k, _, _ in infer(history).kram]
    assert kram == [KRAM_PRE, "KRAM_INITIATION", "KRAM_CULTIVATION"]


def test_empty_history() -> None:
    timeline = infer(PairHistory())
    assert timeline.current is None and timeline.to_json()["segments"] == []


phase_names = st.sampled_from(PHASES)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 400), phase_names), max_size=12),
    st.lists(st.tuples(st.integers(0, 400), phase_names, st.floats(0.1, 0.97)), max_size=12),
    st.lists(
        st.tuples(
            st.integers(0, 400),
            st.sampled_from(
                [
                    "matched",
                    "closed",
                    "extended",
                    "chemistry_held",
                    "EP_CLOSING_SESSION",
                    "session_held",
                ]
            ),
        ),
        max_size=5,
    ),
)
def test_only_allowed_moves_ever(
    views_: list[tuple[int, str]],
    signals: list[tuple[int, str, float]],
    events: list[tuple[int, str]],
) -> None:
    timeline = infer(PairHistory(events=events, views=views_, signals=signals))
    phases = [p.phase for p in timeline.points]
    assert all(allowed(a, b) for a, b in itertools.pairwise(phases))
    assert [p.day for p in timeline.points] == sorted({p.day for p in timeline.points})
    for t in timeline.transitions:
        assert t.kind == (
            "regression" if PHASES.index(t.to_phase) < PHASES.index(t.from_phase) else "forward"
        )


async def test_report_shows_a_pairs_regression(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    await cohort.joined_mentee()
    await cohort.joined_mentor()
    mentor_id, mentee_id = await pair_ids(store, cohort)
    plan = [
        (10, RAPPORT, "EP_CHEMISTRY_MEETING"),
        (40, DIRECTION, "EP_FORMAL_SESSION"),
        (70, PROGRESSION, "EP_FORMAL_SESSION"),
        (100, PROGRESSION, "EP_FORMAL_SESSION"),
        (130, RAPPORT, "EP_FORMAL_SESSION"),
    ]
    for day, phase, kind in plan:
        await write_entry(
            store,
            mentor_id,
            cohort.pair_id,
            "episode_log",
            episode(START + timedelta(days=day), phase, kind=kind),
            START + timedelta(days=day),
        )
    await write_entry(
        store,
        mentee_id,
        cohort.pair_id,
        "grow",
        {"goal": "there is some tension between us and I felt uncomfortable"},
        START + timedelta(days=131),
    )
    out = tmp_path / "out"
    data = await report(store, out)
    (timeline,) = data["phases"]["pairs"].values()
    regressions = [t for t in timeline["transitions"] if t["kind"] == "regression"]
    assert [(t["from"], t["to"], t["day"]) for t in regressions] == [(PROGRESSION, RAPPORT, 130)]
    assert "mentor's view" in regressions[0]["evidence"]
    assert data["phases"]["pairs_with_regressions"] == 1
    assert [PROGRESSION, RAPPORT, "regression", 1] in data["phases"]["transitions"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "regression at month" in html
    assert json.dumps(data["phases"]["distribution"]["counts"])
