"""For whom: configurations compared across participant groups, and the programme-wide
contrast of each pattern.

The groups come from the optional "about you" answers (conversations/flows/about_you.yaml),
read only for people whose current consent allows ``evaluation`` (the pipeline reads them
with the same consenting set as the entries). A group is shown only when it has at least
:data:`MIN_GROUP` people in the report; a smaller one is an explicit suppression object in
the JSON, never its count. When exactly the suppressed groups and the people who did not say
could be told apart (together fewer than :data:`MIN_GROUP`), the next-smallest group is
suppressed too, so no suppressed count can be worked out by subtraction. No pair's
configuration carries its members' answers: groups appear only programme-wide.

The programme-wide contrast answers the realist's question across the whole programme, not
only in the pairs that reported the outcome: in every pair, on how many occasions did each
pattern's leading context and mechanism come together (in the entries about the occasion, or
the pair's entries up to the window before it) and how often was the outcome then reported,
and how often not. An occasion is one session of the pair: the mentor's log of it and the
mentee's reflection on it are one occasion, not two, so the log is never counted as a time the
mentee's outcome did not follow; it counts once in each group one of its writers is in. The
same counts by group are the comparisons; where one group's share differs from another's by
:data:`FINDING_GAP` or more, both with :data:`MIN_OCCASIONS` occasions or more (and Fisher's
screen, :data:`FINDING_P`), the report says so in words.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conversations.about_you import ABOUT_YOU, NOT_A_GROUP
from conversations.model import Flow
from reports.configurations import WINDOW_AFTER_DAYS, WINDOW_BEFORE_DAYS, EntryRow, sessions
from reports.evaluator.wording import phrase

MIN_GROUP = 5  # people: the house's small-group rule (reports.suppression)
MIN_OCCASIONS = 5  # occasions in each group before a difference is put in words
FINDING_GAP = 0.3  # difference in the share followed by the outcome worth a sentence
# ... and one chance alone would rarely give: Fisher's exact test on the two groups' counts,
# two-sided, at this level. Occasions of one person are not independent, so this is a screen
# against sentences about noise (2 of 6 against 0 of 8 is no finding), not a significance test
FINDING_P = 0.05
CONTRASTS_COMPARED = 3  # the contrasts each pattern lists (its leading ones) are compared
SUPPRESSED = {"suppressed": True, "below": MIN_GROUP}

Element = tuple[str, str]  # (code, role)
# (outcome, outcome role, context element or None, mechanism element)
Combo = tuple[str, str, "Element | None", Element]


@dataclass(frozen=True)
class Dimension:
    id: str
    label: str
    question: str
    values: dict[str, str]  # choice id -> its label, in the question's order


def dimensions(flows: Mapping[str, Flow]) -> list[Dimension]:
    flow = flows.get(ABOUT_YOU)
    if flow is None:
        return []
    return [
        Dimension(s.id, s.label, s.prompt.replace("{partner}", "mentor or mentee"),
                  {c.id: c.label for c in s.choices if c.id not in NOT_A_GROUP})
        for s in flow.steps
    ]


@dataclass
class _Counts:
    with_outcome: int = 0
    without: int = 0
    units: int = 0
    groups: dict[str, list[int]] = field(default_factory=dict)


class ForWhom:
    """Collects each unit's configurable entry rows during the walk, then counts."""

    def __init__(self, flows: Mapping[str, Flow], context: Mapping[int, Mapping[str, str]]
                 ) -> None:
        self.dims = dimensions(flows)
        known = {d.id: d for d in self.dims}
        # person -> their groups as "dimension=value" (answers that name no group left out)
        self.groups_of: dict[int, tuple[str, ...]] = {}
        for person, answers in context.items():
            found = tuple(sorted(
                f"{q}={v}" for q, v in answers.items()
                if q in known and v in known[q].values))
            if found:
                self.groups_of[person] = found
        self.units: list[tuple[str, list[EntryRow]]] = []

    def keep(self, unit_key: str, rows: list[EntryRow]) -> None:
        if rows:
            self.units.append((unit_key, rows))

    # -- counting -----------------------------------------------------------------------
    def _count(self, combos: Sequence[Combo]) -> list[_Counts]:
        """For each combo: occasions whose window held its context and mechanism, with the
        outcome reported on that occasion and without, by group (the roles and answers of
        the people who wrote about it). An occasion is one session of the unit
        (:func:`reports.configurations.sessions`, as each pair's own contrast counts): the
        mentor's log and the mentee's reflection on it are one occasion, which counts once
        in every group one of its writers is in.

        The walk counts per set of writers (one increment per occasion); the groups are
        summed from those once at the end, through a writers-by-group matrix, so a programme
        of 100,000 entries costs a second or two, not one update per group and occasion."""
        counts = [_Counts() for _ in combos]
        # patterns of many outcomes share a leading context and mechanism: each such need is
        # looked for once per occasion, then every outcome it leads is tallied
        needs: dict[tuple[Element | None, Element], list[tuple[int, tuple[str, str]]]] = {}
        for k, (outcome, role, context, mechanism) in enumerate(combos):
            needs.setdefault((context, mechanism), []).append((k, (outcome, role)))
        need_list = list(needs.items())
        by_mechanism: dict[Element, list[int]] = {}
        for n, ((_, mechanism), _) in enumerate(need_list):
            by_mechanism.setdefault(mechanism, []).append(n)
        if not by_mechanism:
            return counts
        Writers = tuple[int, ...]
        hits: list[Counter[Writers]] = [Counter() for _ in combos]
        misses: list[Counter[Writers]] = [Counter() for _ in combos]
        role_of: dict[int, str] = {}
        for _, rows in self.units:
            ordered = sorted(rows, key=lambda r: (r[1], r[0]))
            days = [r[1] for r in ordered]
            elements = [frozenset(r[4]) for r in ordered]
            seen: set[int] = set()
            for first, end in sessions(days):
                lo = bisect.bisect_left(days, days[first] - WINDOW_BEFORE_DAYS)
                hi = bisect.bisect_right(days, days[end - 1] + WINDOW_AFTER_DAYS)
                back = frozenset().union(*elements[lo:hi])
                candidates = [n for m in back.intersection(by_mechanism)
                              for n in by_mechanism[m]]
                if not candidates:
                    continue
                outcomes = frozenset().union(*(r[5] for r in ordered[first:end]))
                for r in ordered[first:end]:
                    role_of[r[3]] = r[2]
                writers = tuple(sorted({r[3] for r in ordered[first:end]}))
                for n in candidates:
                    (context, _), members = need_list[n]
                    if context is not None and context not in back:
                        continue
                    seen.add(n)
                    for k, outcome in members:
                        if outcome in outcomes:
                            hits[k][writers] += 1
                        else:
                            misses[k][writers] += 1
            for n in seen:
                for k, _ in need_list[n][1]:
                    counts[k].units += 1
        signatures = sorted({w for found in (*hits, *misses) for w in found})
        if not signatures:
            return counts
        where = {w: i for i, w in enumerate(signatures)}
        group_sets = [{g for p in w for g in (role_of[p], *self.groups_of.get(p, ()))}
                      for w in signatures]
        names = sorted(set().union(*group_sets))
        column = {g: j for j, g in enumerate(names)}
        member = np.zeros((len(signatures), len(names)), dtype=np.int64)
        for i, found_groups in enumerate(group_sets):
            for g in found_groups:
                member[i, column[g]] = 1
        for k, c in enumerate(counts):
            c.with_outcome = sum(hits[k].values())
            c.without = sum(misses[k].values())
            if not c.with_outcome + c.without:
                continue
            by: list[Any] = []
            for found in (hits[k], misses[k]):
                v = np.zeros(len(signatures), dtype=np.int64)
                if found:
                    v[[where[w] for w in found]] = list(found.values())
                by.append(v @ member)
            c.groups = {g: [int(by[0][j]), int(by[1][j])] for g, j in column.items()
                        if by[0][j] or by[1][j]}
        return counts

    # -- assembling ---------------------------------------------------------------------
    def assemble(self, patterns: list[dict[str, Any]], people: Iterable[int],
                 labels: Mapping[str, str]) -> dict[str, Any]:
        """Adds the programme-wide contrast to each pattern's contrasts (in place) and
        returns the for-whom section."""
        combos: list[Combo] = []
        where: list[tuple[int, int]] = []
        for p_index, p in enumerate(patterns):
            for c_index, c in enumerate(p.get("contrasts", [])):
                roles = c.get("roles") or {}
                context = ((c["context"], roles["context"])
                           if c["context"] is not None and roles.get("context") else None)
                if c["context"] is not None and context is None:
                    continue
                combos.append((p["outcome"], p["outcome_role"], context,
                               (c["mechanism"], roles.get("mechanism", ""))))
                where.append((p_index, c_index))
        counts = self._count(combos)
        for (p_index, c_index), n in zip(where, counts, strict=True):
            patterns[p_index]["contrasts"][c_index]["programme"] = {
                "with_outcome": n.with_outcome,
                "without_outcome": n.without,
                "units": n.units,
                "by_group": {g: list(v) for g, v in sorted(n.groups.items())
                             if "=" not in g},  # roles only: answers are shown by group below
            }
        shown, dims_json = self._groups(set(people))
        comparisons, findings = [], []
        for (p_index, c_index), n in zip(where, counts, strict=True):
            if c_index >= CONTRASTS_COMPARED:
                continue
            p = patterns[p_index]
            contrast = p["contrasts"][c_index]
            for dim in self.dims:
                visible = [v for v in dim.values if f"{dim.id}={v}" in shown]
                if len(visible) < 2:
                    continue
                groups = []
                for value in dim.values:
                    g = f"{dim.id}={value}"
                    if g not in shown:
                        continue
                    w, wo = n.groups.get(g, [0, 0])
                    groups.append({"value": value, "with_outcome": w, "without_outcome": wo})
                finding = _finding(dim, groups, p["outcome"], contrast, labels)
                comparisons.append({
                    "outcome": p["outcome"],
                    "outcome_role": p["outcome_role"],
                    "context": contrast["context"],
                    "mechanism": contrast["mechanism"],
                    "dimension": dim.id,
                    "groups": groups,
                    "finding": finding,
                })
                if finding:
                    findings.append(finding)
        return {
            "min_group": MIN_GROUP,
            "min_occasions": MIN_OCCASIONS,
            "finding_gap": FINDING_GAP,
            "finding_p": FINDING_P,
            "dimensions": dims_json,
            "comparisons": comparisons,
            "findings": findings,
        }

    def _groups(self, people: set[int]) -> tuple[set[str], list[dict[str, Any]]]:
        """The groups that may be shown, and each dimension's groups as the JSON gives them."""
        shown: set[str] = set()
        out = []
        for dim in self.dims:
            sizes = {v: 0 for v in dim.values}
            answered = 0
            for person in people:
                found = [g.split("=", 1)[1] for g in self.groups_of.get(person, ())
                         if g.startswith(dim.id + "=")]
                for value in found:
                    sizes[value] += 1
                    answered += 1
            hidden = {v for v, n in sizes.items() if 0 < n < MIN_GROUP}
            not_said = len(people) - answered
            # the hidden groups and the people who did not say are published together only
            # as "the rest": if that rest is small, one more group is hidden with them
            rest = sum(sizes[v] for v in hidden) + not_said
            if hidden and rest < MIN_GROUP:
                visible = sorted((n, v) for v, n in sizes.items() if n >= MIN_GROUP)
                if visible:
                    hidden.add(visible[0][1])
            groups = []
            for value, label in dim.values.items():
                n = sizes[value]
                ok = value not in hidden
                if ok and n:
                    shown.add(f"{dim.id}={value}")
                groups.append({"value": value, "label": label,
                               "people": n if ok else dict(SUPPRESSED), "shown": ok and n > 0})
            out.append({"id": dim.id, "label": dim.label, "question": dim.question,
                        "groups": groups,
                        "compared": sum(1 for g in groups if g["shown"]) >= 2})
        return shown, out


