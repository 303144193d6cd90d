"""Every file holding personal data is 0600 and every folder made for it 0700, under the
default umask 022: the live database, key store and their -wal/-shm files, reports,
exports and backups."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conversations.catalogue import load_flows
from conversations.service import Service
from storage.crypto import KeyRing, generate_key
from storage.store import Store
from tests.people import Cohort

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode)
        for p in [root, *root.rglob("*")]
    }


def assert_private(found: dict[str, int]) -> None:
    loose = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert not loose, loose


async def test_a_store_opened_without_the_cli_is_private(tmp_path: Path, umask_022: None) -> None:
    folder = tmp_path / "data" / "live"
    store = await Store.open(
        folder / "m.sqlite3", KeyRing(generate_key()), load_flows()["consent"].version
    )
    try:
        cohort = await Cohort.create(store, Service(store))
        mentee = await cohort.joined_mentee()
        await mentee.grow()
        names = {p.name for p in folder.iterdir()}
        # all four SQLite files exist while the connection is open
        assert {"m.sqlite3-wal", "m.sqlite3-shm", "m.sqlite3.keys-wal"} <= names
        assert_private(modes(tmp_path / "data"))
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        await store.close()


async def test_an_existing_loose_database_is_narrowed(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "m.sqlite3"
    ring = KeyRing(generate_key())
    store = await Store.open(path, ring, load_flows()["consent"].version)
    await store.close()
    for file in tmp_path.iterdir():
        file.chmod(0o644)
    store = await Store.open(path, ring, load_flows()["consent"].version)
    try:
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in tmp_path.iterdir())
    finally:
        await store.close()


def test_the_cli_writes_nothing_readable_by_others(tmp_path: Path) -> None:
    """The demo runs the real flows, reports and export; then a backup of its database."""
    out = tmp_path / "run"
    env = {**os.environ, "NO_PROXY": "127.0.0.1"}
    for name in [n for n in env if n.startswith(("MENTORBOT_", "TELEGRAM_"))]:
        del env[name]

    def cli(*args: str, **extra: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            env={**env, **extra},
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=120,
            preexec_fn=lambda: os.umask(0o022),  # the system default, not the test's
        )

    cli("demo", "--out", str(out / "demo"), "--pairs", "5", "--months", "2")
    key = (out / "demo" / "demo-master.key").read_text().strip()
    db = out / "demo" / "mentorbot.sqlite3"
    backups = out / "backups"
    cli(
        "backup",
        "--out",
        str(backups / "db" / "b.sqlite3"),
        "--keys-out",
        str(backups / "keys" / "b.keys"),
        MENTORBOT_DB=str(db),
        MENTORBOT_MASTER_KEY=key,
    )
    cli(
        "export",
        "--study",
        "s1",
        "--out",
        str(out / "export"),
        MENTORBOT_DB=str(db),
        MENTORBOT_MASTER_KEY=key,
    )
    found = modes(out)
    for expected in (
        "run/demo/mentorbot.sqlite3",
        "run/demo/mentorbot.sqlite3.keys",
        "run/demo/coordinator/coordinator.html",
        "run/demo/evaluator/report.json",
        "run/demo/research-export/project.qdpx",
        "run/export/answers.csv",
        "run/backups/db/b.sqlite3",
        "run/backups/keys/b.keys",
    ):
        assert expected in found
    assert_private(found)
