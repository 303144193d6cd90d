"""CMO configurations: linked chains of context, mechanism and outcome, not tag counts.

The unit of analysis follows the thesis (notes-realist-thesis §8.3): one configuration per pair
per outcome (a participant outside any pair is their own unit). For every entry in which the
outcome was coded, the contexts, resources and responses coded in the same entry, or in the
pair's other entries within a window *before* it (the mentor's log of the same session, the
mentee's reflection on the session before), are linked to it. Never after: an element first
evidenced later than the outcome cannot have helped bring it about (the order a realist
explanation needs). Each configuration also says how often its leading context and mechanism
came together in the pair *without* the outcome following (the contrast):

* ``PRIMES`` resource -> response, ``POWERS`` context -> response, ``EFFECTS`` response ->
  outcome (the thesis's link types, §1.2), each with how many outcome occurrences support it
  and how many of those had both ends in one entry (the rest are inferred across entries);
* each configuration is graded by the number of independent entries behind it, and whether
  both members of the pair contribute;
* missing parts are listed, never guessed ("did not ... 'tick every box'");
* programme theories are tagged by the rules in ``THEORY_RULES`` (§1.9.4, on canonical ids).

An outcome with no resource and no response linked to it is not configurable (§1.8.4); such
outcomes are counted, not configured.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reports.codebook import PART_OF_ROLE
from reports.phases import PairHistory, Timeline, infer, month_of

PARTS = ("context", "resource", "response")
CHAIN_WIDTH = 3  # elements shown per part: the strongest, not a catalogue
WINDOW_BEFORE_DAYS = 28  # about a month: the session before and what was logged about it
WINDOW_AFTER_DAYS = 0  # the same day (the other member's entry about that session), never later
# An occasion of the contrast is one session of the pair: the mentor's log of it and the
# mentee's reflection on it (written the same day or a day or two later) are one occasion,
# not two, so neither account counts as a time the other's outcome did not follow
SESSION_DAYS = 2
PROXIMAL = frozenset({"O_INSIGHT", "O_AGENCY", "O_AGENTIC_COLLABORATION", "O_MAINTAINING_TRUST"})

GRADES = ("strong", "moderate", "weak", "single")
GRADE_RULES = {
    "strong": "at least 5 independent entries, the outcome in 2 or more, from both members",
    "moderate": "at least 3 independent entries, the outcome in 2 or more",
    "weak": "2 independent entries",
    "single": "everything from one entry",
}


@dataclass(frozen=True)
class TheoryRule:
    """A configuration supports the theory when each listed part contains one of its ids."""

    theory: str
    outcome: frozenset[str] = frozenset()
    context: frozenset[str] = frozenset()
    context_2: frozenset[str] = frozenset()  # a second, separate context requirement
    resource: frozenset[str] = frozenset()
    response: frozenset[str] = frozenset()
    mechanism: frozenset[str] = frozenset()  # a resource *or* a response from this set
    why: str = ""

    def matches(self, outcome: str, parts: Mapping[str, set[str]]) -> bool:
        checks = (
            (self.outcome, {outcome}),
            (self.context, parts["context"]),
            (self.context_2, parts["context"]),
            (self.resource, parts["resource"]),
            (self.response, parts["response"]),
            (self.mechanism, parts["resource"] | parts["response"]),
        )
        return all(not need or need & have for need, have in checks)


_NEW_KNOWLEDGE = frozenset({"M_NEW_KNOWLEDGE_LOCAL", "M_NEW_KNOWLEDGE_POLICY_EVIDENCE"})
_QUALITY_THINKING = frozenset(
    {"R_REFLECTION", "R_REFLEXIVITY", "R_MEANING_MAKING", "R_DECISION_ACTION"}
)
_LEARNING_OUTCOMES = frozenset(
    {
        "O_INSIGHT",
        "O_LEARNING_CHANGE",
        "O_DEVELOPMENT_CHANGE",
        "DOM_COGNITIVE",
        "DOM_SKILL",
        "DOM_AFFECTIVE",
        "DOM_SOCIAL_NETWORKS",
    }
)
# Tagging rules grounded in the wording of the final programme theories (thesis Tables
# 11.3-11.6). They are deliberately conservative: a tag says the configuration has the
# ingredients the theory names, not that the theory is proven.
THEORY_RULES: tuple[TheoryRule, ...] = (
    TheoryRule(
        "PT_DIVERSITY_OPPORTUNITY",
        context=frozenset({"C_DYAD_DIVERSITY", "C_DEV_NETWORKS"}),
        context_2=frozenset({"C_DYAD_SAFE_SPACE", "C_DYAD_TRUST"}),
        response=_QUALITY_THINKING,
        why="diversity or networks, and a safe space with support and challenge, where people "
        "engage in quality thinking and action",
    ),
    TheoryRule(
        "PT_LEARNING_DIFFERENTLY",
        resource=_NEW_KNOWLEDGE,
        outcome=_LEARNING_OUTCOMES,
        why="new knowledge (local, policy, evidence) leading to insight, learning or development",
    ),
    TheoryRule(
        "PT_WORKING_DIFFERENTLY",
        outcome=frozenset({"O_OPERATIONAL_CHANGE", "O_AGENTIC_COLLABORATION"}),
        mechanism=_NEW_KNOWLEDGE | {"R_DECISION_ACTION"},
        why="engaging actively with new knowledge, or deciding and acting, to change practice "
        "and services",
    ),
    TheoryRule(
        "PT_MAKING_A_DIFFERENCE",
        outcome=frozenset({"O_OPERATIONAL_CHANGE", "O_STRATEGIC_CHANGE"}),
        context=frozenset({"C_PROSOCIAL", "C_MOTIVATION", "C_COMMITMENT"}),
        why="prosocial qualities and commitment behind change for and with those who use services",
    ),
)
# The expert-derived core causal pattern (thesis §1.8.2, Table 9.3).
CORE_PATTERN = TheoryRule(
    "CORE_PATTERN",
    context=frozenset({"C_DYAD_SAFE_SPACE"}),
    resource=frozenset({"M_DM_TECHNIQUES", "M_ROLE_MODEL"}),
    response=frozenset({"R_MEANING_MAKING", "R_DECISION_ACTION"}),
    outcome=frozenset({"O_LEARNING_CHANGE", "O_DEVELOPMENT_CHANGE"}),
)


@dataclass(frozen=True)
class EntryCodes:
    """The configurable codes of one entry: (code, role) pairs of contexts, mechanisms and
    outcomes, already consent-filtered and review-applied."""

    key: str  # the entry's study pseudonym: identity here, evidence in the output
    day: int  # days since the unit's start
    author: str  # "mentee" / "mentor"
    person: int
    elements: frozenset[tuple[str, str]]  # contexts, resources, responses
    outcomes: frozenset[tuple[str, str]]  # (outcome code, role)


@dataclass(frozen=True)
class Link:
    kind: str  # PRIMES, POWERS, EFFECTS
    source: str
    target: str
    support: int  # outcome occurrences with both ends linked
    same_entry: int  # ... of which both ends sat in one entry


@dataclass(frozen=True)
class Summary:
    """What the cross-pair aggregates need of one configuration (small enough to send back
    from a worker process)."""

    outcome: str
    outcome_role: str
    grade: str
    for_whom: tuple[str, ...]
    chain: tuple[tuple[str, str, str], ...]  # (part, code, role)
    gaps: tuple[str, ...]
    theories: tuple[str, ...]
    core_pattern: bool
    entries: int
    contrast: tuple[str | None, str, int, int] | None = None
    contrast_by: tuple[tuple[str, int, int], ...] = ()
    contrast_roles: tuple[str | None, str] | None = None  # (context role, mechanism role)


@dataclass
class Configuration:
    outcome: str
    outcome_role: str
    chain: dict[str, list[tuple[str, str, int]]]  # part -> [(code, role, supporting entries)]
    links: list[Link]
    occurrences: list[str]  # entries (pseudonyms) where the outcome was coded
    entries: int  # independent entries behind the configuration
    people: int
    for_whom: tuple[str, ...]  # author roles of the outcome occurrences
    grade: str
    complexity: str
    loop: str
    gaps: tuple[str, ...]
    theories: tuple[str, ...]
    core_pattern: bool
    first_day: int
    last_day: int
    latest_evidence_day: int = 0  # the latest entry any chain element was linked from
    # (leading context or None, leading mechanism, windows with both and the outcome,
    # windows with both and no outcome)
    contrast: tuple[str | None, str, int, int] | None = None
    # the same two counts by the author of the entry: ((group, with, without), ...)
    contrast_by: tuple[tuple[str, int, int], ...] = ()
    contrast_roles: tuple[str | None, str] | None = None  # (context role, mechanism role)
    all_parts: dict[str, set[str]] = field(repr=False, default_factory=dict)

    def summary(self) -> Summary:
        return Summary(
            outcome=self.outcome,
            outcome_role=self.outcome_role,
            grade=self.grade,
            for_whom=self.for_whom,
            chain=tuple(
                (part, code, role) for part in PARTS for code, role, _ in self.chain[part]
            ),
            gaps=self.gaps,
            theories=self.theories,
            core_pattern=self.core_pattern,
            entries=self.entries,
            contrast=self.contrast,
            contrast_by=self.contrast_by,
            contrast_roles=self.contrast_roles,
        )

    def to_json(self, unit: str, month: Callable[[int], int]) -> dict[str, Any]:
        return {
            "unit": unit,
            "outcome": self.outcome,
            "outcome_role": self.outcome_role,
            "chain": {
                part: [[c, r, n] for c, r, n in items] for part, items in self.chain.items()
            },
            "links": [[k.kind, k.source, k.target, k.support, k.same_entry] for k in self.links],
            "occurrences": len(self.occurrences),
            "independent_entries": self.entries,
            "people": self.people,
            "for_whom": list(self.for_whom),
            "grade": self.grade,
            "complexity": self.complexity,
            "loop": self.loop,
            "gaps": list(self.gaps),
            "theories": list(self.theories),
            "core_pattern": self.core_pattern,
            "from_month": month(self.first_day),
            "to_month": month(self.last_day),
            "first_outcome_day": self.first_day,
            "last_outcome_day": self.last_day,
            "latest_evidence_day": self.latest_evidence_day,
            "contrast": None if self.contrast is None else {
                "context": self.contrast[0],
                "mechanism": self.contrast[1],
                "with_outcome": self.contrast[2],
                "without_outcome": self.contrast[3],
                "by_group": {g: [w, wo] for g, w, wo in self.contrast_by},
            },
            "evidence": self.occurrences[:5],
        }


def grade(entries: int, occurrences: int, people: int) -> str:
    if entries >= 5 and occurrences >= 2 and people >= 2:
        return "strong"
    if entries >= 3 and occurrences >= 2:
        return "moderate"
    if entries >= 2:
        return "weak"
    return "single"


def _complexity(
    chain: Mapping[str, Sequence[tuple[str, str, int]]], levels: int, entries: int, distal: bool
) -> str:
    """Simple, complicated or complex (thesis Table 3.1): single and linear; multiple and
    linear; multiple, diverse and spread over time and levels."""
    width = sum(len(v) for v in chain.values())
    if width <= 2 and entries <= 1:
        return "simple"
    if levels >= 2 and entries >= 3 and distal and width >= 4:
        return "complex"
    return "complicated"


def _by_support(item: tuple[tuple[str, str], int]) -> tuple[int, tuple[str, str]]:
    return -item[1], item[0]


class UnitEntries:
    """One unit's entries in day order, with the window lookups configuration needs."""

    def __init__(self, entries: Iterable[EntryCodes]) -> None:
        self.entries = sorted(entries, key=lambda e: (e.day, e.key))
        self.days = [e.day for e in self.entries]

    def window(self, i: int, before: int, after: int) -> range:
        day = self.entries[i].day
        lo = bisect.bisect_left(self.days, day - before)
        hi = bisect.bisect_right(self.days, day + after)
        return range(lo, hi)


