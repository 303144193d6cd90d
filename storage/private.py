"""The one rule for files that hold personal data: mode 0600, folders 0700, whatever the umask.

Two layers. Every mentorbot command narrows the process umask to 077 before it does
anything (bot.cli), so whatever any part of the program creates (reports, exports and their
parts, backups, SQLite's -wal and -shm files, worker processes, which inherit the umask)
is private. And the database and key store files are created here with 0600 explicitly, so
code that opens a Store without the CLI is covered too: SQLite gives the -wal and -shm files
the permissions of their database file.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
PRIVATE_UMASK = 0o077


def restrict_umask() -> None:
    """Everything this process and its children create is for the owner only."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700; existing folders are left as they are,
    since they may be shared on purpose (a volume mount point, /tmp)."""
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def private_file(path: Path, *, exclusive: bool = False) -> None:
    """Create ``path`` empty as 0600 (SQLite then writes into it, keeping the mode); an
    existing file is narrowed to 0600 instead (see narrow)."""
    if not exclusive and path.exists():
        narrow(path)
        return
    flags = os.O_CREAT | os.O_WRONLY | (os.O_EXCL if exclusive else 0)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def narrow(path: Path) -> None:
    """Take away any access but the owner's from an existing file (the database, key store
    and -wal/-shm files of an installation older than this rule)."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
    except FileNotFoundError:
        return
    except PermissionError:
        return  # not ours to change (another account's file); doctor reports the mode
