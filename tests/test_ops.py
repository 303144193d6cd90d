"""Operations: online backup under write load, restore, the doctor's checks, webhook mode.

Everything runs against real SQLite files in tmp_path and, for the Bot API, the offline
stand-in on 127.0.0.1. Nothing here touches the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bot import ops
from bot.cli import main
from bot.ops import DoctorReport
from bot.settings import ConfigError, load_settings
from conversations.catalogue import load_flows
from conversations.service import Service
from reports.entry_codes import recode
from storage.crypto import KeyRing, MasterKeyError, encode_key, generate_key
from storage.db import DatabaseError, default_keystore, migrations
from storage.models import Role
from storage.store import Store
from tests.people import Cohort
from tests.support.api_standin import BotApiStandin, LoopbackServer
from tests.support.harness import TOKEN

ROOT = Path(__file__).resolve().parents[1]
ENV_KEYS = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE_URL",
    "MENTORBOT_DB",
    "MENTORBOT_KEYSTORE",
    "MENTORBOT_MASTER_KEY",
    "MENTORBOT_KEY_FILE",
    "MENTORBOT_PREVIOUS_MASTER_KEYS",
    "MENTORBOT_LOG_LEVEL",
    "MENTORBOT_WEBHOOK_URL",
    "MENTORBOT_WEBHOOK_SECRET",
    "MENTORBOT_WEBHOOK_LISTEN",
    "MENTORBOT_WEBHOOK_PORT",
)
WEBHOOK_SECRET = "hook-secret_0123456789abcdefghij"


def consent_version() -> str:
    return load_flows()["consent"].version


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.fixture
def key() -> bytes:
    return generate_key()


@pytest.fixture
def standin_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer(BotApiStandin(token=TOKEN)).start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def live(tmp_path: Path) -> Path:
    return tmp_path / "live" / "bot.sqlite3"


async def populate(db: Path, key: bytes, people: int = 1) -> None:
    """A programme with joined, consented mentees who each saved one GROW reflection."""
    store = await Store.open(db, KeyRing(key), consent_version())
    try:
        service = Service(store)
        cohort = await Cohort.create(store, service)
        for n in range(people):
            if n:
                pair = await store.programmes.create_pair(cohort.programme_id)
                code = await store.programmes.create_invite(cohort.programme_id, Role.MENTEE, pair)
                cohort = dataclasses.replace(cohort, pair_id=pair, mentee_code=code)
            mentee = await cohort.joined_mentee(user_id=7001 + n)
            await mentee.grow()
        await recode(store)  # what the running bot does as each entry is saved
    finally:
        await store.close()


def configure(monkeypatch: pytest.MonkeyPatch, db: Path, key: bytes, **extra: str) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("MENTORBOT_DB", str(db))
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(key))
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


async def run_doctor(**kwargs: object) -> DoctorReport:
    kwargs.setdefault("offline", True)
    return await ops.doctor(**kwargs)  # type: ignore[arg-type]


def failures(report: DoctorReport, name: str) -> list[str]:
    return [c.message for c in report.checks if c.name == name and c.status == "fail"]


def corrupt_index(path: Path, index: str) -> None:
    """Zero an index root page's cell count: integrity_check then finds rows missing."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (index,)).fetchone()
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as fh:
        fh.seek((root[0] - 1) * page_size + 3)
        fh.write(b"\x00\x00")


# -- backup and restore ----------------------------------------------------------------
def keys_of(out: Path) -> Path:
    """Where these tests keep a database backup's key store copy: a folder of its own."""
    return out.parent.with_name(out.parent.name + "-keys") / (out.name + ".keys")


