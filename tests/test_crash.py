"""Crash safety in CI: a smaller run of benchmarks/crash_test.py (the full run has its own
command). The bot is SIGKILLed mid-flow and restarted; nothing acknowledged may be lost."""

from __future__ import annotations

from benchmarks.crash_test import run


def test_sigkill_loses_nothing_acknowledged() -> None:
    result = run(kills=4, people=5, seed=3, timeout=240)
    assert result.kills == 4
    assert result.finished == result.people
    assert result.acknowledged >= result.people * 4
    assert result.lost == 0
    assert result.resumed_wrong == 0
    assert result.integrity == "ok"
