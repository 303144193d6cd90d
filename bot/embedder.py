"""Save-time embeddings made where they cannot slow a reply: a low-priority child process.

Embedding an entry is tens of milliseconds of numpy work. In the bot's own process it would
take CPU and, between numpy calls, the GIL from the event loop (measured: p99 reply time
from 0.22 s to 1.4 s at 100 people). So the bot hands the texts to one child process (a
fresh interpreter running ``python -m bot.embedder``, not a fork: no copy of the bot's keys,
connections or threads, nothing of the Telegram side imported) that lowers itself, before
it imports anything else, to the lowest CPU priority the system offers (``SCHED_IDLE`` where
there is one, and nice 19) and runs on one BLAS thread. It gets only CPU time nobody else
wants: on a machine kept busy by other work, embeddings wait until it is quieter. The
plaintext goes through an in-memory socket pair and nowhere else: never a file, a log line
or a job name. Vectors come back the same way, with the entry's codes made again from them
(``reports.entry_codes.StoredCoder``: the rules joined by the semantic heads, the codes every
output reads), and the bot's process seals both with the author's key and stores them
(storage/embeddings.py, storage/entries.py); the child holds no key and opens no database,
and its environment holds none of the bot's settings.

Nothing is lost when the child falls behind or dies: the queue keeps one job per entry (a
newer save replaces an older one), and when it is full the oldest job is dropped; a sweep
that runs when the queue is empty finds complete entries whose answers lack embeddings and
queues them again, and `mentorbot recode` embeds whatever is still missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

QUEUE_LIMIT = 2000  # entries waiting; past this the oldest is dropped (the sweep finds it)
BATCH_ENTRIES = 16  # entries sent to the child at once: one encoder batch
RESTART_AFTER = 30.0  # seconds between starts of a child that died
# The only variables the child is given: what an interpreter needs to start and find its
# packages. Never the bot's settings: the master key, the bot token and the database path
# stay in the bot's process.
CHILD_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONPATH",
             "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONSAFEPATH")
POLL = 0.5  # seconds between checks that the child is still alive while waiting for it


@dataclass
class Job:
    participant_id: int
    entry_id: int
    texts: dict[str, str]  # step id -> text to embed (plaintext: kept in memory only)
    as_of: str  # an answer written after this is not described by the embedding
    # the entry's flow and its author's voice: with them (and ``texts`` holding every coded
    # answer of the entry) the child codes the entry too; without, it only embeds
    flow: str = ""
    role: str = ""


# what the child sends back for a job besides its vectors: (coder id, the entry's codes)
Coded = tuple[str, dict[str, Any]] | None


def _lower_priority() -> None:
    """The lowest CPU priority this process may take: it runs only on time nobody else
    wants."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    with contextlib.suppress(OSError):
        os.nice(19)


def serve(conn: Connection) -> None:
    """The child's loop: texts in, packed vectors out, until the pipe closes or says stop."""
    _lower_priority()  # again: serve may be called without going through main()
    from conversations.sentence_encoder import load_encoder
    from reports.coding.embeddings import embed_texts

    encoder = load_encoder()
    coder = _entry_coder()
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        try:
            keyed, metas = message
            vectors = embed_texts(keyed, _OneThread(encoder))
            conn.send(("ok", (vectors, _code_jobs(coder, keyed, metas, vectors))))
        except Exception as exc:  # the kind only, never the text
            conn.send(("error", type(exc).__name__))


def _entry_coder() -> Any:
    """The stored codes' coder with the semantic heads, or None where they cannot run (the
    vectors are still made; recode codes the entries later)."""
    try:
        from conversations.catalogue import load_flows
        from reports.entry_codes import StoredCoder

        coder = StoredCoder()
        return (coder, load_flows()) if coder.semantic else None
    except Exception as exc:  # the kind only
        log.warning("embedding worker: the coder failed to load (%s)", type(exc).__name__)
        return None


