"""Online backup and restore of the database and the key store.

The database and the key store are two SQLite files (see storage/keystore.sql). A backup is
two files as well, so that the key store copy can be kept on a short retention: once it has
expired, a person erased since then cannot be read from any database backup either. Both
are copied with SQLite's backup API, never by copying files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storage.crypto import KeyRing, MasterKeyError
from storage.db import DatabaseError, migrations
from storage.offline import (
    Error,
    _connect,
    _create_private,
    _db_stats,
    _fsync,
    _integrity,
    _one_line,
    _pairing,
    _scalar,
    _tables,
    _unwrap_all,
    newest_schema,
)
from storage.private import PRIVATE_FILE, private_dir


@dataclass(frozen=True)
class BackupResult:
    database: Path
    keystore: Path | None
    schema_version: int
    participants: int
    entries: int
    data_keys: int
    database_bytes: int
    keystore_bytes: int


@dataclass(frozen=True)
class RestoreResult:
    database: Path
    keystore: Path
    schema_version: int
    pending_migrations: int
    participants: int
    entries: int
    keys_unwrapped: int
    participants_without_key: int = 0
    erasures_reapplied: int = 0


def copy(
    database: Path,
    keystore: Path,
    out: Path,
    keys_out: Path | None,
    on_snapshot: Callable[[], None] | None,
) -> BackupResult:
    """Copy both files into ``out`` (and ``keys_out``), each under its final name only once
    it is complete and on disk. The caller has checked where they may go."""
    targets = [out] if keys_out is None else [out, keys_out]
    partials = []
    try:
        for target in targets:
            private_dir(target.parent)
            partial = target.with_name(f".{target.name}.partial")
            partial.unlink(missing_ok=True)
            _create_private(partial)
            partials.append(partial)
        result = _copy_snapshot(
            database, keystore, partials[0], partials[1] if keys_out else None, on_snapshot
        )
        for partial, target in zip(partials, targets, strict=True):
            _fsync(partial)
            # Rename last, so a backup file under its final name is always complete.
            os.replace(partial, target)
        for folder in {t.parent for t in targets}:
            # The renames themselves must reach the disk too; some filesystems refuse this.
            with contextlib.suppress(OSError):
                _fsync(folder)
    finally:
        for partial in partials:
            partial.unlink(missing_ok=True)
    return BackupResult(
        database=out,
        keystore=keys_out,
        schema_version=result[0],
        participants=result[1],
        entries=result[2],
        data_keys=result[3],
        database_bytes=out.stat().st_size,
        keystore_bytes=keys_out.stat().st_size if keys_out else 0,
    )


def _copy_snapshot(
    database: Path,
    keystore: Path,
    db_copy: Path,
    keys_copy: Path | None,
    on_snapshot: Callable[[], None] | None,
) -> tuple[int, int, int, int]:
    with _connect(database) as src:
        try:
            src.execute("ATTACH DATABASE ? AS keys", (str(keystore),))
            src.execute("BEGIN")
            # The read transaction starts on each file at its first read. The database is
            # read first: a participant's key is committed in the same transaction as their
            # row, so a key store snapshot taken just after holds every key the database
            # snapshot needs (a person erased in between has no key, as after any erasure).
            _scalar(src, "SELECT COUNT(*) FROM main.sqlite_master")
            _scalar(src, "SELECT COUNT(*) FROM keys.sqlite_master")
            if on_snapshot is not None:
                on_snapshot()
            # One step (pages=-1) copies the whole file inside the read transaction already
            # open. Small steps would restart from scratch after every write by the bot and
            # could starve under steady load.
            copies = [("main", db_copy)] + ([("keys", keys_copy)] if keys_copy else [])
            for name, copy in copies:
                with _connect(copy) as dst:
                    src.backup(dst, pages=-1, name=name)
                    # A backup is one self-contained file: no -wal beside it to lose.
                    dst.execute("PRAGMA journal_mode=DELETE")
                    problems = _integrity(dst)
                    if problems != ["ok"]:
                        raise DatabaseError(
                            f"the {name} copy failed its integrity check: {_one_line(problems[0])}"
                        )
            src.execute("COMMIT")
        except Error as exc:
            raise DatabaseError(f"backup failed: {type(exc).__name__}: {exc}") from None
    with _connect(db_copy, read_only=True) as conn:
        version, people, entries = _db_stats(conn)
    keys = 0
    if keys_copy is not None:
        with _connect(keys_copy, read_only=True) as conn:
            keys = _scalar(conn, "SELECT COUNT(*) FROM data_keys")
    return version, people, entries, keys


def restore(
    source: Path,
    keys_from: Path | None,
    database: Path,
    keystore: Path,
    ring: KeyRing,
    force: bool,
    consent_version: str,
) -> RestoreResult:
    """Check a backup (integrity, schema, every key unwraps with ``ring``), then copy it in.

    Nothing is written unless every check passes. Targets are written through SQLite's
    backup API, never by copying files, so a stale -wal file beside an old database cannot
    be replayed onto the restored one. Synchronous: run it in a thread. Stop the bot first.
    """
    # Without a key store backup the live key store stays: it holds every key since.
    keys_source = keys_from or keystore
    for path, what in ((source, "database backup"), (keys_source, "key store")):
        if not path.is_file():
            raise DatabaseError(f"no {what} at {path}")
    try:
        with _connect(source, read_only=True) as conn:
            problems = _integrity(conn)
            if problems != ["ok"]:
                raise DatabaseError(f"{source} is damaged: {_one_line(problems[0], 120)}")
            version, people, entries = _db_stats(conn)
        with _connect(keys_source, read_only=True) as conn:
            if {"data_keys", "system_keys"} - _tables(conn):
                raise DatabaseError(f"{keys_source} is not a mentorbot key store backup")
            problems = _integrity(conn)
            if problems != ["ok"]:
                raise DatabaseError(f"{keys_source} is damaged: {_one_line(problems[0], 120)}")
            unwrapped = _unwrap_all(conn, ring, "main")
        with _connect(source, read_only=True) as conn:
            conn.execute(
                "ATTACH DATABASE ? AS keys", (f"{keys_source.resolve().as_uri()}?mode=ro",)
            )
            pairing = _pairing(conn, "keys")
    except Error as exc:
        raise DatabaseError(f"cannot read the backup ({type(exc).__name__})") from None
    newest = newest_schema()
    if version > newest:
        raise DatabaseError(
            f"the backup has schema {version}, newer than this mentorbot ({newest}); "
            "install the version that wrote it"
        )
    if unwrapped.unknown_kek:
        kek_id = unwrapped.unknown_kek.most_common(1)[0][0]
        raise MasterKeyError(
            f"the backup's keys were wrapped by master key {kek_id}, the configured key is "
            f"{ring.current_id}; configure the key that was in use when the backup was taken"
        )
    if unwrapped.damaged:
        raise MasterKeyError(
            f"{unwrapped.damaged} keys in the key store backup fail to unwrap (damaged file)"
        )
    if pairing.lookup_key_missing:
        raise DatabaseError(
            f"{keys_source} has no lookup key but the database backup has participants: "
            "they are not a pair; use the key store backup taken with this database backup"
        )
    existing = [p for p in (database, keystore) if p.exists() and (keys_from or p != keystore)]
    if existing and not force:
        raise DatabaseError(
            f"{existing[0]} exists; stop the bot, take a backup of it, then pass --force"
        )
    # Erasures recorded in the live key store outlive the restore, whatever the backup's
    # age: they are carried into the restored key store and applied below.
    erasures = _erasures(keystore)
    copies = (
        [(source, database)] if keys_from is None else [(keys_from, keystore), (source, database)]
    )
    for src_path, dst_path in copies:
        private_dir(dst_path.parent)
        if not dst_path.exists():
            _create_private(dst_path)
        with _connect(src_path, read_only=True) as src, _connect(dst_path) as dst:
            try:
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode=WAL")
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                problems = _integrity(dst)
            except Error as exc:
                raise DatabaseError(
                    f"restoring {dst_path} failed ({type(exc).__name__}); is the bot stopped?"
                ) from None
        if problems != ["ok"]:
            raise DatabaseError(f"{dst_path} failed its integrity check after the restore")
        os.chmod(dst_path, PRIVATE_FILE)
    if erasures:
        with _connect(keystore) as dst:
            dst.execute(
                "CREATE TABLE IF NOT EXISTS erasures "
                "(ref_hash BLOB PRIMARY KEY, erased_at TEXT NOT NULL)"
            )
            dst.executemany("INSERT OR IGNORE INTO erasures VALUES (?, ?)", erasures)
    reapplied = asyncio.run(_reapply_erasures(database, keystore, ring, consent_version))
    return RestoreResult(
        database=database,
        keystore=keystore,
        schema_version=version,
        pending_migrations=sum(1 for v, _, _ in migrations() if v > version),
        participants=people,
        entries=entries,
        keys_unwrapped=unwrapped.ok,
        participants_without_key=max(0, pairing.participants_without_key - reapplied),
        erasures_reapplied=reapplied,
    )


def _erasures(keystore: Path) -> list[tuple[bytes, str]]:
    if not keystore.is_file():
        return []
    try:
        with _connect(keystore, read_only=True) as conn:
            if "erasures" not in _tables(conn):
                return []
            return [(bytes(h), str(at)) for h, at in conn.execute("SELECT * FROM erasures")]
    except Error as exc:
        raise DatabaseError(
            f"cannot read the erasures recorded in {keystore} ({type(exc).__name__}); "
            "a restore must not bring erased people back, so nothing was written"
        ) from None


async def _reapply_erasures(database: Path, keystore: Path, ring: KeyRing,
                            consent_version: str) -> int:
    """Open the restored store once: opening applies every recorded erasure (and runs
    pending migrations). Returns how many people were erased again."""
    from storage.store import Store

    erased = 0
    store = await Store.open(database, ring, consent_version, keystore=keystore, create=False)
    try:
        erased = store.erasures_applied
    finally:
        await store.close()
    return erased


