"""Structured coding, and the rule coder's entry point for the reporting job's worker processes.

Structured coding (DESIGN.md §6, layer 1) needs no reading of text:

* a button answer whose choice carries a codebook id *is* the participant's own code (the
  mentee tapping "Their experience" under "what helped?" self-codes a mechanism resource);
* a text step that ``elicits`` a codebook id is evidence of it when answered (answering
  "Will: what will you do next, and by when?" is a decision-action);
* a text step that elicits a coarse CMO role (GROW Reality elicits CONTEXT) says which role its
  answer should evidence; the job uses that to show how much of what the prompts elicit the
  coders actually find.

Free text (text answers and the typed "other" of choice steps) goes to the rules layer. That is
the expensive part of a run, so ``code_texts`` is written to run in worker processes: it takes
plain tuples, returns plain tuples, and also cuts and masks the sentences a quote or a review
row might show, so that work is spread over the cores too.
"""

from __future__ import annotations

import gc
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from conversations.answers import Answer
from conversations.model import Flow
from reports.codebook import ELICITED_ROLES, SCHEME_CMO, SCHEME_FACTOR, SCHEME_PHASE, Codebook
from reports.coding.model import (
    INTENDED,
    METHOD_RULES,
    METHOD_STRUCTURED,
    POLARITY_HELPING,
    REALISED,
)
from reports.coding.rules import code_text_raw
from reports.configurations import UnitPayload, UnitResult, analyse_unit
from reports.entry_codes import step_intends

SELF_CODED = 1.0  # the participant's own label: certain as a report of what they meant
PROMPT_CODED = 0.5  # an answer to a prompt that elicits the code: likely, not read
MIN_PROMPT_WORDS = 2  # "-" or "no" under "what will you do next?" is no decision-action
OTHER_SUFFIX = ".other"  # the typed "other" text of a choice step is coded as its own text


class Code(NamedTuple):
    """One code on one entry. Evidence is the entry's answer: ``step`` and the half-open span
    ``start``..``end`` of its text, or ``start == -1`` for a button answer (the choice)."""

    code_id: str
    scheme: str
    cmo_role: str | None
    level: str | None
    polarity: str | None
    step: str
    start: int
    end: int
    method: str
    confidence: float


@dataclass(frozen=True)
class StepInfo:
    flow: str
    step: str
    kind: str
    label: str
    framework_step: str | None
    roles: tuple[str, ...]  # coarse CMO roles the step elicits
    intends: bool  # asks for goals or hopes: its outcomes are intended unless reported done
    codes: tuple[str, ...]  # codebook ids the step elicits
    choices: Mapping[str, tuple[str | None, str]]  # choice id -> (codebook id, label)


def _role_of(code_id: str, codebook: Codebook, polarity: str | None = None) -> str | None:
    code = codebook.get(code_id)
    if code.scheme == SCHEME_FACTOR:
        return (
            "CONTEXT_ENABLING"
            if (polarity or code.polarity) == POLARITY_HELPING
            else ("CONTEXT_INHIBITING")
        )
    if code.role is not None:
        return code.role
    rule = codebook.rules.get(code_id) if codebook.rules is not None else None
    return rule.cmo_role if rule is not None else None


def _level_of(code_id: str, codebook: Codebook) -> str | None:
    rule = codebook.rules.get(code_id) if codebook.rules is not None else None
    if rule is not None and rule.level is not None:
        return rule.level
    return codebook.get(code_id).level


