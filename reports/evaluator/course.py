"""Change over time and negative cases: what a pair's course says beyond its configurations.

* **OSKAR scaling**: the mentee's own 0-10 rating of progress towards their outcome, per pair
  first and latest (with the n of ratings), and for the programme by month of the
  relationship, on the same month axis as every other chart.
* **Goal attainment**: outcomes a person stated as an aim (coded *intended*: a goal, a hope)
  and whether the same person later reports the same outcome as realised, with the entry.
* **Negative cases**: pairs that stalled (no session logged or reflected on for
  :data:`STALL_DAYS` or more: check-ins are not contact), regressed
  (a phase going back, the scaling falling, the latest climate retreat or stasis), ended early
  (closed before :data:`PLANNED_MONTHS`) or asked to be re-matched, and aims never reported
  realised: the disconfirming evidence a realist evaluation must look at, not hide.

Everything here reads the same units, days and codes as the configurations; nothing is quoted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from reports.phases import DAYS_PER_MONTH, month_of

STALL_DAYS = 56  # eight weeks without any entry from the pair: past a monthly rhythm's
# widest normal gap (a session early one month, late the next), the pair has stalled
PLANNED_MONTHS = 6  # a pair closed before this ended early (the programmes' usual length)
DOWN_CLIMATES = frozenset({"SC_RETREAT", "SC_STASIS"})


@dataclass(frozen=True, slots=True)
class CourseEntry:
    """What the course needs of one entry of a unit (days since the unit's start)."""

    label: str
    day: int
    author: str
    person: int
    scale: int | None  # the OSKAR scaling answer
    climate: str | None  # the mentor's support and challenge answer
    intended: frozenset[str]  # outcome codes stated as an aim
    realised: frozenset[str]  # outcome codes reported as realised
    contact: bool = True  # about a session (a log, a reflection), not a check-in wave


@dataclass
class UnitCourse:
    label: str
    is_pair: bool
    entries: list[CourseEntry] = field(default_factory=list)
    closed_day: int | None = None
    rematched: bool = False
    regressions: int = 0  # phase regressions the timeline found
    last_day: int = 0  # the report's last day, in this unit's days


def _gaps(days: Sequence[int], last_day: int, closed_day: int | None) -> list[tuple[int, int]]:
    """Spells without contact of STALL_DAYS or more: (from day, length)."""
    out = []
    points = sorted(set(days))
    end = closed_day if closed_day is not None else last_day
    for a, b in zip(points, [*points[1:], end], strict=True):
        if b - a >= STALL_DAYS:
            out.append((a, b - a))
    return out


def _scaling(units: Sequence[UnitCourse], months: int) -> dict[str, Any]:
    pairs: dict[str, Any] = {}
    by_month: dict[int, list[int]] = defaultdict(list)
    changes = []
    for unit in units:
        ratings = [(e.day, e.scale) for e in unit.entries if e.scale is not None]
        if not ratings:
            continue
        for day, scale in ratings:
            by_month[month_of(day)].append(scale)
        first, latest = ratings[0], ratings[-1]
        pairs[unit.label] = {
            "n": len(ratings),
            "first": first[1],
            "first_month": month_of(first[0]),
            "latest": latest[1],
            "latest_month": month_of(latest[0]),
            "series": [[month_of(d), s] for d, s in ratings],
        }
        if len(ratings) >= 2:
            changes.append(latest[1] - first[1])
    axis = list(range(months))
    means = [round(sum(by_month[m]) / len(by_month[m]), 2) if by_month.get(m) else None
             for m in axis]
    return {
        "pairs": pairs,
        "programme": {
            "months": axis,
            "mean": means,
            "n": [len(by_month.get(m, ())) for m in axis],
            "units_rated_twice": len(changes),
            "up": sum(1 for c in changes if c > 0),
            "same": sum(1 for c in changes if c == 0),
            "down": sum(1 for c in changes if c < 0),
            "median_change": median(changes) if changes else None,
        },
    }


def _goals(units: Iterable[UnitCourse]) -> dict[str, Any]:
    """Per aim (person, outcome code): stated when, and realised later (or not)."""
    rows = []
    for unit in units:
        aims: dict[tuple[int, str], CourseEntry] = {}
        for e in unit.entries:
            for code in sorted(e.intended):
                aims.setdefault((e.person, code), e)
        for (person, code), stated in sorted(aims.items(), key=lambda kv: (kv[1].day, kv[0])):
            later = next((e for e in unit.entries if e.person == person and e.day > stated.day
                          and code in e.realised), None)
            rows.append({
                "unit": unit.label,
                "outcome": code,
                "author": stated.author,
                "stated_month": month_of(stated.day),
                "stated_in": stated.label,
                "realised": later is not None,
                "realised_month": month_of(later.day) if later is not None else None,
                "realised_in": later.label if later is not None else None,
            })
    by_outcome: dict[str, list[int]] = {}
    for r in rows:
        counts = by_outcome.setdefault(r["outcome"], [0, 0])
        counts[0] += 1
        counts[1] += r["realised"]
    return {
        "aims": len(rows),
        "realised": sum(1 for r in rows if r["realised"]),
        "by_outcome": dict(sorted(by_outcome.items(), key=lambda kv: (-kv[1][0], kv[0]))),
        "rows": rows,
    }


def _negative(units: Sequence[UnitCourse], scaling: Mapping[str, Any],
              goals: Mapping[str, Any]) -> dict[str, Any]:
    cases = []
    unmet: dict[str, int] = defaultdict(int)
    for r in goals["rows"]:
        if not r["realised"]:
            unmet[r["unit"]] += 1
    for unit in units:
        if not unit.is_pair:
            continue
        reasons = []
        gaps = _gaps([e.day for e in unit.entries if e.contact], unit.last_day,
                     unit.closed_day)
        if gaps:
            longest = max(n for _, n in gaps)
            reasons.append({"kind": "stalled", "detail": f"{longest // 7} weeks without contact",
                            "month": month_of(max(gaps, key=lambda g: g[1])[0])})
        rated = scaling["pairs"].get(unit.label)
        if rated is not None and rated["n"] >= 2 and rated["latest"] < rated["first"]:
            reasons.append({"kind": "regressed",
                            "detail": f"scaling {rated['first']} to {rated['latest']}",
                            "month": rated["latest_month"]})
        if unit.regressions:
            reasons.append({"kind": "regressed",
                            "detail": f"{unit.regressions} phase regression(s)", "month": None})
        climates = [e for e in unit.entries if e.climate is not None]
        if climates and climates[-1].climate in DOWN_CLIMATES:
            reasons.append({"kind": "retreat or stasis", "detail": climates[-1].climate,
                            "month": month_of(climates[-1].day)})
        if unit.rematched:
            reasons.append({"kind": "re-matched", "detail": "closed to be re-matched",
                            "month": month_of(unit.closed_day or 0)})
        elif unit.closed_day is not None and unit.closed_day < PLANNED_MONTHS * DAYS_PER_MONTH:
            reasons.append({"kind": "ended early",
                            "detail": f"closed before {PLANNED_MONTHS} months",
                            "month": month_of(unit.closed_day)})
        if unmet.get(unit.label):
            reasons.append({"kind": "aims not reported",
                            "detail": f"{unmet[unit.label]} aim(s) not reported realised",
                            "month": None})
        if reasons:
            cases.append({"unit": unit.label, "reasons": reasons})
    kinds: dict[str, int] = defaultdict(int)
    for case in cases:
        for kind in {r["kind"] for r in case["reasons"]}:
            kinds[kind] += 1
    return {"pairs": len(cases), "by_kind": dict(sorted(kinds.items())), "cases": cases,
            "stall_days": STALL_DAYS, "planned_months": PLANNED_MONTHS}


def analyse(units: Sequence[UnitCourse], months: int) -> dict[str, Any]:
    """The report's ``change_over_time`` and ``negative_cases`` sections."""
    scaling = _scaling(units, months)
    goals = _goals(units)
    return {
        "change_over_time": {"scaling": scaling, "goals": goals},
        "negative_cases": _negative(units, scaling, goals),
    }