def configure(
    entries: Iterable[EntryCodes],
    levels: Mapping[str, str | None],
    *,
    before: int = WINDOW_BEFORE_DAYS,
    after: int = WINDOW_AFTER_DAYS,
) -> tuple[list[Configuration], Counter[str]]:
    """Configurations of one unit, by outcome; and the outcomes that had no mechanism."""
    unit = UnitEntries(entries)
    by_outcome: dict[tuple[str, str], list[int]] = {}
    for i, e in enumerate(unit.entries):
        for outcome in e.outcomes:
            by_outcome.setdefault(outcome, []).append(i)
    configurations: list[Configuration] = []
    unconfigured: Counter[str] = Counter()
    back: list[frozenset[tuple[str, str]]] | None = None  # each entry's window's elements
    told: list[Occasion] = []  # the unit's occasions (sessions), for the contrast
    windows_of: dict[int, range] = {}
    reach: dict[int, frozenset[tuple[str, str]]] = {}  # elements linked to entry i's outcomes
    for where in by_outcome.values():
        for i in where:
            if i not in windows_of:
                w = windows_of[i] = unit.window(i, before, after)
                reach[i] = frozenset().union(*(unit.entries[j].elements for j in w))
    for (outcome, role), where in sorted(by_outcome.items()):
        linked: set[int] = set()
        for i in where:
            linked.update(windows_of[i])
        support: Counter[tuple[str, str]] = Counter()
        for j in linked:
            support.update(unit.entries[j].elements)
        parts: dict[str, list[tuple[str, str, int]]] = {p: [] for p in PARTS}
        all_parts: dict[str, set[str]] = {p: set() for p in PARTS}
        for (code, code_role), n in sorted(support.items(), key=_by_support):
            part = PART_OF_ROLE.get(code_role)
            if part is None:
                continue
            all_parts[part].add(code)
            if len(parts[part]) < CHAIN_WIDTH:
                parts[part].append((code, code_role, n))
        if not parts["resource"] and not parts["response"]:
            unconfigured[outcome] += len(where)
            continue
        occurrences = [unit.entries[i] for i in where]
        contributing = {unit.entries[i].key for i in where}
        chain_codes = {(c, r) for items in parts.values() for c, r, _ in items}
        for j in linked:
            if unit.entries[j].elements & chain_codes:
                contributing.add(unit.entries[j].key)
        people = {unit.entries[j].person for j in linked if unit.entries[j].key in contributing}
        latest = max(unit.entries[j].day for j in linked if unit.entries[j].elements & chain_codes)
        if back is None:
            back = [frozenset().union(*(unit.entries[j].elements
                                        for j in unit.window(i, before, after)))
                    for i in range(len(unit.entries))]
            told = [Occasion(frozenset().union(*back[lo:hi]),
                             frozenset().union(*(e.outcomes for e in unit.entries[lo:hi])),
                             tuple(sorted({e.author for e in unit.entries[lo:hi]})))
                    for lo, hi in sessions(unit.days)]
        contrast, contrast_by = _contrast(parts, (outcome, role), told)
        mechanism = (parts["resource"] or parts["response"])[0]
        contrast_roles = ((parts["context"][0][1] if parts["context"] else None), mechanism[1])
        links = _links(parts, outcome, where, reach, unit)
        distal = role == "OUTCOME_DISTAL"
        element_levels = {levels.get(c) for items in parts.values() for c, _, _ in items}
        element_levels.add(levels.get(outcome))
        element_levels.discard(None)
        gaps = tuple(p for p in PARTS if not parts[p])
        n_entries = len(contributing)
        configurations.append(
            Configuration(
                outcome=outcome,
                outcome_role=role,
                chain=parts,
                links=links,
                occurrences=[e.key for e in occurrences],
                entries=n_entries,
                people=len(people),
                for_whom=tuple(sorted({e.author for e in occurrences})),
                grade=grade(n_entries, len(occurrences), len(people)),
                complexity=_complexity(parts, len(element_levels), n_entries, distal),
                loop="APPLIED" if distal and outcome not in PROXIMAL else "FOUNDATIONAL",
                gaps=gaps,
                theories=tuple(r.theory for r in THEORY_RULES if r.matches(outcome, all_parts)),
                core_pattern=CORE_PATTERN.matches(outcome, all_parts),
                first_day=occurrences[0].day,
                last_day=occurrences[-1].day,
                latest_evidence_day=latest,
                contrast=contrast,
                contrast_by=contrast_by,
                contrast_roles=contrast_roles,
                all_parts=all_parts,
            )
        )
    return configurations, unconfigured