class StepIndex:
    """What every step of every flow elicits, validated against the codebook once."""

    def __init__(self, flows: Mapping[str, Flow], codebook: Codebook) -> None:
        self.codebook = codebook
        self.steps: dict[tuple[str, str], StepInfo] = {}
        self._intending: dict[str, frozenset[str]] = {}
        # (code id) -> (scheme, role, level, polarity): looked up for every code of a run
        self.labels: dict[str, tuple[str, str | None, str | None, str | None]] = {}
        for flow in flows.values():
            for step in flow.steps:
                roles = tuple(e for e in step.elicits if e in ELICITED_ROLES)
                codes = tuple(e for e in step.elicits if e in codebook)
                choices: dict[str, tuple[str | None, str]] = {}
                for choice in step.choices:
                    if choice.code is not None and choice.code not in codebook:
                        raise ValueError(
                            f"flow {flow.id} step {step.id}: choice code {choice.code} is not "
                            "in the codebook"
                        )
                    choices[choice.id] = (choice.code, choice.label)
                self.steps[(flow.id, step.id)] = StepInfo(
                    flow=flow.id,
                    step=sys.intern(step.id),
                    kind=step.kind,
                    label=step.label,
                    framework_step=step.framework_step,
                    roles=roles,
                    intends=step_intends(step),
                    codes=codes,
                    choices=choices,
                )
        for code_id in codebook.codes:
            code = codebook.codes[code_id]
            self.labels[code_id] = (
                code.scheme,
                _role_of(code_id, codebook),
                _level_of(code_id, codebook),
                code.polarity,
            )

    def get(self, flow: str, step: str) -> StepInfo | None:
        return self.steps.get((flow, step))

    def intends(self, flow: str, step: str) -> bool:
        info = self.steps.get((flow, step))
        return info is not None and info.intends

    def intending(self, flow: str) -> frozenset[str]:
        """Ids of the steps of ``flow`` that ask for goals or hopes."""
        found = self._intending.get(flow)
        if found is None:
            found = self._intending[flow] = frozenset(
                s for (f, s), info in self.steps.items() if f == flow and info.intends)
        return found

    def label(self, flow: str, step: str) -> str:
        base, _, other = step.partition(".")
        info = self.steps.get((flow, base))
        name = info.label if info is not None else base
        return f"{name} (typed)" if other else name

    def choice_code(self, code_id: str, step: str) -> Code:
        scheme, role, level, polarity = self.labels[code_id]
        return Code(
            code_id, scheme, role, level, polarity, step, -1, -1, METHOD_STRUCTURED, SELF_CODED
        )

    def prompt_codes(self, flow: str, step: str, text: str) -> list[Code]:
        """Codes a text step declares it elicits, evidenced by the whole answer."""
        info = self.steps.get((flow, step))
        if info is None or not info.codes or len(text.split()) < MIN_PROMPT_WORDS:
            return []
        out = []
        for code_id in info.codes:
            scheme, role, level, polarity = self.labels[code_id]
            if scheme == SCHEME_PHASE:
                # every GROW reflection opens with a session goal: counting that as the
                # relationship "setting direction" would put every pair there for ever
                continue
            out.append(
                Code(
                    code_id,
                    scheme,
                    role,
                    level,
                    polarity,
                    info.step,
                    0,
                    len(text),
                    METHOD_STRUCTURED,
                    PROMPT_CODED,
                )
            )
        return out


@dataclass
class Split:
    """One entry split into self-codes (done) and free texts (to code with rules)."""

    codes: list[Code]
    texts: list[tuple[str, str]]  # (step, text), in answer order
    day: str | None  # the session date an episode log gives, ISO; None for other flows


def split_entry(flow: str, answers: Mapping[str, Any], index: StepIndex) -> Split:
    codes: list[Code] = []
    texts: list[tuple[str, str]] = []
    day: str | None = None
    for raw_step, value in answers.items():
        step = sys.intern(raw_step)
        info = index.get(flow, step)
        kind = info.kind if info is not None else ("text" if isinstance(value, str) else "")
        if kind == "text":
            if isinstance(value, str) and value.strip():
                texts.append((step, value))
        elif kind in ("choice", "multi") and info is not None:
            # a bare list of ids is not read here (no flow has stored one since GROW v1)
            answer = Answer.decode(value) if isinstance(value, (str, dict)) else Answer()
            for choice_id in answer.selected:
                code_id = info.choices.get(choice_id, (None, ""))[0]
                if code_id is not None:
                    codes.append(index.choice_code(code_id, step))
            if answer.typed is not None:
                texts.append((sys.intern(step + OTHER_SUFFIX), answer.typed))
        elif kind == "date" and isinstance(value, str) and _DATE.match(value):
            day = value[:10]
    return Split(codes, texts, day)


def entry_day(flow: str, answers: Mapping[str, Any], saved_at: str, index: StepIndex) -> str:
    """The day every output dates an entry by (ISO): the session date an episode log gives,
    else the day the entry was saved. A session logged on Friday for Tuesday is Tuesday's,
    in the report as in the export."""
    for step, value in answers.items():
        info = index.get(flow, step)
        if info is not None and info.kind == "date" and isinstance(value, str) \
                and _DATE.match(value):
            return value[:10]
    return saved_at[:10]


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


