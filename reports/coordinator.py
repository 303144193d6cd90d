"""The coordinator's programme summary: operational figures, anonymised, small cells hidden.

What it shows (notes-wellbeing §6.1, notes-realist-thesis §8.4): pairs per relationship phase
and per lifecycle state, chemistry meetings overdue, pairs with no contact for N weeks,
reflection completion per month, check-in response per wave, and mentor load.

What it never shows: entry text, quotes, codes of any topic (sensitive or not: the only codes
here are phases and lifecycle states), or anything per person or per pair. Every figure is a
count of pairs or people, or a rate built from such counts.

Who counts: a pair counts only when every member it has currently consents to
``programme_summary`` (read through :mod:`reports.extract`, where the consent rule lives); a
person counts in the people-based figures only as a member of a counted pair.

Small cells (:mod:`reports.suppression`): a count from 1 to 4 shows as ``"<5"``; a zero is
shown as 0 (it describes no one, and a coordinator must tell 0 from 4); where a shown total
would let someone subtract their way to a hidden count, another count is withheld as ``"*"``.
A rate is shown whenever both counts under it are shown. A programme with fewer than 5
counted pairs gets no figures at all, only a sentence saying it is too small.

Needing attention names pair numbers, and only of counted pairs: chemistry meeting overdue,
no contact for N weeks, or one member said "we've finished" at the six-month check and the
other has not (yet). A pair any of whose members declined programme summaries is never
named here, nor in the digest.

The summary is a plain dict, deterministic for a given database and ``now``: the JSON file is
byte-identical across runs, and the HTML and the chat text are rendered from it alone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any

from conversations.catalogue import load_flows
from conversations.reminder_rules import ReminderSettings
from conversations.waves import BY_ID, wave_date
from reports import extract
from reports.codebook import SCHEME_PHASE, Codebook, load_codebook
from reports.phases import PHASES, PairHistory, infer
from reports.releases import decide
from reports.structured import StepIndex, split_entry
from reports.suppression import DEFAULT_K, TOTAL, Display, small_label, suppress_counts, too_small
from storage.lifecycle import STATES, TERMINAL, PairFacts
from storage.models import Role, Scope
from storage.programmes import pair_cap
from storage.releases import Release
from storage.store import Store

SUMMARY_VERSION = "1"
PHASE_UNKNOWN = "not_yet_known"
REFLECTION_FLOWS = ("grow", "oskar")
CHECKIN_FLOWS = ("baseline", "checkin")
WAVES = ("baseline", "m3", "m6", "m9", "m12", "closing", "followup")
MONTHS_SHOWN = 12
REFLECTIONS_GROUP = "reflections:"  # + month: one release group per month's row
CHECKINS_GROUP = "checkins:"  # + wave id
ATTENTION_LINE = "Needing attention: "  # the chat lines that name pair numbers
PAIRS_KEYS = ("too_small", "pairs_counted", "pairs_by_state", "pairs_by_phase")
STATE_LABELS = {
    "matched": "Matched, not yet met",
    "chemistry_held": "Chemistry meeting held",
    "active": "Meeting",
    "six_month_check": "At the six-month check",
    "extended": "Extended",
    "closed": "Closed",
    "rematched": "Closed for a re-match",
}
PHASE_LABELS = {
    "PH_BUILDING_RAPPORT": "Building rapport",
    "PH_SETTING_DIRECTION": "Setting direction",
    "PH_PROGRESSION": "Making progress",
    "PH_WINDING_UP": "Winding up",
    "PH_MOVING_ON": "Moving on",
    PHASE_UNKNOWN: "Not yet known",
}


def _shown(counts: Mapping[str, Display]) -> bool:
    return all(isinstance(v, int) for v in counts.values())


def _rate(part: Display, whole: Display) -> float | None:
    if isinstance(part, int) and isinstance(whole, int) and whole > 0:
        return round(part / whole, 3)
    return None


def _split(yes_key: str, no_key: str, yes: int, total: int, k: int) -> dict[str, Any]:
    """A two-way split of ``total`` (shown) with complementary suppression, plus its rate
    (shown whenever both of its counts are)."""
    cells = suppress_counts({yes_key: yes, no_key: total - yes}, k, total=total,
                            show_zeros=True)
    rate = _rate(cells[yes_key], total) if isinstance(cells[no_key], int) else None
    return {**cells, TOTAL: total, "rate": rate}


def _count(value: int, k: int) -> Display:
    return value if value >= k or value == 0 else small_label(k)


def _month(ts: str) -> str:
    return ts[:7]


class _Inputs:
    """Everything the figures are computed from, already restricted to counted pairs."""

    def __init__(self, pairs: dict[int, PairFacts], members: set[int],
                 entries: list[extract.EntryRecord], drafts: list[Any],
                 events: dict[int, list[tuple[str, datetime]]]) -> None:
        self.pairs = pairs
        self.members = members
        self.entries = entries
        self.drafts = drafts
        self.events = events


async def _gather(store: Store, programme_id: int) -> _Inputs:
    consenting = await extract.consenting(store, Scope.PROGRAMME_SUMMARY)
    facts = await store.lifecycle.facts()
    pairs = {
        pid: f for pid, f in sorted(facts.items())
        if f.programme_id == programme_id and f.matched_at is not None and f.members
        and all(m in consenting for m in f.members)
    }
    members = {m for f in pairs.values() for m in f.members}
    entries = [
        r async for r in extract.entries(store, Scope.PROGRAMME_SUMMARY, programme_id=programme_id)
        if r.participant_id in members
    ]
    # Reflections begun but never finished: metadata only (no answers are read), for the
    # members of counted pairs, who consent as above.
    drafts = list(await store.entries.unfinished(members))
    # an event one person caused counts only if that person is a counted member
    usable = await store.lifecycle.usable_events(pairs, members) if pairs else {}
    events = {pid: [(e.event, e.at) for e in found] for pid, found in usable.items()}
    return _Inputs(pairs, members, entries, drafts, events)


def _phases(inputs: _Inputs, codebook: Codebook) -> dict[int, str]:
    index = StepIndex(load_flows(), codebook)
    by_pair: dict[int, list[extract.EntryRecord]] = {}
    for r in inputs.entries:
        if r.pair_id in inputs.pairs:
            by_pair.setdefault(r.pair_id, []).append(r)
    out: dict[int, str] = {}
    for pid, f in inputs.pairs.items():
        assert f.matched_at is not None
        start = f.matched_at.date().toordinal()
        history = PairHistory(events=[(0, "matched")])
        for event, at in inputs.events.get(pid, []):
            if event != "matched":
                history.events.append((at.date().toordinal() - start, event))
        for r in by_pair.get(pid, []):
            split = split_entry(r.flow, r.answers, index)  # button answers only: no text read
            when = split.day or r.created_at[:10]
            day = date.fromisoformat(when).toordinal() - start
            history.contacts.append(day)
            for code in split.codes:
                if code.scheme == "episode_kind":
                    history.events.append((day, code.code_id))
                elif code.scheme == SCHEME_PHASE and r.role is Role.MENTOR:
                    history.views.append((day, code.code_id))
        timeline = infer(history, codebook.phase_crosswalk)
        out[pid] = timeline.current or PHASE_UNKNOWN
    return out


Contributions = dict[str, dict[int, Any]]  # figure group -> pair id -> what it adds


async def compute_summary(
    store: Store,
    programme_id: int,
    *,
    now: datetime | None = None,
    k: int = DEFAULT_K,
    codebook: Codebook | None = None,
) -> dict[str, Any]:
    """The programme's summary as of now, every figure already suppressed.

    This is one snapshot. What coordinators are sent goes through :func:`release_summary`,
    which also applies the disclosure rule across releases (:mod:`reports.releases`).
    """
    summary, _ = await _compute(store, programme_id, now=now, k=k, codebook=codebook)
    return summary


async def _compute(
    store: Store,
    programme_id: int,
    *,
    now: datetime | None = None,
    k: int = DEFAULT_K,
    codebook: Codebook | None = None,
) -> tuple[dict[str, Any], Contributions]:
    now = now or datetime.now(UTC)
    programme = await store.programmes.get(programme_id)
    try:
        settings = ReminderSettings.from_programme(programme.settings)
    except ValueError:
        settings = ReminderSettings()  # the reminders module already warns about it
    quiet_weeks = round(settings.quiet_pair_after / timedelta(weeks=1))
    chemistry_weeks = round(settings.chemistry_overdue_after / timedelta(weeks=1))
    inputs = await _gather(store, programme_id)
    n = len(inputs.pairs)
    base: dict[str, Any] = {
        "version": SUMMARY_VERSION,
        "programme": programme.name,
        "as_of": now.date().isoformat(),
        "threshold": k,
        "rules": {
            "counted": "pairs whose members all consent to programme summaries",
            "small": f"A count below {k} shows as {small_label(k)!r}",
            "withheld": "'*' hides a count that would let a small one be worked out",
            "changes": f"figures change only when at least {k} pairs have changed since any "
                       "earlier release of them; until then the last release is shown again",
        },
    }
    book = codebook or load_codebook()
    phase_of = _phases(inputs, book)
    contributions: Contributions = {
        "pairs": {pid: [f.state, phase_of[pid]] for pid, f in inputs.pairs.items()}}
    if too_small(n, k):
        return ({**base, "too_small": True, "pairs_counted": small_label(k) if n else 0},
                contributions)

    states = Counter(f.state for f in inputs.pairs.values())
    by_state = suppress_counts({s: states.get(s, 0) for s in STATES}, k, total=n,
                               show_zeros=True)
    phases = Counter(phase_of.values())
    by_phase = suppress_counts({p: phases.get(p, 0) for p in (*PHASES, PHASE_UNKNOWN)}, k,
                               total=n, show_zeros=True)

    open_pairs = [f for f in inputs.pairs.values() if not f.closed]
    n_open = len(open_pairs)
    attention: dict[str, Any] = {"open_pairs": _count(n_open, k)}
    flags = {
        f.pair_id: [
            f.chemistry_at is None and f.matched_at is not None
            and f.matched_at + settings.chemistry_overdue_after <= now,
            f.matched_at is not None
            and max(f.matched_at, f.last_episode_at or f.matched_at)
            + settings.quiet_pair_after <= now,
        ]
        for f in open_pairs
    }
    contributions["attention"] = flags
    contributions["mentor_load"] = {f.pair_id: f.mentor_id for f in open_pairs
                                    if f.mentor_id is not None}
    if n_open >= k:
        overdue = sum(1 for o, _ in flags.values() if o)
        quiet = sum(1 for _, q in flags.values() if q)
        attention["chemistry_overdue"] = _split("overdue", "not_overdue", overdue, n_open, k)
        attention["quiet"] = _split("quiet", "in_contact", quiet, n_open, k)
    attention["chemistry_weeks"] = chemistry_weeks
    attention["quiet_weeks"] = quiet_weeks
    finish_waiting = _finish_waiting(inputs, open_pairs)
    needing = {
        "chemistry_overdue": sorted(p for p, (o, _) in flags.items() if o),
        "quiet": sorted(p for p, (_, q) in flags.items() if q),
        "finish_waiting": finish_waiting,
    }

    return {
        **base,
        "too_small": False,
        "pairs_counted": n,
        "pairs_by_state": by_state,
        "pairs_by_phase": by_phase,
        "attention": attention,
        "reflection_completion": _reflections(inputs, now, k, contributions),
        "checkin_response": _checkins(inputs, now, k, contributions),
        "mentor_load": _mentor_load(open_pairs, k, pair_cap(programme, Role.MENTOR)),
        "needing_attention": needing,
    }, contributions


@dataclass(frozen=True)
class PairRow:
    """One counted pair as a coordinator may see it: numbers and labels, no person."""

    pair_id: int
    state: str
    phase: str
    weeks_since_contact: int | None  # since the latest contact, or matching if none yet


async def pair_rows(store: Store, programme_id: int, *, now: datetime | None = None,
                    codebook: Codebook | None = None) -> tuple[list[PairRow], int]:
    """The programme's counted pairs (every member agrees to programme summaries) by
    number, with lifecycle state, phase and weeks since last contact; and how many other
    pairs there are, listed by nothing (a member declined, or the pair is not matched)."""
    now = now or datetime.now(UTC)
    inputs = await _gather(store, programme_id)
    phase_of = _phases(inputs, codebook or load_codebook())
    rows = []
    for pid, f in inputs.pairs.items():
        assert f.matched_at is not None
        since = max(f.matched_at, f.last_episode_at or f.matched_at)
        rows.append(PairRow(pid, f.state, phase_of[pid],
                            None if f.closed else max(0, (now - since).days // 7)))
    total = len(await store.programmes.pairs(programme_id))
    return rows, total - len(rows)


def _finish_waiting(inputs: _Inputs, open_pairs: Iterable[PairFacts]) -> list[int]:
    """Open counted pairs where a member said "we've finished" and the pair is still open
    (the partner said nothing, or is still meeting): the coordinator decides."""
    return sorted(
        f.pair_id for f in open_pairs
        if any(event == "finish_said" for event, _ in inputs.events.get(f.pair_id, []))
    )


def _reflections(inputs: _Inputs, now: datetime, k: int,
                 contributions: Contributions) -> list[dict[str, Any]]:
    """Per month: mentee reflections begun, and the share finished (drafts count as not)."""
    months: dict[str, list[tuple[int | None, bool]]] = {}
    for r in inputs.entries:
        if r.flow in REFLECTION_FLOWS:
            months.setdefault(_month(r.created_at), []).append((r.pair_id, True))
    for d in inputs.drafts:
        if d["flow"] in REFLECTION_FLOWS:
            months.setdefault(_month(d["created_at"]), []).append((d["pair_id"], False))
    shown = sorted(months)[-MONTHS_SHOWN:]
    rows = []
    for month in shown:
        items = months[month]
        pairs = {p for p, _ in items}
        per_pair: dict[int, list[int]] = {}
        for p, ok in items:
            if p is not None:
                begun_done = per_pair.setdefault(p, [0, 0])
                begun_done[0] += 1
                begun_done[1] += int(ok)
        contributions[f"{REFLECTIONS_GROUP}{month}"] = dict(per_pair)
        row: dict[str, Any] = {"month": month}
        if len(pairs) < k:
            # a month's rate from fewer than k pairs would describe those few people
            row.update({"begun": small_label(k), "completed": small_label(k),
                        "not_completed": small_label(k), "rate": None})
        else:
            done = sum(1 for _, ok in items if ok)
            split = _split("completed", "not_completed", done, len(items), k)
            row.update({"begun": split[TOTAL], "completed": split["completed"],
                        "not_completed": split["not_completed"], "rate": split["rate"]})
        rows.append(row)
    return rows


def _checkins(inputs: _Inputs, now: datetime, k: int,
              contributions: Contributions) -> list[dict[str, Any]]:
    """Per wave: people whose check-in has come due, and the share who answered it."""
    answered: dict[str, set[int]] = {}
    for r in inputs.entries:
        if r.flow in CHECKIN_FLOWS and r.wave:
            answered.setdefault(r.wave, set()).add(r.participant_id)
    rows = []
    for wave_id in WAVES:
        wave = BY_ID[wave_id]
        due: set[int] = set()
        per_pair: dict[int, list[int]] = {}
        for pid, f in inputs.pairs.items():
            assert f.matched_at is not None
            when = wave_date(wave, f.matched_at, f.closed_at)
            if when is not None and when <= now:
                due.update(f.members)
                per_pair[pid] = [len(f.members),
                                 len(set(f.members) & answered.get(wave_id, set()))]
        contributions[f"{CHECKINS_GROUP}{wave_id}"] = per_pair
        responded = len(due & answered.get(wave_id, set()))
        row: dict[str, Any] = {"wave": wave_id, "label": wave.label}
        if len(due) < k:
            row.update({"due": _count(len(due), k) if due else 0, "responded": small_label(k)
                        if due else 0, "not_responded": small_label(k) if due else 0,
                        "rate": None})
        else:
            split = _split("responded", "not_responded", responded, len(due), k)
            row.update({"due": len(due), "responded": split["responded"],
                        "not_responded": split["not_responded"], "rate": split["rate"]})
        rows.append(row)
    return rows


def load_buckets(cap: int) -> tuple[str, ...]:
    """'1 pair', '2 pairs', ... up to the cap, and one for more (a cap lowered later)."""
    return (*(f"{n} pair{'s' if n > 1 else ''}" for n in range(1, cap + 1)),
            f"more than {cap} pairs")


def _mentor_load(open_pairs: Iterable[PairFacts], k: int, cap: int) -> dict[str, Any]:
    """Mentors by how many counted open pairs they hold, against the programme's cap."""
    buckets_of = load_buckets(cap)
    load = Counter(f.mentor_id for f in open_pairs if f.mentor_id is not None)
    buckets = Counter(buckets_of[min(n, cap + 1) - 1] for n in load.values())
    mentors = len(load)
    if mentors < k:
        return {"mentors": _count(mentors, k), "by_load": None, "cap": cap}
    cells = suppress_counts({b: buckets.get(b, 0) for b in buckets_of}, k, total=mentors,
                            show_zeros=True)
    return {"mentors": mentors, "by_load": cells, "cap": cap}


