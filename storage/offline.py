"""Plain sqlite3 connections to the database and key store files, for the jobs that work on
the files themselves rather than through the bot's store: backup, restore and the doctor."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from storage.crypto import KeyRing, MasterKeyError, WrappedKey
from storage.db import DatabaseError, migrations
from storage.private import private_file

BUSY_TIMEOUT_S = 10.0
Error = sqlite3.Error  # what a damaged or foreign file raises
Connection = sqlite3.Connection


# -- SQLite helpers --------------------------------------------------------------------
@contextlib.contextmanager
def _connect(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection (autocommit) that is always closed.

    Read-only opens are for backup files (rollback journal mode). Live files are opened
    read-write even when only read, because a WAL reader must be able to use the -shm file.
    """
    try:
        if read_only:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_S,
            )
        else:
            conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {path} ({type(exc).__name__})") from None
    try:
        yield conn
    finally:
        conn.close()


def _scalar(conn: sqlite3.Connection, sql: str, default: int = 0) -> int:
    row = conn.execute(sql).fetchone()
    return default if row is None or row[0] is None else int(row[0])


def _tables(conn: sqlite3.Connection, schema: str = "main") -> set[str]:
    rows = conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type='table'"  # noqa: S608
    ).fetchall()
    return {r[0] for r in rows}


def _integrity(
    conn: sqlite3.Connection, schema: str = "main", *, quick: bool = False
) -> list[str]:
    pragma = "quick_check" if quick else "integrity_check"
    rows = conn.execute(f"PRAGMA {schema}.{pragma}").fetchall()
    return [str(r[0]) for r in rows]


def _one_line(text: str, limit: int = 100) -> str:
    """SQLite's integrity messages span lines; a doctor line must not."""
    return " ".join(text.split())[:limit]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def newest_schema() -> int:
    return max((v for v, _, _ in migrations()), default=0)


def _db_stats(conn: sqlite3.Connection) -> tuple[int, int, int]:
    tables = _tables(conn)
    if "schema_migrations" not in tables:
        raise DatabaseError("not a mentorbot database (no schema_migrations table)")
    version = _scalar(conn, "SELECT MAX(version) FROM schema_migrations")
    people = _scalar(conn, "SELECT COUNT(*) FROM participants") if "participants" in tables else 0
    entries = _scalar(conn, "SELECT COUNT(*) FROM entries") if "entries" in tables else 0
    return version, people, entries


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_private(path: Path) -> None:
    """An empty file only the owner can read: SQLite then writes into it, keeping the mode."""
    private_file(path, exclusive=True)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


@dataclass
class _Unwrapped:
    ok: int = 0
    previous: int = 0  # opened, but with a previous master key (mid-repair)
    unknown_kek: Counter[str] = field(default_factory=Counter)
    damaged: int = 0


def _unwrap_all(conn: sqlite3.Connection, ring: KeyRing, schema: str) -> _Unwrapped:
    """Try every wrapped key with ``ring``; keys are dropped as soon as they are checked."""
    result = _Unwrapped()
    for table, key_col, subject in (
        ("data_keys", "subject_ref", "{}"),
        ("system_keys", "name", "system:{}"),
    ):
        rows = conn.execute(
            f"SELECT {key_col}, wrapped, kek_id FROM {schema}.{table}"  # noqa: S608
        ).fetchall()
        for name, wrapped, kek_id in rows:
            try:
                ring.unwrap(WrappedKey(wrapped, kek_id), subject.format(name))
            except MasterKeyError:
                # Under the current key's own fingerprint a failure can only be damage; under
                # another fingerprint, the key that wrapped it is (almost always) missing.
                if kek_id == ring.current_id:
                    result.damaged += 1
                else:
                    result.unknown_kek[kek_id] += 1
            else:
                result.ok += 1
                result.previous += kek_id != ring.current_id
    return result


@dataclass(frozen=True)
class _Pairing:
    """Does this key store belong to this database?"""

    participants_without_key: int
    lookup_key_missing: bool


def _pairing(conn: sqlite3.Connection, keys: str) -> _Pairing:
    tables = _tables(conn)
    if "participants" not in tables:
        return _Pairing(0, False)
    orphans = _scalar(
        conn,
        f"SELECT COUNT(*) FROM main.participants p WHERE NOT EXISTS "  # noqa: S608
        f"(SELECT 1 FROM {keys}.data_keys k WHERE k.subject_ref = p.subject_ref)",
    )
    # Telegram ids and invite codes are found by an HMAC under the lookup key; a key store
    # without it would get a fresh one at start-up and recognise nobody.
    in_use = _scalar(conn, "SELECT COUNT(*) FROM main.participants") + (
        _scalar(conn, "SELECT COUNT(*) FROM main.invites") if "invites" in tables else 0
    )
    has_lookup = _scalar(
        conn,
        f"SELECT COUNT(*) FROM {keys}.system_keys WHERE name = 'lookup'",  # noqa: S608
    )
    return _Pairing(orphans, bool(in_use) and not has_lookup)


