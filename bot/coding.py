"""Code each entry once, as it is saved, so the offline jobs need not (reports.entry_codes)."""

from __future__ import annotations

import asyncio
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
from reports.entry_codes import code_entry, coder_id
from storage.db import iso, utcnow
from storage.models import Participant
from storage.store import Store

log = logging.getLogger(__name__)

# "on" makes the bot embed answers as they are saved, after the reply, in a worker thread.
# Off by default: measured with benchmarks/bot_throughput.py (100 people, think time 0.2 s,
# a busy 2-core machine) it raised the p99 reply time from about 0.2 s to 1.4 s, which the
# bot's latency budget does not allow; `mentorbot recode` embeds what is missing instead.
EMBED_SETTING = "MENTORBOT_CODING_EMBEDDINGS"


def embedding_wanted() -> bool:
    value = os.environ.get(EMBED_SETTING, "").strip().lower()
    return value in ("on", "1", "yes", "true")


class EntryCoder:
    """A saved-entry listener: rule codes of the entry's typed answers, stored encrypted."""

    def __init__(self, store: Store, codebook: Codebook | None = None,
                 embed: bool | None = None) -> None:
        self.store = store
        self.codebook = codebook or load_codebook()
        self.coder = coder_id(self.codebook)
        self.flows = load_flows()
        self.embed = embedding_wanted() if embed is None else embed
        if self.embed:
            from reports.coding.embeddings import available

            self.embed = available()[0]
        # background embedding tasks, kept so they are not collected before they finish
        self.pending: set[asyncio.Task[None]] = set()

    async def on_saved(
        self, me: Participant, entry_id: int, flow_id: str, answers: dict[str, Any]
    ) -> None:
        # Coding is an optimisation for the offline jobs, which code what is missing: a
        # failure here must never spoil the person's save, which has already happened.
        try:
            as_of = iso(utcnow())
            flagged = await self.store.entries.flagged_steps(me.id, entry_id)
            codes = code_entry(self.flows.get(flow_id), answers, me.role.value, self.codebook,
                               skip=flagged)
            await self.store.entries.save_codes(me.id, entry_id, self.coder, codes, as_of)
        except Exception as exc:
            log.warning("coding a saved entry failed: %s", describe(exc))
            return
        if self.embed:
            # embedding takes milliseconds of CPU: it runs after the reply, in a worker
            # thread, so it never delays anyone's conversation
            task = asyncio.get_running_loop().create_task(
                self._embed(me.id, entry_id, flow_id, answers, flagged, as_of))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _embed(self, participant_id: int, entry_id: int, flow_id: str,
                     answers: dict[str, Any], flagged: Any, as_of: str) -> None:
        from reports.coding.embeddings import model_id
        from reports.entry_codes import embed_entry

        try:
            await asyncio.sleep(0)  # let the reply go first
            vectors = await asyncio.to_thread(embed_entry, self.flows.get(flow_id), answers,
                                              flagged)
            if vectors:
                await self.store.embeddings.save(participant_id, entry_id, model_id(),
                                                 vectors, as_of)
        except Exception as exc:
            log.warning("embedding a saved entry failed: %s", describe(exc))

    async def drain(self) -> None:
        """Wait for embeddings still being made (tests, shutdown)."""
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)


    def register(self, registry: Registry, service: Service) -> None:
        registry.on_saved(self.on_saved)


async def install(app: Application[Any, Any, Any, Any, Any, Any]) -> EntryCoder:
    """Called from post_init, once the store and the service exist."""
    service: Service = app.bot_data[SERVICE_KEY]
    coder = EntryCoder(service.store)
    service.install(coder)
    return coder