async def release_summary(
    store: Store,
    programme_id: int,
    *,
    now: datetime | None = None,
    k: int = DEFAULT_K,
    codebook: Codebook | None = None,
) -> dict[str, Any]:
    """The summary as released to coordinators (chat, digest, files), and its record.

    Every figure group goes through the disclosure rule of :mod:`reports.releases`: a group
    whose new figures would differ from some earlier release by fewer than ``k`` pairs is
    shown as last released, and ``held`` names it with that release's day.
    """
    now = now or datetime.now(UTC)
    today = now.date().isoformat()
    current, contributions = await _compute(store, programme_id, now=now, k=k,
                                            codebook=codebook)
    releases = store.releases
    history = await releases.history(programme_id)
    fresh: list[Release] = []
    held: dict[str, str] = {}

    def decide_group(group: str, figures: Any) -> Any:
        d = decide(group, figures, contributions.get(group, {}), history.get(group, []), k,
                   today)
        # "too small to summarise" shows no figure to subtract from, so it is not recorded:
        # a programme first asked about at 3 pairs is summarised at 5, not held until 8
        if d.new_release is not None and not (isinstance(figures, dict)
                                              and figures.get("too_small") is True):
            fresh.append(d.new_release)
        if d.held_since is not None:
            held[group] = d.held_since
        return d.figures

    base = {key: v for key, v in current.items() if key not in PAIRS_KEYS
            and key not in ("attention", "reflection_completion", "checkin_response",
                            "mentor_load")}
    pairs = decide_group("pairs", {key: current[key] for key in PAIRS_KEYS if key in current})
    out: dict[str, Any] = {**base, **pairs}
    if not pairs["too_small"]:
        for group in ("attention", "mentor_load"):
            if group in current:
                out[group] = decide_group(group, current[group])
            elif history.get(group):  # nothing current (too small now): the last release
                out[group] = history[group][-1].figures
                held[group] = history[group][-1].released_on
        months = {r["month"]: r for r in current.get("reflection_completion", [])}
        rows = []
        for month in sorted(set(months) | {g[len(REFLECTIONS_GROUP):] for g in history
                                           if g.startswith(REFLECTIONS_GROUP)}):
            group = f"{REFLECTIONS_GROUP}{month}"
            if month in months:
                rows.append(decide_group(group, months[month]))
            elif history.get(group):
                # a month no counted pair reflected in any more: gone only if the rule allows
                d = decide(group, None, {}, history[group], k, today)
                if d.held_since is not None:
                    held[group] = d.held_since
                    rows.append(d.figures)
                elif d.new_release is not None:
                    fresh.append(d.new_release)
        out["reflection_completion"] = [r for r in rows if r is not None][-MONTHS_SHOWN:]
        waves = {c["wave"]: c for c in current.get("checkin_response", [])}
        out["checkin_response"] = []
        for w in WAVES:
            group = f"{CHECKINS_GROUP}{w}"
            if w in waves:
                out["checkin_response"].append(decide_group(group, waves[w]))
            elif history.get(group):
                out["checkin_response"].append(history[group][-1].figures)
                held[group] = history[group][-1].released_on
    out["held"] = dict(sorted(held.items()))
    await releases.record(programme_id, fresh)
    return out


# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------


def held_lines(summary: Mapping[str, Any]) -> list[str]:
    """Which figures are shown as released earlier, in words, with the day of release."""
    labels = {"pairs": "pairs, lifecycle and phase", "attention": "needing attention",
              "mentor_load": "mentor load"}
    out = []
    for group, day in summary.get("held", {}).items():
        if group.startswith(REFLECTIONS_GROUP):
            label = f"reflections begun in {group[len(REFLECTIONS_GROUP):]}"
        elif group.startswith(CHECKINS_GROUP):
            label = f"check-in {BY_ID[group[len(CHECKINS_GROUP):]].label}"
        else:
            label = labels.get(group, group)
        out.append(f"{label} (as of {day})")
    return out


def to_json(summary: Mapping[str, Any]) -> str:
    return json.dumps(summary, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.0f}%"


def render_html(summary: Mapping[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = _pct
    source = resources.files("reports").joinpath("templates", "coordinator.html.j2").read_text(
        encoding="utf-8")
    return env.from_string(source).render(
        s=summary, state_labels=STATE_LABELS, phase_labels=PHASE_LABELS, total=TOTAL,
        held=held_lines(summary))


def render_text(summary: Mapping[str, Any]) -> str:
    """The chat version: the same figures as the HTML, as short plain lines."""
    if summary["too_small"]:
        return (f"Programme summary ({summary['as_of']}): the programme is too small to "
                f"summarise yet. Figures appear once at least {summary['threshold']} pairs "
                "whose members agreed to programme summaries have been matched, and change "
                f"once at least {summary['threshold']} pairs have changed.")
    k = summary["threshold"]
    lines = [f"Programme summary, {summary['as_of']}: {summary['pairs_counted']} pairs counted."]
    lines.append("Lifecycle: " + ", ".join(
        f"{STATE_LABELS[s]} {v}" for s, v in summary["pairs_by_state"].items()))
    lines.append("Phase: " + ", ".join(
        f"{PHASE_LABELS[p]} {v}" for p, v in summary["pairs_by_phase"].items()))
    a = summary["attention"]
    lines.append(f"Open pairs: {a['open_pairs']}.")
    if "chemistry_overdue" in a:
        lines.append(f"Chemistry meeting overdue ({a['chemistry_weeks']}+ weeks): "
                     f"{a['chemistry_overdue']['overdue']}. No contact for "
                     f"{a['quiet_weeks']}+ weeks: {a['quiet']['quiet']}.")
    needing = summary.get("needing_attention") or {}
    for key, label in (("chemistry_overdue", "chemistry meeting overdue"),
                       ("quiet", f"no contact for {a['quiet_weeks']}+ weeks"),
                       ("finish_waiting", "one member said finished, the other not yet")):
        if needing.get(key):
            lines.append(f"{ATTENTION_LINE}{label}, pairs "
                         f"{', '.join(str(p) for p in needing[key])}.")
    refl = summary["reflection_completion"][-3:]
    if refl:
        lines.append("Reflections finished: " + ", ".join(
            f"{r['month']} {_pct(r['rate'])}" for r in refl))
    due = [c for c in summary["checkin_response"] if c["due"] != 0]
    if due:
        lines.append("Check-ins answered: " + ", ".join(
            f"{c['label']} {_pct(c['rate'])}" for c in due))
    load = summary["mentor_load"]
    if load["by_load"]:
        lines.append(f"Mentor load ({load['mentors']} mentors): " + ", ".join(
            f"{b} {v}" for b, v in load["by_load"].items()))
    held = held_lines(summary)
    if held:
        lines.append(f"As released earlier, since fewer than {k} pairs have changed: "
                     + ", ".join(held) + ".")
    lines.append(f"'{small_label(k)}' = fewer than {k}; '*' = withheld so a small count can't "
                 "be worked out. No names, text or topics are ever shown.")
    return "\n".join(lines)


async def write_report(store: Store, programme_id: int, out_dir: Any, *,
                       now: datetime | None = None) -> list[Any]:
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = await release_summary(store, programme_id, now=now)
    json_path = out / "coordinator.json"
    html_path = out / "coordinator.html"
    json_path.write_text(to_json(summary), encoding="utf-8")
    html_path.write_text(render_html(summary), encoding="utf-8")
    return [json_path, html_path]


__all__ = ["TERMINAL", "compute_summary", "release_summary", "render_html", "render_text",
           "to_json", "write_report"]
