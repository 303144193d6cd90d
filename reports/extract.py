"""Consented entries for the offline jobs, with the answers the safety rule flags marked.

Reading is storage's (:mod:`storage.bulk`: the consent rule, one query per batch, the one
decryption loop); this module adds the safety rule's judgement, so no report or export ever
quotes a flagged answer (:attr:`EntryRecord.flagged`): the verdict stored with each answer,
and where it is missing or older than the rule, the rule's lexicon again on the spot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from conversations import safety
from storage.bulk import (
    UNREADABLE,
    EntryRecord,
    PersonRecord,
    Snapshot,
    Verdict,
    consenting,
    mask_names,
    snapshot,
    split,
)
from storage.bulk import entries as _entries
from storage.bulk import read_range as _read_range
from storage.models import Scope
from storage.store import Store

__all__ = ["EntryRecord", "PersonRecord", "Snapshot", "consenting", "entries", "flagged",
           "mask_names", "read_range", "snapshot", "split"]


def flagged(value: Any, verdict: Verdict, judged_by: str | None) -> bool:
    """Never quote this answer: its stored verdict, or (where it is missing or came from
    another lexicon) the stored verdict together with the lexicon's judgement now: a flag is
    never lost, and a rule that sees more flags more, before ``mentorbot recode`` has run."""
    typed = safety.typed_text(value)
    if not typed:
        return False
    stored = verdict()
    if stored is not None:
        if stored is UNREADABLE:
            return True  # a damaged or moved verdict never lets an answer out
        if not isinstance(stored, dict) or stored.get("risk", True):
            return True
        if safety.judged_by_this_lexicon(judged_by):
            return False
    return safety.risk_span(typed) is not None


def entries(
    store: Store,
    scope: Scope,
    *,
    programme_id: int | None = None,
    flows: Iterable[str] | None = None,
) -> AsyncIterator[EntryRecord]:
    """Complete entries whose authors currently consent to ``scope``, oldest first."""
    return _entries(store, scope, programme_id=programme_id, flows=flows, judge=flagged)


def read_range(snap: Snapshot, after: int, upto: int,
               with_codes: bool = True) -> Iterator[EntryRecord]:
    """The snapshot's entries with ids in (after, upto], opened and judged (worker side)."""
    return _read_range(snap, after, upto, with_codes, flagged)
