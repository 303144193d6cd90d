"""Relationship phases per pair over time (notes-realist-thesis §3, notes-wellbeing §4).

The five developmental mentoring phases move forward one step at a time, and the model names
two regressions: from progression back to setting direction (a new overriding issue) and back
to building rapport (the relationship itself is challenged). Everything else is not a move the
model knows, so the inference never makes it.

Evidence, weighed at each dated point of a pair's history:

* lifecycle events: matching and the chemistry meeting open the relationship; a closing session
  is winding up; closure ends it, after which any contact is moving on; an extension is more
  progression;
* the mentor's own view of the phase (the episode log asks it every time): the strongest
  signal, since the thesis treats phases as something "both mentee and mentor ... appreciate
  and own";
* phase cues in what either of them wrote (``coding_rules.yaml``), weighted by confidence;
* elapsed time since matching, as a weak prior (the programmes the notes describe run about six
  months: rapport in month one, goals in month two, the work after that, winding up by month
  six);
* cadence: contact after a long silence has to rebuild rapport.

A Viterbi pass then picks the best sequence of phases that uses only allowed moves. The result
says which evidence carried each point, so an evaluator can see why a regression was inferred.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PHASES = (
    "PH_BUILDING_RAPPORT",
    "PH_SETTING_DIRECTION",
    "PH_PROGRESSION",
    "PH_WINDING_UP",
    "PH_MOVING_ON",
)
RAPPORT, DIRECTION, PROGRESSION, WINDING_UP, MOVING_ON = PHASES
REGRESSIONS = frozenset({(PROGRESSION, DIRECTION), (PROGRESSION, RAPPORT)})
KRAM_PRE = "KRAM_PRE_INITIATION"
DEFAULT_CROSSWALK = {
    RAPPORT: "KRAM_INITIATION",
    DIRECTION: "KRAM_INITIATION",
    PROGRESSION: "KRAM_CULTIVATION",
    WINDING_UP: "KRAM_SEPARATION",
    MOVING_ON: "KRAM_REDEFINITION",
}

# Evidence weights (log-score units). A mentor's view outweighs one text cue and the time prior
# together, and a regression needs more than one weak cue to be inferred.
W_VIEW = 3.0
W_TEXT = 1.5  # times the cue's confidence
W_TEXT_CAP = 3.0  # per phase per point: many cues in one answer are still one answer
W_START = 2.0  # matched, chemistry meeting held
W_CLOSING = 3.0  # a closing session, or the pair closed
W_AFTER_CLOSE = 3.0
W_EXTENDED = 1.0
W_PRIOR = 0.5
W_GAP = 1.0
LONG_GAP_DAYS = 56  # eight weeks without contact, twice the usual monthly cadence
MOVE_FORWARD = -0.2  # a small cost, so the path does not flicker on noise
MOVE_REGRESS = -1.0
START_SKIP = -1.0  # per phase the first point starts beyond building rapport

DAYS_PER_MONTH = 30.44
# Expected phase by month since matching (the weak prior).
PRIOR_BY_MONTH = (RAPPORT, DIRECTION, PROGRESSION, PROGRESSION, PROGRESSION, WINDING_UP)

# Lifecycle events (storage/lifecycle.py names) and episode kinds read as phase evidence.
START_EVENTS = frozenset({"matched", "chemistry_held", "EP_CHEMISTRY_MEETING"})
CLOSING_EVENTS = frozenset({"EP_CLOSING_SESSION"})
END_EVENTS = frozenset({"closed", "rematched"})
CONTACT_EVENTS = frozenset(
    {
        "chemistry_held",
        "session_held",
        "contact",
        "EP_CHEMISTRY_MEETING",
        "EP_FORMAL_SESSION",
        "EP_INFORMAL_CONTACT",
        "EP_CLOSING_SESSION",
    }
)

SOURCE_VIEW = "mentor's view"
SOURCE_TEXT = "text cues"
SOURCE_START = "relationship start"
SOURCE_CLOSING = "closing session"
SOURCE_CLOSED = "pair closed"
SOURCE_AFTER = "contact after closure"
SOURCE_EXTENDED = "extension"
SOURCE_PRIOR = "elapsed time"
SOURCE_GAP = "long gap in contact"


@dataclass
class PairHistory:
    """What is known about one pair, as day offsets from its start (matching, or first entry).

    Only consented material goes in: the caller builds this from consented entries and from
    pair-level events that belong to no one person.
    """

    events: list[tuple[int, str]] = field(default_factory=list)  # lifecycle events, episode kinds
    views: list[tuple[int, str]] = field(default_factory=list)  # the mentor's phase perception
    signals: list[tuple[int, str, float]] = field(default_factory=list)  # text cue, confidence
    contacts: list[int] = field(default_factory=list)  # any entry or contact, by day


@dataclass(frozen=True)
class PhasePoint:
    day: int
    phase: str
    support: float  # the evidence score of the chosen phase at this point
    sources: tuple[str, ...]  # which kinds of evidence pointed to it


@dataclass(frozen=True)
class Segment:
    phase: str
    kram: str
    start_day: int
    end_day: int  # the last point in the phase (inclusive)
    points: int


@dataclass(frozen=True)
class Transition:
    day: int
    from_phase: str
    to_phase: str
    kind: str  # "forward" or "regression"
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Timeline:
    points: tuple[PhasePoint, ...]
    segments: tuple[Segment, ...]
    transitions: tuple[Transition, ...]
    kram: tuple[tuple[str, int, int], ...]  # (Kram phase, first day, last day)

    @property
    def current(self) -> str | None:
        return self.points[-1].phase if self.points else None

    @property
    def regressions(self) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if t.kind == "regression")

    def phase_at(self, day: int) -> str | None:
        """The phase in force on ``day`` (the latest point at or before it)."""
        found = None
        for point in self.points:
            if point.day > day:
                break
            found = point.phase
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "segments": [
                {
                    "phase": s.phase,
                    "kram": s.kram,
                    "from_day": s.start_day,
                    "to_day": s.end_day,
                    "points": s.points,
                }
                for s in self.segments
            ],
            "transitions": [
                {
                    "day": t.day,
                    "from": t.from_phase,
                    "to": t.to_phase,
                    "kind": t.kind,
                    "evidence": list(t.sources),
                }
                for t in self.transitions
            ],
            "kram": [{"phase": k, "from_day": a, "to_day": b} for k, a, b in self.kram],
        }


def allowed(a: str, b: str) -> bool:
    """Stay, move forward one phase, or one of the two regressions the model names."""
    i, j = PHASES.index(a), PHASES.index(b)
    return j in (i, i + 1) or (a, b) in REGRESSIONS


def _move_score(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if (a, b) in REGRESSIONS:
        return MOVE_REGRESS
    if PHASES.index(b) == PHASES.index(a) + 1:
        return MOVE_FORWARD
    return -math.inf


# For each phase index, the phases it can be reached from (in phase order) and the move's score.
_PREDECESSORS = tuple(
    tuple(
        (a, _move_score(PHASES[a], PHASES[b]))
        for a in range(len(PHASES))
        if allowed(PHASES[a], PHASES[b])
    )
    for b in range(len(PHASES))
)


def _evidence(history: PairHistory) -> dict[int, dict[str, dict[str, float]]]:
    """day -> phase -> source -> weight."""
    points: dict[int, dict[str, dict[str, float]]] = {}

    def add(day: int, phase: str, source: str, weight: float) -> None:
        by_source = points.setdefault(day, {}).setdefault(phase, {})
        by_source[source] = by_source.get(source, 0.0) + weight

    end_day: int | None = None
    ending = ""
    for day, event in sorted(history.events):
        points.setdefault(day, {})
        if event in START_EVENTS:
            add(day, RAPPORT, SOURCE_START, W_START)
        elif event in CLOSING_EVENTS:
            add(day, WINDING_UP, SOURCE_CLOSING, W_CLOSING)
        elif event in END_EVENTS:
            add(day, WINDING_UP, SOURCE_CLOSED, W_CLOSING)
            if end_day is None:
                end_day, ending = day, event
        elif event == "extended":
            add(day, PROGRESSION, SOURCE_EXTENDED, W_EXTENDED)
    for day, phase in history.views:
        if phase in PHASES:
            add(day, phase, SOURCE_VIEW, W_VIEW)
    text: dict[tuple[int, str], float] = {}
    for day, phase, confidence in history.signals:
        if phase in PHASES:
            text[(day, phase)] = text.get((day, phase), 0.0) + W_TEXT * confidence
    for (day, phase), weight in sorted(text.items()):
        add(day, phase, SOURCE_TEXT, min(W_TEXT_CAP, weight))
    contacts = sorted(
        set(history.contacts) | {d for d, e in history.events if e in CONTACT_EVENTS}
    )
    for day in contacts:
        points.setdefault(day, {})
    for before, day in itertools.pairwise(contacts):
        if day - before > LONG_GAP_DAYS:
            add(day, RAPPORT, SOURCE_GAP, W_GAP)
    for day in sorted(points):
        if end_day is not None and day > end_day:
            # after closure the relationship can only be remembered or carried on informally
            add(day, MOVING_ON, SOURCE_AFTER, W_AFTER_CLOSE if ending == "closed" else W_PRIOR)
            continue
        month = max(0, int(day / DAYS_PER_MONTH))
        add(day, PRIOR_BY_MONTH[min(month, len(PRIOR_BY_MONTH) - 1)], SOURCE_PRIOR, W_PRIOR)
    return points


def infer(history: PairHistory, crosswalk: Mapping[str, str] | None = None) -> Timeline:
    """The most likely phase path through a pair's history, using allowed moves only."""
    walk = dict(crosswalk or DEFAULT_CROSSWALK)
    evidence = _evidence(history)
    days = sorted(evidence)
    if not days:
        return Timeline((), (), (), ())
    n = len(PHASES)
    score = [[sum(evidence[d].get(p, {}).values()) for p in PHASES] for d in days]
    # Viterbi over phase indices; ties go to staying put, then to the earlier phase, so equal
    # input always gives one path
    best = [score[0][i] + START_SKIP * i for i in range(n)]
    back: list[list[int]] = [[]]
    for k in range(1, len(days)):
        row = [0.0] * n
        links = [0] * n
        for b in range(n):
            chosen, value = -1, -math.inf
            for a, cost in _PREDECESSORS[b]:
                v = best[a] + cost
                if v > value or (v == value and a == b):
                    chosen, value = a, v
            row[b] = value + score[k][b]
            links[b] = chosen
        best = row
        back.append(links)
    last = max(range(n), key=lambda i: (round(best[i], 9), -i))
    indices = [last]
    for k in range(len(days) - 1, 0, -1):
        indices.append(back[k][indices[-1]])
    indices.reverse()
    path = [PHASES[i] for i in indices]
    score_of = [score[k][i] for k, i in enumerate(indices)]

    points = tuple(
        PhasePoint(day, phase, round(score_of[k], 3), tuple(sorted(evidence[day].get(phase, {}))))
        for k, (day, phase) in enumerate(zip(days, path, strict=True))
    )
    transitions = tuple(
        Transition(
            b.day,
            a.phase,
            b.phase,
            "regression" if (a.phase, b.phase) in REGRESSIONS else "forward",
            b.sources,
        )
        for a, b in itertools.pairwise(points)
        if a.phase != b.phase
    )
    segments: list[Segment] = []
    for point in points:
        if segments and segments[-1].phase == point.phase:
            s = segments[-1]
            segments[-1] = Segment(s.phase, s.kram, s.start_day, point.day, s.points + 1)
        else:
            segments.append(Segment(point.phase, walk[point.phase], point.day, point.day, 1))
    return Timeline(points, tuple(segments), transitions, _kram(points, walk, history))


def _kram(
    points: Iterable[PhasePoint], walk: Mapping[str, str], history: PairHistory
) -> tuple[tuple[str, int, int], ...]:
    """Kram's phases beside the five: the crosswalk of each point, with the time from matching
    to the first meeting as pre-initiation when both are known."""
    meetings = sorted(d for d, e in history.events if e in CONTACT_EVENTS) or sorted(
        history.contacts
    )
    first_meeting = meetings[0] if meetings else None
    has_start = any(e == "matched" for _, e in history.events)
    out: list[tuple[str, int, int]] = []
    for point in points:
        pre = has_start and first_meeting is not None and point.day < first_meeting
        kram = KRAM_PRE if pre else walk[point.phase]
        if out and out[-1][0] == kram:
            out[-1] = (kram, out[-1][1], point.day)
        else:
            out.append((kram, point.day, point.day))
    return tuple(out)


def month_of(day: int) -> int:
    """Month of the relationship (0 = the first month) for a day offset."""
    return int(day // DAYS_PER_MONTH) if day >= 0 else -1
