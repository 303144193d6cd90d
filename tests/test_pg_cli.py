"""Settings and every command on PostgreSQL (issue #20): MENTORBOT_DB and MENTORBOT_KEYSTORE
as connection strings, validated in one line each, never quoting a password; the commands
run against a throw-away server (tests/support/pgserver.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.settings import ConfigError, load_settings
from conversations.catalogue import load_flows
from reports.synthetic import generate_cohort
from storage.crypto import KeyRing, encode_key, generate_key
from storage.store import Store
from tests.support import pgserver

SECRET = "pw-Zq81sentinel"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("TELEGRAM_BOT_TOKEN", "MENTORBOT_DB", "MENTORBOT_KEYSTORE",
                "MENTORBOT_MASTER_KEY", "MENTORBOT_KEY_FILE", "MENTORBOT_PREVIOUS_MASTER_KEYS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize(
    ("db", "keystore", "message"),
    [
        (f"postgresql://bot:{SECRET}@db.example/mentorbot", None,
         "MENTORBOT_KEYSTORE: .*set MENTORBOT_KEYSTORE=postgresql://"),
        (f"postgresql://bot:{SECRET}@db.example/mentorbot",
         f"postgresql://keys:{SECRET}@db.example:5432/mentorbot",
         "MENTORBOT_KEYSTORE: .*is the same database as MENTORBOT_DB"),
        (f"postgresql://bot:{SECRET}@db.example/mentorbot", "data/k.keys",
         "MENTORBOT_KEYSTORE: .*not a file"),
        ("data/m.sqlite3", f"postgresql://keys:{SECRET}@db.example/keys",
         "MENTORBOT_KEYSTORE: .*needs MENTORBOT_DB on PostgreSQL"),
        (f"postgresql://bot:{SECRET}@db.example:port/mentorbot",
         "postgresql://keys@db.example/keys", "MENTORBOT_DB: .*malformed"),
        (f"postgresql://bot:{SECRET}@db.example/", "postgresql://keys@db.example/keys",
         "MENTORBOT_DB: .*names no database"),
        (f"postgres:/bot:{SECRET}@db.example/m", None, "MENTORBOT_DB: .*postgresql://"),
        (f"mysql://bot:{SECRET}@db.example/m", None, "MENTORBOT_DB: .*no other scheme"),
    ],
)
def test_bad_connection_strings_say_how_in_one_line_without_the_password(
        monkeypatch: pytest.MonkeyPatch, db: str, keystore: str | None, message: str) -> None:
    monkeypatch.setenv("MENTORBOT_DB", db)
    if keystore:
        monkeypatch.setenv("MENTORBOT_KEYSTORE", keystore)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings()
    assert "\n" not in str(info.value) and SECRET not in str(info.value)
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(generate_key()))
    result = CliRunner().invoke(main, ["programme", "create", "North"])
    assert result.exit_code == 2 and SECRET not in result.output
    assert "Traceback" not in result.output


def test_connection_strings_are_kept_as_strings_and_their_passwords_are_secrets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORBOT_DB", f"postgresql://bot:{SECRET}@db.example/mentorbot")
    monkeypatch.setenv("MENTORBOT_KEYSTORE",
                       "postgresql://keys@/mentorbot_keys?host=/run/pg&password=k-Secret9")
    cfg = load_settings()
    assert cfg.on_postgres
    assert cfg.mentorbot_db == f"postgresql://bot:{SECRET}@db.example/mentorbot"
    assert cfg.mentorbot_keystore == ("postgresql://keys@/mentorbot_keys?host=/run/pg&"
                                      "password=k-Secret9")
    # bot.logs.redact masks every secret value in every log line and message
    assert {SECRET, "k-Secret9"} <= set(cfg.secret_values())
    monkeypatch.setenv("MENTORBOT_DB", "data/m.sqlite3")
    monkeypatch.delenv("MENTORBOT_KEYSTORE")
    assert load_settings().mentorbot_db == Path("data/m.sqlite3")
    assert not load_settings().on_postgres


def test_an_unreachable_server_is_one_line_without_the_password(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a socket folder with no server in it: refused at once, no network involved
    monkeypatch.setenv("MENTORBOT_DB", f"postgresql://bot:{SECRET}@/m?host={tmp_path}")
    monkeypatch.setenv("MENTORBOT_KEYSTORE", f"postgresql://bot:{SECRET}@/k?host={tmp_path}")
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(generate_key()))
    runner = CliRunner()
    for args in (["programme", "create", "North"], ["report", "evaluator", "--out", "o"],
                 ["keys", "rotate", "--new-key-file", str(tmp_path / "n.key")]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "cannot connect to the" in result.output and SECRET not in result.output
        assert result.output.count("\n") == 1
    doctor = runner.invoke(main, ["doctor", "--offline"])
    assert doctor.exit_code == 1 and "FAIL  database: cannot connect" in doctor.output
    assert SECRET not in doctor.output


async def _cohort(url: str, keys: str, key: bytes) -> None:
    store = await Store.open(url, KeyRing(key), load_flows()["consent"].version, keystore=keys)
    try:
        await generate_cohort(store, pairs=3, sessions=2, seed=5, programme="North")
    finally:
        await store.close()


def test_every_command_runs_on_postgresql(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          pg_server: pgserver.Server) -> None:
    url, keys = pg_server.fresh("cli")
    key = generate_key()
    monkeypatch.setenv("MENTORBOT_DB", url)
    monkeypatch.setenv("MENTORBOT_KEYSTORE", keys)
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(key))
    monkeypatch.setenv("MENTORBOT_BOT_USERNAME", "example_mentor_bot")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abc")
    runner = CliRunner()

    def ok(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(main, list(args), input=stdin)
        assert result.exit_code == 0, (args, result.output)
        return result.output

    try:
        fresh = runner.invoke(main, ["doctor", "--offline"])  # before the first start
        assert fresh.exit_code == 0, fresh.output
        assert "WARN  database:" in fresh.output and "no mentorbot schema yet" in fresh.output
        asyncio.run(_cohort(url, keys, key))
        ok("programme", "create", "South")
        dyad = ok("dyad", "create", "--programme", "South")
        assert dyad.count("t.me/example_mentor_bot?start=") == 2
        ok("invite", "create", "--programme", "South", "--role", "coordinator")
        ok("invite", "list", "--programme", "South")
        assert "1" in ok("pair", "list", "--programme", "North 5-3")
        report = ok("report", "evaluator", "--out", "rep")
        assert "report.html" in report and (tmp_path / "rep" / "report.json").exists()
        ok("report", "coordinator", "--out", "coord", "--programme", "North 5-3")
        assert (tmp_path / "coord" / "coordinator.html").exists()
        ok("export", "--out", "exp", "--study", "s1")
        assert (tmp_path / "exp" / "entries.csv").exists()
        ok("recode")
        erased = ok("erase", "--programme", "North 5-3", "--pair", "1", "--role", "mentee",
                    "--yes")
        assert "rased" in erased
        ok("pair", "close", "--programme", "North 5-3", "2", stdin="y\n")
        chat = ok("chat", "--role", "mentee", stdin="/help\n")
        assert "you>" in chat
        doctor = ok("doctor", "--offline")
        assert "ok    database: connected to" in doctor
        assert "ok    key_store: a database of its own" in doctor
        assert "ok    tamper:" in doctor and "0 failed, 0 warnings" in doctor
        backup = ok("backup", "--out", "b/db.dump", "--keys-out", "k/keys.dump")
        assert "3 participants" not in backup and "pg_dump custom format" in backup
        for dumped in (tmp_path / "b" / "db.dump", tmp_path / "k" / "keys.dump"):
            assert dumped.stat().st_mode & 0o777 == 0o600
            assert dumped.read_bytes().startswith(b"PGDMP")
        again = runner.invoke(main, ["backup", "--out", "b/db.dump", "--keys-out", "k/x"])
        assert again.exit_code == 2 and "never overwrite" in again.output
        same = runner.invoke(main, ["backup", "--out", "b/d2", "--keys-out", "b/k2"])
        assert same.exit_code == 2 and "different folder" in same.output
        _restore_dumps(pg_server, tmp_path / "b" / "db.dump", tmp_path / "k" / "keys.dump", key)
        restore = runner.invoke(main, ["restore", "--from", "b/db"])
        assert restore.exit_code == 2 and "pg_restore" in restore.output
        new_key = tmp_path / "new.key"
        ok("keys", "rotate", "--new-key-file", str(new_key))
        monkeypatch.delenv("MENTORBOT_MASTER_KEY")
        monkeypatch.setenv("MENTORBOT_KEY_FILE", str(new_key))
        ok("pair", "list", "--programme", "North 5-3")
    finally:
        pg_server.drop(url, keys)


def _restore_dumps(server: pgserver.Server, data: Path, keys: Path, key: bytes) -> None:
    """pg_restore of both dumps into new databases opens as the same programme."""
    import subprocess

    from storage.pgdump import pg_dump

    url, keys_url = server.fresh("restored")
    try:
        for dump, target in ((data, url), (keys, keys_url)):
            subprocess.run([str(pg_dump().with_name("pg_restore")), "--no-owner",
                            f"--dbname={target}", str(dump)], check=True, capture_output=True)

        async def count() -> int:
            store = await Store.open(url, KeyRing(key), load_flows()["consent"].version,
                                     keystore=keys_url, create=False)
            try:
                rows = await store.db.fetchall("SELECT id, participant_id FROM entries")
                opened = [await store.entries.answers(int(r[1]), int(r[0])) for r in rows[:5]]
                assert all(opened)  # decrypted with the restored key store
                return len(rows)
            finally:
                await store.close()

        assert asyncio.run(count()) > 0
    finally:
        server.drop(url, keys_url)


def test_rotation_refuses_while_a_bot_runs_and_bots_run_side_by_side(
        pg_server: pgserver.Server) -> None:
    from storage.lock import StoreBusy, exclusive

    url, keys = pg_server.fresh("lock")
    try:
        busy = pytest.raises(StoreBusy, match=r"a running bot \(pid \d+\) is using")
        with exclusive(url, "a running bot", several=True), \
                exclusive(url, "a running bot", several=True), busy, \
                exclusive(url, "key rotation"):
            pass
        with exclusive(url, "key rotation"), pytest.raises(StoreBusy, match="key rotation"), \
                exclusive(url, "a running bot", several=True):
            pass
        with exclusive(url, "key rotation"):
            pass  # released when its connection closed
    finally:
        pg_server.drop(url, keys)
