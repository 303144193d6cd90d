"""Build the researcher export bundle from the store: consent, pseudonyms, dates, coding.

This is the storage side of :mod:`reports.export`; the writers never see the store.

* **Who**: entries come from :func:`reports.extract.snapshot` with ``Scope.RESEARCH_EXPORT``,
  the one place the consent rule is applied: the author's *current* decision, so a withdrawal
  removes everything they wrote before it, and an erased person (key gone) has nothing left.
* **Identities**: study pseudonyms from :class:`storage.pseudonyms.Pseudonymiser` (keyed HMAC
  of the random subject reference under a per-study secret). Telegram ids, chat ids, names and
  usernames are never read here at all, except the authors' and their partners' first names,
  read only to mask them out of the text.
* **Dates**: ``shift`` gives every date (entry dates and date answers) moved by the author's
  own consistent random offset; ``relative`` gives days since the pair's matching date (the
  person's own first entry when they have no pair, or it no date) instead: both are facts the
  person's own consent covers, where a session the partner logged might not be. Never both: a
  shifted date beside a relative day would give away the offset.
* **Text**: what the consent question promises, "under a study code and without names": the
  evaluator's masker (:class:`reports.structured.Masker`) replaces the authors' and partners'
  first names, titled and other capitalised names, emails, handles, phone numbers and links.
  ``--text verbatim`` (for a study whose approval allows exact words) leaves text as written.
  An answer flagged for safety signposting keeps its row with ``text`` empty; which answers
  were withheld is listed in ``withheld.csv`` (see :func:`write_withheld`).
* **Codes**: participants' button choices as answer codes; coded segments from the reporting
  job's layers: structured (a text step that elicits a code, whole answer) and rules (cue
  phrases, with spans). Rules code the text as written (as stored with the entry) and their
  spans are moved through the masker's edits, so offsets point into what is exported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

from conversations.answers import Answer, is_typed_choice
from conversations.catalogue import load_flows
from conversations.engine import fill
from conversations.model import Flow, Step
from conversations.waves import BY_ID as WAVES
from reports import extract
from reports.codebook import Codebook
from reports.coding.model import (
    METHOD_BOTH,
    METHOD_RULES,
    METHOD_SEMANTIC,
    METHOD_STRUCTURED,
    MODALITIES,
)
from reports.entry_codes import (
    Hit,
    accepted_coders,
    answer_text,
    code_texts,
    current_codes,
    step_kind,
)
from reports.export.model import (
    Case,
    CodedSegment,
    ExportAnswer,
    ExportBundle,
    ExportEntry,
    ExportOptions,
)
from reports.structured import Edit, Masker, StepIndex, entry_day, moved
from storage.models import Scope
from storage.pseudonyms import Pseudonymiser
from storage.store import Store

DATE_MODES = ("shift", "relative")
CONSENT = Scope.RESEARCH_EXPORT.value
WITHHELD_CSV = "withheld.csv"
WITHHELD_REASON = "signposted"
_BY_VALUE = frozenset(("choice", "multi", "scale"))  # kinds whose answer is its value alone
_DIGITS = re.compile(r"(\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
# Prompt placeholders that repeat the person's earlier answer ("Last time you said 6."): the
# export cannot know which entry the bot read them from, so they render as nothing.
_HISTORY_NOTES = ("last_scale_note", "last_action_note")


@dataclass(frozen=True)
class Withheld:
    entry_id: str
    step_id: str
    answer_no: int
    reason: str


@dataclass
class BuiltExport:
    bundle: ExportBundle
    withheld: list[Withheld] = field(default_factory=list)
    masked_answers: int = 0
    coded_texts: int = 0
    distinct_texts: int = 0


def generated_by() -> str:
    try:
        return f"mentorbot {metadata.version('mentorbot')}"
    except metadata.PackageNotFoundError:  # running from a bare checkout
        return "mentorbot"


_STORED_METHODS = frozenset({METHOD_RULES, METHOD_SEMANTIC, METHOD_BOTH})


def _fitting(hits: Any, size: int) -> list[Hit] | None:
    """Stored hits, if each is a (start, end, code, confidence, modality, method, polarity,
    CMO role, level) inside a text of ``size``; None (code the text again) if any is not: a
    file that fails to open is worse than a second coding."""
    try:
        for start, end, code_id, confidence, modality, method, *_ in hits:
            if not (0 <= start <= end <= size and isinstance(code_id, str)
                    and isinstance(confidence, (int, float)) and math.isfinite(confidence)
                    and modality in MODALITIES and method in _STORED_METHODS):
                return None
    except (TypeError, ValueError):
        return None
    return hits  # type: ignore[no-any-return]


def _plain_value(value: Any) -> str | int | tuple[str, ...] | None:
    """A hashable stand-in for a button answer's value, or None when it carries typed text."""
    if isinstance(value, (str, int)):
        return value
    if isinstance(value, dict) and not is_typed_choice(value):
        value = list(Answer.decode(value).selected)  # a multi-choice with nothing typed
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _versions(raw: str) -> tuple[int, str | None]:
    """(flow_version as a number, the raw label when it is not a bare number)."""
    if raw.isdigit():
        return int(raw), None
    m = _DIGITS.search(raw)
    return (int(m.group(1)) if m else 0), raw


