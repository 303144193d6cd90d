"""The semantic layer over *stored* embeddings, for jobs that code whole programmes (issue 13).

``mentorbot code --semantic`` embeds what it reads (``reports/coding/combined.py``); the
evaluator's report must not: embedding 100,000 answers would take minutes, and ``mentorbot
recode`` (or the bot, at save time) has already stored each answer's unit embeddings,
encrypted with its author's key (``storage/embeddings.py``). This module reads those in bulk,
a chunk of answers at a time, and joins the heads' codes to the rules' exactly as
``AnswerCoder`` does (``heads.semantic_codes`` and ``heads.combine``), with two additions the
report needs:

* a rule code the heads also find is marked ``both`` (confidence: the larger of the two);
* a semantic CMO code's evidence is the sentence the element head read it in, not the whole
  answer, so review rows and quotes show the words that carry it.

An answer without a usable stored embedding (never embedded, embedded by another model, or
split into other units than its text now gives) is coded by the rules alone, and counted, so
the report can say how many and point to ``mentorbot recode``.

:func:`refit` turns an evaluator's review decisions into labelled examples for the element
head (``reports/coding/learning.py``); the evidence sentences of a review file are few, so
they are embedded here with the encoder, once per run.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from reports.codebook import SCHEME_CMO, SCHEME_FACTOR, Codebook
from reports.coding.model import (
    METHOD_BOTH,
    METHOD_RULES,
    METHOD_SEMANTIC,
    CodeHit,
    current_codes,
)

# (entry id, step id of the stored embedding) -> what storage returned for it
StoredKey = tuple[int, str]


@dataclass
class Layer:
    """What a process needs to run the layer: picklable, sent once to each worker."""

    heads: Any  # reports.coding.heads.Heads (possibly refitted on a review)
    db_path: str
    keys: dict[int, bytes]  # data keys of the people the job may read (see StoredReader)
    model: str  # reports.coding.embeddings.model_id()
    # the coder whose stored codes equal what this layer makes of an answer
    # (reports.entry_codes.report_coder); None: code every answer (heads refitted on a review)
    coder: str | None = None


@dataclass(frozen=True)
class Item:
    """One free text to code: its stored embedding's key (None: none can exist), the text,
    the author's voice, the step's flow and id, and whether the step asks for goals."""

    key: StoredKey | None
    text: str
    voice: str | None
    flow: str
    step: str
    intends: bool


@dataclass
class Counts:
    read: int = 0  # answers the heads read
    missing: int = 0  # answers with no stored embedding yet (`mentorbot recode` embeds them)
    never: int = 0  # answers never embedded by design: signposted for safety, or a typed
    # "other" stored beside chosen labels (its embedding reads the labels too)
    coded: int = 0  # answers given at least one code by the heads (semantic or both)

    def add(self, other: Counts) -> None:
        self.read += other.read
        self.missing += other.missing
        self.never += other.never
        self.coded += other.coded

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.read, self.missing, self.never, self.coded


@dataclass
class StoredSemantic:
    layer: Layer
    codebook: Codebook
    counts: Counts = field(default_factory=Counts)
    _reader: Any = None

    def __post_init__(self) -> None:
        from storage.embeddings import StoredReader

        self._reader = StoredReader(self.layer.db_path, self.layer.keys, self.layer.model)

    def code(self, items: Sequence[Item], rule_hits: Sequence[list[CodeHit]]
             ) -> tuple[list[list[CodeHit]], Counts]:
        """Combined hits per item (the rule hits as given where the heads cannot read it)."""
        import numpy as np

        from reports.coding.embeddings import unpack
        from reports.coding.heads import units

        counts = Counts()
        out = [list(h) for h in rule_hits]
        keys = [i.key for i in items if i.key is not None]
        stored = self._reader.fetch([k[0] for k in keys]) if keys else {}
        chosen: list[int] = []
        vectors: list[Any] = []
        spans: list[list[tuple[int, int]]] = []
        for n, item in enumerate(items):
            if item.key is None:
                counts.never += 1
                continue
            value = stored.get(item.key)
            if value is None:
                counts.missing += 1
                continue
            try:
                sp, vec = unpack(value)
            except (KeyError, TypeError, ValueError):
                counts.missing += 1  # a damaged value: recode writes it again
                continue
            if sp != units(item.text):
                counts.never += 1  # made from another text (a typed "other" with labels)
                continue
            chosen.append(n)
            vectors.append(vec)
            spans.append(sp)
        counts.read = len(chosen)
        if chosen:
            joined = join(self.layer.heads, self.codebook, [items[n] for n in chosen],
                          np.vstack(vectors), spans, [rule_hits[n] for n in chosen])
            for n, (hits, _) in zip(chosen, joined, strict=True):
                out[n] = hits
                if any(h.method != METHOD_RULES for h in hits):
                    counts.coded += 1
        self.counts.add(counts)
        return out, counts

    def from_stored(self, items: Sequence[Item], readable: Sequence[bool]
                    ) -> tuple[dict[int, list[Any]], Counts]:
        """The hits of each item whose entry has current stored codes (``Layer.coder``;
        ``reports.coding.model.current_codes``), by position, and the counts the items would
        have given :meth:`code`. ``readable``: the item is a typed answer to a text step,
        which is what is coded for storage (a typed "other" or a signposted answer is not).
        The stored codes were made by this very join over the same stored embeddings
        (``reports.entry_codes.StoredCoder``, run by ``mentorbot recode`` and the bot's
        embedding worker), so they are the codes :meth:`code` would give, at a fraction of
        the cost: no rules, no embeddings opened, no heads."""
        coder = self.layer.coder
        counts = Counts()
        if coder is None:
            return {}, counts
        wanted = [i.key[0] for i, ok in zip(items, readable, strict=True)
                  if ok and i.key is not None]
        if not wanted:
            return {}, counts
        stored = self._reader.codes(wanted, coder)
        if not stored:
            return {}, counts
        present = self._reader.present(list(stored))
        out: dict[int, list[Any]] = {}
        book = self.codebook
        for n, (item, ok) in enumerate(zip(items, readable, strict=True)):
            if not ok or item.key is None:
                continue
            entry, step = item.key
            codes = current_codes((coder, stored[entry]), (coder,)) \
                if entry in stored else None
            if codes is None:
                continue
            hits = [_stored_hit(h, item.text, book) for h in codes.get(step, ())]
            out[n] = hits
            if item.key in present:
                counts.read += 1
                if any(h.method != METHOD_RULES for h in hits):
                    counts.coded += 1
            else:
                counts.missing += 1
        self.counts.add(counts)
        return out, counts

    def close(self) -> None:
        self._reader.close()


def _stored_hit(h: Sequence[Any], text: str, codebook: Codebook) -> Any:
    """A stored hit (``reports.entry_codes.Hit``) as the rules' ``RawHit``."""
    from reports.coding.rules import RawHit

    start, end, code_id, confidence, modality, method, polarity, cmo_role, level = h
    code = codebook.get(code_id)
    # the codebook's strings, and one object per other label: a chunk's results go back to
    # the main process pickled, which shares an object met twice but not equal strings
    return RawHit(code.id, code.scheme, _intern(cmo_role), _intern(level), _intern(polarity),
                  start, end, text[start:end], _intern(method), confidence, _intern(modality))


