"""The evaluator analysis: phases, configurations, tallies and aggregates of coded entries."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from typing import TYPE_CHECKING, Any

from reports.codebook import (
    COARSE_ROLE,
    OUTCOME_ROLES,
    SCHEME_CLIMATE,
    SCHEME_CMO,
    SCHEME_DOMAIN,
    SCHEME_EPISODE_KIND,
    SCHEME_FACTOR,
    SCHEME_PHASE,
    SCHEME_TOPIC,
    Codebook,
)
from reports.coding.model import (
    METHOD_BOTH,
    METHOD_RULES,
    METHOD_SEMANTIC,
    METHOD_STRUCTURED,
    POLARITY_HELPING,
    POLARITY_HINDERING,
)
from reports.coding.rules import fold_factor
from reports.configurations import (
    GRADE_RULES,
    GRADES,
    THEORY_RULES,
    WINDOW_AFTER_DAYS,
    WINDOW_BEFORE_DAYS,
    EntryRow,
    Pattern,
    Summary,
    UnitPayload,
    UnitResult,
)
from reports.evaluator import course
from reports.evaluator.for_whom import ForWhom
from reports.evaluator.model import (
    METHOD_PROMPT,
    METHOD_SELF,
    MIN_MONTH_ENTRIES,
    MONTHS_SHOWN,
    QUOTES_PER_CODE,
    REPORT_VERSION,
    ROLES,
    STAGES,
    UNITS_PER_TASK,
    Entry,
    _Quote,
    realised_role,
)
from reports.phases import DAYS_PER_MONTH, KRAM_PRE, PHASES, PairHistory, Timeline, month_of
from reports.structured import (
    Code,
    StepIndex,
)

if TYPE_CHECKING:
    from reports.evaluator.pipeline import _Run

# ---------------------------------------------------------------------------------------
# analysis
# ---------------------------------------------------------------------------------------


def _method(code: Code) -> str:
    if code.method == METHOD_STRUCTURED:
        return METHOD_SELF if code.start < 0 else METHOD_PROMPT
    return code.method


def _semantic_json(run: Any) -> dict[str, Any]:
    """How much of the coding the semantic layer did (issue 13): of the free-text answers,
    how many the heads read from stored embeddings and how many they gave a code."""
    read, missing, never, coded = run.semantic_counts
    texts = run.rule_texts
    on = run.semantic is not None
    return {
        "on": on,
        "note": run.semantic_note,
        "answers": texts,
        "read": read,
        "coded": coded,
        # not embedded yet: `mentorbot recode` embeds them
        "without_embeddings": missing if on else texts,
        # never embedded by design: signposted answers, a typed "other" beside chosen labels
        "never_embedded": never if on else 0,
        "coverage": _share(read, texts),
        "coded_share": _share(coded, texts),
        "recode_hint": bool(on and missing) or (not on and "recode" in run.semantic_note),
    }


def _refit_json(refit: Any) -> dict[str, Any] | None:
    if refit is None:
        return None
    return {"examples": refit.examples, "agreement_before": _round(refit.before),
            "agreement_after": _round(refit.after), "note": refit.note}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _share(n: int, d: int) -> float:
    return round(n / d, 4) if d else 0.0


BEST_SHOWN = 15  # strongest pair configurations listed in the HTML
BEST_PER_PAIR = 2  # at most this many of one pair in that list
# Stands in for the configuration items while the report is encoded; the items are written
# from their own encoded lines. The random part keeps any entry text from ever matching it.
ITEMS_MARKER = f"configuration-items-{secrets.token_hex(12)}"


@dataclass
class _TheoryTally:
    configurations: int = 0
    units: set[str] = field(default_factory=set)
    grades: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


class _ConfigurationSink:
    """Takes each unit's configurations as they arrive (already encoded) and keeps only
    running totals, so a large programme never holds tens of thousands of objects."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.patterns: dict[tuple[str, str], Pattern] = {}
        self.by_grade: Counter[str] = Counter()
        self.unconfigured: Counter[str] = Counter()
        self.theories = {r.theory: _TheoryTally() for r in THEORY_RULES}
        self.codes: set[str] = set()
        self.best_by_unit: dict[str, list[tuple[int, str, str, str]]] = {}

    def add(
        self, label: str, key: str, items: Iterable[tuple[str, Summary]], missing: Counter[str]
    ) -> None:
        self.unconfigured.update(missing)
        self.codes.update(missing)
        for text, c in items:
            self.items.append(text)
            pattern = self.patterns.get((c.outcome, c.outcome_role))
            if pattern is None:
                pattern = self.patterns[(c.outcome, c.outcome_role)] = Pattern(
                    c.outcome, c.outcome_role
                )
            pattern.add(c)
            self.by_grade[c.grade] += 1
            self.codes.add(c.outcome)
            self.codes.update(code for _, code, _ in c.chain)
            for theory in c.theories:
                t = self.theories[theory]
                t.configurations += 1
                t.units.add(key)
                t.grades[c.grade] += 1
                t.outcomes[c.outcome] += 1
            if c.grade == "strong":
                kept = self.best_by_unit.setdefault(label, [])
                kept.append((-c.entries, label, c.outcome, text))
                kept.sort(key=lambda b: b[:3])
                del kept[BEST_PER_PAIR:]

    def best_items(self) -> list[dict[str, Any]]:
        """The best-supported configurations, spread across pairs: each pair's best first,
        then each pair's second, so no one pair fills the table."""
        rounds = [sorted(kept[k] for kept in self.best_by_unit.values() if len(kept) > k)
                  for k in range(BEST_PER_PAIR)]
        return [json.loads(b[3]) for b in [b for r in rounds for b in r][:BEST_SHOWN]]


