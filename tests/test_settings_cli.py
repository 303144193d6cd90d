"""Configuration and the command line: one clear line for every bad setting, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.settings import ConfigError, load_settings
from storage.crypto import encode_key, generate_key

ENV_KEYS = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE_URL",
    "MENTORBOT_DB",
    "MENTORBOT_MASTER_KEY",
    "MENTORBOT_KEY_FILE",
    "MENTORBOT_PREVIOUS_MASTER_KEYS",
    "MENTORBOT_LOG_LEVEL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_blank_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("TELEGRAM_BOT_TOKEN=\nMENTORBOT_MASTER_KEY=\nMENTORBOT_KEY_FILE=\n")
    cfg = load_settings()
    assert cfg.token is None
    with pytest.raises(ConfigError, match="No master key"):
        cfg.keyring()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MENTORBOT_MASTER_KEY": "not base64!!"}, "MENTORBOT_MASTER_KEY: is not valid base64"),
        ({"MENTORBOT_MASTER_KEY": encode_key(b"short")}, "must decode to 32 bytes"),
        ({"MENTORBOT_KEY_FILE": "/nonexistent/key"}, "MENTORBOT_KEY_FILE: cannot read"),
    ],
)
def test_bad_keys_say_how_to_fix(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings().keyring()
    assert "\n" not in str(info.value)


def test_malformed_token_and_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "hello")
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        load_settings()
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    monkeypatch.setenv("MENTORBOT_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="MENTORBOT_LOG_LEVEL"):
        load_settings()


def test_cli_admin_journey_and_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runner = CliRunner()
    key = runner.invoke(main, ["keys", "generate"]).output.strip()
    assert len(key) == 44
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", key)
    monkeypatch.setenv("MENTORBOT_DB", str(tmp_path / "db.sqlite3"))
    monkeypatch.setenv("MENTORBOT_BOT_USERNAME", "example_mentor_bot")
    assert runner.invoke(main, ["programme", "create", "North"]).exit_code == 0
    again = runner.invoke(main, ["programme", "create", "North"])
    assert again.exit_code == 2 and "already exists" in again.output
    dyad = runner.invoke(main, ["dyad", "create", "--programme", "North"])
    assert dyad.exit_code == 0
    links = [line for line in dyad.output.splitlines() if "t.me/example_mentor_bot?start=" in line]
    assert len(links) == 2
    codes = [line.split()[1] for line in links]
    assert all(len(c) >= 16 for c in codes) and codes[0] != codes[1]
    coord = runner.invoke(
        main, ["invite", "create", "--programme", "North", "--role", "coordinator"]
    )
    assert coord.exit_code == 0 and "coordinator:" in coord.output
    missing = runner.invoke(main, ["dyad", "create", "--programme", "South"])
    assert missing.exit_code == 2 and "no programme called 'South'" in missing.output
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(generate_key()))
    wrong = runner.invoke(main, ["programme", "create", "East"])
    assert wrong.exit_code == 2 and "does not match this database" in wrong.output
    assert "Traceback" not in wrong.output


def test_cli_rotate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runner = CliRunner()
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(generate_key()))
    monkeypatch.setenv("MENTORBOT_DB", str(tmp_path / "db.sqlite3"))
    assert runner.invoke(main, ["programme", "create", "North"]).exit_code == 0
    new_file = tmp_path / "new.key"
    out = runner.invoke(main, ["keys", "rotate", "--new-key-file", str(new_file)])
    assert out.exit_code == 0, out.output
    assert oct(new_file.stat().st_mode & 0o777) == "0o600"
    monkeypatch.delenv("MENTORBOT_MASTER_KEY")
    monkeypatch.setenv("MENTORBOT_KEY_FILE", str(new_file))
    assert runner.invoke(main, ["programme", "create", "South"]).exit_code == 0


def test_run_without_token_runs_the_demo(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run"], env={**os.environ, "TELEGRAM_BOT_TOKEN": ""})
    assert result.exit_code == 0, result.output
    assert "demo instead" in result.output
    assert (tmp_path / "demo-output" / "mentorbot.sqlite3").exists()