# ---------------------------------------------------------------------------------------
# rule coding in worker processes
# ---------------------------------------------------------------------------------------

# Per text: (text, author role, names to mask, quotable, row context, stored embedding key).
# The row context says where the text comes from, for its review rows: (entry, person, pair,
# author, month, flow, step, wave), all pseudonymous; the wave decides the role a distal
# outcome is shown with. The key, (entry id, step id), finds the answer's stored embedding for
# the semantic layer (None: the text has none).
RowContext = tuple[str, str, str, str, str, str, str, "str | None"]
# A distal outcome is realised 6-12 months after mentoring ends: only a realised statement at
# these waves (or later) counts as one; said earlier, it is an early, proximal sign of it.
DISTAL_WAVES = frozenset({"closing", "followup"})


def realised_role(role: str | None, wave: str | None) -> str | None:
    """The role a code plays in the report (and review.csv shows): a distal outcome said
    before the closing or follow-up waves is an early, proximal sign of it."""
    if role == "OUTCOME_DISTAL" and wave not in DISTAL_WAVES:
        return "OUTCOME_PROXIMAL"
    return role


TextJob = tuple[str, "str | None", tuple[str, ...], bool, RowContext, "tuple[int, str] | None"]
# A quote candidate: (code, role, rank, masked sentence, entry label, position in the chunk)
Candidate = tuple[str, str, tuple[float, int], str, str, int]
# A decision applied: (scheme, method, code, decision, new code)
Applied = tuple[str, str, str, str, "str | None"]


@dataclass
class ChunkResult:
    codes: list[list[tuple[Any, ...]]]  # per text, the fields of its ``Code``s (after review)
    review_csv: str  # the chunk's review rows, ready to append to review.csv
    review_rows: int
    candidates: list[Candidate]
    applied: list[Applied]
    # the semantic layer's counts (reports.coding.stored.Counts): answers it read, answers not
    # embedded yet, answers never embedded by design, answers it gave a code; zero when off
    semantic: tuple[int, int, int, int] = (0, 0, 0, 0)


