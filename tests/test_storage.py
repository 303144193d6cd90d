"""Storage for real: files on disk, ciphertext on disk, migrations, keys and rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from conversations.catalogue import load_flows
from storage.crypto import (
    DecryptionError,
    KeyRing,
    MasterKeyError,
    aad,
    generate_key,
    open_sealed,
    seal,
)
from storage.db import Database, DatabaseError
from storage.store import Store
from tests.people import GROW_ANSWERS, Cohort

CONSENT_VERSION = load_flows()["consent"].version


def test_seal_binds_ciphertext_to_its_row() -> None:
    key = generate_key()
    blob = seal(key, b"secret", aad("answers", "1:goal", 5, "value"))
    assert open_sealed(key, blob, aad("answers", "1:goal", 5, "value")) == b"secret"
    for other in (aad("answers", "2:goal", 5, "value"), aad("answers", "1:goal", 6, "value")):
        with pytest.raises(DecryptionError):
            open_sealed(key, blob, other)
    with pytest.raises(DecryptionError):
        open_sealed(generate_key(), blob, aad("answers", "1:goal", 5, "value"))


async def test_migrations_apply_once_and_reopen(db_path: Path, master_key: bytes) -> None:
    s = await Store.open(db_path, KeyRing(master_key), CONSENT_VERSION)
    version = await s.db.schema_version()
    assert version >= 1
    assert await s.db.scalar("PRAGMA journal_mode") == "wal"
    assert await s.db.scalar("PRAGMA foreign_keys") == 1
    await s.close()
    s = await Store.open(db_path, KeyRing(master_key), CONSENT_VERSION)
    assert await s.db.schema_version() == version
    await s.close()


async def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "junk.sqlite3"
    bogus.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DatabaseError, match="not a usable SQLite database"):
        await Database.open(bogus)


async def test_wrong_master_key_is_refused(db_path: Path, master_key: bytes) -> None:
    s = await Store.open(db_path, KeyRing(master_key), CONSENT_VERSION)
    await s.close()
    with pytest.raises(MasterKeyError, match="does not match this database"):
        await Store.open(db_path, KeyRing(generate_key()), CONSENT_VERSION)


async def test_raw_files_hold_no_plaintext(cohort: Cohort, store: Store, db_path: Path) -> None:
    mentee = await cohort.joined_mentee(user_id=84_211_937, name="Zebedee")
    await cohort.joined_mentor(user_id=84_211_938, name="Quentina")
    await mentee.grow()
    assert "Saved" in mentee.said
    # Read the files while the connection is still open, so the WAL holds recent frames.
    raw = b"".join(
        p.read_bytes()
        for p in db_path.parent.iterdir()
        if p.name.startswith(db_path.name)  # database, -wal, -shm, -journal
    )
    assert len(raw) > 10_000
    secrets = [
        *GROW_ANSWERS.values(),
        "Okafor",
        "Zebedee",
        "Quentina",
        "84211937",
        "84211938",
        str(84_211_937 + 1_000_000),
    ]
    for secret in secrets:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert secret.encode(encoding) not in raw, secret
    for number in (84_211_937, 84_211_938, 84_211_937 + 1_000_000):
        for width in (4, 8):
            assert number.to_bytes(width, "big") not in raw
    # and the answers really are there, encrypted
    entries = await store.entries.of(1)
    assert (
        entries and (await store.entries.answers(1, entries[0].id))["goal"] == GROW_ANSWERS["goal"]
    )


async def test_rotation_rewraps_every_key(
    cohort: Cohort, db_path: Path, store: Store, master_key: bytes
) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow()
    new_key = generate_key()
    count = await store.vault.rotate(KeyRing(new_key))
    assert count >= 2  # the mentee's data key and the lookup key
    with pytest.raises(MasterKeyError):  # the old key no longer opens it
        await Store.open(db_path, KeyRing(master_key), CONSENT_VERSION)
    fresh = await Store.open(db_path, KeyRing(new_key), CONSENT_VERSION)
    entry = (await fresh.entries.of(1))[0]
    assert (await fresh.entries.answers(1, entry.id))["will"] == GROW_ANSWERS["will"]
    assert (await fresh.participants.by_user(7001)) is not None  # lookup key survived
    await fresh.close()