@dataclass(frozen=True)
class Occasion:
    """One session of a unit, for the contrast: what its window held (every entry about it
    and the unit's entries up to the window before it), the outcomes any entry about it
    reports, and the roles of the people who wrote about it."""

    back: frozenset[tuple[str, str]]
    outcomes: frozenset[tuple[str, str]]
    authors: tuple[str, ...]


def sessions(days: Sequence[int], span: int = SESSION_DAYS) -> list[tuple[int, int]]:
    """A unit's entries (their days, in order) as occasions: index ranges ``[lo, hi)`` of
    entries within ``span`` days of the occasion's first entry (the mentor's log of a session
    and the mentee's reflection on it a day later are one occasion, a check-in weeks later
    another)."""
    found: list[tuple[int, int]] = []
    lo = 0
    for i in range(1, len(days) + 1):
        if i == len(days) or days[i] > days[lo] + span:
            found.append((lo, i))
            lo = i
    return found


def _contrast(
    parts: Mapping[str, list[tuple[str, str, int]]],
    outcome: tuple[str, str],
    told: Sequence[Occasion],
) -> tuple[tuple[str | None, str, int, int] | None, tuple[tuple[str, int, int], ...]]:
    """The leading context and mechanism of a chain, and on how many of the unit's occasions
    (sessions: :func:`sessions`) whose window held both the outcome was reported, and on how
    many it was not; and the same by the roles of the people who wrote about the occasion
    (the groups the report compares; an occasion both members wrote about counts for each)."""
    mechanism = (parts["resource"] or parts["response"])[:1]
    if not mechanism:
        return None, ()
    need = {(mechanism[0][0], mechanism[0][1])}
    context = parts["context"][0] if parts["context"] else None
    if context is not None:
        need.add((context[0], context[1]))
    with_outcome = without = 0
    groups: dict[str, list[int]] = {}
    for occasion in told:
        if not need <= occasion.back:
            continue
        hit = outcome in occasion.outcomes
        if hit:
            with_outcome += 1
        else:
            without += 1
        for author in occasion.authors:
            groups.setdefault(author, [0, 0])[0 if hit else 1] += 1
    return ((context[0] if context else None, mechanism[0][0], with_outcome, without),
            tuple((g, w, wo) for g, (w, wo) in sorted(groups.items())))