class _Builder:
    def __init__(self, pseudonyms: Pseudonymiser, date_mode: str, codebook: Codebook,
                 flows: Mapping[str, Flow], anchors: Mapping[int, date],
                 names: Mapping[int, tuple[str, ...]], options: ExportOptions,
                 first_days: Mapping[int, date] | None = None) -> None:
        self.p = pseudonyms
        self.date_mode = date_mode
        self.codebook = codebook
        self.index = StepIndex(flows, codebook)
        self.flows = flows
        self.anchors = anchors
        self.first_days = first_days or {}
        self.verbatim = options.text == "verbatim"
        self.names = names
        self.maskers: dict[int, Masker] = {}
        # the last text masked and its edits: the coder moves its spans through them next
        self._last: tuple[int, str, str, list[list[Edit]]] | None = None
        self._prompts: dict[tuple[str, str, str | None], str] = {}
        self.entries: list[ExportEntry] = []
        self.segments: list[CodedSegment] = []
        self.withheld: list[Withheld] = []
        self.masked = 0
        # one HMAC per person and pair, not one per entry
        self._person: dict[str, str] = {}
        self._pair: dict[int, str] = {}
        self._shift: dict[str, int] = {}
        self.cases: dict[str, tuple[str | None, str, int]] = {}  # person -> (pair, role, n)
        # Rule coding is deterministic in (text, role), and answers repeat ("Yes", "Not yet",
        # a copied goal): each distinct text is coded once per run.
        self._hits: dict[tuple[str, str], list[tuple[int, int, str, float]]] = {}
        self.texts = 0
        self._steps: dict[tuple[str, str], tuple[Step | None, str, str, str | None]] = {}
        self._by_value: dict[tuple[str, str, Any], ExportAnswer] = {}
        # the rules' stored codes, and the combined coder's where the semantic layer runs
        self.coders = accepted_coders(codebook)
        self.uncoded = 0  # entries without current stored codes, coded here

    def person(self, subject_ref: str) -> str:
        label = self._person.get(subject_ref)
        if label is None:
            label = self._person[subject_ref] = self.p.person(subject_ref)
        return label

    def pair(self, pair_id: int | None) -> str | None:
        if pair_id is None:
            return None
        label = self._pair.get(pair_id)
        if label is None:
            label = self._pair[pair_id] = self.p.pair(pair_id)
        return label

    def when(self, record: extract.EntryRecord, day: date) -> tuple[str | None, int | None]:
        if self.date_mode == "shift":
            shift = self._shift.get(record.subject_ref)
            if shift is None:
                shift = self._shift[record.subject_ref] = self.p.shift_days(record.subject_ref)
            return date.fromordinal(day.toordinal() + shift).isoformat(), None
        anchor = self.anchors.get(record.pair_id) if record.pair_id is not None else None
        if anchor is None:
            anchor = self.first_days.get(record.participant_id)
        return None, (None if anchor is None else (day - anchor).days)

    def mask(self, pid: int, text: str) -> str:
        if self.verbatim:
            return text
        masker = self.maskers.get(pid)
        if masker is None:
            masker = self.maskers[pid] = Masker(self.names.get(pid, ()))
        masked, passes = masker.redact(text)
        self._last = (pid, text, masked, passes)
        if passes:
            self.masked += 1
        return masked

    def prompt(self, template: str, role: str, wave: str | None) -> str:
        """The prompt as the bot showed it: placeholders filled as the bot fills them."""
        key = (template, role, wave)
        shown = self._prompts.get(key)
        if shown is None:
            context: dict[str, Any] = {"partner": "mentee" if role == "mentor" else "mentor"}
            if wave is not None and wave in WAVES:
                context["wave_label"], context["wave"] = WAVES[wave].label, wave
            context.update(dict.fromkeys(_HISTORY_NOTES, ""))
            shown = self._prompts[key] = (" ".join(fill(template, context).split())
                                          if "{" in template else template)
        return shown

    def add(self, record: extract.EntryRecord) -> None:
        entry_id = self.p.entry(record.entry_id)
        person = self.person(record.subject_ref)
        pair = self.pair(record.pair_id)
        role = record.role.value
        stored = None
        stored = current_codes(record.codes, self.coders)
        if stored is None:
            self.uncoded += 1
        answers: list[ExportAnswer] = []
        for step_id, value in record.answers.items():
            answer_no = len(answers) + 1
            answer = self._answer(record, step_id, value)
            if step_id in record.flagged:
                # keep the row (the question was answered), never the words
                answer = ExportAnswer(answer.step_id, answer.framework_step, answer.prompt,
                                      answer.kind, None, answer.codes, answer.scale)
                self.withheld.append(Withheld(entry_id, step_id, answer_no, WITHHELD_REASON))
            elif answer.text and (answer.kind == "text" or is_typed_choice(value)):
                self._code(entry_id, record, step_id, value, answer, stored)
            answers.append(answer)
        dated = date.fromisoformat(entry_day(record.flow, record.answers, record.created_at,
                                             self.index))
        iso_date, day = self.when(record, dated)
        version, label = _versions(record.flow_version)
        self.entries.append(ExportEntry(entry_id, person, pair, role, record.flow, version,
                                        label, iso_date, day, CONSENT, tuple(answers),
                                        record.wave))
        known = self.cases.get(person)
        self.cases[person] = (pair, role, (known[2] if known else 0) + 1)

    def _answer(self, record: extract.EntryRecord, step_id: str, value: Any) -> ExportAnswer:
        step, kind, prompt, framework = self.step_info(record.flow, step_id, value)
        if "{" in prompt:
            prompt = self.prompt(prompt, record.role.value, record.wave)
        plain = _plain_value(value) if kind in _BY_VALUE else None
        if plain is not None:
            # a button answer depends on nothing but its value and prompt: most answers are
            # one of a few
            key = (record.flow, step_id, plain, prompt)
            known = self._by_value.get(key)
            if known is None:
                known = self._by_value[key] = self._fresh_answer(
                    record, step, step_id, kind, prompt, framework, value)
            return known
        return self._fresh_answer(record, step, step_id, kind, prompt, framework, value)

    def _fresh_answer(self, record: extract.EntryRecord, step: Step | None, step_id: str,
                      kind: str, prompt: str, framework: str | None,
                      value: Any) -> ExportAnswer:
        text: str | None = None
        codes: list[str] = []
        scale: int | None = None
        if value is None:
            pass
        elif kind in ("text", "choice", "multi"):
            typed = answer_text(step, kind, value,
                                lambda t: self.mask(record.participant_id, t))
            if typed is not None:
                text, codes = typed.text, list(typed.codes)
        elif kind == "scale":
            try:
                scale = int(value)
            except (TypeError, ValueError):
                scale = None
            text = None if scale is None else str(scale)
        elif kind == "date" and isinstance(value, str) and _DATE.match(value):
            # a date someone typed is as identifying as the entry's own date
            iso_date, day = self.when(record, date.fromisoformat(value[:10]))
            text = iso_date if iso_date is not None else (None if day is None else f"day {day}")
        else:
            text = None  # an unknown step kind: nothing we can vouch for
        return ExportAnswer(step_id, framework, prompt, kind, text, tuple(codes), scale)

    def _code(self, entry_id: str, record: extract.EntryRecord, step_id: str, value: Any,
              answer: ExportAnswer, stored: dict[str, list[Hit]] | None) -> None:
        text = answer.text
        assert text is not None
        if answer.kind == "text":
            # a typed "other" answers a choice, not the prompt: rules only
            for code in self.index.prompt_codes(record.flow, step_id, text):
                self.segments.append(CodedSegment(entry_id, step_id, code.start, code.end,
                                                  code.code_id, METHOD_STRUCTURED,
                                                  code.confidence))
        if answer.kind == "text":
            prefix, written = "", str(value)
        else:  # a choice with "other" typed
            step, kind = step_kind(self.flows.get(record.flow), step_id, value)
            typed = answer_text(step, kind, value)
            if typed is None or not typed.typed:
                return
            prefix, written = typed.prefix, typed.typed
        self.texts += 1
        # the text as written, before masking: what the bot stores codes of
        unmasked = prefix + written
        hits = _fitting(stored.get(step_id, []), len(unmasked)) if stored is not None else None
        if hits is None:
            key = (unmasked, record.role.value)
            found = self._hits.get(key)
            if found is None:
                found = self._hits[key] = code_texts(
                    {step_id: unmasked}, record.role.value, self.codebook,
                    self.index.intending(record.flow)).get(step_id, [])
            hits = found
        if text != unmasked:
            last = self._last
            assert last is not None and last[0] == record.participant_id and last[1] == written
            passes, offset = last[3], len(prefix)
            hits = [(offset + moved(h[0] - offset, passes, False) if h[0] > offset else h[0],
                     offset + moved(h[1] - offset, passes, True) if h[1] > offset else h[1],
                     *h[2:])
                    for h in hits]
        for start, end, code_id, confidence, modality, method, *_ in hits:
            self.segments.append(CodedSegment(entry_id, step_id, start, end, code_id,
                                              method, confidence, modality))

    @property
    def distinct_texts(self) -> int:
        return len(self._hits)

    def step_info(self, flow_id: str, step_id: str,
                  value: Any) -> tuple[Step | None, str, str, str | None]:
        """(step, kind, prompt, framework step), looked up once per flow step."""
        key = (flow_id, step_id)
        info = self._steps.get(key)
        if info is None:
            flow = self.flows.get(flow_id)
            step = flow.step(step_id) if flow is not None else None
            if step is None:
                kind = "text" if isinstance(value, str) else ""
                return None, kind, step_id, None
            info = self._steps[key] = (step, step.kind, " ".join(step.prompt.split()),
                                       step.framework_step)
        return info


