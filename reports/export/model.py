"""Records a researcher export is written from.

The storage side fills these after consent filtering (current ``research_export`` consent,
withdrawal applied backwards) and pseudonymisation (per-study HMAC pseudonyms, shifted or
relative dates). Writers never see Telegram ids, names or real dates, and never query storage:
everything they need is in one :class:`ExportBundle`.

Offsets of a :class:`CodedSegment` are 0-based Unicode code point positions into the ``text`` of
the answer it names (``entry_id`` + ``step_id``), end exclusive, as Python slices them.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

TEXT_MODES = ("masked", "verbatim")
OFFSET_MODES = ("codepoints", "utf16")
# Which unit each tool counts REFI-QDA selection positions in: QualCoder slices Python
# strings (code points); NVivo, ATLAS.ti and MAXQDA are Windows programs whose strings are
# UTF-16, so an emoji counts two there.
TOOL_OFFSETS = {"qualcoder": "codepoints", "nvivo": "utf16", "atlasti": "utf16",
                "maxqda": "utf16"}


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How an export is written, beyond what is in it; recorded in its dictionary and package.

    ``text``: ``masked`` (names, emails, phone numbers and links replaced, as consented) or
    ``verbatim`` (for a study whose approval allows exact words). ``offsets``: the unit of the
    ``.qdpx`` selection positions. ``bom``: a UTF-8 byte order mark on every CSV file.
    """

    text: str = "masked"
    offsets: str = "codepoints"
    tool: str | None = None
    bom: bool = True

    @classmethod
    def choose(cls, text: str = "masked", offsets: str | None = None, tool: str | None = None,
               bom: bool = True) -> ExportOptions:
        """Options from the command line: ``offsets`` defaults to what ``tool`` counts."""
        if text not in TEXT_MODES:
            raise ValueError(f"text mode must be one of {', '.join(TEXT_MODES)}, not {text!r}")
        if tool is not None and tool not in TOOL_OFFSETS:
            raise ValueError(f"unknown tool {tool!r}: one of {', '.join(TOOL_OFFSETS)}")
        if offsets is None:
            offsets = TOOL_OFFSETS[tool] if tool is not None else "codepoints"
        if offsets not in OFFSET_MODES:
            raise ValueError(f"offsets must be one of {', '.join(OFFSET_MODES)}")
        return cls(text, offsets, tool, bom)


@dataclass(frozen=True, slots=True)
class ExportAnswer:
    step_id: str
    framework_step: str | None  # codebook id of the GROW/OSKAR step, if the step has one
    prompt: str
    kind: str  # flow step kind: text, choice, multi, scale, date
    text: str | None
    codes: tuple[str, ...]  # codebook ids chosen with buttons (self-coding)
    scale: int | None


@dataclass(frozen=True, slots=True)
class ExportEntry:
    entry_id: str  # study pseudonym of the entry
    person: str  # study pseudonym
    pair: str | None
    role: str
    flow: str
    flow_version: int
    question_set_version: str | None
    date: str | None  # shifted ISO date or None
    day: int | None  # days since the pair's first session
    consent: str
    answers: tuple[ExportAnswer, ...]
    wave: str | None = None  # check-in wave (baseline, 3m, ... follow_up); None otherwise


@dataclass(frozen=True, slots=True)
class CodedSegment:
    entry_id: str
    step_id: str
    start: int  # answer-relative, code points, inclusive
    end: int  # answer-relative, code points, exclusive
    code_id: str
    method: str  # structured, rules, semantic, review
    confidence: float
    # realised, intended, hypothetical or negated: only a realised outcome is an outcome
    modality: str = "realised"


@dataclass(frozen=True, slots=True)
class Case:
    person: str
    pair: str | None
    role: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class ExportBundle:
    study: str
    generated_by: str
    codebook_version: str
    codebook_hash: str
    date_mode: str
    entries: tuple[ExportEntry, ...]
    segments: tuple[CodedSegment, ...]
    cases: tuple[Case, ...]
    options: ExportOptions = ExportOptions()


