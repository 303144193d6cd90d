"""The disclosure rule for coordinator summaries released over time (issue 17, item 4).

Small-cell suppression (:mod:`reports.suppression`) protects one release. Two releases can
still be subtracted: if one pair withdraws between them, "reflections begun" drops by that
pair's reflections. The rule here is a *differencing threshold*, the release-over-time form of
the threshold rule statistical offices apply to any table:

    A figure group is released with new values only if, against **every** earlier release
    of the same group for the programme, the number of counted pairs whose contribution to
    the group differs is 0 or at least k (k = 5, the small-cell threshold). Otherwise the
    group's last released values are shown again, marked with the day they were released.

So the difference between any two releases of a figure is the net change of no pairs or of
at least k pairs, never of one to k-1. Comparing with every earlier release, not only the
last, closes the trap where k pairs change, k-1 change back and one more changes. A pair
joining or leaving the counted set (consent, closure, erasure) is a change of its
contribution like any other.

Groups are the figures that share a total or a population, so that subtraction inside a
group is covered: ``pairs`` (pairs counted, by lifecycle state, by phase), ``attention``
(open pairs, chemistry overdue, quiet), ``mentor_load``, one group per reflection month and
one per check-in wave. Each group's figures are a function of the pairs' contributions alone,
so equal fingerprints mean equal figures.

Residual risk, stated for the data protection officer: figures in different groups can be
held from different days, and a coordinator who personally caused k-1 of the changes in a
group (closing k-1 pairs, say) can attribute the rest of the difference to the remaining pair.
Coordinators already know the lifecycle changes they make; the groups that carry what
coordinators do not otherwise know (reflections, check-ins, consent leaving the count) change
only through participants.

The record of releases (:class:`storage.releases.SummaryReleases`, migration 008) holds pair
ids and fingerprints of contributions only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage.releases import Release


def fingerprints(contributions: Mapping[int, Any]) -> dict[str, str]:
    """Pair id -> a short digest of what the pair adds to a group (absent adds nothing)."""
    return {
        str(pid): hashlib.sha256(json.dumps(c, sort_keys=True).encode()).hexdigest()[:16]
        for pid, c in sorted(contributions.items())
    }


def changed_pairs(a: Mapping[str, str], b: Mapping[str, str]) -> int:
    """How many pairs contribute differently to two releases (joining or leaving counts)."""
    return sum(1 for pid in set(a) | set(b) if a.get(pid) != b.get(pid))


@dataclass(frozen=True)
class Decision:
    figures: Any
    held_since: str | None  # the day of the release shown again, when held
    new_release: Release | None  # to record, when the figures are released afresh


def decide(group: str, figures: Any, contributions: Mapping[int, Any],
           history: list[Release], k: int, today: str) -> Decision:
    """Release ``figures`` or show the group's last release again, by the rule above."""
    prints = fingerprints(contributions)
    safe = all(
        (n := changed_pairs(r.fingerprints, prints)) == 0 or n >= k for r in history
    )
    if not safe:
        last = history[-1]
        return Decision(last.figures, last.released_on, None)
    # json round trip so a figure compares equal to its stored form (tuples become lists)
    figures = json.loads(json.dumps(figures, sort_keys=True))
    if history and history[-1].figures == figures and history[-1].fingerprints == prints:
        return Decision(figures, None, None)
    return Decision(figures, None, Release(group, today, figures, prints))