async def _anchors(store: Store, allowed: set[int]) -> tuple[dict[int, date], dict[int, date]]:
    """Day 0 for ``relative`` dates: each pair's matching date, and each person's own first
    complete entry (for entries with no pair, or a pair never matched).

    Both come from the exported person's own records: a session the partner logged would
    anchor a mentee's days on the partner's data, which the partner may not have consented
    to share.
    """
    pairs: dict[int, date] = {}
    for p in await store.programmes.pairs():
        if p.matched_at and (p.mentor_id in allowed or p.mentee_id in allowed):
            pairs[p.id] = date.fromisoformat(p.matched_at[:10])
    firsts: dict[int, date] = {}
    for pid, first in (await store.entries.first_complete()).items():
        if pid in allowed:
            firsts[pid] = date.fromisoformat(first[:10])
    return pairs, firsts


@dataclass(frozen=True)
class ExportPlan:
    """Everything building an export needs from the store, read once: a worker process that
    gets this (through a pipe) builds its share of the export from the database file alone."""

    snapshot: extract.Snapshot
    pseudonyms: Pseudonymiser
    date_mode: str
    names: dict[int, tuple[str, ...]]  # authors' and partners' first names, only to mask them
    anchors: dict[int, date]  # pair -> matching date (relative dates)
    generated_by: str
    options: ExportOptions = field(default_factory=ExportOptions)
    first_days: dict[int, date] = field(default_factory=dict)  # person -> first entry's day

    @property
    def entries(self) -> int:
        return len(self.snapshot.entry_ids)


