"""`mentorbot migrate-store`: a real SQLite programme moved to a real PostgreSQL server (the
throw-away one of tests/support/pgserver.py), ciphertext and wrapped keys as they were."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from bot.cli import main
from conversations.catalogue import load_flows
from reports.synthetic import generate_cohort
from storage.crypto import KeyRing, encode_key, generate_key
from storage.store import Store
from tests.support import pgserver


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("MENTORBOT_DB", "MENTORBOT_KEYSTORE", "MENTORBOT_MASTER_KEY",
                "MENTORBOT_KEY_FILE", "MENTORBOT_PREVIOUS_MASTER_KEYS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


async def _programme(path: Path, key: bytes) -> list[str]:
    """A coded programme with one person erased; the texts it holds, to look for later."""
    store = await Store.open(path, KeyRing(key), load_flows()["consent"].version)
    try:
        await generate_cohort(store, pairs=4, sessions=3, seed=9)
        first = await store.db.scalar("SELECT MIN(id) FROM participants")
        await store.erase(int(first))
        texts = []
        for row in await store.db.fetchall("SELECT id, participant_id FROM entries"):
            answers = await store.entries.answers(int(row[1]), int(row[0]))
            texts += [v for v in answers.values() if isinstance(v, str) and len(v) > 12]
        return texts
    finally:
        await store.close()


def _raw(conn: object, sql: str) -> list[tuple[object, ...]]:
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
            for r in conn.execute(sql).fetchall()]  # type: ignore[attr-defined]


def test_a_sqlite_programme_moves_to_postgresql_as_it_was(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_server: pgserver.Server) -> None:
    key = generate_key()
    source = tmp_path / "m.sqlite3"
    texts = asyncio.run(_programme(source, key))
    assert texts
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(key))
    url, keys = pg_server.fresh("move")
    runner = CliRunner()
    try:
        moved = runner.invoke(main, ["migrate-store", "--from", f"sqlite:{source}",
                                     "--to", url, "--keystore", keys])
        assert moved.exit_code == 0, moved.output
        assert "the same count in every table" in moved.output
        assert "sample entries in both stores: identical" in moved.output
        assert not any(t in moved.output for t in texts)  # counts and table names only
        # rows as stored: the same ids and the same ciphertext, the same wrapped keys
        lite = sqlite3.connect(source)
        lite.execute("ATTACH DATABASE ? AS keys", (str(source) + ".keys",))
        with psycopg.connect(url) as pg, psycopg.connect(keys) as kpg:
            for sql in ("SELECT entry_id, step_id, value_ct FROM answers ORDER BY 1, 2",
                        "SELECT id, participant_id, status, status_mac FROM entries ORDER BY 1",
                        "SELECT id, subject_ref FROM participants ORDER BY 1"):
                assert _raw(lite, sql) == _raw(pg, sql)
            wrapped = "subject_ref, wrapped, kek_id, created_at, pending"
            assert _raw(lite, f"SELECT {wrapped} FROM keys.data_keys ORDER BY 1") == \
                _raw(kpg, f"SELECT {wrapped} FROM data_keys ORDER BY 1")
            assert _raw(lite, "SELECT COUNT(*) FROM keys.erasures") == \
                _raw(kpg, "SELECT COUNT(*) FROM erasures")
            assert not _raw(pg, "SELECT * FROM information_schema.tables WHERE table_name "
                                "= 'data_keys' AND table_schema = current_schema()")
        lite.close()
        # the moved programme runs on: doctor passes and new rows continue after the ids
        monkeypatch.setenv("MENTORBOT_DB", url)
        monkeypatch.setenv("MENTORBOT_KEYSTORE", keys)
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abc")
        doctor = runner.invoke(main, ["doctor", "--offline"])
        assert "0 failed" in doctor.output, doctor.output
        assert runner.invoke(main, ["programme", "create", "After"]).exit_code == 0
        dyad = runner.invoke(main, ["dyad", "create", "--programme", "After"])
        assert dyad.exit_code == 0, dyad.output
        report = runner.invoke(main, ["report", "evaluator", "--out", "rep"])
        assert report.exit_code == 0, report.output
        # a second run finds the target full and writes nothing
        again = runner.invoke(main, ["migrate-store", "--from", f"sqlite:{source}",
                                     "--to", url, "--keystore", keys])
        assert again.exit_code == 2 and "is not empty" in again.output
    finally:
        pg_server.drop(url, keys)


def test_refusals_come_before_anything_is_written(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_server: pgserver.Server) -> None:
    key = generate_key()
    source = tmp_path / "m.sqlite3"
    asyncio.run(_programme(source, key))
    url, keys = pg_server.fresh("refuse")
    runner = CliRunner()
    try:
        monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(generate_key()))
        wrong = runner.invoke(main, ["migrate-store", "--from", f"sqlite:{source}",
                                     "--to", url, "--keystore", keys])
        assert wrong.exit_code == 2 and "master key" in wrong.output
        monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(key))
        same = runner.invoke(main, ["migrate-store", "--from", f"sqlite:{source}",
                                    "--to", url, "--keystore", url])
        assert same.exit_code == 2 and "same database" in same.output
        with psycopg.connect(url) as pg:
            assert not _raw(pg, "SELECT 1 FROM information_schema.tables WHERE table_name = "
                                "'participants' AND table_schema = current_schema()")
        from storage.lock import exclusive

        with exclusive(source, "a running bot"):
            busy = runner.invoke(main, ["migrate-store", "--from", f"sqlite:{source}",
                                        "--to", url, "--keystore", keys])
        assert busy.exit_code == 2 and "a running bot" in busy.output
    finally:
        pg_server.drop(url, keys)
