"""The rules layer's coding of an entry: made once, when the entry is saved, and kept with it.

Rule coding is the costly part of the offline jobs (about 150 µs a text, and real answers
rarely repeat), so the bot codes each entry as it is saved and stores the result encrypted
beside the answers (``entry_codes``, see migration 004); an export reads it instead of coding
100,000 entries again. Stored codes are only used when they were made by the same coder
(:func:`coder_id`: codebook content hash and :data:`CODES_VERSION`); the database drops them
whenever an answer of the entry changes, and an entry without current codes is coded on the
spot, with the same functions, so the result does not depend on where the codes came from.

What is coded is :func:`coded_texts`: each answer's text as an export shows it, before the
author's first name is masked (an export maps the spans onto the masked text with
:func:`shift_spans`). Answers flagged for safety signposting are never coded for storage:
they are never exported or quoted either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from conversations.answers import Answer
from conversations.model import Flow, Step
from conversations.safety import lexicon_version
from reports.codebook import INTENTION, Codebook, load_codebook
from reports.coding.rules import code_text_raw

CODES_VERSION = "2"  # bump when what is coded, or how it is stored, changes

# start, end (code points into the text), code id, confidence, modality (issue 13: "realised",
# "intended", "hypothetical" or "negated"; only a realised outcome is an outcome)
Hit = tuple[int, int, str, float, str]


def step_intends(step: Step | None) -> bool:
    """Does this step ask for goals or hopes (``elicits: [INTENTION]``)?"""
    return step is not None and INTENTION in step.elicits


@lru_cache(maxsize=1)
def intention_steps() -> frozenset[tuple[str, str]]:
    """(flow id, step id) of every packaged step that asks for goals or hopes."""
    from conversations.catalogue import load_flows

    return frozenset((flow.id, step.id) for flow in load_flows().values()
                     for step in flow.steps if step_intends(step))


def coder_id(codebook: Codebook) -> str:
    # TOPIC_SELF_HARM_RISK follows the stored verdict, at the span the safety lexicon finds,
    # so the lexicon's version is part of the coder's
    return f"{codebook.content_hash}/{CODES_VERSION}/{lexicon_version()}"


@dataclass(frozen=True, slots=True)
class Typed:
    """A text or choice answer as an export shows it: chosen labels, then what was typed."""

    prefix: str  # the chosen labels and their separator, before the typed part
    typed: str | None  # the typed text (a text answer, a choice's "other"), if any
    codes: tuple[str, ...]  # codebook ids of the chosen buttons
    labels: str | None  # the chosen labels alone, when nothing was typed

    @property
    def text(self) -> str | None:
        return self.prefix + self.typed if self.typed else self.labels


def answer_text(step: Step | None, kind: str, value: Any,
                mask: Callable[[str], str] | None = None) -> Typed | None:
    """The text of a text or choice answer (None for other kinds); ``mask`` applies to what
    the person typed."""
    def masked(text: str) -> str:
        return mask(text) if mask is not None else text

    if value is None:
        return None
    if kind == "text":
        return Typed("", masked(str(value)), (), None)
    if kind not in ("choice", "multi") or step is None:
        return None
    answer = Answer.decode(value)
    selected, other = answer.selected, answer.other
    labels: list[str] = []
    codes: list[str] = []
    for choice_id in selected:
        choice = step.choice(choice_id)
        labels.append(choice.label if choice else choice_id)
        if choice is not None and choice.code is not None:
            codes.append(choice.code)
    joined = "; ".join(labels)
    if isinstance(other, str) and other.strip():
        return Typed(f"{joined}; " if labels else "", masked(other), tuple(codes), None)
    return Typed("", None, tuple(codes), joined or None)


def step_kind(flow: Flow | None, step_id: str, value: Any) -> tuple[Step | None, str]:
    step = flow.step(step_id) if flow is not None else None
    if step is None:
        return None, ("text" if isinstance(value, str) else "")
    return step, step.kind


def coded_texts(flow: Flow | None, answers: Mapping[str, Any],
                skip: Collection[str] = ()) -> dict[str, str]:
    """Step id -> the text the rules layer reads, for each answer with something typed."""
    out: dict[str, str] = {}
    for step_id, value in answers.items():
        if step_id in skip:
            continue
        step, kind = step_kind(flow, step_id, value)
        typed = answer_text(step, kind, value)
        if typed is not None and typed.typed:
            out[step_id] = typed.prefix + typed.typed
    return out


def embed_entry(flow: Flow | None, answers: Mapping[str, Any], skip: Collection[str] = (),
                encoder: Any = None) -> dict[str, dict[str, Any]]:
    """The sentence embeddings of an entry's coded texts (reports.coding.embeddings)."""
    from reports.coding.embeddings import embed_texts

    return embed_texts(coded_texts(flow, answers, skip), encoder)