@dataclass
class PartBuild:
    """One consecutive share of an export's entries, built; :func:`join_parts` joins them."""

    bundle: ExportBundle  # cases are left to join_parts
    counts: dict[str, tuple[str | None, str, int]]  # person -> (pair, role, entries)
    withheld: list[Withheld]
    masked: int
    coded_texts: int
    distinct_texts: int


async def plan_export(store: Store, study: str, date_mode: str,
                      options: ExportOptions | None = None) -> ExportPlan:
    if date_mode not in DATE_MODES:
        raise ValueError(f"date mode must be one of {', '.join(DATE_MODES)}, not {date_mode!r}")
    options = options or ExportOptions()
    pseudonyms = await Pseudonymiser.for_study(store.vault, study)
    snap = await extract.snapshot(store, Scope.RESEARCH_EXPORT)
    allowed = set(snap.people)
    names = {} if options.text == "verbatim" else await extract.mask_names(store, allowed)
    anchors: dict[int, date] = {}
    firsts: dict[int, date] = {}
    if date_mode == "relative" and allowed:
        anchors, firsts = await _anchors(store, allowed)
    return ExportPlan(snap, pseudonyms, date_mode, names, anchors, generated_by(), options,
                      firsts)


def build_part(plan: ExportPlan, codebook: Codebook, after: int = 0,
               upto: int | None = None) -> PartBuild:
    """Build the plan's entries with ids in (after, upto] (all of them by default)."""
    if upto is None:
        upto = plan.snapshot.entry_ids[-1] if plan.snapshot.entry_ids else 0
    builder = _Builder(plan.pseudonyms, plan.date_mode, codebook, load_flows(), plan.anchors,
                       plan.names, plan.options, plan.first_days)
    for record in extract.read_range(plan.snapshot, after, upto):
        builder.add(record)
    bundle = ExportBundle(
        study=plan.pseudonyms.study,
        generated_by=plan.generated_by,
        codebook_version=codebook.version,
        codebook_hash=codebook.content_hash,
        date_mode=plan.date_mode,
        entries=tuple(builder.entries),
        segments=tuple(builder.segments),
        cases=(),
        options=plan.options,
    )
    return PartBuild(bundle, builder.cases, builder.withheld, builder.masked, builder.texts,
                     builder.distinct_texts)