async def test_backup_under_write_load_restores_every_committed_entry(
    tmp_path: Path, live: Path, key: bytes
) -> None:
    ring = KeyRing(key)
    store = await Store.open(live, ring, consent_version())
    cohort = await Cohort.create(store, Service(store))
    await cohort.joined_mentee()
    me = await store.participants.by_user(7001)
    assert me is not None
    committed: list[tuple[int, str]] = []
    stop, warmed_up = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            text = f"reflection number {n}"
            entry = await store.entries.create(me.id, cohort.pair_id, "grow", "1", "{}")
            await store.entries.save_answer(me.id, entry, "goal", text)
            await store.entries.set_status(me.id, entry, "complete")
            committed.append((entry, text))
            if len(committed) == 20:
                warmed_up.set()

    marks: dict[str, int] = {}

    def during_snapshot() -> None:
        # Runs in the backup's thread with the snapshot held: the writer must keep going.
        marks["snapshot"] = len(committed)
        deadline = time.monotonic() + 10
        while len(committed) < marks["snapshot"] + 5:
            assert time.monotonic() < deadline, "writes stalled while the backup ran"
            time.sleep(0.002)

    task = asyncio.create_task(writer())
    try:
        await warmed_up.wait()
        marks["start"] = len(committed)
        out = tmp_path / "backups" / "bot.sqlite3"
        result = await ops.backup(
            live, default_keystore(live), out, keys_of(out), on_snapshot=during_snapshot
        )
        marks["finish"] = len(committed)
    finally:
        stop.set()
        await task
        await store.close()
    assert marks["start"] <= marks["snapshot"] < marks["snapshot"] + 5 <= marks["finish"]
    assert result.keystore == tmp_path / "backups-keys" / "bot.sqlite3.keys"
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)
    assert not list(out.parent.glob(".*partial"))

    fresh = tmp_path / "fresh" / "restored.sqlite3"
    fresh_keys = tmp_path / "fresh-keys" / "restored.keys"
    restored = await ops.restore(out, keys_of(out), fresh, fresh_keys, ring)
    assert restored.keys_unwrapped >= 2 and restored.pending_migrations == 0
    again = await Store.open(fresh, ring, consent_version(), create=False, keystore=fresh_keys)
    try:
        assert await again.db.integrity_check() == "ok"
        assert await again.db.scalar("PRAGMA keys.integrity_check") == "ok"
        present = {
            row["id"]: row["status"]
            for row in await again.db.fetchall("SELECT id, status FROM entries")
        }
        # Everything committed before the snapshot is there, complete, and decrypts. The
        # count is read just after the snapshot is taken, in the backup's thread, so the
        # last entry it counts may have completed a moment after the snapshot.
        for entry, text in committed[: marks["snapshot"] - 1]:
            assert present.get(entry) == "complete"
            assert await again.entries.answers(me.id, entry) == {"goal": text}
        # Nothing begun after the snapshot leaked in (at most one entry was in flight).
        later = {entry for entry, _ in committed[marks["snapshot"] + 1 :]}
        assert not later & present.keys()
        assert len(present) <= marks["snapshot"] + 1
    finally:
        await again.close()


async def test_backup_refuses_to_overwrite_or_to_sit_beside_the_key(
    tmp_path: Path, live: Path, key: bytes
) -> None:
    await populate(live, key)
    keys = default_keystore(live)
    out = tmp_path / "b" / "one.sqlite3"
    await ops.backup(live, keys, out, keys_of(out))
    with pytest.raises(DatabaseError, match="already exists"):
        await ops.backup(live, keys, out, keys_of(out))
    with pytest.raises(ConfigError, match="different folder"):
        await ops.backup(live, keys, tmp_path / "b4" / "x.sqlite3", tmp_path / "b4" / "x.keys")
    with pytest.raises(ConfigError, match="different folder"):
        await ops.backup(live, keys, tmp_path / "b5" / "x.sqlite3", tmp_path / "b5" / "k" / "x")
    assert not (tmp_path / "b4").exists() and not (tmp_path / "b5").exists()
    key_file = tmp_path / "b2" / "master.key"
    key_file.parent.mkdir()
    key_file.write_text(encode_key(key))
    with pytest.raises(ConfigError, match="never sit beside the key"):
        await ops.backup(live, keys, tmp_path / "b2" / "two.sqlite3", None, key_file=key_file)
    assert not (tmp_path / "b2" / "two.sqlite3").exists()
    with pytest.raises(DatabaseError, match="no database"):
        await ops.backup(tmp_path / "none.sqlite3", keys, tmp_path / "b3" / "x.sqlite3", None)


