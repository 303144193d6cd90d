"""Tamper evidence: with write access to the database (the SQLite file, or a PostgreSQL
role that may write the tables) but no key, forging a consent row, marking a draft complete
or swapping ciphertexts stops reports and exports with a message naming the row, and doctor
finds it (storage/integrity.py). Every test runs on both backends."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from conversations.catalogue import consent_version
from reports.synthetic import generate_cohort
from storage.crypto import KeyRing, encode_key, generate_key
from storage.integrity import SIGNED_MARKER, TamperError
from storage.models import Scope
from tests.conftest import Place
from tests.support.harness import TOKEN

pytestmark = pytest.mark.both_backends

KEY = generate_key()


async def _build(db: Place) -> tuple[int, int]:
    """A small programme; one mentee says No to research exports and leaves a draft.
    Returns (that mentee's id, the draft's id)."""
    store = await db.open(KeyRing(KEY), consent_version())
    try:
        await generate_cohort(store, pairs=6, sessions=2, consent_rate=1.0)
        mentee = int(await store.db.scalar("SELECT mentee_id FROM pairs ORDER BY id LIMIT 1"))
        ref = str(await store.db.scalar("SELECT subject_ref FROM participants WHERE id=?",
                                        (mentee,)))
        await store.consent.record(mentee, ref, Scope.RESEARCH_EXPORT, False, "chat")
        draft = await store.entries.create(mentee, None, "grow", "1", "{}")
        return mentee, draft
    finally:
        await store.close()


@pytest.fixture
def programme(place: Place, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Place, int, int]]:
    db = place
    mentee, draft = asyncio.run(_build(db))
    monkeypatch.setenv("MENTORBOT_DB", str(db.db))
    if db.keystore:
        monkeypatch.setenv("MENTORBOT_KEYSTORE", db.keystore)
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(KEY))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    yield db, mentee, draft


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _jobs(tmp: Path) -> list[Result]:
    return [
        _run("export", "--study", "s1", "--out", str(tmp / "export")),
        _run("report", "evaluator", "--out", str(tmp / "evaluator")),
        _run("report", "coordinator", "--out", str(tmp / "coordinator")),
    ]


def _rows(db: Place, sql: str, params: tuple[object, ...] = (), *,
          keys: bool = False) -> list[tuple[Any, ...]]:
    """The attacker: plain sqlite3 on the file, or psycopg on the database, and no key
    (``keys``: on the key store)."""
    if db.backend == "sqlite":
        where = Path(db.db) if not keys else Path(str(db.db) + ".keys")
        with sqlite3.connect(where) as conn:
            return [tuple(r) for r in conn.execute(sql, params)]
    import psycopg

    with psycopg.connect(str(db.keystore if keys else db.db), autocommit=True) as conn:
        cur = conn.execute(sql.replace("?", "%s"), params)
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                for r in cur.fetchall()] if cur.description else []


def _raw(db: Place, sql: str, params: tuple[object, ...] = (), *, keys: bool = False) -> None:
    _rows(db, sql, params, keys=keys)


def test_an_untouched_database_passes(programme: tuple[Place, int, int], tmp_path: Path) -> None:
    for result in _jobs(tmp_path):
        assert result.exit_code == 0, result.output
    doctor = _run("doctor", "--offline")
    assert "ok    tamper: every consent decision and entry status passes" in doctor.output


def test_a_forged_consent_row_stops_every_job_and_doctor_names_it(
    programme: tuple[Place, int, int], tmp_path: Path
) -> None:
    db, mentee, _ = programme
    # a "yes" with the MAC of the person's own earlier "yes": the MAC binds the row id too
    _raw(db, "INSERT INTO consent_ledger (participant_id, subject_ref, scope, version, granted, "
             "source, at, mac) SELECT participant_id, subject_ref, scope, version, 1, source, "
             "at, mac FROM consent_ledger WHERE participant_id=? AND scope='research_export' "
             "AND granted=1", (mentee,))
    ((forged,),) = _rows(db, "SELECT MAX(id) FROM consent_ledger")
    for result in _jobs(tmp_path):
        assert result.exit_code == 2, result.output
        assert f"consent ledger row {forged} failed the integrity check" in result.output
        assert "Traceback" not in result.output
        # the same words for a SQLite file and a PostgreSQL database, both ways back named
        assert "database file" not in result.output and "pg_restore" in result.output
    assert not (tmp_path / "export" / "answers.csv").exists()
    doctor = _run("doctor", "--offline")
    assert doctor.exit_code == 1
    assert f"FAIL  tamper: consent ledger row {forged}" in doctor.output
    # the health check (run every minute) leaves the every-row check to the full doctor
    assert "tamper" not in _run("doctor", "--offline", "--quick").output


def test_a_draft_marked_complete_and_a_changed_decision_are_named(
    programme: tuple[Place, int, int], tmp_path: Path
) -> None:
    db, mentee, draft = programme
    _raw(db, "UPDATE entries SET status='complete' WHERE id=?", (draft,))
    result = _run("export", "--study", "s1", "--out", str(tmp_path / "export"))
    assert result.exit_code == 2
    assert f"the status of entry {draft} failed the integrity check" in result.output
    _raw(db, "UPDATE entries SET status='draft' WHERE id=?", (draft,))  # put back: passes
    assert _run("export", "--study", "s1", "--out", str(tmp_path / "e2")).exit_code == 0
    _raw(db, "UPDATE consent_ledger SET granted=1 WHERE participant_id=? AND granted=0",
         (mentee,))
    doctor = _run("doctor", "--offline")
    assert doctor.exit_code == 1 and "FAIL  tamper: consent ledger row" in doctor.output


def test_swapped_ciphertexts_stop_the_export_instead_of_dropping_rows(
    programme: tuple[Place, int, int], tmp_path: Path
) -> None:
    db, _, _ = programme
    (a, va, *first), (b, vb, *second) = _rows(
        db, "SELECT a.entry_id || ':' || a.step_id, a.value_ct, a.entry_id, a.step_id "
        "FROM answers a JOIN entries e ON e.id = a.entry_id WHERE e.status='complete' "
        "ORDER BY a.entry_id, a.step_id LIMIT 2")
    _swap(db, a, va, b, vb)
    result = _run("export", "--study", "s1", "--out", str(tmp_path / "export"))
    assert result.exit_code == 2, result.output
    assert any(f"answer {e}:{s} does not open with its author's key" in result.output
               for e, s in (first, second)), result.output


def _swap(db: Place, a: str, va: bytes, b: str, vb: bytes) -> None:
    """Two answers' ciphertexts swapped (``a`` and ``b`` name them entry:step)."""
    where = "UPDATE answers SET value_ct=? WHERE entry_id || ':' || step_id = ?"
    _raw(db, where, (vb, a))
    _raw(db, where, (va, b))