class ChunkCoder:
    """Everything done per free text, in whichever process runs it: rule coding, the codes
    the prompt implies, review rows (with the evaluator's earlier decisions applied), and
    masked quote candidates. Only compact results go back to the main process."""

    def __init__(
        self,
        codebook: Codebook,
        decisions: Mapping[str, Any] | None = None,
        flows: Mapping[str, Flow] | None = None,
        semantic: Any = None,
    ) -> None:
        """``semantic``: a ``reports.coding.stored.Layer`` to join the heads' codes (from
        stored embeddings) to the rules'; None codes with the rules alone."""
        from conversations.catalogue import load_flows

        self.semantic: Any = None
        if semantic is not None:
            from reports.coding.stored import StoredSemantic

            self.semantic = StoredSemantic(semantic, codebook)
        self.book = codebook
        self.index = StepIndex(flows if flows is not None else load_flows(), codebook)
        self.decisions = dict(decisions or {})
        self.sensitive = codebook.sensitive_ids()
        self._maskers: dict[tuple[str, ...], Masker] = {}  # one per household of names
        self.levels = {c: self.index.labels[c][2] for c in codebook.codes}
        from reports.review import csv_field

        self._csv_labels = {c: csv_field(d.label) for c, d in codebook.codes.items()}

    def analyse(self, payloads: Sequence[UnitPayload]) -> list[UnitResult]:
        crosswalk = self.book.phase_crosswalk
        return [analyse_unit(p, self.levels, crosswalk) for p in payloads]

    def masker(self, names: tuple[str, ...]) -> Masker:
        found = self._maskers.get(names)
        if found is None:
            if len(self._maskers) > 4096:
                self._maskers.clear()
            found = self._maskers[names] = Masker(names)
        return found

    def _raw(self, jobs: Sequence[TextJob]
             ) -> tuple[list[list[Any]], tuple[int, int, int, int]]:
        """Each text's hits: the rules', joined by the semantic heads' where they are on."""
        intends = []
        for _, _, _, _, ctx, _ in jobs:
            flow, step = ctx[5], ctx[6]
            intends.append(not step.endswith(OTHER_SUFFIX) and self.index.intends(flow, step))
        if self.semantic is None:
            # not quotable: the stored safety verdict flagged it, which decides its risk code
            return [code_text_raw(text, role, self.book, intend, not quotable)
                    for (text, role, _, quotable, _, _), intend
                    in zip(jobs, intends, strict=True)], (0, 0, 0, 0)
        from reports.coding.stored import Item

        # a signposted answer is never embedded (never coded for storage either)
        items = [Item(job[5] if job[3] else None, job[0], job[1], job[4][5],
                      job[4][6].split(".", 1)[0], intend)
                 for job, intend in zip(jobs, intends, strict=True)]
        # the codes stored with the entry where they are current: the same join, made once
        readable = [not job[4][6].endswith(OTHER_SUFFIX)
                    and getattr(self.index.get(job[4][5], job[4][6]), "kind", None) == "text"
                    for job in jobs]
        stored, counts = self.semantic.from_stored(items, readable)
        coded: list[Any] = [stored.get(n) for n in range(len(jobs))]
        rest = [n for n in range(len(jobs)) if n not in stored]
        if rest:
            # not quotable: the stored safety verdict flagged it, which decides its risk code
            raws = [code_text_raw(jobs[n][0], jobs[n][1], self.book, intends[n],
                                  not jobs[n][3]) for n in rest]
            joined, more = self.semantic.code([items[n] for n in rest], raws)
            for n, hits in zip(rest, joined, strict=True):
                coded[n] = hits
            counts.add(more)
        return coded, counts.as_tuple()

    def code(self, jobs: Sequence[TextJob]) -> ChunkResult:
        from reports.review import WITHHELD, cell, csv_field, find_decision

        lines: list[str] = []
        codes_out: list[list[tuple[Any, ...]]] = []
        candidates: list[Candidate] = []
        applied: list[Applied] = []
        labels = self.index.labels
        csv_label = self._csv_labels
        decisions = self.decisions
        sensitive_ids = self.sensitive
        withheld = csv_field(WITHHELD)
        raws, semantic_counts = self._raw(jobs)
        for position, (text, _, names, quotable, ctx, _) in enumerate(jobs):
            entry, person, pair, author, month, flow, step, wave = ctx
            prompt = (
                [] if step.endswith(OTHER_SUFFIX) else self.index.prompt_codes(flow, step, text)
            )
            raw = raws[position]
            if not raw and not prompt:
                codes_out.append([])
                continue
            spans = sentence_spans(text)
            sentences: list[str] = [""] * len(spans)
            if quotable:
                mask = self.masker(names).mask
                if prompt:  # the whole answer is the evidence of a prompt's code
                    sentences = [mask(text[a:b]) for a, b in spans]
            # (code fields, evidence, modality, quotable: a prompt's answer or one sentence)
            suggestions: list[tuple[tuple[Any, ...], str, str, bool]] = []
            if prompt:
                whole = " ".join(sentences)
                asked = INTENDED if self.index.intends(flow, step) else REALISED
                suggestions.extend((tuple(c), whole, asked, True) for c in prompt)
            sensitive = False
            for h in raw:
                k = 0
                while k + 1 < len(spans) and spans[k + 1][0] <= h.span_start:
                    k += 1
                last = k  # a semantic code read on the whole answer spans its sentences
                while last + 1 < len(spans) and spans[last + 1][0] < h.span_end:
                    last += 1
                if quotable:
                    for j in range(k, last + 1):
                        if not sentences[j]:
                            sentences[j] = mask(text[spans[j][0] : spans[j][1]])
                if h.code_id in sensitive_ids:
                    sensitive = True
                suggestions.append(
                    (
                        (
                            h.code_id,
                            h.scheme,
                            h.cmo_role,
                            h.level,
                            h.polarity,
                            step,
                            h.span_start,
                            h.span_end,
                            h.method,
                            h.confidence,
                        ),
                        sentences[k] if last == k else " ".join(sentences[k:last + 1]),
                        h.modality,
                        last == k,
                    )
                )
            # the columns every row of this text shares, as CSV, once
            where = ",".join(
                csv_field(v)
                for v in (entry, person, pair, author, month, self.index.label(flow, step))
            )
            escaped: dict[str, str] = {}
            kept: list[tuple[Any, ...]] = []
            for fields, evidence, modality, single in suggestions:
                code_id, scheme, cmo_role, level, polarity = fields[:5]
                method, confidence = fields[8], fields[9]
                rid = f"{entry}:{step}:{code_id}:{polarity or '-'}:{modality}:{method}"
                decision = (find_decision(decisions, entry, step, code_id, polarity, method,
                                          modality) if decisions else None)
                shown = escaped.get(evidence)
                if shown is None:
                    shown = escaped[evidence] = csv_field(cell(evidence)) if quotable else withheld
                tail = (
                    ",,,"
                    if decision is None
                    else ",".join(
                        (
                            "",
                            csv_field(decision.decision),
                            csv_field(cell(decision.new_code or "")),
                            csv_field(cell(decision.note)),
                        )
                    )
                )
                lines.append(
                    f"{csv_field(rid)},{where},{code_id},{csv_label[code_id]},{scheme},"
                    f"{realised_role(cmo_role, wave) or ''},{polarity or ''},{method},"
                    f"{confidence:.3f},"
                    f"{shown}{tail}\n"
                )
                if decision is not None:
                    applied.append((scheme, method, code_id, decision.decision, decision.new_code))
                    if decision.decision == "reject":
                        continue
                    if decision.decision == "change" and decision.new_code is not None:
                        code_id = decision.new_code
                        scheme, cmo_role, level, polarity = labels[code_id]
                    fields = (code_id, scheme, cmo_role, level, polarity, *fields[5:9], 1.0)
                kept.append(fields)
                if quotable and evidence and single and not sensitive:
                    rank = (-fields[9], _digest(entry, code_id))
                    candidates.append((code_id, cmo_role or "", rank, evidence, entry, position))
            codes_out.append(kept)
        return ChunkResult(codes_out, "".join(lines), len(lines), _best(candidates), applied,
                           semantic_counts)