def _intern(value: str | None) -> str | None:
    return None if value is None else sys.intern(value)


def join(heads: Any, codebook: Codebook, items: Sequence[Item], vectors: Any,
         spans: Sequence[list[tuple[int, int]]], rule_hits: Sequence[Sequence[Any]]
         ) -> list[tuple[list[Any], str | None]]:
    """The one combination of the rules and the heads every output reads (issue 13): the
    report over stored embeddings, the codes stored with each entry (``reports.entry_codes``,
    made by ``mentorbot recode`` and the bot's embedding worker) and ``mentorbot code
    --semantic``. ``vectors``: the items' unit embeddings stacked in order, ``spans`` their
    units (``heads.units`` of each text); ``rule_hits``: each item's rule hits. Returns each
    item's hits and phase signal."""
    from reports.coding.heads import answer_probabilities, combine, semantic_codes
    from reports.coding.rules import phase_signal

    if not items:
        return []
    probs = answer_probabilities(
        heads, vectors, spans, [(i.flow, i.step, i.voice or "") for i in items],
        [i.text for i in items], [i.intends for i in items])
    out: list[tuple[list[Any], str | None]] = []
    for item, hits, ap in zip(items, rule_hits, probs, strict=True):
        sem = semantic_codes(heads, ap, item.text, codebook, item.intends)
        kept, phase = combine(hits, sem, heads, ap, phase_signal(hits),
                              known_step=bool(item.step))
        out.append((_refine(kept, sem.hits, heads, ap, item.text), phase))
    return out