@dataclass(slots=True)
class WideStep:
    """One step column group of ``entries.csv``: a step, or a repeat of it within an entry."""

    step_id: str
    occurrence: int  # 0 for the first answer to this step in an entry, 1 for a repeat, ...
    prompts: list[str]
    has_text: bool = False
    has_scale: bool = False
    has_codes: bool = False
    base: str = ""  # column name stem, given once the whole export's steps are known

    def suffixes(self) -> list[str]:
        out = [s for s, on in (("_text", self.has_text), ("_scale", self.has_scale),
                               ("_codes", self.has_codes)) if on]
        return out or ["_text"]  # a step nobody answered still gets a visible column


MAX_PROMPTS = 3  # prompt wordings a wide column's description quotes


def occurrences(entry: ExportEntry) -> Iterator[tuple[tuple[str, int], ExportAnswer]]:
    seen: dict[str, int] = {}
    for answer in entry.answers:
        n = seen.get(answer.step_id, 0)
        seen[answer.step_id] = n + 1
        yield (answer.step_id, n), answer


def wide_steps(entries: Iterable[ExportEntry]) -> list[WideStep]:
    """The wide layout's step columns in order of first appearance, not yet named."""
    steps: dict[tuple[str, int], WideStep] = {}
    for entry in entries:
        for key, answer in occurrences(entry):
            step = steps.get(key)
            if step is None:
                step = steps[key] = WideStep(key[0], key[1], [])
            if answer.prompt not in step.prompts and len(step.prompts) < MAX_PROMPTS:
                step.prompts.append(answer.prompt)
            step.has_text |= bool(answer.text)
            step.has_scale |= answer.scale is not None
            step.has_codes |= bool(answer.codes)
    return list(steps.values())


def merge_wide_steps(parts: Iterable[Sequence[WideStep]]) -> list[WideStep]:
    """Layouts of consecutive parts of one export, merged: what :func:`wide_steps` of the
    whole export would give."""
    steps: dict[tuple[str, int], WideStep] = {}
    for part in parts:
        for s in part:
            key = (s.step_id, s.occurrence)
            step = steps.get(key)
            if step is None:
                steps[key] = WideStep(s.step_id, s.occurrence, list(s.prompts), s.has_text,
                                      s.has_scale, s.has_codes)
                continue
            for prompt in s.prompts:
                if prompt not in step.prompts and len(step.prompts) < MAX_PROMPTS:
                    step.prompts.append(prompt)
            step.has_text |= s.has_text
            step.has_scale |= s.has_scale
            step.has_codes |= s.has_codes
    return list(steps.values())


@dataclass(frozen=True)
class ExportFacts:
    """What a writer states once for the whole export: its header, cases, totals, layout.

    Taken from one bundle by :func:`facts_of`, or merged from the parts of an export written
    in several processes; either way the files come out the same.
    """

    study: str
    generated_by: str
    codebook_version: str
    codebook_hash: str
    date_mode: str
    entries: int
    answers: int
    segments: int
    cases: tuple[Case, ...]  # every case, as all_cases gives them
    steps: tuple[WideStep, ...]  # entries.csv step columns, unnamed
    entries_by_person: dict[str, list[str]]  # case -> entry ids, in export order
    options: ExportOptions = ExportOptions()


def facts_of(bundle: ExportBundle) -> ExportFacts:
    by_person: dict[str, list[str]] = {}
    for entry in bundle.entries:
        by_person.setdefault(entry.person, []).append(entry.entry_id)
    return ExportFacts(
        bundle.study, bundle.generated_by, bundle.codebook_version, bundle.codebook_hash,
        bundle.date_mode, len(bundle.entries), sum(len(e.answers) for e in bundle.entries),
        len(bundle.segments), tuple(all_cases(bundle)), tuple(wide_steps(bundle.entries)),
        by_person, bundle.options,
    )


