"""A join killed (SIGKILL) before any of its statements leaves no participant without a
data key: the key is committed to the key store on its own first, the participant after."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from conversations.catalogue import consent_version
from storage.crypto import KeyRing, encode_key, generate_key
from storage.db import default_keystore
from storage.models import Role
from storage.store import Store

ROOT = Path(__file__).resolve().parents[1]
USER = 4_242_001

# Runs one join in a fresh process. The trace callback sees each SQL statement as SQLite
# starts it; at statement number KILL_AT the process SIGKILLs itself, so the join dies
# between two statements, at every point in turn (COMMITs included).
CHILD = """
import asyncio, json, os, signal, sys
from pathlib import Path
from conversations.catalogue import consent_version
from storage.crypto import KeyRing, decode_key
from storage.store import Store

db, key, code, kill_at = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])

async def main() -> None:
    store = await Store.open(db, KeyRing(decode_key(key)), consent_version())
    seen = []
    def trace(sql: str) -> None:
        seen.append(sql)
        if len(seen) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    await store.db.conn.set_trace_callback(trace)
    result = await store.join(code, USER, USER, "Kim")
    await store.db.conn.set_trace_callback(None)
    await store.close()
    print(json.dumps({"ok": result.ok, "statements": seen}))

asyncio.run(main())
""".replace("USER", str(USER))


def join_in_child(
    db: Path, key: bytes, code: str, kill_at: int
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(db), encode_key(key), code, str(kill_at)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def people_without_key(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        conn.execute("ATTACH DATABASE ? AS keys", (str(default_keystore(db)),))
        return conn.execute(
            "SELECT COUNT(*) FROM participants p WHERE NOT EXISTS "
            "(SELECT 1 FROM keys.data_keys k WHERE k.subject_ref = p.subject_ref)"
        ).fetchone()[0]


def transactions(statements: list[str]) -> list[list[str]]:
    """Group the writes of a trace into transactions (autocommit statements alone)."""
    groups: list[list[str]] = []
    current: list[str] | None = None
    for sql in (s.strip() for s in statements):
        head = sql.split()[0].upper()
        if head == "BEGIN":
            current = []
        elif head in ("COMMIT", "ROLLBACK"):
            groups.append(current or [])
            current = None
        elif head in ("INSERT", "UPDATE", "DELETE"):
            if current is None:
                groups.append([sql])
            else:
                current.append(sql)
    return [g for g in groups if g]


@pytest.fixture
async def pristine(tmp_path: Path) -> tuple[Path, bytes, str]:
    key = generate_key()
    db = tmp_path / "pristine" / "bot.sqlite3"
    store = await Store.open(db, KeyRing(key), consent_version())
    try:
        programme = await store.programmes.create("Crash programme")
        pair = await store.programmes.create_pair(programme.id)
        code = await store.programmes.create_invite(programme.id, Role.MENTEE, pair)
        await store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        await store.db.conn.execute("PRAGMA keys.wal_checkpoint(TRUNCATE)")
    finally:
        await store.close()
    return db, key, code


def copy_of(db: Path, where: Path) -> Path:
    where.mkdir(parents=True)
    for file in db.parent.iterdir():
        shutil.copy(file, where / file.name)
    return where / db.name


async def test_sigkill_at_every_step_of_a_join_leaves_no_one_without_a_key(
    pristine: tuple[Path, bytes, str], tmp_path: Path
) -> None:
    db, key, code = pristine
    dry = join_in_child(copy_of(db, tmp_path / "dry"), key, code, 0)
    assert dry.returncode == 0, dry.stderr
    trace = json.loads(dry.stdout)["statements"]
    # No transaction of a join writes both files: SQLite commits attached WAL databases
    # one after the other, so such a commit could be cut in half.
    for group in transactions(trace):
        files = {"keys" if " keys." in f" {sql}" else "main" for sql in group}
        assert len(files) == 1, group
    assert len(trace) >= 8

    outcomes = set()
    for kill_at in range(1, len(trace) + 1):
        run = copy_of(db, tmp_path / f"kill{kill_at}")
        killed = join_in_child(run, key, code, kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
        assert people_without_key(run) == 0, (
            f"killed before statement {kill_at}: {trace[kill_at - 1]}"
        )
        store = await Store.open(run, KeyRing(key), consent_version())
        try:
            await store.vault.sweep_pending(older_than=timedelta(0))
            joined = await store.participants.by_user(USER)
            pending = await store.db.scalar("SELECT COUNT(*) FROM keys.data_keys WHERE pending=1")
            assert pending == 0
            keys = await store.db.scalar("SELECT COUNT(*) FROM keys.data_keys")
            assert keys == (1 if joined else 0)  # orphan keys cleaned up
            again = await store.join(code, USER, USER, "Kim")
            assert again.ok or again.reason == "already"  # the invite was not lost
            outcomes.add("joined" if joined else "not yet")
        finally:
            await store.close()
        assert people_without_key(run) == 0
    assert outcomes == {"joined", "not yet"}
