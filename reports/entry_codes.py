"""The coding of an entry every output reads: made once and kept with it (issue 13).

Rule coding is the costly part of the offline jobs (about 150 µs a text, and real answers
rarely repeat), so the bot codes each entry as it is saved and stores the result encrypted
beside the answers (``entry_codes``, see migration 004); an export reads it instead of coding
100,000 entries again. Stored codes are only used when they were made by the same coder
(:func:`coder_id`: codebook content hash and :data:`CODES_VERSION`); the database drops them
whenever an answer of the entry changes, and an entry without current codes is coded on the
spot, with the same functions, so the result does not depend on where the codes came from.

One coder for every output: the bot stores the rules' codes as the entry is saved; once an
answer's embeddings are stored (by the bot's embedding worker or by ``mentorbot recode``) the
entry's codes are made again by :class:`StoredCoder`, the rules joined by the semantic heads
exactly as the evaluator's report joins them (``reports.coding.stored.join``), each code with
its method, calibrated confidence and modality, and stored under :func:`combined_coder_id`
(which names the encoder and the heads' weights, so ``recode`` knows what is stale). An
answer without a stored embedding keeps its rule codes. Exports and ``/mydata`` read these
stored codes and the report combines the same stored embeddings with the same function, so
an answer carries the same codes everywhere.

What is coded is :func:`coded_texts`: each answer's text as an export shows it, before the
author's first name is masked (an export maps the spans onto the masked text with
:func:`shift_spans`). Answers flagged for safety signposting are never coded for storage:
they are never exported or quoted either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from conversations.answers import Answer
from conversations.model import Flow, Step
from conversations.safety import lexicon_version
from reports.codebook import INTENTION, Codebook, load_codebook
from reports.coding.model import current_codes
from reports.coding.rules import code_text_raw

CODES_VERSION = "4"  # bump when what is coded, or how it is stored, changes

# start, end (code points into the text), code id, confidence, modality (issue 13: "realised",
# "intended", "hypothetical" or "negated"; only a realised outcome is an outcome), method
# ("rules", "semantic" or "both"), polarity (a factor's helping/hindering, else None), CMO
# role and level as the coder gave them (a negated context's role turned round, None for an
# intended outcome; the evaluator's report reads them instead of coding the answer again)
Hit = tuple[int, int, str, float, str, str, "str | None", "str | None", "str | None"]


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
    """The rules alone."""
    # TOPIC_SELF_HARM_RISK follows the stored verdict, at the span the safety lexicon finds,
    # so the lexicon's version is part of the coder's
    return f"{codebook.content_hash}/{CODES_VERSION}/{lexicon_version()}"


@lru_cache(maxsize=1)
def heads_digest() -> str:
    """The shipped heads' weights, by content (a retrained ``default.npz`` is another coder)."""
    import hashlib

    from reports.coding.heads import DEFAULT_HEADS

    try:
        return hashlib.sha256(DEFAULT_HEADS.read_bytes()).hexdigest()[:16]
    except OSError:
        return "none"


def combined_coder_id(codebook: Codebook) -> str:
    """The rules joined by the shipped heads over embeddings from the current encoder, by the
    combination's code (``heads.COMBINATION_VERSION``: a change to how they are joined
    recomputes stored codes even with the same weights)."""
    from reports.coding.embeddings import model_id
    from reports.coding.heads import COMBINATION_VERSION

    return f"{coder_id(codebook)}/{model_id()}/{heads_digest()}/{COMBINATION_VERSION}"


def accepted_coders(codebook: Codebook) -> frozenset[str]:
    """Stored codes a reader may take as they are: the rules' (answers without stored
    embeddings), and the combined coder's where the semantic layer can run here. Without the
    semantic extra a reader codes with the rules alone, as the report then does."""
    ids = {coder_id(codebook)}
    if StoredCoder.layer_available()[0]:
        ids.add(combined_coder_id(codebook))
    return frozenset(ids)