def fisher_p(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p of Fisher's exact test on the table [[a, b], [c, d]] (the sum of the
    probabilities of every table with the same margins no more likely than this one), in
    log space so programme-sized counts cost no big integers."""
    from math import exp, lgamma

    row, col, n = a + b, a + c, a + b + c + d

    def log_p(x: int) -> float:  # hypergeometric: x successes in the first row
        return (lgamma(row + 1) - lgamma(x + 1) - lgamma(row - x + 1)
                + lgamma(n - row + 1) - lgamma(col - x + 1) - lgamma(n - row - col + x + 1)
                - lgamma(n + 1) + lgamma(col + 1) + lgamma(n - col + 1))

    observed = log_p(a)
    total = 0.0
    for x in range(max(0, row + col - n), min(row, col) + 1):
        lp = log_p(x)
        if lp <= observed + 1e-9:
            total += exp(lp)
    return min(1.0, total)


def differs(a: Sequence[int], b: Sequence[int]) -> bool:
    """Whether two groups' [followed by the outcome, not followed] counts differ enough to be
    put in words: each has :data:`MIN_OCCASIONS` occasions or more, their shares differ by
    :data:`FINDING_GAP` or more and Fisher's exact test gives p of :data:`FINDING_P` or less.
    The one rule for every group difference the report states (participant groups here, and
    mentees against mentors in the configuration cards)."""
    if sum(a) < MIN_OCCASIONS or sum(b) < MIN_OCCASIONS:
        return False
    gap = abs(a[0] / sum(a) - b[0] / sum(b))
    return gap >= FINDING_GAP and fisher_p(a[0], a[1], b[0], b[1]) <= FINDING_P


def _finding(dim: Dimension, groups: Sequence[Mapping[str, Any]], outcome: str,
             contrast: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """A sentence when the combination holds for one group clearly more than another."""
    rated = [(g["with_outcome"] / (g["with_outcome"] + g["without_outcome"]), g)
             for g in groups if g["with_outcome"] + g["without_outcome"] >= MIN_OCCASIONS]
    if len(rated) < 2:
        return None
    rated.sort(key=lambda r: (-r[0], r[1]["value"]))
    (high, a), (low, b) = rated[0], rated[-1]
    if not differs((a["with_outcome"], a["without_outcome"]),
                   (b["with_outcome"], b["without_outcome"])):
        return None
    hindrance = (contrast.get("roles") or {}).get("context") == "CONTEXT_INHIBITING"
    context = contrast["context"] and (phrase(labels, contrast["context"])
                                       + (" (as a hindrance)" if hindrance else ""))
    parts = " and ".join(x for x in (context, phrase(labels, contrast["mechanism"])) if x)

    def who(g: Mapping[str, Any]) -> str:
        return f"people who answered “{dim.values[g['value']]}” ({dim.label.lower()})"

    def times(g: Mapping[str, Any]) -> str:
        return f"{g['with_outcome']} of {g['with_outcome'] + g['without_outcome']} times"

    second = f"those who answered “{dim.values[b['value']]}”"
    verdict = ("the configuration holds for the first group and not for the second"
               if high >= 0.5 and low <= 0.2 else
               "the configuration holds for the first group more than for the second")
    return (f"Where {parts} came together, {phrase(labels, outcome)} followed {times(a)} for "
            f"{who(a)} and {times(b)} for {second}: {verdict}.")