async def _legacy(db: Place) -> None:
    store = await db.open(KeyRing(KEY), consent_version())
    try:
        await generate_cohort(store, pairs=5, sessions=1, consent_rate=1.0)
    finally:
        await store.close()


def test_rows_from_before_tamper_evidence_are_signed_once(place: Place) -> None:
    db = place
    asyncio.run(_legacy(db))
    # as an older version left it: no MACs, and no marker in the key store
    _raw(db, "UPDATE consent_ledger SET mac=NULL")
    _raw(db, "UPDATE entries SET status_mac=NULL")
    _raw(db, "DELETE FROM markers WHERE name=?", (SIGNED_MARKER,), keys=True)

    async def reopen() -> None:
        store = await db.open(KeyRing(KEY), consent_version())
        try:
            await store.integrity.check()  # signed on opening: passes
        finally:
            await store.close()

    asyncio.run(reopen())
    # from now on an unsigned row is a forgery, and opening again does not sign it
    _raw(db, "UPDATE entries SET status_mac=NULL WHERE id=(SELECT MIN(id) FROM entries)")

    async def reopen_fails() -> str:
        store = await db.open(KeyRing(KEY), consent_version())
        try:
            await store.integrity.check()
        except TamperError as exc:
            return str(exc)
        finally:
            await store.close()
        return ""

    assert "failed the integrity check" in asyncio.run(reopen_fails())


def test_a_worker_process_meeting_a_swapped_ciphertext_names_it_too(
    programme: tuple[Place, int, int], tmp_path: Path
) -> None:
    from reports.export.run import run_export

    db, _, _ = programme
    (a, va, *first), (b, vb, *second) = _rows(
        db, "SELECT a.entry_id || ':' || a.step_id, a.value_ct, a.entry_id, a.step_id "
        "FROM answers a JOIN entries e ON e.id = a.entry_id WHERE e.status='complete' "
        "ORDER BY a.entry_id DESC, a.step_id DESC LIMIT 2")
    _swap(db, a, va, b, vb)

    async def export() -> str:
        store = await db.open(KeyRing(KEY), consent_version(), create=False)
        try:
            await run_export(store, tmp_path / "out", "s1", "shift", ("csv",), workers=2)
        except TamperError as exc:
            return str(exc)
        finally:
            await store.close()
        return ""

    said = asyncio.run(export())
    assert any(f"answer {e}:{s} does not open with its author's key" in said
               for e, s in (first, second)), said


async def test_a_change_made_while_the_store_is_open_is_caught(place: Place) -> None:
    db = place
    await _legacy(db)
    store = await db.open(KeyRing(KEY), consent_version())
    try:
        await store.integrity.check()
        await store.integrity.check()  # nothing written since: not read again
        _raw(db, "UPDATE entries SET status='complete' WHERE id=(SELECT MAX(id) FROM entries)"
                 " AND status='complete'")  # same value: still passes
        await store.integrity.check()
        _raw(db, "UPDATE consent_ledger SET granted=1-granted WHERE id=1")
        with pytest.raises(TamperError, match="consent ledger row 1 failed"):
            await store.integrity.check()
    finally:
        await store.close()


def test_a_swapped_name_stops_the_export_instead_of_going_unmasked(
    programme: tuple[Place, int, int], tmp_path: Path
) -> None:
    db, _, _ = programme

    async def name_two() -> tuple[int, int]:
        # the synthetic cohort has no names: give two people theirs, as joining does
        store = await db.open(KeyRing(KEY), consent_version(), create=False)
        try:
            a, b = [p.id for p in await store.participants.all()][:2]
            for pid, name in ((a, "Amara"), (b, "Morgan")):
                blob = await store.vault.encrypt(pid, "participants", pid, "name", name)
                await store.db.execute("UPDATE participants SET name_ct=? WHERE id=?",
                                       (blob, pid))
            return a, b
        finally:
            await store.close()

    a, b = asyncio.run(name_two())
    assert _run("export", "--study", "s1", "--out", str(tmp_path / "before")).exit_code == 0
    ((na,),), ((nb,),) = (_rows(db, "SELECT name_ct FROM participants WHERE id=?", (pid,))
                          for pid in (a, b))
    _raw(db, "UPDATE participants SET name_ct=? WHERE id=?", (nb, a))
    _raw(db, "UPDATE participants SET name_ct=? WHERE id=?", (na, b))
    result = _run("export", "--study", "s1", "--out", str(tmp_path / "export"))
    assert result.exit_code == 2, result.output
    assert f"the name of participant {a} does not open with their key" in result.output