CANDIDATES_KEPT = 16  # quote candidates kept per code and chunk; the best are chosen at the end


def _best(candidates: list[Candidate]) -> list[Candidate]:
    """At most ``CANDIDATES_KEPT`` candidates per code and role, best rank first."""
    by_key: dict[tuple[str, str], list[Candidate]] = {}
    for c in candidates:
        by_key.setdefault((c[0], c[1]), []).append(c)
    out: list[Candidate] = []
    for key in sorted(by_key):
        out.extend(sorted(by_key[key], key=lambda c: (c[2], c[5]))[:CANDIDATES_KEPT])
    return out


def _digest(entry: str, code: str) -> int:
    # a stable, well-mixed tie-break: quotes spread over people instead of the oldest entries
    return zlib.crc32(f"{entry}|{code}".encode())


_WORKER: ChunkCoder | None = None


def init_worker(codebook: Codebook | str, decisions: Mapping[str, Any],
                semantic: Any = None) -> None:
    """Pool initialiser. ``codebook`` is the packaged codebook's content hash (each worker
    loads it itself: shipping it would block the parent while a new process starts) or a
    ``Codebook`` to use as given; ``semantic`` the semantic layer's ``Layer``, if on."""
    global _WORKER
    # a worker lives for one report: see build_report on why the cyclic collector is paused
    gc.disable()
    if isinstance(codebook, str):
        from reports.codebook import load_codebook

        book = load_codebook()
        if book.content_hash != codebook:
            raise RuntimeError("the packaged codebook changed while the report was running")
    else:
        book = codebook
    if semantic is not None:
        from reports.coding.stored import init_threads

        init_threads()
    _WORKER = ChunkCoder(book, decisions, semantic=semantic)


def code_chunk(jobs: Sequence[TextJob]) -> ChunkResult:
    """The pool task: one chunk of texts, with the worker's ``ChunkCoder``."""
    assert _WORKER is not None, "init_worker was not called"
    return _WORKER.code(jobs)


def analyse_chunk(payloads: Sequence[UnitPayload]) -> list[UnitResult]:
    """The pool task after coding: phases and configurations of a batch of pairs."""
    assert _WORKER is not None, "init_worker was not called"
    return _WORKER.analyse(payloads)


# ---------------------------------------------------------------------------------------
# quotable text: sentences, and names masked
# ---------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
MAX_QUOTE_CHARS = 240


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Half-open spans of the sentences of ``text`` (at least one, covering all of it)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text) or not spans:
        spans.append((start, len(text)))
    return spans


