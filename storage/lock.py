"""One process at a time for what must not overlap the running bot.

The bot holds an exclusive lock on ``<database>.lock`` for as long as it runs; key rotation
and restore take the same lock, so they refuse while a bot is running (and a bot refuses to
start during them). A running bot keeps its master key in memory: rotating under it would
let it wrap new people's keys under the old key, unreadable once the old key is destroyed.
flock(2) locks are released by the kernel when the process dies, so a SIGKILLed bot never
leaves a stale lock behind; they hold across containers sharing the volume.

On PostgreSQL the lock is a session-level advisory lock on the data database, held by a
connection of its own for as long as the holder runs (the server drops it when that
connection goes, so a killed process leaves none behind either). Several bot processes
serve one programme there: a bot takes the lock shared (``several=True``), so bots run side
by side while key rotation and repair, which take it exclusive, refuse while any runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from storage.db import DatabaseError
from storage.private import private_dir, private_file


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class StoreBusy(DatabaseError):
    """Another mentorbot process holds the lock; the message says which and what to do."""


# Advisory lock key of the whole store (storage.pg.MIGRATION_LOCK is another key)
RUN_LOCK = 0x6D656E62


@contextlib.contextmanager
def exclusive(database: Path | str, purpose: str, *, several: bool = False) -> Iterator[None]:
    """Hold the store's lock for ``purpose`` ("the bot", "key rotation", ...), or raise
    StoreBusy at once naming the holder's purpose and process id. ``several``: on
    PostgreSQL, holders for such purposes (running bots) may hold it at once; on SQLite,
    where one process serves a database, it changes nothing."""
    from storage.pg import is_postgres

    if is_postgres(database):
        with _advisory(str(database), purpose, several):
            yield
        return
    database = Path(database)
    path = lock_path(database)
    private_dir(path.parent)
    private_file(path)
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise StoreBusy(
                f"{holder} is using {database}; stop it first (systemctl stop mentorbot, or "
                "docker compose stop bot), then run this again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{purpose} (pid {os.getpid()})".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _advisory(url: str, purpose: str, shared: bool) -> Iterator[None]:
    import psycopg

    from storage.pg import redact

    label = f"{purpose} (pid {os.getpid()})"
    try:
        conn: Any = psycopg.connect(url, autocommit=True,
                                    application_name=f"mentorbot: {label}"[:63])
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the database at {redact(url)} "
                            f"({type(exc).__name__}); check MENTORBOT_DB") from None
    try:
        take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        got = conn.execute(f"SELECT {take}(%s)", (RUN_LOCK,)).fetchone()[0]
        if not got:
            # who holds it, by the application names the holders' lock connections carry
            holders = [str(r[0]).removeprefix("mentorbot: ") for r in conn.execute(
                "SELECT DISTINCT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
                "l.objid = %s AND l.database = (SELECT oid FROM pg_database WHERE "
                "datname = current_database())", (RUN_LOCK & 0xFFFFFFFF,)).fetchall()]
            who = ", ".join(sorted(h for h in holders if h)) or "another process"
            raise StoreBusy(
                f"{who} is using {redact(url)}; stop it first (systemctl stop mentorbot, or "
                "docker compose stop), then run this again")
        yield
    finally:
        with contextlib.suppress(Exception):
            conn.close()  # ends the session: the server releases the lock