def code_texts(texts: Mapping[str, str], role: str | None, codebook: Codebook,
               intends: Collection[str] = (), flagged: Collection[str] = ()
               ) -> dict[str, list[Hit]]:
    """Rule hits per text; ``intends`` names the steps that ask for goals or hopes. Every text
    here is a stored answer with the safety rule's verdict: ``flagged`` names the steps it
    flagged, and the rest get no risk-to-self code, whatever their words."""
    out: dict[str, list[Hit]] = {}
    for step_id, text in texts.items():
        hits = [(h.span_start, h.span_end, h.code_id, h.confidence, h.modality)
                for h in code_text_raw(text, role, codebook, step_id in intends,
                                       step_id in flagged)]
        if hits:
            out[step_id] = hits
    return out


def code_entry(flow: Flow | None, answers: Mapping[str, Any], role: str | None,
               codebook: Codebook, skip: Collection[str] = (),
               flagged: Collection[str] = ()) -> dict[str, list[Hit]]:
    """What is stored for an entry: the rule hits of each coded text (steps without hits are
    left out, so an entry with none stores an empty mapping). ``skip``: steps never coded;
    ``flagged``: steps coded although the safety rule flagged them (see :func:`code_texts`)."""
    intends = () if flow is None else {s.id for s in flow.steps if step_intends(s)}
    return code_texts(coded_texts(flow, answers, skip), role, codebook, intends, flagged)


def stored_hits(raw: Any) -> dict[str, list[Hit]] | None:
    """Codes as decrypted from the store, or None when they are not a mapping.

    They were written by :func:`code_entry` under the same :func:`coder_id` and are
    authenticated by the cipher, so their shape is not checked hit by hit (100,000 entries).
    """
    return raw if isinstance(raw, dict) else None


def shift_spans(hits: Iterable[Hit], prefix: int, names: list[tuple[int, int]],
                mark: int) -> list[Hit]:
    """Spans in ``prefix + typed`` moved onto ``prefix + masked(typed)``.

    ``names`` are the (start, end) of each masked name in the typed part, in order; each
    becomes ``mark`` characters. A span edge inside a name moves to that mark's edge.
    """
    if not names:
        return list(hits)

    def move(pos: int, end: bool) -> int:
        if pos <= prefix:
            return pos
        p, delta = pos - prefix, 0
        for start, stop in names:
            if stop <= p:
                delta += mark - (stop - start)
            elif start < p:
                return prefix + start + delta + (mark if end else 0)
            else:
                break
        return prefix + p + delta

    return [(move(s, False), move(e, True), code, conf, modality)
            for s, e, code, conf, modality in hits]


def name_spans(pattern: re.Pattern[str] | None, typed: str) -> list[tuple[int, int]]:
    return [] if pattern is None else [m.span() for m in pattern.finditer(typed)]


@dataclass
class RecodeResult:
    entries: int  # complete entries of participating people
    coded: int  # coded now and stored
    current: int  # already had codes from this coder
    judged: int = 0  # answers given a verdict by the current safety rule
    newly_flagged: int = 0  # of those, flagged by it and not before
    embedded: int = 0  # answers embedded now and stored (the semantic layer's input)
    embeddings_note: str = ""  # why answers were not embedded, when they were not


# answers embedded together: big enough that the encoder's batches stay full and its two
# threads busy, small enough that the progress bar moves and a batch waits little memory
EMBED_BATCH = 256