def _links(
    parts: Mapping[str, list[tuple[str, str, int]]],
    outcome: str,
    where: Sequence[int],
    reach: Mapping[int, frozenset[tuple[str, str]]],
    unit: UnitEntries,
) -> list[Link]:
    chain = [(c, r) for p in PARTS for c, r, _ in parts[p]]
    bit = {element: 1 << k for k, element in enumerate(chain)}
    members = frozenset(chain)
    # Each outcome occurrence as two bit masks over the chain: what its window links to it,
    # and what its own entry holds. Occurrences mostly share masks, so counting per distinct
    # mask keeps this cheap on large programmes.
    masks: Counter[tuple[int, int]] = Counter()
    for i in where:
        linked = here = 0
        for element in reach[i] & members:
            linked |= bit[element]
        for element in unit.entries[i].elements & members:
            here |= bit[element]
        masks[(linked, here)] += 1

    distinct = list(masks.items())

    def count(need: int) -> tuple[int, int]:
        support = same = 0
        for (linked, here), n in distinct:
            if linked & need == need:
                support += n
                if here & need == need:
                    same += n
        return support, same

    out: list[Link] = []
    responses = [(c, r) for c, r, _ in parts["response"]]
    if not responses:
        return out
    for kind, part in (("POWERS", "context"), ("PRIMES", "resource")):
        for response in responses:
            target = bit[response]
            for c, r, _ in parts[part]:
                support, same = count(bit[(c, r)] | target)
                if support:
                    out.append(Link(kind, c, response[0], support, same))
    for response in responses:
        support, same = count(bit[response])
        if support:
            out.append(Link("EFFECTS", response[0], outcome, support, same))
    return out


