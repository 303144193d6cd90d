"""A database backup taken before an erasure, restored with the current key store or with
a key store backup as old as itself, does not bring the erased person back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot import ops
from bot.cli import main
from conversations.catalogue import consent_version
from conversations.service import Service
from storage.crypto import KeyRing, encode_key, generate_key
from storage.db import default_keystore
from storage.store import Store
from tests.conftest import Place
from tests.people import Cohort

MENTEE, MENTOR = 7001, 7002


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
async def erased_after_backup(tmp_path: Path) -> tuple[Path, bytes, Path, Path, str]:
    """A live store whose mentee was erased after the nightly backup; returns the live
    database, the key, the database backup, its key store backup and the mentee's ref."""
    key = generate_key()
    live = tmp_path / "live" / "bot.sqlite3"
    store = await Store.open(live, KeyRing(key), consent_version())
    try:
        cohort = await Cohort.create(store, Service(store))
        await (await cohort.joined_mentee(MENTEE)).grow()
        await cohort.joined_mentor(MENTOR)
        backup = tmp_path / "backups" / "db" / "nightly.sqlite3"
        keys_backup = tmp_path / "backups" / "keys" / "nightly.keys"
        await ops.backup(live, default_keystore(live), backup, keys_backup)
        mentee = await store.participants.by_user(MENTEE)
        assert mentee is not None
        ref = mentee.subject_ref
        await store.erase(mentee.id)
    finally:
        await store.close()
    return live, key, backup, keys_backup, ref


@pytest.mark.parametrize("key_store", ["current", "the backup's own"])
def test_a_pre_erasure_backup_does_not_bring_the_person_back(
    erased_after_backup: tuple[Path, bytes, Path, Path, str],
    monkeypatch: pytest.MonkeyPatch,
    key_store: str,
) -> None:
    live, key, backup, keys_backup, ref = erased_after_backup
    assert rows(backup, "SELECT COUNT(*) FROM participants") == [(2,)]
    monkeypatch.setenv("MENTORBOT_DB", str(live))
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(key))
    args = ["restore", "--from", str(backup), "--force"]
    if key_store != "current":
        args += ["--keys-from", str(keys_backup)]  # it still holds the mentee's data key
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Erased again 1 people" in result.output

    # Gone from the restored database: participant row, Telegram-id hash, consent, entries.
    assert rows(live, "SELECT COUNT(*) FROM participants") == [(1,)]
    assert rows(live, "SELECT subject_ref FROM participants") != [(ref,)]
    assert rows(live, "SELECT COUNT(*) FROM entries") == [(0,)]
    assert rows(live, "SELECT COUNT(*) FROM consent_ledger WHERE participant_id = 1") == [(0,)]
    # ... and from the restored key store.
    keys = default_keystore(live)
    assert rows(keys, f"SELECT COUNT(*) FROM data_keys WHERE subject_ref = '{ref}'") == [(0,)]
    # The ledger lines recording the erasure link to nothing the backup holds.
    lines = rows(live, "SELECT subject_ref FROM consent_ledger WHERE source = 'erasure'")
    assert lines and all(str(r[0]).encode() not in backup.read_bytes() for r in lines)
    assert ref.encode() not in live.read_bytes()

    doctor = CliRunner().invoke(main, ["doctor", "--offline"])
    assert "participants have no data key" not in doctor.output, doctor.output


@pytest.mark.both_backends
async def test_an_erasure_cut_short_is_finished_at_the_next_start(place: Place) -> None:
    key = KeyRing(generate_key())
    store = await place.open(key, consent_version())
    cohort = await Cohort.create(store, Service(store))
    await cohort.joined_mentee(MENTEE)
    mentee = await store.participants.by_user(MENTEE)
    assert mentee is not None
    await store.vault.shred(mentee.subject_ref)  # the first of erasure's two commits only
    await store.close()
    again = await place.open(key, consent_version())
    try:
        assert again.erasures_applied == 1
        assert await again.participants.get(mentee.id) is None
    finally:
        await again.close()
