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
from tests.conftest import Place
from tests.people import GROW_ANSWERS, Cohort
from tests.support.pgserver import Server

CONSENT_VERSION = load_flows()["consent"].version
pytestmark = pytest.mark.both_backends


def test_seal_binds_ciphertext_to_its_row() -> None:
    key = generate_key()
    blob = seal(key, b"secret", aad("answers", "1:goal", 5, "value"))
    assert open_sealed(key, blob, aad("answers", "1:goal", 5, "value")) == b"secret"
    for other in (aad("answers", "2:goal", 5, "value"), aad("answers", "1:goal", 6, "value")):
        with pytest.raises(DecryptionError):
            open_sealed(key, blob, other)
    with pytest.raises(DecryptionError):
        open_sealed(generate_key(), blob, aad("answers", "1:goal", 5, "value"))


async def test_migrations_apply_once_and_reopen(place: Place, master_key: bytes) -> None:
    s = await place.open(KeyRing(master_key), CONSENT_VERSION)
    version = await s.db.schema_version()
    assert version >= 1
    assert s.db.dialect == place.backend
    if place.backend == "sqlite":
        assert await s.db.scalar("PRAGMA journal_mode") == "wal"
        assert await s.db.scalar("PRAGMA foreign_keys") == 1
    else:
        # foreign keys hold on PostgreSQL too: no entry for a person who does not exist
        with pytest.raises(Exception, match="foreign key"):
            await s.db.execute(
                "INSERT INTO entries (participant_id, flow, flow_version, status, "
                "consent_snapshot, created_at, updated_at) VALUES (999, 'grow', '1', "
                "'draft', '{}', 'x', 'x')")
    await s.close()
    s = await place.open(KeyRing(master_key), CONSENT_VERSION)
    assert await s.db.schema_version() == version
    await s.close()


async def test_not_a_database_is_a_clear_error(tmp_path: Path, backend: str,
                                               request: pytest.FixtureRequest) -> None:
    if backend == "postgresql":
        server: Server = request.getfixturevalue("pg_server")
        db, keys = server.fresh()
        try:
            with pytest.raises(DatabaseError, match="same database as MENTORBOT_DB"):
                await Database.open(db, keystore=db)
            with pytest.raises(DatabaseError, match="needs its key store in another"):
                await Database.open(db)
            with pytest.raises(DatabaseError, match="must be a postgresql://"):
                await Database.open(db, keystore=tmp_path / "k.keys")
            gone = db.replace("/t_", "/no_such_", 1)
            with pytest.raises(DatabaseError, match="cannot connect to the database") as err:
                await Database.open(gone, keystore=keys)
            assert "check MENTORBOT_DB" in str(err.value)
            with pytest.raises(DatabaseError, match="needs the database on PostgreSQL"):
                await Database.open(tmp_path / "x.sqlite3", keystore=keys)
        finally:
            server.drop(db, keys)
        return
    bogus = tmp_path / "junk.sqlite3"
    bogus.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DatabaseError, match="not a usable SQLite database"):
        await Database.open(bogus)


async def test_wrong_master_key_is_refused(place: Place, master_key: bytes) -> None:
    s = await place.open(KeyRing(master_key), CONSENT_VERSION)
    await s.close()
    with pytest.raises(MasterKeyError, match="does not match this database"):
        await place.open(KeyRing(generate_key()), CONSENT_VERSION)


async def _every_row(url: str) -> bytes:
    """Every row of every table of a PostgreSQL database, as text (bytea as hex) and as
    the raw bytes of its bytea values: what a dump of it would hold."""
    import psycopg

    out = []
    async with await psycopg.AsyncConnection.connect(url) as conn:
        tables = await (await conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).fetchall()
        for (table,) in tables:
            for row in await (await conn.execute(f'SELECT * FROM "{table}"')).fetchall():
                for value in row:
                    out.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(out)


async def test_raw_files_hold_no_plaintext(cohort: Cohort, store: Store, db_path: Path,
                                           place: Place) -> None:
    mentee = await cohort.joined_mentee(user_id=84_211_937, name="Zebedee")
    await cohort.joined_mentor(user_id=84_211_938, name="Quentina")
    await mentee.grow()
    assert "Saved" in mentee.said
    if place.backend == "sqlite":
        # Read the files while the connection is still open, so the WAL holds recent frames.
        raw = b"".join(
            p.read_bytes()
            for p in db_path.parent.iterdir()
            if p.name.startswith(db_path.name)  # database, -wal, -shm, -journal
        )
    else:
        assert isinstance(place.db, str) and place.keystore
        raw = await _every_row(place.db) + await _every_row(place.keystore)
    # rows only (no pages, no indexes), so less than the SQLite files, yet all of them
    assert len(raw) > (10_000 if place.backend == "sqlite" else 3_000)
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
    cohort: Cohort, place: Place, store: Store, master_key: bytes
) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow()
    new_key = generate_key()
    count = await store.vault.rotate(KeyRing(new_key))
    assert count >= 2  # the mentee's data key and the lookup key
    with pytest.raises(MasterKeyError):  # the old key no longer opens it
        await place.open(KeyRing(master_key), CONSENT_VERSION)
    fresh = await place.open(KeyRing(new_key), CONSENT_VERSION)
    entry = (await fresh.entries.of(1))[0]
    assert (await fresh.entries.answers(1, entry.id))["will"] == GROW_ANSWERS["will"]
    assert (await fresh.participants.by_user(7001)) is not None  # lookup key survived
    await fresh.close()