def join_cases(parts: Iterable[Mapping[str, tuple[str | None, str, int]]]) -> tuple[Case, ...]:
    """The export's cases from its parts' counts: one per person, entries summed, by pseudonym."""
    merged: dict[str, tuple[str | None, str, int]] = {}
    for counts in parts:
        for person, (pair, role, n) in counts.items():
            known = merged.get(person)
            merged[person] = (pair, role, n) if known is None else (known[0], known[1],
                                                                    known[2] + n)
    return tuple(Case(person, pair, role, {"entries": str(n)})
                 for person, (pair, role, n) in sorted(merged.items()))


async def build_export(store: Store, study: str, date_mode: str,
                       codebook: Codebook, options: ExportOptions | None = None) -> BuiltExport:
    """The whole export in this process (see :mod:`reports.export.sharded` for several)."""
    part = build_part(await plan_export(store, study, date_mode, options), codebook)
    bundle = replace(part.bundle, cases=join_cases([part.counts]))
    return BuiltExport(bundle, part.withheld, part.masked, part.coded_texts,
                       part.distinct_texts)


async def build_bundle(store: Store, study: str, date_mode: str,
                       codebook: Codebook) -> ExportBundle:
    """The export bundle alone (see :func:`build_export` for what was withheld)."""
    return (await build_export(store, study, date_mode, codebook)).bundle


def write_withheld(built: BuiltExport, out_dir: Path | str) -> Path:
    """``withheld.csv``: the answers kept as rows with their text withheld, and why.

    Documented in ``data_dictionary.md`` by :func:`document_withheld`.
    """
    return write_withheld_rows(built.withheld, out_dir, built.bundle.options.bom)


def write_withheld_rows(withheld: Iterable[Withheld], out_dir: Path | str,
                        bom: bool = True) -> Path:
    import csv

    path = Path(out_dir) / WITHHELD_CSV
    # "utf-8-sig" writes the byte order mark every other CSV of the export starts with
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(["entry_id", "step_id", "answer_no", "reason"])
        for w in withheld:
            writer.writerow([w.entry_id, w.step_id, w.answer_no, w.reason])
    return path


WITHHELD_COLUMNS = (
    ("entry_id", "string", "Study pseudonym of the entry holding the withheld answer"),
    ("step_id", "string", "Step whose answer text is withheld (its row stays, text empty)"),
    ("answer_no", "integer", "Position of that answer within its entry, from 1"),
    ("reason", "string", "Why: 'signposted' = the answer triggered safety signposting, so its "
     "words are never exported"),
)


def document_withheld(out_dir: Path | str) -> None:
    """Add ``withheld.csv``'s columns to the data dictionary the shared writers produced."""
    out = Path(out_dir)
    csv_path = out / "data_dictionary.csv"
    if csv_path.exists():
        with csv_path.open("a", encoding="utf-8", newline="") as fh:
            import csv

            writer = csv.writer(fh, lineterminator="\r\n")
            for name, kind, meaning in WITHHELD_COLUMNS:
                writer.writerow([WITHHELD_CSV, name, kind, meaning, ""])
    md_path = out / "data_dictionary.md"
    if md_path.exists():
        lines = ["", f"## `{WITHHELD_CSV}`", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{n}` | {k} | {m} |" for n, k, m in WITHHELD_COLUMNS]
        with md_path.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
