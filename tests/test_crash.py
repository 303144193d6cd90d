"""Crash safety in CI: a smaller run of the crash runner (tests/support/crash.py; the full
run is benchmarks/crash_test.py). The bot is SIGKILLed mid-flow and restarted; nothing
acknowledged may be lost."""

from __future__ import annotations

from tests.support.crash import run


def test_sigkill_loses_nothing_acknowledged() -> None:
    result = run(kills=4, people=5, seed=3, timeout=240)
    assert result.kills == 4
    assert result.finished == result.people
    assert result.acknowledged >= result.people * 4
    assert result.lost == 0
    assert result.resumed_wrong == 0
    assert result.integrity == "ok"
