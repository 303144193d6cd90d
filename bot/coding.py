"""Code each entry once, as it is saved, so the offline jobs need not (reports.entry_codes),
and have its answers embedded by a low-priority child process (bot/embedder.py), which codes
the entry again from the new embeddings (the rules joined by the semantic heads: the codes
every output reads)."""

from __future__ import annotations

import logging
import os
from typing import Any

from telegram.ext import Application

from bot.context import SERVICE_KEY
from bot.errors import describe
from conversations.catalogue import load_flows
from conversations.commands import Registry
from conversations.service import Service
from reports.codebook import Codebook, load_codebook
from reports.entry_codes import code_entry, coded_texts, coder_id
from storage.db import iso, utcnow
from storage.models import Participant, Scope
from storage.store import Store

log = logging.getLogger(__name__)

# On by default: answers are embedded as they are saved, by a child process at the lowest
# CPU priority (bot/embedder.py), which benchmarks/bot_throughput.py shows leaves reply times
# as they are. (In a worker thread of the bot's own process it raised the p99 reply time from
# about 0.2 s to 1.4 s at 100 people on a busy 2-core machine.) "off" opts out: then
# `mentorbot recode` embeds what is missing.
EMBED_SETTING = "MENTORBOT_CODING_EMBEDDINGS"
CODER_KEY = "entry_coder"
SWEEP_EVERY = 300.0  # seconds between idle sweeps for answers that lack embeddings
SWEEP_ENTRIES = 50  # entries looked at per page of a sweep
SWEEP_PAGES = 4  # pages a sweep may read looking for something to embed


def embedding_wanted() -> bool:
    value = os.environ.get(EMBED_SETTING, "").strip().lower()
    return value not in ("off", "0", "no", "false")


class EntryCoder:
    """A saved-entry listener: rule codes of the entry's typed answers, stored encrypted, and
    their embeddings, made by the embedding worker and stored encrypted when they come back."""

    def __init__(self, store: Store, codebook: Codebook | None = None,
                 embed: bool | None = None, sweep_every: float = SWEEP_EVERY) -> None:
        self.store = store
        self.codebook = codebook or load_codebook()
        self.coder = coder_id(self.codebook)
        self.flows = load_flows()
        self.embed = embedding_wanted() if embed is None else embed
        self.worker: Any = None
        self.model = ""
        self._cursor = 0  # the idle sweep's place among the entries
        # steps that take typed text, the only ones with anything to embed
        self._typed = {(flow.id, step.id) for flow in self.flows.values()
                       for step in flow.steps if step.kind == "text" or step.allow_other}
        if self.embed:
            from reports.coding.embeddings import available, model_id

            self.embed = available()[0]
            if self.embed:
                from bot.embedder import EmbeddingWorker

                self.model = model_id()
                self.worker = EmbeddingWorker(self._store_vectors, self._sweep,
                                              sweep_every=sweep_every)

    async def on_saved(
        self, me: Participant, entry_id: int, flow_id: str, answers: dict[str, Any]
    ) -> None:
        # Coding is an optimisation for the offline jobs, which code what is missing: a
        # failure here must never spoil the person's save, which has already happened.
        try:
            as_of = iso(utcnow())
            flagged = await self.store.entries.flagged_steps(me.id, entry_id)
            flow = self.flows.get(flow_id)
            codes = code_entry(flow, answers, me.role.value, self.codebook, skip=flagged)
            await self.store.entries.save_codes(me.id, entry_id, self.coder, codes, as_of)
        except Exception as exc:
            log.warning("coding a saved entry failed: %s", describe(exc))
            return
        if self.worker is not None:
            from bot.embedder import Job

            # queued for the child process; the reply does not wait for it
            self.worker.submit(Job(me.id, entry_id, coded_texts(flow, answers, flagged),
                                   as_of, flow_id, me.role.value))

    async def _store_vectors(self, job: Any, vectors: dict[str, Any], coded: Any) -> None:
        try:
            stored = await self.store.embeddings.save_answers(
                self.model, [(job.participant_id, job.entry_id, step, value, job.as_of)
                             for step, value in vectors.items()])
            if coded is not None and stored == len(vectors):
                # the entry's codes made from these embeddings replace the rules' alone (not
                # stored if an answer changed since as_of: the database drops them then)
                await self.store.entries.save_codes(job.participant_id, job.entry_id,
                                                    coded[0], coded[1], job.as_of)
        except Exception as exc:  # erased meanwhile, or the database is closing
            log.warning("storing an entry's embeddings failed: %s", describe(exc))

    async def _sweep(self) -> list[Any]:
        """Jobs for complete entries whose coded answers lack embeddings: saved while the
        worker was behind, down or off, or before embeddings were made at all. Reads a few
        pages of entries at most, going on from where the last sweep stopped."""
        jobs: list[Any] = []
        for _ in range(SWEEP_PAGES):
            found = await self.store.embeddings.lacking(self.model, self._typed, self._cursor,
                                                        SWEEP_ENTRIES)
            # the next page goes on from here, and starts over once it reached the end
            self._cursor = found[-1][0] if len(found) == SWEEP_ENTRIES else 0
            jobs += await self._jobs(found)
            if jobs or self._cursor == 0:
                break
        return jobs

    async def _jobs(self, found: list[tuple[int, int, str]]) -> list[Any]:
        from bot.embedder import Job

        present = await self.store.consent.consenting(Scope.PARTICIPATE,
                                                      {pid for _, pid, _ in found})
        roles: dict[int, str] = {}
        for pid in {pid for _, pid, _ in found if pid in present}:
            person = await self.store.participants.get(pid)
            if person is not None:
                roles[pid] = person.role.value
        jobs = []
        for entry_id, pid, flow_id in found:
            if pid not in present:
                continue  # as recode: only people who still take part
            as_of = iso(utcnow())
            answers = await self.store.entries.answers(pid, entry_id)
            flagged = await self.store.entries.flagged_steps(pid, entry_id)
            # every coded answer, those embedded before too: the entry is coded from them all
            texts = coded_texts(self.flows.get(flow_id), answers, flagged)
            if texts:
                jobs.append(Job(pid, entry_id, texts, as_of, flow_id, roles.get(pid, "")))
        return jobs

    async def drain(self) -> None:
        """Wait for embeddings still being made (tests, benchmarks)."""
        if self.worker is not None:
            await self.worker.wait_idle()

    async def close(self) -> None:
        """Stop the embedding worker (post_shutdown); what it had queued is found later by
        the sweep or `mentorbot recode`."""
        if self.worker is not None:
            await self.worker.close()

    def register(self, registry: Registry, service: Service) -> None:
        registry.on_saved(self.on_saved)


async def install(app: Application[Any, Any, Any, Any, Any, Any]) -> EntryCoder:
    """Called from post_init, once the store and the service exist."""
    service: Service = app.bot_data[SERVICE_KEY]
    coder = EntryCoder(service.store)
    service.install(coder)
    app.bot_data[CODER_KEY] = coder
    if coder.worker is not None:
        coder.worker.start_sweeping()
    return coder