# a contrast's identity across units: (context or None, its role or None, mechanism, its role)
ContrastKey = tuple["str | None", "str | None", str, str]


@dataclass
class Pattern:
    """Configurations of one outcome across units: what tends to go with it, for whom."""

    outcome: str
    outcome_role: str
    units: int = 0
    grades: Counter[str] = field(default_factory=Counter)
    for_whom: Counter[str] = field(default_factory=Counter)
    parts: dict[str, Counter[tuple[str, str]]] = field(
        default_factory=lambda: {p: Counter() for p in PARTS}
    )
    gaps: Counter[str] = field(default_factory=Counter)
    theories: Counter[str] = field(default_factory=Counter)
    core_pattern: int = 0
    entries: int = 0
    # (context, its role, mechanism, its role) -> [with outcome, without, units]. The roles
    # are part of the key: a context that enabled in one pair and hindered in another is two
    # contrasts, not one (the programme-wide count in reports/evaluator/for_whom.py looks
    # for each element with its role, so a sum over both roles would exceed it)
    contrasts: dict[ContrastKey, list[int]] = field(default_factory=dict)
    contrast_groups: dict[ContrastKey, dict[str, list[int]]] = field(default_factory=dict)

    def add(self, c: Summary) -> None:
        self.units += 1
        self.grades[c.grade] += 1
        self.for_whom["+".join(c.for_whom)] += 1
        for part, code, role in c.chain:
            self.parts[part][(code, role)] += 1
        for gap in c.gaps:
            self.gaps[gap] += 1
        for theory in c.theories:
            self.theories[theory] += 1
        self.core_pattern += c.core_pattern
        self.entries += c.entries
        if c.contrast is not None:
            context, mechanism, with_outcome, without = c.contrast
            context_role, mechanism_role = c.contrast_roles or (None, "")
            key = (context, context_role if context else None, mechanism, mechanism_role)
            sums = self.contrasts.setdefault(key, [0, 0, 0])
            sums[0] += with_outcome
            sums[1] += without
            sums[2] += 1
            groups = self.contrast_groups.setdefault(key, {})
            for group, w, wo in c.contrast_by:
                counts = groups.setdefault(group, [0, 0])
                counts[0] += w
                counts[1] += wo

    def typical(self, part: str, n: int = CHAIN_WIDTH) -> list[tuple[str, str, int]]:
        """The elements most units' chains include, with how many units."""
        ranked = sorted(self.parts[part].items(), key=lambda kv: (-kv[1], kv[0]))
        return [(code, role, units) for (code, role), units in ranked[:n]]

    @property
    def well_supported(self) -> int:
        return self.grades["strong"] + self.grades["moderate"]

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "outcome_role": self.outcome_role,
            "units": self.units,
            "grades": {g: self.grades[g] for g in GRADES},
            "for_whom": dict(sorted(self.for_whom.items())),
            "typical": {p: [[c, r, n] for c, r, n in self.typical(p)] for p in PARTS},
            "gaps": dict(sorted(self.gaps.items())),
            "theories": dict(sorted(self.theories.items())),
            "core_pattern": self.core_pattern,
            "independent_entries": self.entries,
            "contrasts": [
                {"context": key[0], "mechanism": key[2], "with_outcome": sums[0],
                 "without_outcome": sums[1], "units": sums[2],
                 "by_group": dict(sorted(self.contrast_groups[key].items())),
                 "roles": {"context": key[1], "mechanism": key[3]}}
                for key, sums in sorted(
                    self.contrasts.items(),
                    key=lambda kv: (-kv[1][2], -kv[1][0], kv[0][0] or "", kv[0][1] or "",
                                    kv[0][2], kv[0][3]))[:3]
            ],
        }