async def recode(store: Any, codebook: Codebook | None = None,
                 progress: Callable[[int], None] | None = None,
                 embed: bool = True) -> RecodeResult:
    """Judge every answer the current safety rule has not judged (see
    :mod:`conversations.safety.stored`), then code and store every complete entry whose stored
    codes are missing or were made by another coder: after an upgrade that changes the
    codebook or the safety rule, or for entries saved before codes were stored. Exports and
    reports work without it, only slower (they code what they find uncoded on each run).

    With ``embed`` (and the semantic extra installed) every coded answer without a stored
    embedding from the current encoder is embedded too, in batches, and stored encrypted."""
    from conversations.catalogue import load_flows
    from conversations.safety.stored import rejudge
    from reports import extract
    from storage.db import iso, utcnow
    from storage.models import Scope

    # safety first: which answers are flagged decides what may be coded at all
    judged = await rejudge(store)
    book = codebook or load_codebook()
    coder = coder_id(book)
    flows = load_flows()
    as_of = iso(utcnow())  # answers changed after this are left for the next run
    snap = await extract.snapshot(store, Scope.PARTICIPATE)
    result = RecodeResult(len(snap.entry_ids), 0, 0, judged.judged, judged.newly_flagged)
    if not snap.entry_ids:
        return result
    embedder = await _Embedder.open(store, flows) if embed else None
    if embedder is None:
        result.embeddings_note = "not requested" if not embed else "semantic extra missing"
    for record in extract.read_range(snap, 0, snap.entry_ids[-1]):
        if embedder is not None:
            result.embedded += await embedder.add(record, as_of)
        if record.codes is not None and record.codes[0] == coder:
            result.current += 1
        else:
            codes = code_entry(flows.get(record.flow), record.answers, record.role.value, book,
                               skip=record.flagged)
            if await store.entries.save_codes(record.participant_id, record.entry_id, coder,
                                              codes, as_of):
                result.coded += 1
        if progress is not None:
            progress(1)
    if embedder is not None:
        result.embedded += await embedder.flush()
    return result


class _Embedder:
    """Batches the answers ``recode`` finds without current embeddings, as a pipeline: while
    one batch is encoded (in a worker thread, on every core, numpy letting go of the GIL),
    the event loop goes on decrypting and coding the next entries and seals and stores the
    batch before, in one transaction."""

    def __init__(self, store: Any, flows: Mapping[str, Flow], model: str,
                 have: set[tuple[int, str]]) -> None:
        self.store = store
        self.flows = flows
        self.model = model
        self.have = have
        self.pending: list[tuple[int, int, str, str, str]] = []  # who, entry, step, text, as_of
        # the batch being encoded and its rows
        self.running: tuple[Any, list[tuple[int, int, str, str, str]]] | None = None

    @classmethod
    async def open(cls, store: Any, flows: Mapping[str, Flow]) -> _Embedder | None:
        from reports.coding.embeddings import available, model_id

        if not available()[0]:
            return None
        model = model_id()
        return cls(store, flows, model, await store.embeddings.stored(model))

    async def add(self, record: Any, as_of: str) -> int:
        texts = coded_texts(self.flows.get(record.flow), record.answers, record.flagged)
        for step, text in texts.items():
            if (record.entry_id, step) not in self.have:
                self.pending.append((record.participant_id, record.entry_id, step, text, as_of))
        return await self.flush(last=False) if len(self.pending) >= EMBED_BATCH else 0

    async def flush(self, last: bool = True) -> int:
        """Start encoding what is pending and store the batch encoded before; with ``last``,
        wait for everything and store it."""
        import asyncio

        from reports.coding.embeddings import embed_texts

        stored = 0
        started = None
        if self.pending:
            batch, self.pending = self.pending, []
            keyed = {f"{i}": text for i, (_, _, _, text, _) in enumerate(batch)}
            started = (asyncio.ensure_future(asyncio.to_thread(embed_texts, keyed)), batch)
        if self.running is not None:
            stored += await self._store(*self.running)
        self.running = started
        if last and self.running is not None:
            stored += await self._store(*self.running)
            self.running = None
        return stored

    async def _store(self, job: Any, batch: list[tuple[int, int, str, str, str]]) -> int:
        vectors = await job
        return int(await self.store.embeddings.save_answers(
            self.model, [(who, entry, step, vectors[str(i)], as_of)
                         for i, (who, entry, step, _, as_of) in enumerate(batch)]))