NAME = "[name]"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_TITLES = (
    "Dr",
    "Doctor",
    "Mr",
    "Mrs",
    "Ms",
    "Miss",
    "Mx",
    "Prof",
    "Professor",
    "Sister",
    "Matron",
    "Nurse",
    "Sir",
    "Dame",
    "Dean",
    "Rev",
    "Cllr",
)
_TITLED = re.compile(r"\b(" + "|".join(_TITLES) + r")\.?\s+([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_HANDLE = re.compile(r"(?<![\w@])@\w{3,}")
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+")
_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"(?<!\w)\+?\d[\d ()-]{6,}\d")
_CAPITALISED = re.compile(r"[A-Z][a-z][\w'-]*(?:\s+[A-Z][a-z][\w'-]*)*")
_OPENING_MARKS = frozenset('.!?:;\n"(')


def _at_sentence_start(text: str, start: int) -> bool:
    """Does a sentence (or a quoted or bracketed aside, or a clause after a dash) open at
    ``start``? Only the few characters before it matter, so only they are looked at."""
    before = text[max(0, start - 8) : start].rstrip()
    if not before:
        return start < 8 or not text[:start].strip()
    return before[-1] in _OPENING_MARKS or (
        before[-1] in "-–" and (len(before) == 1 or before[-2].isspace())
    )


# Capitalised words that are not people: the pronoun, calendar words, and the NHS and
# programme vocabulary that reflections capitalise mid-sentence.
_NOT_NAMES = _words("""
I I'm I've I'd I'll Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February
March April May June July August September October November December Christmas Easter Covid
NHS Trust Foundation Ward Board Band English British Welsh Scottish Irish GROW OSKAR Zoom Teams
Microsoft Google Excel Outlook Internet God OK Mentor Mentee Coordinator A&E ICU ED GP
""")
# Reporting verbs after a sentence-initial word mark it as a person ("Jo said ...").
_PERSON_NEXT = re.compile(
    r"^\s*(?:'s\b|said|says|told|asked|suggested|thinks|thought|"
    r"wants|reckons|and I\b|&\s*I\b)"
)
# First names that are also everyday words: masked only where capitalised.
_WORD_NAMES = _words("""
will may hope faith grace joy rose bill mark pat sue dawn summer april june august frank art
jack ray sunny chance drew gene rich rob sandy amber ruby holly ivy iris lily daisy heather
robin hunter mercy patience honor honour sky river rain storm
""")


class Masker:
    """Masks names in a sentence before anyone else sees it.

    Known first names (the author's and their partner's) are masked wherever they occur;
    titled names ("Dr Okafor") and capitalised words that are not at a sentence start and not
    common capitalised vocabulary ("my manager Jo") are masked as third parties. It errs on the
    side of masking: a masked ward name costs a little meaning, a name that slips through
    costs someone's privacy. Emails, handles, links and phone numbers go too.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        words = sorted(
            {n.strip() for n in names if n and len(n.strip()) >= 2}, key=len, reverse=True
        )
        self._known: list[re.Pattern[str]] = []
        for name in words:
            flags = 0 if name.lower() in _WORD_NAMES else re.IGNORECASE
            self._known.append(re.compile(r"(?<![\w])" + re.escape(name) + r"(?![\w])", flags))
        # one pass to tell whether any known name occurs at all
        self._known_any = (
            re.compile("|".join(re.escape(n) for n in words), re.IGNORECASE) if words else None
        )

    def mask(self, sentence: str) -> str:
        """One sentence as a quote: trimmed, cut to :data:`MAX_QUOTE_CHARS`, masked."""
        text = sentence.strip()
        if len(text) > MAX_QUOTE_CHARS:
            text = text[: MAX_QUOTE_CHARS - 1].rsplit(" ", 1)[0] + "…"
        return self.redact(text)[0]

    def redact(self, text: str) -> tuple[str, list[list[Edit]]]:
        """The whole of ``text`` masked, and the edits each pass made (see :func:`moved`).

        Exports mask whole answers with this and move coded spans through the edits, so a
        quote and an exported answer lose the same names by the same rule.
        """
        passes: list[list[Edit]] = []
        # the cheap membership tests skip most regex passes on most texts
        if "@" in text:
            text = _sub(_EMAIL, "[email]", text, passes)
            text = _sub(_HANDLE, "[handle]", text, passes)
        if "http" in text or "www." in text:
            text = _sub(_URL, "[link]", text, passes)
        if _DIGIT.search(text):
            text = _sub(_NUMBER, "[number]", text, passes)
        if self._known_any is not None and self._known_any.search(text):
            for pattern in self._known:
                text = _sub(pattern, NAME, text, passes)
        text = _sub(_TITLED, lambda m: f"{m.group(1)} {NAME}", text, passes)
        current = text
        return _sub(_CAPITALISED, lambda m: _third_party(m, current), text, passes), passes


Edit = tuple[int, int, int]  # start, end in the text before a pass, length of what replaced it


def _sub(pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str], text: str,
         passes: list[list[Edit]]) -> str:
    """``pattern.sub(repl, text)``, recording the edits it made as one pass."""
    pieces: list[str] = []
    edits: list[Edit] = []
    last = 0
    for m in pattern.finditer(text):
        new = repl if isinstance(repl, str) else repl(m)
        if new == m.group(0):
            continue
        pieces += (text[last : m.start()], new)
        edits.append((m.start(), m.end(), len(new)))
        last = m.end()
    if not edits:
        return text
    pieces.append(text[last:])
    passes.append(edits)
    return "".join(pieces)


def moved(pos: int, passes: Sequence[Sequence[Edit]], end: bool) -> int:
    """Where position ``pos`` of a text lands in its :meth:`Masker.redact` result. A span
    edge inside a masked stretch moves to that mark's start (``end`` False) or end."""
    for edits in passes:
        delta = 0
        for start, stop, size in edits:
            if stop <= pos:
                delta += size - (stop - start)
            elif start < pos:
                pos = start + delta + (size if end else 0)
                break
            else:
                pos += delta
                break
        else:
            pos += delta
    return pos