_OUTCOME_SCHEMES = frozenset({SCHEME_CMO, SCHEME_DOMAIN})
_ELEMENT_SCHEMES = frozenset({SCHEME_CMO, SCHEME_FACTOR})


@dataclass
class _ElementStats:
    entries: int = 0
    people: set[int] = field(default_factory=set)
    units: set[str] = field(default_factory=set)
    methods: Counter[str] = field(default_factory=Counter)
    authors: Counter[str] = field(default_factory=Counter)


class _Tally:
    """Entry-level counts for every section, gathered in one pass over the codes (the job's
    largest loop: about ten codes per entry)."""

    def __init__(self, codebook: Codebook, index: StepIndex) -> None:
        self.index = index
        self.counterparts = dict(codebook.rules.factor_counterparts) if codebook.rules else {}
        reverse = {v: k for k, v in self.counterparts.items()}
        self.theme = {c: reverse.get(c, c) for c in codebook.codes}
        self.default_polarity = {c: d.polarity or "" for c, d in codebook.codes.items()}
        self.elements: dict[tuple[str, str], _ElementStats] = {}
        self.methods: Counter[str] = Counter()
        self.flows: Counter[str] = Counter()
        self.authors: Counter[str] = Counter()
        self.people: set[tuple[int, str]] = set()
        self.first_day = 10**9
        self.last_day = 0
        self.month_totals: Counter[tuple[str, int]] = Counter()
        self.domain_hits: Counter[tuple[str, str, int]] = Counter()
        self.domain_totals: Counter[tuple[str, str]] = Counter()
        self.factors: Counter[tuple[str, str]] = Counter()
        self.factor_authors: Counter[tuple[str, str, str]] = Counter()
        self.factor_stages: Counter[tuple[str, str, str]] = Counter()
        self.climate: Counter[tuple[str, int]] = Counter()
        self.topics: Counter[str] = Counter()
        self.coverage: Counter[tuple[str, str]] = Counter()

    def entry(self, e: Entry, month: int, unit: str) -> None:
        author = e.author
        self.flows[e.flow] += 1
        self.authors[author] += 1
        self.people.add((e.person, author))
        self.first_day = min(self.first_day, e.day)
        self.last_day = max(self.last_day, e.day)
        shown = 0 <= month < MONTHS_SHOWN
        if shown:
            self.month_totals[(author, month)] += 1
        stage = next((s for s, lo, hi in STAGES if lo <= month <= hi), "before")
        seen: set[tuple[str, str]] = set()
        found: dict[str, set[str]] = {}
        methods = self.methods
        for c in e.codes:
            method = _method(c)
            methods[method] += 1
            scheme = c.scheme
            role = realised_role(c.cmo_role, e.wave)
            code = c.code_id
            if role is not None and c.start >= 0 and role in COARSE_ROLE:
                found.setdefault(c.step, set()).add(COARSE_ROLE[role])
            if scheme == SCHEME_CMO:
                if role is None:
                    continue
                key = (code, role)
                s = self.elements.get(key)
                if s is None:
                    s = self.elements[key] = _ElementStats()
                s.methods[method] += 1
                if key in seen:
                    continue
                seen.add(key)
                s.entries += 1
                s.people.add(e.person)
                s.units.add(unit)
                s.authors[author] += 1
                continue
            if role is None and (scheme in _OUTCOME_SCHEMES or scheme == SCHEME_FACTOR):
                continue  # a hoped-for or denied learning or factor is not there (issue 13)
            if scheme == SCHEME_FACTOR:
                polarity = c.polarity or self.default_polarity[code]
                folded = fold_factor(code, polarity, self.counterparts)
                key = ("factor", folded)
                if key in seen:
                    continue
                seen.add(key)
                theme = self.theme[folded.split(":")[0]]
                self.factors[(theme, polarity)] += 1
                self.factor_authors[(theme, polarity, author)] += 1
                self.factor_stages[(theme, polarity, stage)] += 1
                continue
            key = (scheme, code)
            if key in seen:
                continue
            seen.add(key)
            if scheme == SCHEME_DOMAIN:
                self.domain_totals[(author, code)] += 1
                if shown:
                    self.domain_hits[(author, code, month)] += 1
            elif scheme == SCHEME_CLIMATE:
                if shown:
                    self.climate[(code, month)] += 1
            elif scheme == SCHEME_TOPIC:
                self.topics[code] += 1
        for step in e.texts:
            info = self.index.get(e.flow, step)
            if info is None:
                continue
            for role_name in info.roles:
                self.coverage[(role_name, "answers")] += 1
                self.coverage[(role_name, "coded")] += role_name in found.get(step, ())