@dataclass(frozen=True, slots=True)
class PlacedSegment:
    """A segment resolved to the answer it codes (``answer_index`` is 0-based in the entry)."""

    answer_index: int
    segment: CodedSegment


# One bundle is usually written in several formats in a row; each writer needs the checked
# segment index, and building it is a pass over every entry and segment. Bundles are frozen,
# so the index is kept while the bundle lives (keyed by identity: hashing a bundle would walk
# all of it).
_PLACED: dict[int, tuple[weakref.ref[ExportBundle], dict[str, list[PlacedSegment]]]] = {}


def segments_by_entry(bundle: ExportBundle) -> dict[str, list[PlacedSegment]]:
    """The bundle's segments grouped by entry, checked; see :func:`_place_segments`.

    The result is cached for the bundle's lifetime; treat it as read-only.
    """
    hit = _PLACED.get(id(bundle))
    if hit is not None and hit[0]() is bundle:
        return hit[1]
    placed = _place_segments(bundle)
    key = id(bundle)
    _PLACED[key] = (weakref.ref(bundle, lambda _ref: _PLACED.pop(key, None)), placed)
    return placed


def _place_segments(bundle: ExportBundle) -> dict[str, list[PlacedSegment]]:
    """Group and check segments: each must name an existing answer and lie inside its text.

    Raises ``ValueError`` on duplicate entry ids, on a segment whose entry or step is unknown,
    on offsets outside the answer text and on a non-finite confidence: a writer that silently
    dropped or clipped such a segment would hand researchers codings that point at the wrong
    words. When an entry holds the same step twice, a segment codes the first answer of it.
    Segments keep their bundle order within an entry.
    """
    ids = [e.entry_id for e in bundle.entries]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for entry_id in ids:
            if entry_id in seen:
                raise ValueError(f"duplicate entry id in export bundle: {entry_id!r}")
            seen.add(entry_id)
    pending: dict[str, list[CodedSegment]] = {}
    for seg in bundle.segments:
        pending.setdefault(seg.entry_id, []).append(seg)
    grouped: dict[str, list[PlacedSegment]] = {}
    for entry in bundle.entries:
        segs = pending.pop(entry.entry_id, None)
        if segs is None:
            continue
        by_step: dict[str, int] = {}
        for index, answer in enumerate(entry.answers):
            by_step.setdefault(answer.step_id, index)
        placed = grouped[entry.entry_id] = []
        for seg in segs:
            index = by_step.get(seg.step_id)
            if index is None:
                raise ValueError(f"coded segment names step {seg.step_id!r}, which entry "
                                 f"{seg.entry_id!r} lacks")
            size = len(entry.answers[index].text or "")
            if not 0 <= seg.start <= seg.end <= size:
                raise ValueError(
                    f"coded segment {seg.start}:{seg.end} ({seg.code_id}) lies outside the "
                    f"{size}-character answer to {seg.step_id!r} in entry {seg.entry_id!r}"
                )
            if not math.isfinite(seg.confidence):
                raise ValueError(f"coded segment {seg.code_id} in {seg.entry_id!r} has "
                                 f"confidence {seg.confidence!r}; exports need a finite number")
            placed.append(PlacedSegment(index, seg))
    if pending:
        raise ValueError(f"coded segment names unknown entry {next(iter(pending))!r}")
    return grouped


def all_cases(bundle: ExportBundle) -> list[Case]:
    """The bundle's cases plus a bare case for any person who has entries but no case record.

    Every source then belongs to a case, which is what QDA tools group and filter by.
    Bundle cases keep their order; implied ones follow in order of first entry.
    """
    cases = list(bundle.cases)
    seen = {c.person for c in cases}
    if len(seen) != len(cases):
        raise ValueError("duplicate person in export bundle cases")
    for entry in bundle.entries:
        if entry.person not in seen:
            seen.add(entry.person)
            cases.append(Case(person=entry.person, pair=entry.pair, role=entry.role))
    return cases