def _third_party(match: re.Match[str], text: str) -> str:
    words = match.group(0).split()
    at_start = _at_sentence_start(text, match.start())
    masked: list[bool] = []
    for i, word in enumerate(words):
        bare = word[:-2] if word.endswith("'s") else word
        if bare in _NOT_NAMES or bare in _OPENERS or bare in _TITLE_WORDS:
            masked.append(False)
        elif i == 0 and at_start and len(words) == 1:
            # a sentence opens with a capital anyway: mask only what reads as a person
            masked.append(word.endswith("'s") or bool(_PERSON_NEXT.match(text[match.end() :])))
        else:
            masked.append(True)
    if not any(masked):
        return match.group(0)  # unchanged, line breaks and all: an export keeps its layout
    out: list[str] = []
    for i, word in enumerate(words):
        if not masked[i]:
            out.append(word)
        elif i + 1 < len(words) and masked[i + 1]:
            continue  # "Jo Smith" is one person: one mark
        else:
            out.append(NAME + ("'s" if word.endswith("'s") else ""))
    return " ".join(out)


# Words that open sentences, or follow markup with a capital; never taken for names.
_OPENERS = _words("""
My The This That These Those It It's We He She They Our Your His Her Their A An And But So Then
When While After Before Today Yesterday Tomorrow Next Last Also Just Still Maybe Perhaps
Working Talking Having Being Getting Trying Looking Thinking Feeling Meeting Since During On In
At For With From To Of By About As If Because Although Though However Overall Really Not No Yes
Some Most Many All Each Every Both One Two Three First Second Finally Now Here There What How
Why Who Where Which Would Could Should Can Did Do Does Is Was Are Were Have Has Had Felt Feel
Need Want Got Went Found Made Took Gave Kept Asked Told Learned Learnt Realised Realized Good
Great Better Less More Much Very Quite Lots Thanks Thank Hopefully Honestly Book Try Talk Ask
Plan Write Join Say Block Shadow Keep Make Take Give Go Get Let Use Look Read Speak Call Set
""")
_TITLE_WORDS = frozenset(_TITLES)


def mask_text(text: str, names: Iterable[str] = ()) -> str:
    return Masker(names).mask(text)


__all__ = [
    "METHOD_RULES",
    "METHOD_STRUCTURED",
    "OTHER_SUFFIX",
    "SCHEME_CMO",
    "ChunkCoder",
    "ChunkResult",
    "Code",
    "Edit",
    "Masker",
    "Split",
    "StepIndex",
    "StepInfo",
    "analyse_chunk",
    "code_chunk",
    "init_worker",
    "mask_text",
    "moved",
    "sentence_spans",
    "split_entry",
]