def report_coder(codebook: Codebook, semantic: bool) -> str:
    """The coder whose stored codes equal what the evaluator's report would code: the rules
    joined by the shipped heads where the report's semantic layer is on (and the heads were
    not refitted on a review), the rules alone where it is off."""
    return combined_coder_id(codebook) if semantic else coder_id(codebook)


def as_hit(h: Any) -> Hit:
    return (h.span_start, h.span_end, h.code_id, h.confidence, h.modality, h.method,
            h.polarity, h.cmo_role, h.level)


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
        hits = [as_hit(h) for h in code_text_raw(text, role, codebook, step_id in intends,
                                                 step_id in flagged)]
        if hits:
            out[step_id] = hits
    return out


class StoredCoder:
    """The codes stored with an entry: the rules, joined by the semantic heads on each typed
    answer whose embeddings are given (``vectors``: step id -> the stored, packed value), by
    ``reports.coding.stored.join``, the function the evaluator's report runs. Without the
    semantic extra (or the heads' weights) it is the rules alone, under :func:`coder_id`, and
    ``note`` says why."""

    def __init__(self, codebook: Codebook | None = None, semantic: bool = True) -> None:
        self.book = codebook or load_codebook()
        self.heads: Any = None
        self.note = "rules only (semantic layer not requested)"
        if semantic:
            ok, why = self.layer_available()
            if ok:
                from reports.coding.stored import open_layer

                self.heads, why = open_layer()
            self.note = why if self.heads is None else "rules and semantic heads"
        self.coder = combined_coder_id(self.book) if self.heads is not None \
            else coder_id(self.book)

    @staticmethod
    def layer_available() -> tuple[bool, str]:
        from reports.coding.embeddings import available
        from reports.coding.heads import heads_available

        ok, why = available()
        return heads_available() if ok else (ok, why)

    @property
    def semantic(self) -> bool:
        return self.heads is not None

    def code(self, flow: Flow | None, answers: Mapping[str, Any], role: str | None,
             skip: Collection[str] = (), vectors: Mapping[str, Any] | None = None
             ) -> dict[str, list[Hit]]:
        return self.code_texts(flow, coded_texts(flow, answers, skip), role, vectors)

    def code_texts(self, flow: Flow | None, texts: Mapping[str, str], role: str | None,
                   vectors: Mapping[str, Any] | None = None) -> dict[str, list[Hit]]:
        return self.code_many([(flow, texts, role, vectors)])[0]

    def code_many(self, entries: Sequence[tuple[Flow | None, Mapping[str, str], str | None,
                                                Mapping[str, Any] | None]]
                  ) -> list[dict[str, list[Hit]]]:
        """:meth:`code_texts` for many entries, the heads run once over all of them (one
        pass of small matrix products instead of one per entry: ``mentorbot recode``)."""
        raws: list[dict[str, Any]] = []
        items: list[tuple[int, Any]] = []  # (entry, stored.Item)
        stack: list[Any] = []
        spans: list[list[tuple[int, int]]] = []
        for n, (flow, texts, role, vectors) in enumerate(entries):
            intends = () if flow is None else {s.id for s in flow.steps if step_intends(s)}
            raws.append({step: code_text_raw(text, role, self.book, step in intends, False)
                         for step, text in texts.items()})
            if self.heads is not None and vectors:
                for item, sp, vec in self._readable(flow, texts, role, vectors, intends):
                    items.append((n, item))
                    stack.append(vec)
                    spans.append(sp)
        if items:
            import numpy as np

            from reports.coding.stored import join

            joined = join(self.heads, self.book, [i for _, i in items], np.vstack(stack),
                          spans, [raws[n][i.step] for n, i in items])
            for (n, item), (hits, _) in zip(items, joined, strict=True):
                raws[n][item.step] = hits
        return [{step: [as_hit(h) for h in hits] for step, hits in raw.items() if hits}
                for raw in raws]

    @staticmethod
    def _readable(flow: Flow | None, texts: Mapping[str, str], role: str | None,
                  vectors: Mapping[str, Any], intends: Collection[str]) -> list[Any]:
        """(item, units, vectors) of each typed answer the heads can read from its stored
        embedding."""
        from reports.coding.embeddings import unpack
        from reports.coding.heads import units
        from reports.coding.stored import Item

        out = []
        for step, text in texts.items():
            st = flow.step(step) if flow is not None else None
            value = vectors.get(step)
            # a typed "other" is coded by the rules alone, as the report codes it
            if value is None or st is None or st.kind != "text":
                continue
            try:
                sp, vec = unpack(value)
            except (KeyError, TypeError, ValueError):
                continue  # damaged: recode writes it again
            if sp != units(text):
                continue  # made from another text
            out.append((Item(None, text, role, flow.id if flow else "", step,
                             step in intends), sp, vec))
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

    They were written by :func:`code_entry` or :class:`StoredCoder` under an accepted coder
    id and are authenticated by the cipher, so their shape is not checked hit by hit
    (100,000 entries).
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

    return [(move(h[0], False), move(h[1], True), *h[2:]) for h in hits]


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
    codebook, the safety rule, the encoder or the heads, or for entries saved before codes
    were stored. Exports and reports work without it, only slower (they code what they find
    uncoded on each run).

    With ``embed`` (and the semantic extra installed) every coded answer without a stored
    embedding from the current encoder is embedded too, in batches, and stored encrypted; an
    entry's codes are made once its embeddings are stored (:class:`StoredCoder`), so they
    are the codes the report gives it."""
    # the safety rule's semantic layer and the coder embed many of the same texts (a folded
    # answer often tokenises as the answer does, short answers repeat): each once per run
    with _encoder_memo():
        return await _recode(store, codebook, progress, embed)


def _encoder_memo() -> Any:
    import contextlib

    from conversations import sentence_encoder

    if not sentence_encoder.availability()[0]:
        return contextlib.nullcontext()
    try:
        return sentence_encoder.load_encoder().memo()
    except Exception:  # a broken model install: the safety rule and the coder say so
        return contextlib.nullcontext()


async def _recode(store: Any, codebook: Codebook | None,
                  progress: Callable[[int], None] | None, embed: bool) -> RecodeResult:
    from conversations.catalogue import load_flows
    from conversations.safety.stored import rejudge
    from reports import extract
    from storage.db import iso, utcnow
    from storage.models import Scope

    # safety first: which answers are flagged decides what may be coded at all
    judged = await rejudge(store)
    coder = StoredCoder(codebook or load_codebook())
    flows = load_flows()
    as_of = iso(utcnow())  # answers changed after this are left for the next run
    snap = await extract.snapshot(store, Scope.PARTICIPATE)
    result = RecodeResult(len(snap.entry_ids), 0, 0, judged.judged, judged.newly_flagged)
    if not snap.entry_ids:
        return result
    pipeline = await _Pipeline.open(store, flows, coder, embed, result)
    for record in extract.read_range(snap, 0, snap.entry_ids[-1]):
        await pipeline.add(record, as_of)
        if progress is not None:
            progress(1)
    await pipeline.flush(last=True)
    return result


# entries whose codes wait for a batch: past this many the batch is sent off even if short
# (straight after a safety rule change every entry is recoded, and few lack embeddings)
CODE_BATCH = 512
_Row = tuple[int, int, str, str, str]  # who, entry, step, text, as_of


class _Pipeline:
    """Embeds the answers ``recode`` finds without current embeddings and codes the entries
    whose codes are stale, as a pipeline: while one batch is encoded (in a worker thread, on
    every core, numpy letting go of the GIL), the event loop goes on decrypting the next
    entries, and seals and stores the batch before, then codes the entries that waited for
    it (with their fresh embeddings and those stored before, read in one query) and stores
    their codes in one transaction."""

    def __init__(self, store: Any, flows: Mapping[str, Flow], coder: StoredCoder,
                 model: str | None, have: set[tuple[int, str]], result: RecodeResult) -> None:
        self.store = store
        self.flows = flows
        self.coder = coder
        self.model = model  # None: nothing is embedded
        self.have = have  # (entry, step) with embeddings from the current encoder
        self.result = result
        self.pending: list[_Row] = []
        self.waiting: list[tuple[Any, str]] = []  # (record, as_of) to code after the batch
        # the batch being encoded, its rows and the entries waiting for it
        self.running: tuple[Any, list[_Row], list[tuple[Any, str]]] | None = None

    @classmethod
    async def open(cls, store: Any, flows: Mapping[str, Flow], coder: StoredCoder,
                   embed: bool, result: RecodeResult) -> _Pipeline:
        from reports.coding.embeddings import available, model_id

        model: str | None = None
        if not embed:
            result.embeddings_note = "not requested"
        elif not available()[0]:
            result.embeddings_note = "semantic extra missing"
        else:
            model = model_id()
        # the heads read stored embeddings even when nothing new is embedded
        have = await store.embeddings.stored(model_id()) \
            if model is not None or coder.semantic else set()
        return cls(store, flows, coder, model, have, result)

    async def add(self, record: Any, as_of: str) -> None:
        fresh = False
        if self.model is not None:
            texts = coded_texts(self.flows.get(record.flow), record.answers, record.flagged)
            for step, text in texts.items():
                if (record.entry_id, step) not in self.have:
                    self.pending.append((record.participant_id, record.entry_id, step, text,
                                         as_of))
                    fresh = True
        if current_codes(record.codes, (self.coder.coder,)) is not None and not (
                fresh and self.coder.semantic):
            self.result.current += 1
        else:
            self.waiting.append((record, as_of))
        if len(self.pending) >= EMBED_BATCH or len(self.waiting) >= CODE_BATCH:
            await self.flush()

    async def flush(self, last: bool = False) -> None:
        """Start encoding what is pending and finish the batch encoded before (store its
        embeddings, code the entries waiting for it); with ``last``, finish everything."""
        import asyncio

        from reports.coding.embeddings import embed_texts

        started = None
        if self.pending or self.waiting:
            batch, self.pending = self.pending, []
            waiting, self.waiting = self.waiting, []
            job = None
            if batch:
                keyed = {f"{i}": text for i, (_, _, _, text, _) in enumerate(batch)}
                job = asyncio.ensure_future(asyncio.to_thread(embed_texts, keyed))
            started = (job, batch, waiting)
        if self.running is not None:
            await self._finish(*self.running)
        self.running = started
        if last and self.running is not None:
            await self._finish(*self.running)
            self.running = None

    async def _finish(self, job: Any, batch: list[_Row],
                      waiting: list[tuple[Any, str]]) -> None:
        fresh: dict[tuple[int, str], Any] = {}
        if job is not None:
            vectors = await job
            fresh = {(entry, step): vectors[str(i)]
                     for i, (_, entry, step, _, _) in enumerate(batch)}
            assert self.model is not None
            self.result.embedded += int(await self.store.embeddings.save_answers(
                self.model, [(who, entry, step, vectors[str(i)], as_of)
                             for i, (who, entry, step, _, as_of) in enumerate(batch)]))
        if not waiting:
            return
        known: dict[tuple[int, str], Any] = {}
        if self.coder.semantic:
            from reports.coding.embeddings import model_id

            # embeddings stored before this run, read in one query for the batch's entries
            wanted = {(r.participant_id, r.entry_id) for r, _ in waiting
                      if any(k in self.have for k in
                             ((r.entry_id, s) for s in r.answers))}
            if wanted:
                known = await self.store.embeddings.load_many(model_id(), wanted)
            known.update(fresh)
        jobs = []
        for record, _ in waiting:
            flow = self.flows.get(record.flow)
            jobs.append((flow, coded_texts(flow, record.answers, record.flagged),
                         record.role.value,
                         {s: known[(record.entry_id, s)] for s in record.answers
                          if (record.entry_id, s) in known}))
        rows = [(record.participant_id, record.entry_id, codes, as_of)
                for (record, as_of), codes in zip(waiting, self.coder.code_many(jobs),
                                                  strict=True)]
        self.result.coded += await self.store.entries.save_codes_many(self.coder.coder, rows)