async def test_restore_checks_before_writing(tmp_path: Path, live: Path, key: bytes) -> None:
    await populate(live, key)
    out = tmp_path / "b" / "bot.sqlite3"
    await ops.backup(live, default_keystore(live), out, keys_of(out))
    target = tmp_path / "t" / "bot.sqlite3"
    target_keys = default_keystore(target)

    with pytest.raises(MasterKeyError, match="configure the key that was in use"):
        await ops.restore(out, keys_of(out), target, target_keys, KeyRing(generate_key()))
    assert not target.exists() and not target_keys.exists()

    done = await ops.restore(out, keys_of(out), target, target_keys, KeyRing(key))
    assert done.participants == 1 and done.entries == 1
    with pytest.raises(DatabaseError, match="pass --force"):
        await ops.restore(out, keys_of(out), target, target_keys, KeyRing(key))
    # --force replaces a database that has moved on since.
    store = await Store.open(target, KeyRing(key), consent_version(), keystore=target_keys)
    await store.programmes.create("Added after the backup")
    await store.close()
    await ops.restore(out, keys_of(out), target, target_keys, KeyRing(key), force=True)
    with contextlib.closing(sqlite3.connect(target)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM programmes").fetchone()[0] == 1

    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(out.read_bytes())
    damaged_keys = tmp_path / "damaged.sqlite3.keys"
    damaged_keys.write_bytes(keys_of(out).read_bytes())
    corrupt_index(damaged, "entries_participant")
    elsewhere = (tmp_path / "u" / "x.sqlite3", tmp_path / "u" / "x.keys", KeyRing(key))
    with pytest.raises(DatabaseError, match="is damaged"):
        await ops.restore(damaged, damaged_keys, *elsewhere)

    with contextlib.closing(sqlite3.connect(damaged)) as conn:
        conn.execute("REINDEX")
        conn.execute("INSERT INTO schema_migrations VALUES (999, '999_future.sql', 'x')")
        conn.commit()
    with pytest.raises(DatabaseError, match="newer than this mentorbot"):
        await ops.restore(damaged, damaged_keys, *elsewhere)
    assert not elsewhere[0].exists()
    with pytest.raises(DatabaseError, match="no key store at"):
        await ops.restore(out, tmp_path / "nope.keys", target, target_keys, KeyRing(key))


async def test_restore_notices_a_key_store_that_is_not_the_pair(
    tmp_path: Path, live: Path, key: bytes
) -> None:
    await populate(live, key)
    first = tmp_path / "b" / "first.sqlite3"
    await ops.backup(live, default_keystore(live), first, keys_of(first))
    store = await Store.open(live, KeyRing(key), consent_version())
    programme = await store.programmes.by_name("Test programme")
    pair = await store.programmes.create_pair(programme.id)
    code = await store.programmes.create_invite(programme.id, Role.MENTEE, pair)
    await Cohort(store, Service(store), programme.id, pair, "", code).joined_mentee(7777)
    await store.close()
    second = tmp_path / "b" / "second.sqlite3"
    await ops.backup(live, default_keystore(live), second, keys_of(second))

    # The newer database with the older key store: the person who joined in between has no
    # key there. The restore goes ahead (everyone else is readable) and says so.
    target = tmp_path / "t" / "bot.sqlite3"
    older_keys = keys_of(first)
    done = await ops.restore(second, older_keys, target, default_keystore(target), KeyRing(key))
    assert done.participants == 2 and done.participants_without_key == 1

    no_lookup = tmp_path / "no-lookup.keys"
    no_lookup.write_bytes(older_keys.read_bytes())
    with contextlib.closing(sqlite3.connect(no_lookup)) as conn:
        conn.execute("DELETE FROM system_keys WHERE name = 'lookup'")
        conn.commit()
    elsewhere = tmp_path / "u" / "x.sqlite3"
    with pytest.raises(DatabaseError, match="they are not a pair"):
        await ops.restore(second, no_lookup, elsewhere, default_keystore(elsewhere), KeyRing(key))
    assert not elsewhere.exists()


def test_backup_restore_doctor_commands(
    tmp_path: Path, live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(populate(live, key))
    configure(monkeypatch, live, key)
    runner = CliRunner()
    out = tmp_path / "backups" / "nightly.sqlite3"
    keys_out = ["--keys-out", str(keys_of(out))]
    nothing = runner.invoke(main, ["backup", "--out", str(out)])
    assert nothing.exit_code == 2 and "--keys-out FILE" in nothing.output and not out.exists()
    made = runner.invoke(main, ["backup", "--out", str(out), *keys_out])
    assert made.exit_code == 0, made.output
    assert "1 participants, 1 entries" in made.output and "never beside" in made.output
    again = runner.invoke(main, ["backup", "--out", str(out), *keys_out])
    assert again.exit_code == 2 and again.output.count("\n") == 1

    monkeypatch.setenv("MENTORBOT_DB", str(tmp_path / "restored" / "bot.sqlite3"))
    back = runner.invoke(main, ["restore", "--from", str(out), "--keys-from", keys_out[1]])
    assert back.exit_code == 0, back.output
    assert "keys unwrap with the configured key" in back.output
    healthy = runner.invoke(main, ["doctor", "--offline"])
    assert healthy.exit_code == 0, healthy.output
    assert "0 failed" in healthy.output
    refused = runner.invoke(main, ["restore", "--from", str(out), "--keys-from", keys_out[1]])
    assert refused.exit_code == 2 and "--force" in refused.output
    for output in (made.output, back.output, healthy.output, refused.output):
        assert encode_key(key) not in output and TOKEN not in output


# -- the doctor: one test per problem it reports ---------------------------------------
async def test_doctor_healthy_deployment(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch, standin_server: LoopbackServer
) -> None:
    await populate(live, key)
    configure(monkeypatch, live, key, TELEGRAM_API_BASE_URL=standin_server.base_url)
    report = await run_doctor(offline=False)
    assert report.ok and not report.problems, [c.line() for c in report.checks]
    names = {c.name for c in report.checks}
    assert names == {
        "configuration",
        "token",
        "master_key",
        "database",
        "migrations",
        "key_store",
        "bot_api",
        "codes",
        "safety",
        "tamper",
    }
    text = "\n".join(c.line() for c in report.checks)
    assert "@mentorbot_test_bot" in text
    assert TOKEN not in text and TOKEN.split(":")[1] not in text and encode_key(key) not in text


async def test_doctor_reports_bad_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "not-a-token")
    report = await run_doctor()
    assert not report.ok
    assert [c.name for c in report.checks] == ["configuration"]
    assert "TELEGRAM_BOT_TOKEN" in report.checks[0].line()


async def test_doctor_reports_missing_token_and_key(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    await populate(live, key)
    monkeypatch.setenv("MENTORBOT_DB", str(live))
    report = await run_doctor(offline=False)
    assert "TELEGRAM_BOT_TOKEN is not set" in failures(report, "token")[0]
    assert "No master key" in failures(report, "master_key")[0]
    assert [c.status for c in report.named("key_store")] == ["warn"]
    assert [c.status for c in report.named("bot_api")] == ["warn"]


async def test_doctor_reports_key_file_problems(
    tmp_path: Path, live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    await populate(live, key)
    configure(monkeypatch, live, key)
    monkeypatch.delenv("MENTORBOT_MASTER_KEY")
    beside = live.parent / "master.key"
    beside.write_text(encode_key(key))
    beside.chmod(0o644)
    monkeypatch.setenv("MENTORBOT_KEY_FILE", str(beside))
    found = failures(await run_doctor(), "key_file")
    assert len(found) == 2
    assert "read by other users (mode 644)" in found[0]
    assert "inside the database folder" in found[1]
    beside.chmod(0o640)
    report = await run_doctor()
    assert [c.status for c in report.named("key_file")] == ["warn", "fail"]

    elsewhere = tmp_path / "etc" / "master.key"
    elsewhere.parent.mkdir()
    elsewhere.write_text(encode_key(key))
    elsewhere.chmod(0o600)
    monkeypatch.setenv("MENTORBOT_KEY_FILE", str(elsewhere))
    report = await run_doctor()
    assert report.ok and [c.status for c in report.named("key_file")] == ["ok"]


async def test_doctor_reports_unwritable_storage(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, live, key)
    # Tests run as root, which may write anywhere; the check itself is os.access.
    monkeypatch.setattr(ops, "writable", lambda folder: False)
    found = failures(await run_doctor(), "storage")
    assert found and "cannot create files" in found[0]


async def test_doctor_warns_about_a_missing_database(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, live, key)
    report = await run_doctor()
    assert report.ok
    assert [(c.name, c.status) for c in report.problems] == [("database", "warn")]
    live.parent.mkdir(parents=True)
    default_keystore(live).write_bytes(b"")
    report = await run_doctor()
    assert ("key_store", "warn") in [(c.name, c.status) for c in report.problems]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("garbage", "is not a readable SQLite database"),
        ("corrupt", "failed its integrity check"),
        ("foreign", "not a mentorbot database"),
        ("newer", "written by a newer mentorbot"),
    ],
)
async def test_doctor_reports_database_problems(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch, damage: str, message: str
) -> None:
    configure(monkeypatch, live, key)
    if damage == "garbage":
        live.parent.mkdir(parents=True)
        live.write_bytes(b"this is not a database" * 200)
    elif damage == "foreign":
        live.parent.mkdir(parents=True)
        with contextlib.closing(sqlite3.connect(live)) as conn:
            conn.execute("CREATE TABLE notes (x)")
    else:
        await populate(live, key)
        if damage == "corrupt":
            corrupt_index(live, "entries_participant")
        else:
            with contextlib.closing(sqlite3.connect(live)) as conn:
                conn.execute("INSERT INTO schema_migrations VALUES (999, '999_x.sql', 'x')")
                conn.commit()
    report = await run_doctor()
    found = failures(report, "database")
    assert len(found) == 1 and message in found[0]
    assert all("\n" not in c.line() for c in report.checks)


async def test_doctor_warns_about_entries_without_current_codes(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    await populate(live, key, people=2)
    configure(monkeypatch, live, key)
    with contextlib.closing(sqlite3.connect(live)) as conn:
        conn.execute("UPDATE entry_codes SET coder='an-older-codebook/1'")
        conn.commit()
    report = await run_doctor()
    assert report.ok
    assert [(c.name, c.status) for c in report.problems] == [("codes", "warn")]
    assert report.problems[0].message.startswith("2 saved entries without current codes")
    assert "mentorbot recode" in report.problems[0].fix


async def test_doctor_warns_about_pending_migrations(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    await populate(live, key)
    configure(monkeypatch, live, key)
    newest = migrations()[-1]
    with contextlib.closing(sqlite3.connect(live)) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (newest[0],))
        conn.commit()
    report = await run_doctor()
    assert report.ok
    assert [(c.name, c.status) for c in report.problems] == [("migrations", "warn")]
    assert f"1 migration pending ({newest[1]})" in report.problems[0].message


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "no key store at"),
        ("corrupt", "failed its integrity check"),
        ("foreign", "is not a mentorbot key store"),
        ("wrong_key", "not by the configured one"),
        ("damaged_key", "the key store is damaged"),
        ("orphans", "participants have no data key"),
        ("no_lookup", "has no lookup key"),
    ],
)
async def test_doctor_reports_key_store_problems(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch, damage: str, message: str
) -> None:
    await populate(live, key, people=2)
    keys = default_keystore(live)
    configure(monkeypatch, live, key)
    if damage == "missing":
        keys.unlink()
    elif damage == "corrupt":
        corrupt_index(keys, "sqlite_autoindex_data_keys_1")
    elif damage == "foreign":
        keys.unlink()
        with contextlib.closing(sqlite3.connect(keys)) as conn:
            conn.execute("CREATE TABLE other (x)")
    elif damage == "wrong_key":
        monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(generate_key()))
    else:
        with contextlib.closing(sqlite3.connect(keys)) as conn:
            if damage == "damaged_key":
                conn.execute("UPDATE data_keys SET wrapped = zeroblob(60)")
            elif damage == "orphans":
                conn.execute("DELETE FROM data_keys WHERE rowid = 1")
            else:
                conn.execute("DELETE FROM system_keys WHERE name = 'lookup'")
            conn.commit()
    found = failures(await run_doctor(), "key_store")
    assert len(found) == 1 and message in found[0], found


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("situation", "message"),
    [
        ("unreachable", "cannot reach 127.0.0.1:"),
        ("silent", "no answer from 127.0.0.1:"),
        ("wrong_token", "rejected the token"),
        ("flooded", "answered getMe with an error (RetryAfter)"),
    ],
)
async def test_doctor_reports_bot_api_problems(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch, situation: str, message: str
) -> None:
    await populate(live, key)
    configure(monkeypatch, live, key)
    with contextlib.ExitStack() as stack:
        if situation == "unreachable":
            base = f"http://127.0.0.1:{closed_port()}/bot"
        elif situation == "silent":
            base = f"http://127.0.0.1:{stack.enter_context(silent_server())}/bot"
        else:
            standin = BotApiStandin(
                token="42:" + "x" * 30 if situation == "wrong_token" else TOKEN,
                fault_429=1.0 if situation == "flooded" else 0.0,
                fault_methods=["getMe"],
            )
            server = LoopbackServer(standin).start_in_thread()
            stack.callback(server.stop)
            base = server.base_url
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", base)
        report = await run_doctor(offline=False, api_timeout=0.3)
    found = failures(report, "bot_api")
    assert len(found) == 1 and message in found[0], found
    assert all(TOKEN.split(":")[1] not in c.line() for c in report.checks)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MENTORBOT_WEBHOOK_URL": "http://bot.example.org/telegram"}, "must be an https://"),
        ({"MENTORBOT_WEBHOOK_URL": "https://bot.example.org:9000/t"}, "uses port 9000"),
        ({"MENTORBOT_WEBHOOK_URL": f"https://bot.example.org/{TOKEN}"}, "contains the bot token"),
        ({"MENTORBOT_WEBHOOK_SECRET": ""}, "MENTORBOT_WEBHOOK_SECRET is not set"),
        ({"MENTORBOT_WEBHOOK_SECRET": "has spaces!"}, "characters Telegram does not allow"),
        ({"MENTORBOT_WEBHOOK_PORT": "eighty"}, "MENTORBOT_WEBHOOK_PORT"),
        ({"MENTORBOT_WEBHOOK_URL": ""}, "MENTORBOT_WEBHOOK_URL is not set"),
    ],
)
async def test_doctor_reports_webhook_problems(
    live: Path,
    key: bytes,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    message: str,
) -> None:
    configure(
        monkeypatch,
        live,
        key,
        MENTORBOT_WEBHOOK_URL="https://bot.example.org/telegram",
        MENTORBOT_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    report = await run_doctor(webhook=True)
    # A typed port field in Settings reports a bad port as a configuration problem instead.
    found = [c.line() for c in report.checks if c.status == "fail"]
    assert len(found) == 1 and message in found[0], found
    assert found[0].startswith(("FAIL  webhook:", "FAIL  configuration:"))
    from bot.webhook import webhook_config

    with pytest.raises(ConfigError, match=re.escape(message)):
        webhook_config(load_settings())


def test_doctor_command_exit_codes(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, live, key)
    runner = CliRunner()
    missing_db = runner.invoke(main, ["doctor", "--offline"])
    assert missing_db.exit_code == 0 and "WARN  database" in missing_db.output
    monkeypatch.delenv("MENTORBOT_MASTER_KEY")
    broken = runner.invoke(main, ["doctor", "--offline", "--quick"])
    assert broken.exit_code == 1
    problem_lines = [line for line in broken.output.splitlines() if line.startswith("FAIL")]
    assert problem_lines == [
        "FAIL  master_key: No master key: set MENTORBOT_MASTER_KEY or MENTORBOT_KEY_FILE "
        "(create one with 'mentorbot keys generate')"
    ]


# -- webhook mode ------------------------------------------------------------------------
def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_serve_webhook_checks_the_secret_and_answers(
    standin_server: LoopbackServer, tmp_path: Path
) -> None:
    standin = standin_server.standin
    port = closed_port()
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": standin_server.base_url,
        "MENTORBOT_DB": str(tmp_path / "hook.sqlite3"),
        "MENTORBOT_MASTER_KEY": encode_key(generate_key()),
        "MENTORBOT_WEBHOOK_URL": "https://bot.example.org/telegram",
        "MENTORBOT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MENTORBOT_WEBHOOK_PORT": str(port),
        "MENTORBOT_LOG_LEVEL": "DEBUG",
        "PTB_TIMEDELTA": "true",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve-webhook"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    user = 515_151_5151
    try:
        wait_for(lambda: bool(standin.calls_of("setWebhook")))
        hook = standin.dump_state()["webhook"]
        assert hook["url"] == "https://bot.example.org/telegram"
        assert hook["has_secret_token"] is True
        url = f"http://127.0.0.1:{port}/telegram"
        update = standin.text_message(user, "/start", first_name="Hooky")
        with httpx.Client(trust_env=False, timeout=5) as client:

            def post(secret: str | None) -> int:
                headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
                # A refused request's connection is closed unread: one connection each.
                headers["Connection"] = "close"
                try:
                    return client.post(url, json=update, headers=headers).status_code
                except httpx.TransportError:
                    return 0

            wait_for(lambda: post("wrong-secret") == 403)
            assert post(None) == 403
            assert not standin.sent_messages(user)
            assert post(WEBHOOK_SECRET) == 200
            wait_for(lambda: bool(standin.sent_messages(user)))
            # The token is not the path: a request there finds nothing.
            assert client.post(f"http://127.0.0.1:{port}/{TOKEN}", json=update).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    for secret in (TOKEN.split(":")[1], WEBHOOK_SECRET, "Hooky", str(user)):
        assert secret not in output


def test_serve_webhook_refuses_bad_settings(
    live: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, live, key, MENTORBOT_WEBHOOK_URL="https://bot.example.org/t")
    result = CliRunner().invoke(main, ["serve-webhook"])
    assert result.exit_code == 2
    assert result.output.startswith("mentorbot: MENTORBOT_WEBHOOK_SECRET is not set")
    assert result.output.count("\n") == 1
