"""Embeddings of answers are personal data: made once when saved, encrypted with the author's
key, dropped when the answer changes, erased with the entry, recomputed by recode."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from bot.coding import CODER_KEY, EntryCoder, embedding_wanted
from bot.embedder import EmbeddingWorker, Job
from conversations import sentence_encoder
from conversations.catalogue import load_flows
from reports.coding.embeddings import embed_texts, model_id, unpack
from reports.coding.heads import units
from reports.entry_codes import coded_texts, recode
from reports.synthetic import generate_cohort
from storage.db import iso, utcnow
from storage.store import Store
from tests.people import GROW_ANSWERS, Cohort
from tests.support.harness import TgUser, running_app

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends


def _disk(db_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


async def _rows(store: Store) -> set[tuple[int, str]]:
    rows = await store.db.fetchall("SELECT entry_id, step_id FROM answer_embeddings")
    return {(r["entry_id"], r["step_id"]) for r in rows}


async def test_a_saved_reflection_is_embedded_once_and_stored_encrypted(
    cohort: Cohort, store: Store, db_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MENTORBOT_CODING_EMBEDDINGS", "on")
    # stands for the master key, the bot token and the rest of the bot's settings
    monkeypatch.setenv("MENTORBOT_SOME_SECRET", "not-for-the-child")
    monkeypatch.setenv("TELEGRAM_SOMETHING", "not-for-the-child")
    caplog.set_level(logging.DEBUG)
    async with running_app(store) as (app, standin):
        coder = app.bot_data[CODER_KEY]
        assert isinstance(coder, EntryCoder) and coder.worker is not None
        mentee = TgUser(app, standin, 700_002, "Robin")
        await mentee.join(cohort.mentee_code)
        await mentee.send("/reflect")
        await mentee.tap("GROW: goal, reality, options, will")
        for step in ("goal", "reality", "options", "will"):
            await mentee.send(GROW_ANSWERS[step])
        for _ in range(6):
            await mentee.send("/skip")
        await mentee.tap("Save")
        await asyncio.wait_for(coder.drain(), 120)  # made after the reply, in the child
        # by a child process of its own, at the lowest CPU priority
        pid = coder.worker.pid
        assert pid is not None and pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert coder.worker.starts == 1 and coder.worker.lost == 0
        # none of the bot's settings reach the child
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"not-for-the-child" not in environ and b"MENTORBOT_" not in environ
        assert b"OPENBLAS_NUM_THREADS=1" in environ
    # stopped with the bot
    assert coder.worker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    me = await store.participants.by_user(700_002)
    assert me is not None
    (entry,) = await store.entries.of(me.id, "complete")
    answers = await store.entries.answers(me.id, entry.id)
    texts = coded_texts(load_flows()["grow"], answers)
    assert await _rows(store) == {(entry.id, step) for step in texts}
    stored = await store.embeddings.load(me.id, entry.id, model_id())
    encoder = sentence_encoder.load_encoder()
    for step, text in texts.items():
        spans, vectors = unpack(stored[step])
        assert spans == units(text)
        expected = encoder.encode([text[a:b] for a, b in spans])
        assert np.allclose(vectors, expected, atol=2e-3)
    # ciphertext on disk: neither the packed vectors nor their raw bytes appear in clear
    raw = _disk(db_path)
    some = next(iter(stored.values()))
    assert some["f16"][:40].encode() not in raw
    assert base64.b64decode(some["f16"])[:64] not in raw
    # nothing the person wrote reached the logs on its way to the child and back
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for text in texts.values():
        for piece in (text[:30], text[-30:]):
            assert piece not in logged


def test_save_time_embeddings_are_on_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MENTORBOT_CODING_EMBEDDINGS", raising=False)
    assert embedding_wanted()
    for off in ("off", "OFF", "0", "no", "false"):
        monkeypatch.setenv("MENTORBOT_CODING_EMBEDDINGS", off)
        assert not embedding_wanted()


async def test_embeddings_off_starts_no_worker(store: Store,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORBOT_CODING_EMBEDDINGS", "off")
    async with running_app(store) as (app, _):
        assert app.bot_data[CODER_KEY].worker is None


async def test_the_queue_keeps_one_job_per_entry_and_is_bounded() -> None:
    async def keep(job: Job, vectors: dict[str, object]) -> None:
        raise AssertionError("nothing is embedded here")

    worker = EmbeddingWorker(keep, queue_limit=2)
    worker.submit(Job(1, 10, {"goal": "first words"}, "t1"))
    worker.submit(Job(1, 10, {"goal": "second words"}, "t2"))  # the same entry, saved again
    assert list(worker.queue) == [10] and worker.queue[10].texts == {"goal": "second words"}
    worker.submit(Job(2, 11, {"goal": "x"}, "t"))
    worker.submit(Job(3, 12, {"goal": "y"}, "t"))
    assert list(worker.queue) == [11, 12] and worker.dropped == 1  # the oldest goes
    worker.submit(Job(4, 13, {}, "t"))  # nothing to embed: not queued
    assert 13 not in worker.queue
    await worker.close()  # before the worker ever ran: no child was started
    assert worker.starts == 0 and not worker.queue


async def test_a_dying_worker_loses_nothing(store: Store,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await generate_cohort(store, pairs=1, sessions=2, consent_rate=1.0)
    rows = await store.db.fetchall(
        "SELECT id, participant_id, flow FROM entries WHERE status='complete' ORDER BY id")
    flows = load_flows()
    wanted: set[tuple[int, str]] = set()
    jobs = []
    for r in rows:
        answers = await store.entries.answers(r["participant_id"], r["id"])
        texts = coded_texts(flows.get(r["flow"]), answers)
        wanted |= {(r["id"], step) for step in texts}
        if texts:
            jobs.append(Job(r["participant_id"], r["id"], texts, iso(utcnow())))
    assert len(jobs) >= 3
    coder = EntryCoder(store, embed=True, sweep_every=0.2)
    worker = coder.worker
    assert worker is not None
    worker.restart_after = 0.0
    try:
        worker.submit(jobs[0])
        await asyncio.wait_for(worker.wait_idle(), 120)
        assert worker.embedded > 0 and worker.pid is not None
        # the child dies (killed, out of memory...) with the next job on its way to it
        os.kill(worker.pid, signal.SIGKILL)
        worker.submit(jobs[1])
        for _ in range(2400):  # the sweep finds what was lost and what was never queued
            if await _rows(store) == wanted:
                break
            await asyncio.sleep(0.05)
        assert await _rows(store) == wanted
        assert worker.lost >= 1 and worker.starts >= 2
    finally:
        await coder.close()
    assert worker.pid is None
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for job in jobs:
        for text in job.texts.values():
            assert text[:30] not in logged


async def test_embeddings_are_dropped_when_the_answer_changes_and_erased_with_the_entry(
    store: Store, db_path: Path
) -> None:
    await generate_cohort(store, pairs=1, sessions=1, consent_rate=1.0)
    row = await store.db.fetchone(
        "SELECT id, participant_id FROM entries WHERE flow = 'grow' AND status='complete'")
    entry_id, pid = row["id"], row["participant_id"]
    answers = await store.entries.answers(pid, entry_id)
    texts = coded_texts(load_flows()["grow"], answers)
    vectors = embed_texts(texts)
    now = iso(utcnow())
    assert await store.embeddings.save(pid, entry_id, model_id(), vectors, now) == len(texts)
    assert {s for e, s in await _rows(store) if e == entry_id} == set(texts)

    # an answer written again drops its own embedding, not its neighbours'
    changed = next(iter(texts))
    await store.entries.save_answer(pid, entry_id, changed, "A new goal entirely")
    left = {s for e, s in await _rows(store) if e == entry_id}
    assert changed not in left and left == set(texts) - {changed}
    # an embedding made before that change is refused: it describes the old answer
    stale = "2000-01-01T00:00:00+00:00"
    assert await store.embeddings.save(pid, entry_id, model_id(),
                                       {changed: vectors[changed]}, stale) == 0
    # someone else's entry takes none
    other = await store.db.scalar("SELECT id FROM participants WHERE id != ?", (pid,))
    assert await store.embeddings.save(other, entry_id, model_id(), vectors,
                                       iso(utcnow())) == 0

    sample = vectors[next(iter(left))]["f16"][:40].encode()
    await store.erase(pid)
    assert await _rows(store) == set()
    assert await store.embeddings.count() == 0
    await store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert sample not in _disk(db_path)


async def test_recode_embeds_what_lacks_embeddings_with_progress(store: Store) -> None:
    await generate_cohort(store, pairs=2, sessions=1, consent_rate=1.0)
    ticks: list[int] = []
    first = await recode(store, progress=ticks.append)
    assert first.embedded > 0 and sum(ticks) == first.entries
    assert await store.embeddings.count(model_id()) == first.embedded
    again = await recode(store)
    assert again.embedded == 0  # nothing is embedded twice
    skipped = await recode(store, embed=False)
    assert skipped.embedded == 0 and skipped.embeddings_note == "not requested"
