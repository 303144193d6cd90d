"""Code each entry once, as it is saved, so the offline jobs need not (reports.entry_codes)."""

from __future__ import annotations

import logging
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


class EntryCoder:
    """A saved-entry listener: rule codes of the entry's typed answers, stored encrypted."""

    def __init__(self, store: Store, codebook: Codebook | None = None) -> None:
        self.store = store
        self.codebook = codebook or load_codebook()
        self.coder = coder_id(self.codebook)
        self.flows = load_flows()

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


    def register(self, registry: Registry, service: Service) -> None:
        registry.on_saved(self.on_saved)


async def install(app: Application[Any, Any, Any, Any, Any, Any]) -> EntryCoder:
    """Called from post_init, once the store and the service exist."""
    service: Service = app.bot_data[SERVICE_KEY]
    coder = EntryCoder(service.store)
    service.install(coder)
    return coder
