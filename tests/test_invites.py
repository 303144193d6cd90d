"""Invite lifetimes are validated, and a programme can hold each join for approval."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from storage.crypto import encode_key, generate_key

pytestmark = pytest.mark.both_backends


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(generate_key()))
    monkeypatch.setenv("MENTORBOT_DB", str(tmp_path / "db.sqlite3"))
    runner = CliRunner()
    assert runner.invoke(main, ["programme", "create", "North"]).exit_code == 0
    return runner


@pytest.mark.parametrize("days", ["0", "-1", "31", "400"])
def test_invite_lifetimes_outside_one_to_thirty_days_are_refused(
    admin: CliRunner, tmp_path: Path, days: str
) -> None:
    for args in (
        ["dyad", "create", "--programme", "North", "--days", days],
        ["invite", "create", "--programme", "North", "--role", "mentee", "--days", days],
    ):
        result = admin.invoke(main, args)
        assert result.exit_code == 2, result.output
        assert "--days must be a whole number of days from 1 to 30" in result.output
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        # refused before anything was written: no pair, no invite
        assert conn.execute("SELECT COUNT(*) FROM pairs").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM invites").fetchone() == (0,)


@pytest.mark.parametrize("days", ["1", "30"])
def test_lifetimes_at_the_limits_are_accepted(admin: CliRunner, days: str) -> None:
    result = admin.invoke(main, ["dyad", "create", "--programme", "North", "--days", days])
    assert result.exit_code == 0 and f"expire in {days} days" in result.output