@dataclass
class _Unit:
    key: str  # "D:<pair id>" or "P:<participant id>"
    label: str
    start: int  # date ordinal day 0
    entries: list[Entry] = field(default_factory=list)
    matched: bool = False


class _Analysis:
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.codebook = run.codebook
        self.labels: dict[str, str] = {}
        self.sensitive = run.codebook.sensitive_ids()
        self.month: dict[int, int] = {}  # entry position -> month of its relationship
        self.courses: dict[str, course.UnitCourse] = {}  # unit key -> its course
        # for whom: participant groups and the programme-wide contrast (issue 14)
        self.for_whom = ForWhom(run.flows, run.context)

    def label(self, code: str) -> str:
        self.labels[code] = self.codebook.get(code).label
        return self.labels[code]

    async def units(self) -> list[_Unit]:
        run = self.run
        by_key: dict[str, _Unit] = {}
        for entry in run.entries:
            if entry.pair_id is not None and entry.pair_id in run.pairs:
                key = f"D:{entry.pair_id}"
                if key not in by_key:
                    matched_at = run.pairs[entry.pair_id].matched_at
                    start = (
                        date.fromisoformat(matched_at[:10]).toordinal()
                        if matched_at
                        else entry.day
                    )
                    by_key[key] = _Unit(
                        key, run.pair_label(entry.pair_id), start, matched=matched_at is not None
                    )
            else:
                key = f"P:{entry.person}"
                if key not in by_key:
                    by_key[key] = _Unit(key, run.person_label(entry.person), entry.day)
            by_key[key].entries.append(entry)
        for unit in by_key.values():
            if not unit.matched:
                unit.start = min(e.day for e in unit.entries)
        return sorted(by_key.values(), key=lambda u: u.label)

    async def lifecycle(self, units: Sequence[_Unit]) -> dict[int, list[tuple[str, str]]]:
        """Pair-level events that belong to no one person, or to a consenting one
        (storage.lifecycle.usable: never those derived from episode logs)."""
        run = self.run
        wanted = {int(u.key[2:]) for u in units if u.key.startswith("D:")}
        usable = await run.store.lifecycle.usable_events(wanted, run.consenting)
        return {pid: [(e.event, e.at) for e in found] for pid, found in usable.items() if found}

    async def run_all(self) -> dict[str, Any]:
        run = self.run
        units = await self.units()
        events = await self.lifecycle(units)
        run.progress.stage("Phases and configurations", len(units))
        assert run.coder is not None
        tally = _Tally(self.codebook, run.index)
        # Walk the units once: each yields its workers' payload and feeds the entry-level
        # tallies; batches go out as they fill, so workers configure while this walk goes on.
        pending: list[Future[list[UnitResult]] | list[UnitResult]] = []
        batch: list[UnitPayload] = []
        for unit in units:
            batch.append(self._walk(unit, events, tally))
            if len(batch) == UNITS_PER_TASK:
                pending.append(run.coder.submit_units(batch))
                batch = []
        if batch:
            pending.append(run.coder.submit_units(batch))
        timelines: dict[str, Timeline] = {}
        sink = _ConfigurationSink()
        for label, key, timeline, items, missing in run.coder.collect(pending):
            if timeline is not None:
                timelines[label] = timeline
            sink.add(label, key, items, missing)
            run.progress.advance()
        run.progress.stage("Writing the report", None)
        for unit in units:
            found = self.courses[unit.key]
            found.last_day = tally.last_day - unit.start
            timeline = timelines.get(unit.label)
            if timeline is not None:
                found.regressions = sum(1 for t in timeline.transitions if t.kind == "regression")
        return self.assemble(units, timelines, sink, tally)

    def _walk(
        self, unit: _Unit, events: Mapping[int, Sequence[tuple[str, str]]], tally: _Tally
    ) -> UnitPayload:
        """One unit's entries, once: configurable codes, phase evidence, and the tallies."""
        is_pair = unit.key.startswith("D:")
        history = PairHistory() if is_pair else None
        if history is not None:
            if unit.matched:
                history.events.append((0, "matched"))
            for event, at in events.get(int(unit.key[2:]), ()):
                if event != "matched":
                    history.events.append((at.date().toordinal() - unit.start, event))
        rows: list[EntryRow] = []
        unit_course = self.courses[unit.key] = course.UnitCourse(unit.label, is_pair)
        if is_pair:
            for event, at in events.get(int(unit.key[2:]), ()):
                if event in ("closed", "rematched"):
                    unit_course.closed_day = at.date().toordinal() - unit.start
                    unit_course.rematched = event == "rematched"
        intending = self.run.index.intending
        for e in unit.entries:
            day = e.day - unit.start
            month = month_of(day)
            self.month[e.idx] = month
            tally.entry(e, month, unit.key)
            elements = set()
            outcomes = set()
            aims: set[str] = set()
            realised: set[str] = set()
            climate = None
            for c in e.codes:
                role = realised_role(c.cmo_role, e.wave)
                scheme = c.scheme
                if scheme == SCHEME_CLIMATE:
                    climate = c.code_id
                if role is None and scheme in _OUTCOME_SCHEMES and c.step in intending(e.flow) \
                        and (scheme == SCHEME_DOMAIN
                             or self.codebook.get(c.code_id).role in OUTCOME_ROLES):
                    aims.add(c.code_id)  # a goal or hope: intended, not (yet) an outcome
                if role is not None:
                    if role in OUTCOME_ROLES:
                        if scheme in _OUTCOME_SCHEMES:
                            outcomes.add((c.code_id, role))
                            realised.add(c.code_id)
                    elif scheme in _ELEMENT_SCHEMES:
                        elements.add((c.code_id, role))
                if history is not None:
                    if scheme == SCHEME_EPISODE_KIND:
                        history.events.append((day, c.code_id))
                    elif scheme == SCHEME_PHASE:
                        if c.start < 0 and e.author == "mentor":
                            history.views.append((day, c.code_id))
                        elif c.method != METHOD_STRUCTURED and role is not None:
                            history.signals.append((day, c.code_id, c.confidence))
            unit_course.entries.append(course.CourseEntry(
                e.label, day, e.author, e.person, e.scale, climate, frozenset(aims),
                frozenset(realised), e.wave is None))
            if history is not None:
                history.contacts.append(day)
            if elements or outcomes:
                rows.append(
                    (
                        e.label,
                        day,
                        e.author,
                        e.person,
                        tuple(sorted(elements)),
                        tuple(sorted(outcomes)),
                    )
                )
        self.for_whom.keep(unit.key, rows)
        return unit.label, unit.key, rows, history

    # -- assembling the report data -----------------------------------------------------
    def assemble(
        self,
        units: Sequence[_Unit],
        timelines: Mapping[str, Timeline],
        sink: _ConfigurationSink,
        tally: _Tally,
    ) -> dict[str, Any]:
        run = self.run
        unit_of: dict[int, _Unit] = {}
        for unit in units:
            for e in unit.entries:
                unit_of[e.idx] = unit
        quotes, quote_ids = self._quotes(unit_of, self.month)
        data: dict[str, Any] = {
            "report": "evaluator",
            "report_version": REPORT_VERSION,
            "codebook": {
                "version": self.codebook.version,
                "hash": self.codebook.content_hash,
                "rules_version": self.codebook.rules_version,
            },
            "study": run.options.study,
        }
        data["summary"] = self._summary(units, tally)
        data["cmo_framework"] = self._framework(tally, quote_ids)
        data["configurations"] = self._configurations(sink, quote_ids)
        data["for_whom"] = self.for_whom.assemble(
            data["configurations"]["patterns"], {person for person, _ in tally.people},
            {c: d.label for c, d in self.codebook.codes.items()})
        data["phases"] = self._phases(timelines)
        data["learning_domains"] = self._domains(tally)
        data["factors"] = self._factors(tally)
        data["climate"] = self._climate(tally)
        data["topics"] = self._topics(tally)
        data["programme_theories"] = self._theories(sink)
        months = data["summary"]["months_observed"]
        data.update(course.analyse([self.courses[u.key] for u in units], months))
        data["review"] = run.reviewer.agreement.to_json() | {
            "rows_written": run.writer.rows,
            "file_given": run.options.review is not None,
            "semantic_refit": _refit_json(run.refit),
        }
        data["method"] = self._method(tally)
        data["quotes"] = quotes
        for code in sink.codes:
            self.label(code)
        data["labels"] = dict(sorted(self.labels.items()))
        self.best = sink.best_items()
        self.items = sink.items
        return data

    def _quotes(
        self, unit_of: Mapping[int, _Unit], month: Mapping[int, int]
    ) -> tuple[dict[str, Any], dict[tuple[str, str], list[str]]]:
        run = self.run
        chosen: dict[tuple[str, str], list[_Quote]] = {}
        for key, bucket in run.quotes.items():
            picked: list[_Quote] = []
            people: set[int] = set()
            texts: set[str] = set()
            for q in sorted(bucket, key=lambda q: q.rank):
                person = run.entries[q.entry].person
                if person in people or q.text in texts:
                    continue
                picked.append(q)
                people.add(person)
                texts.add(q.text)
                if len(picked) == QUOTES_PER_CODE:
                    break
            chosen[key] = picked
        quotes: dict[str, Any] = {}
        ids: dict[tuple[str, str], list[str]] = {}
        by_text: dict[tuple[int, str], str] = {}
        for key in sorted(chosen):
            for q in chosen[key]:
                e = run.entries[q.entry]
                qid = by_text.get((q.entry, q.text))
                if qid is None:
                    qid = f"Q{len(quotes) + 1}"
                    by_text[(q.entry, q.text)] = qid
                    unit = unit_of[e.idx]
                    quotes[qid] = {
                        "text": q.text,
                        "person": run.person_label(e.person),
                        "author": e.author,
                        "pair": unit.label if unit.key.startswith("D:") else None,
                        "entry": e.label,
                        "month": month[e.idx],
                        "step": run.index.label(e.flow, q.step),
                        "flow": self._flow_title(e.flow),
                    }
                ids.setdefault(key, []).append(qid)
        return quotes, ids

    def _flow_title(self, flow: str) -> str:
        found = self.run.flows.get(flow)
        return found.title if found is not None else flow

    def _summary(self, units: Sequence[_Unit], tally: _Tally) -> dict[str, Any]:
        run = self.run
        entries = run.entries
        months = [m for m in self.month.values() if m >= 0]
        return {
            "entries": len(entries),
            "entries_by_flow": {self._flow_title(f): n for f, n in sorted(tally.flows.items())},
            "entries_by_author": dict(sorted(tally.authors.items())),
            "people": len(tally.people),
            "people_by_role": dict(sorted(Counter(a for _, a in tally.people).items())),
            "pairs": sum(1 for u in units if u.key.startswith("D:")),
            "people_outside_pairs": sum(1 for u in units if u.key.startswith("P:")),
            "months_observed": (max(months) + 1) if months else 0,
            "period": (
                [
                    date.fromordinal(tally.first_day).isoformat()[:7],
                    date.fromordinal(tally.last_day).isoformat()[:7],
                ]
                if entries
                else None
            ),
            "codes_by_method": dict(sorted(tally.methods.items())),
            "free_texts_coded": run.rule_texts,
        }

    def _framework(
        self, tally: _Tally, quote_ids: Mapping[tuple[str, str], list[str]]
    ) -> dict[str, Any]:
        codebook = self.codebook
        stats = tally.elements
        total = len(self.run.entries) or 1
        cells: dict[str, dict[str, list[dict[str, Any]]]] = {
            level: {role: [] for role in codebook.cmo_roles} for level in codebook.cmo_levels
        }
        keys = {(c.id, c.role) for c in codebook.by_scheme(SCHEME_CMO)} | set(stats)
        for code, role in sorted(keys, key=lambda k: (k[0], k[1] or "")):
            definition = codebook.get(code)
            level = definition.level
            if role is None or level not in cells or role not in cells[level]:
                continue
            s = stats.get((code, role))
            self.label(code)
            cells[level][role].append(
                {
                    "code": code,
                    "default_role": definition.role == role,
                    "entries": s.entries if s else 0,
                    "share": _share(s.entries, total) if s else 0.0,
                    "people": len(s.people) if s else 0,
                    "units": len(s.units) if s else 0,
                    "by_method": dict(sorted(s.methods.items())) if s else {},
                    "by_author": dict(sorted(s.authors.items())) if s else {},
                    "quotes": quote_ids.get((code, role), []),
                }
            )
        for level in cells.values():
            for items in level.values():
                items.sort(key=lambda i: (-i["entries"], i["code"]))
        return {
            "levels": dict(codebook.cmo_levels),
            "roles": dict(codebook.cmo_roles),
            "cells": cells,
        }

    def _configurations(
        self, sink: _ConfigurationSink, quote_ids: Mapping[tuple[str, str], list[str]]
    ) -> dict[str, Any]:
        pattern_json = []
        for p in sorted(
            sink.patterns.values(),
            key=lambda p: (-p.well_supported, -p.units, p.outcome, p.outcome_role),
        ):
            j = p.to_json()
            j["quotes"] = quote_ids.get((p.outcome, p.outcome_role), [])
            j["element_quotes"] = {
                part: {c: quote_ids.get((c, r), [])[:1] for c, r, _ in p.typical(part)}
                for part in ("context", "resource", "response")
            }
            pattern_json.append(j)
        return {
            "window_days": {"before": WINDOW_BEFORE_DAYS, "after": WINDOW_AFTER_DAYS},
            "grades": GRADE_RULES,
            "count": len(sink.items),
            "by_grade": {g: sink.by_grade[g] for g in GRADES},
            "patterns": pattern_json,
            "outcomes_without_mechanism": dict(sorted(sink.unconfigured.items())),
            # the items themselves are written straight from the sink (see write_json)
            "items": ITEMS_MARKER,
        }

    def _phases(self, timelines: Mapping[str, Timeline]) -> dict[str, Any]:
        months = 0
        for t in timelines.values():
            if t.points:
                months = max(months, month_of(t.points[-1].day) + 1)
        months = min(months, MONTHS_SHOWN)
        counts = {p: [0] * months for p in PHASES}
        for t in timelines.values():
            if not t.points:
                continue
            last = month_of(t.points[-1].day)
            for m in range(min(last + 1, months)):
                phase = t.phase_at(int((m + 1) * DAYS_PER_MONTH) - 1)
                if phase is not None:
                    counts[phase][m] += 1
        for phase in PHASES:
            self.label(phase)
        for kram in (KRAM_PRE, *self.codebook.phase_crosswalk.values()):
            self.label(kram)
        current = Counter(t.current for t in timelines.values() if t.current)
        transitions = Counter(
            (tr.from_phase, tr.to_phase, tr.kind)
            for t in timelines.values()
            for tr in t.transitions
        )
        return {
            "distribution": {"months": list(range(months)), "counts": counts},
            "current": {p: current.get(p, 0) for p in PHASES},
            "transitions": [[a, b, kind, n] for (a, b, kind), n in sorted(transitions.items())],
            "pairs_with_regressions": sum(1 for t in timelines.values() if t.regressions),
            "regressions": sum(len(t.regressions) for t in timelines.values()),
            "crosswalk": self.codebook.phase_crosswalk,
            "pairs": {label: t.to_json() for label, t in sorted(timelines.items())},
        }

    def _domains(self, tally: _Tally) -> dict[str, Any]:
        domains = [c.id for c in self.codebook.by_scheme(SCHEME_DOMAIN)]
        for d in domains:
            self.label(d)
        series: dict[str, dict[str, list[list[float]]]] = {}
        for (group, code, m), n in sorted(tally.domain_hits.items()):
            total = tally.month_totals[(group, m)]
            series.setdefault(group, {}).setdefault(code, []).append(
                [m, _share(n, total), n, total]
            )
        return {
            "by_month": series,
            "totals": {a: {d: tally.domain_totals[(a, d)] for d in domains} for a in ROLES},
            "note": "[month, share, entries coded, entries that month] per group and domain; "
            f"the chart leaves out months with fewer than {MIN_MONTH_ENTRIES} entries",
        }

    def _factors(self, tally: _Tally) -> dict[str, Any]:
        pairs = tally.counterparts
        counts = tally.factors
        themes = sorted(
            {t for t, _ in counts},
            key=lambda t: (-(counts[(t, POLARITY_HELPING)] + counts[(t, POLARITY_HINDERING)]), t),
        )
        rows = []
        for theme in themes:
            self.label(theme)
            counterpart = pairs.get(theme)
            if counterpart:
                self.label(counterpart)
            rows.append(
                {
                    "factor": theme,
                    "counterpart": counterpart,
                    "helping": counts[(theme, POLARITY_HELPING)],
                    "hindering": counts[(theme, POLARITY_HINDERING)],
                    "by_author": {
                        a: [
                            tally.factor_authors[(theme, POLARITY_HELPING, a)],
                            tally.factor_authors[(theme, POLARITY_HINDERING, a)],
                        ]
                        for a in ROLES
                    },
                    "by_stage": {
                        s: [
                            tally.factor_stages[(theme, POLARITY_HELPING, s)],
                            tally.factor_stages[(theme, POLARITY_HINDERING, s)],
                        ]
                        for s, _, _ in STAGES
                    },
                }
            )
        return {"rows": rows, "stages": {s: [lo, hi] for s, lo, hi in STAGES}}

    def _climate(self, tally: _Tally) -> dict[str, Any]:
        codes = [c.id for c in self.codebook.by_scheme(SCHEME_CLIMATE)]
        for c in codes:
            self.label(c)
        months = max((m + 1 for _, m in tally.climate), default=0)
        return {
            "months": list(range(months)),
            "counts": {c: [tally.climate[(c, m)] for m in range(months)] for c in codes},
            "totals": {c: sum(tally.climate[(c, m)] for m in range(months)) for c in codes},
        }

    def _topics(self, tally: _Tally) -> dict[str, Any]:
        out = []
        for code, n in sorted(tally.topics.items(), key=lambda kv: (-kv[1], kv[0])):
            self.label(code)
            out.append({"topic": code, "entries": n, "sensitive": code in self.sensitive})
        return {"rows": out}

    def _theories(self, sink: _ConfigurationSink) -> list[dict[str, Any]]:
        out = []
        for rule in THEORY_RULES:
            t = sink.theories[rule.theory]
            self.label(rule.theory)
            out.append(
                {
                    "theory": rule.theory,
                    "rule": rule.why,
                    "configurations": t.configurations,
                    "units": len(t.units),
                    "by_grade": {g: t.grades[g] for g in GRADES},
                    "outcomes": [
                        [o, n]
                        for o, n in sorted(t.outcomes.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
                    ],
                }
            )
        return out

    def _method(self, tally: _Tally) -> dict[str, Any]:
        run = self.run
        coverage = tally.coverage
        roles = sorted({r for r, _ in coverage})
        try:
            version = metadata.version("mentorbot")
        except metadata.PackageNotFoundError:
            version = "unknown"
        return {
            "software": f"mentorbot {version}",
            "pseudonym_study": run.options.study,
            "coders": {
                METHOD_SELF: "participants' own button answers (confidence 1)",
                METHOD_PROMPT: "codes a prompt elicits, evidenced by answering it "
                "(confidence 0.5)",
                METHOD_RULES: "cue phrases of coding_rules.yaml with negation and hedging",
                METHOD_SEMANTIC: run.semantic_note,
                METHOD_BOTH: "a rule code the semantic heads also find (confidence: the "
                "larger of the two)",
            },
            "semantic": _semantic_json(run),
            "coverage": {
                r: {
                    "answers": coverage[(r, "answers")],
                    "coded": coverage[(r, "coded")],
                    "share": _share(coverage[(r, "coded")], coverage[(r, "answers")]),
                }
                for r in roles
            },
            "configuration_window_days": [WINDOW_BEFORE_DAYS, WINDOW_AFTER_DAYS],
        }