def patterns(configurations: Iterable[Configuration | Summary]) -> list[Pattern]:
    found: dict[tuple[str, str], Pattern] = {}
    for c in configurations:
        summary = c.summary() if isinstance(c, Configuration) else c
        key = (summary.outcome, summary.outcome_role)
        pattern = found.get(key)
        if pattern is None:
            pattern = found[key] = Pattern(summary.outcome, summary.outcome_role)
        pattern.add(summary)
    return sorted(
        found.values(), key=lambda p: (-p.well_supported, -p.units, p.outcome, p.outcome_role)
    )


# ---------------------------------------------------------------------------------------
# one unit, start to finish: what a worker process runs
# ---------------------------------------------------------------------------------------

# (entry pseudonym, day, author, person, elements, outcomes), as plain tuples to ship cheaply
EntryRow = tuple[str, int, str, int, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]
# (unit pseudonym, unit key, entry rows, phase history or None for a person outside a pair)
UnitPayload = tuple[str, str, list[EntryRow], "PairHistory | None"]
# (unit pseudonym, unit key, timeline, [(configuration as JSON, summary)], outcomes unlinked)
UnitResult = tuple[str, str, "Timeline | None", list[tuple[str, Summary]], Counter[str]]


def analyse_unit(
    payload: UnitPayload, levels: Mapping[str, str | None], crosswalk: Mapping[str, str]
) -> UnitResult:
    """Phases and configurations of one pair (or person): independent of every other unit,
    so units can be spread over processes and merged back in order."""
    label, key, rows, history = payload
    timeline = infer(history, crosswalk) if history is not None else None
    entries = [EntryCodes(r[0], r[1], r[2], r[3], frozenset(r[4]), frozenset(r[5])) for r in rows]
    found, missing = configure(entries, levels)
    items = [
        (
            json.dumps(
                c.to_json(label, month_of),
                sort_keys=True,
                ensure_ascii=False,
                separators=(",", ":"),
            ),
            c.summary(),
        )
        for c in found
    ]
    return label, key, timeline, items, missing
