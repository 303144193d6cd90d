"""One process at a time for what must not overlap the running bot.

The bot holds an exclusive lock on ``<database>.lock`` for as long as it runs; key rotation
and restore take the same lock, so they refuse while a bot is running (and a bot refuses to
start during them). A running bot keeps its master key in memory: rotating under it would
let it wrap new people's keys under the old key, unreadable once the old key is destroyed.
flock(2) locks are released by the kernel when the process dies, so a SIGKILLed bot never
leaves a stale lock behind; they hold across containers sharing the volume.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from storage.db import DatabaseError
from storage.private import private_dir, private_file


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class StoreBusy(DatabaseError):
    """Another mentorbot process holds the lock; the message says which and what to do."""


@contextlib.contextmanager
def exclusive(database: Path, purpose: str) -> Iterator[None]:
    """Hold the store's lock for ``purpose`` ("the bot", "key rotation", ...), or raise
    StoreBusy at once naming the holder's purpose and process id."""
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