def _code_jobs(coder: Any, keyed: Mapping[str, str], metas: list[tuple[str, str]],
               vectors: Mapping[str, Any]) -> list[Coded]:
    """Each job's entry coded from its fresh vectors, as ``mentorbot recode`` codes it."""
    if coder is None:
        return [None] * len(metas)
    stored, flows = coder
    texts: list[dict[str, str]] = [{} for _ in metas]
    packed: list[dict[str, Any]] = [{} for _ in metas]
    for key, text in keyed.items():
        j, step = key.split("\x1f", 1)
        texts[int(j)][step] = text
        packed[int(j)][step] = vectors[key]
    out: list[Coded] = []
    for (flow_id, role), t, v in zip(metas, texts, packed, strict=True):
        flow = flows.get(flow_id) if flow_id else None
        out.append(None if flow is None else
                   (stored.coder, stored.code_texts(flow, t, role or None, v)))
    return out


class _OneThread:
    """The shared encoder, always on one thread (the child is one core's spare time)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def encode(self, texts: Any) -> Any:
        return self.encoder.encode(texts, threads=1)


Store = Callable[[Job, dict[str, Any], Coded], Awaitable[object]]
Sweep = Callable[[], Awaitable[list[Job]]]


class EmbeddingWorker:
    """The bot's side: a bounded, coalescing queue, the child process, and the idle sweep."""

    def __init__(self, store_result: Store, sweep: Sweep | None = None,
                 sweep_every: float = 300.0, queue_limit: int = QUEUE_LIMIT) -> None:
        self.store_result = store_result
        self.sweep = sweep
        self.sweep_every = sweep_every
        self.queue_limit = queue_limit
        self.queue: OrderedDict[int, Job] = OrderedDict()  # entry id -> its latest job
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.dropped = 0  # jobs dropped because the queue was full (the sweep finds them)
        self.lost = 0  # jobs in flight when the child died (the sweep finds them)
        self.embedded = 0  # answers whose vectors came back and were handed to the store
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._io = ThreadPoolExecutor(1, thread_name_prefix="embedder-pipe")
        self._task: asyncio.Task[None] | None = None
        self._last_start = 0.0
        self.restart_after = RESTART_AFTER
        self._last_sweep = time.monotonic()
        self._closed = False

    # -- the queue ------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        """Queue an entry's texts; a newer job for the same entry replaces the older one."""
        if self._closed or not job.texts:
            return
        self.queue.pop(job.entry_id, None)
        self.queue[job.entry_id] = job
        while len(self.queue) > self.queue_limit:
            self.queue.popitem(last=False)
            self.dropped += 1
        self.idle.clear()
        self.wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="embedding worker")

    async def wait_idle(self) -> None:
        """Until the queue is empty and nothing is in flight (tests, benchmarks)."""
        await self.idle.wait()

    def start_sweeping(self) -> None:
        """Run the idle sweep from now on (the bot calls this once it is up)."""
        if self.sweep is not None and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="embedding worker")

    async def _run(self) -> None:
        while not self._closed:
            if not self.queue:
                self.idle.set()
                if await self._maybe_sweep():
                    continue
                self.wake.clear()
                if self.sweep is None:
                    return  # started again by the next submit
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.sweep_every)
                continue
            batch = [self.queue.popitem(last=False)[1]
                     for _ in range(min(BATCH_ENTRIES, len(self.queue)))]
            try:
                await self._embed(batch)
            except Exception as exc:  # the kind only: messages could quote what was sent
                log.warning("embedding worker: a batch of %d entries failed (%s); the sweep "
                            "or mentorbot recode will embed them", len(batch),
                            type(exc).__name__)
                self.lost += len(batch)
        self.idle.set()

    async def _maybe_sweep(self) -> bool:
        if self.sweep is None or time.monotonic() - self._last_sweep < self.sweep_every:
            return False
        self._last_sweep = time.monotonic()
        try:
            jobs = await self.sweep()
        except Exception as exc:
            log.warning("embedding sweep failed: %s", type(exc).__name__)
            return False
        for job in jobs:
            if job.entry_id not in self.queue:
                self.queue[job.entry_id] = job
        return bool(jobs)

    # -- the child ------------------------------------------------------------------------
    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def _child(self) -> Connection | None:
        if self._conn is not None and self._alive():
            return self._conn
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._io, self._stop_child)
        if self.starts and time.monotonic() - self._last_start < self.restart_after:
            return None
        ours, theirs = socket.socketpair()
        env = child_environment(os.environ)
        self._last_start = time.monotonic()
        self.starts += 1
        try:
            self._proc = await loop.run_in_executor(self._io, _spawn, theirs.fileno(), env)
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        ready = await loop.run_in_executor(self._io, self._receive, self._conn)
        if not ready or ready[0] != "ready":
            await loop.run_in_executor(self._io, self._stop_child)
            return None
        return self._conn

    async def _embed(self, batch: list[Job]) -> None:
        conn = await self._child()
        if conn is None:
            self.lost += len(batch)  # the sweep queues them again later
            return
        keyed = {f"{j}\x1f{step}": text for j, job in enumerate(batch)
                 for step, text in job.texts.items()}
        metas = [(job.flow, job.role) for job in batch]
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(self._io, self._round_trip, conn, (keyed, metas))
        if reply is None or reply[0] != "ok":
            # died or failed: a new one is started for the next batch
            if reply is not None:
                log.warning("embedding worker: the child could not embed a batch (%s)",
                            reply[1])
            await loop.run_in_executor(self._io, self._stop_child)
            self.lost += len(batch)
            return
        vectors: Mapping[str, Any] = reply[1][0]
        coded: list[Coded] = reply[1][1]
        per_job: list[dict[str, Any]] = [{} for _ in batch]
        for key, value in vectors.items():
            j, step = key.split("\x1f", 1)
            per_job[int(j)][step] = value
        for job, got, codes in zip(batch, per_job, coded, strict=True):
            await self.store_result(job, got, codes)
            self.embedded += len(got)

    def _stop_child(self) -> None:
        conn, proc = self._conn, self._proc
        self._conn = self._proc = None
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
            conn.close()
        if proc is not None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _receive(self, conn: Connection) -> Any:
        """The child's next message, or None once it has died or the worker is closing (a
        child that is only slow, starved of CPU by other work, is waited for)."""
        try:
            while not conn.poll(POLL):
                if self._closed or not self._alive():
                    return None
            return conn.recv()
        except (EOFError, OSError):
            return None

    def _round_trip(self, conn: Connection, message: Any) -> Any:
        try:
            conn.send(message)
        except (OSError, ValueError):
            return None
        return self._receive(conn)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else int(self._proc.pid)

    async def close(self) -> None:
        """Stop the child and drop what is queued (the sweep and recode embed it later)."""
        self._closed = True
        self.queue.clear()
        self.wake.set()
        if self._alive() and self._task is not None and not self._task.done():
            # a batch may be in flight, its pipe thread waiting on the child: stopping the
            # child ends that wait at once
            assert self._proc is not None
            self._proc.terminate()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await asyncio.get_running_loop().run_in_executor(self._io, self._stop_child)
        self._io.shutdown(wait=True)
        self.idle.set()


def child_environment(parent: Mapping[str, str]) -> dict[str, str]:
    env = {name: parent[name] for name in CHILD_ENV if name in parent}
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"  # read when numpy loads its BLAS: one thread from the start
    return env


def _spawn(fd: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # a fixed command line: this interpreter, this module, the socket's number
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "bot.embedder", str(fd)], pass_fds=(fd,),
        stdin=subprocess.DEVNULL, env=env, close_fds=True)


def main(argv: list[str]) -> int:
    """``python -m bot.embedder FD``: serve the bot on the socket it passed as FD."""
    _lower_priority()  # first, before the model and numpy are loaded
    serve(Connection(int(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