def _same(hit: CodeHit) -> tuple[str, str | None]:
    # a factor is the same code only with the same polarity; other schemes by id
    return hit.code_id, hit.polarity if hit.scheme == SCHEME_FACTOR else None


def _with(hit: Any, **changes: Any) -> Any:
    # the rules give named tuples (RawHit), the heads dataclasses (CodeHit)
    return hit._replace(**changes) if hasattr(hit, "_replace") else replace(hit, **changes)


def _refine(kept: Sequence[Any], sem_hits: Sequence[CodeHit], heads: Any, ap: Any,
            text: str) -> list[Any]:
    found = {_same(h): h.confidence for h in sem_hits}
    element = heads.heads["element"]
    column = {label: k for k, label in enumerate(element.labels)}
    out: list[CodeHit] = []
    for h in kept:
        if h.method == METHOD_RULES and _same(h) in found:
            h = _with(h, method=METHOD_BOTH, confidence=max(h.confidence, found[_same(h)]))
        elif h.method == METHOD_SEMANTIC and h.scheme == SCHEME_CMO and h.code_id in column:
            unit = int(ap.probs["element"][:, column[h.code_id]].argmax())
            if unit > 0:
                a, b = ap.units[unit]
                h = _with(h, span_start=a, span_end=b, evidence=text[a:b])
        out.append(h)
    calibration = heads.meta.get("calibration") if hasattr(heads, "meta") else None
    if calibration:
        out = [_with(h, confidence=calibrated(calibration, h.method, h.confidence))
               if h.scheme == SCHEME_CMO and h.method in calibration else h for h in out]
    out.sort(key=lambda h: (h.span_start, h.span_end, h.code_id, h.polarity or "", h.method))
    return out


def calibrated(calibration: Mapping[str, Any], method: str, confidence: float) -> float:
    """A CMO code's confidence on the calibrated scale of its method: the share of such
    codes that were right on held-out folds (``meta["calibration"]``: per method, knots of
    an isotonic fit, ``benchmarks/coding_train.py``)."""
    import numpy as np

    knots = calibration.get(method)
    if not knots:
        return confidence
    return round(float(np.interp(confidence, knots["x"], knots["y"])), 3)


@dataclass(frozen=True)
class Refit:
    examples: int
    before: float | None
    after: float | None
    note: str


def refit(heads: Any, decisions: Mapping[str, Any], codebook: Codebook) -> tuple[Any, Refit]:
    """The heads with the element head refitted on a review's decisions, and how well the
    heads agreed with those decisions before and after (``learning.agreement``: the share of
    decided (sentence, element) cells the head reads as the evaluator decided them; measured
    on the decisions it was refitted on, so "after" is an upper bound)."""
    from reports.coding.learning import adapt, agreement, review_examples

    examples = review_examples(decisions, codebook)
    if not examples:
        return heads, Refit(0, None, None, "no review decisions on CMO codes with shown "
                                           "evidence to learn from")
    from conversations import sentence_encoder

    try:
        encoder = sentence_encoder.load_encoder()
    except Exception as exc:  # the model package broken: the shipped heads still run
        return heads, Refit(len(examples), None, None,
                            f"not refitted: the encoder failed to load ({type(exc).__name__})")
    before = agreement(heads, examples, encoder)
    adapted = adapt(heads, examples, encoder)
    after = agreement(adapted, examples, encoder)
    return adapted, Refit(len(examples), before, after,
                          f"element head refitted on {len(examples)} review decisions")


def open_layer(heads_path: Any = None) -> tuple[Any, str]:
    """The shipped heads, or None and why they cannot run here."""
    from reports.coding.heads import heads_available, load_heads

    ok, why = heads_available()
    if not ok:
        return None, why
    try:
        return (load_heads() if heads_path is None else load_heads(heads_path)), ""
    except Exception as exc:  # damaged weights must not stop a rules-only report
        return None, f"semantic heads failed to load ({type(exc).__name__})"


def init_threads() -> None:
    """One BLAS thread per process: the report's workers already use every core."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    global _LIMITS
    _LIMITS = threadpool_limits(1)  # kept: the limit holds while the object lives


_LIMITS: Any = None
