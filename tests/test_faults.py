"""Fault injection at the Bot API (429, 5xx, drops, slow answers, blocked users) while a
load runs: everyone else is served and nothing acknowledged is lost."""

from __future__ import annotations

from tests.support.crash import faults, run


def test_bot_keeps_serving_through_api_faults() -> None:
    result = run(kills=1, people=6, seed=4, timeout=240, faults=faults(0.05), blocked=2)
    assert result.faults_injected >= 10
    assert result.finished == result.people == 4
    assert result.lost == 0 and result.resumed_wrong == 0
    assert result.integrity == "ok"
