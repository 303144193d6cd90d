"""Reminder rules with no I/O: what is due, when it may go, and what it says.

Everything takes the current time as an argument, so tests drive it with a fixed clock. The
planner (``conversations/capabilities/reminder_planning.py``) reads the facts from storage,
asks this module, and writes back what it decided; ``bot/jobs.py`` only sends.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conversations.catalogue import Texts
from conversations.engine import Button, Reply
from conversations.waves import BY_ID, MONTH, due_wave, next_wave, wave_date
from storage.lifecycle import PairFacts
from storage.reminder_queue import Kind, NewReminder, Reminder

DEFAULT_ZONE = "Europe/London"

# What the mentor's episode log says happened, as pair events. A closing session is a
# session and the end of the relationship.
EPISODE_EVENTS: dict[str, tuple[str, ...]] = {
    "EP_CHEMISTRY_MEETING": ("chemistry_held",),
    "EP_FORMAL_SESSION": ("session_held",),
    "EP_INFORMAL_CONTACT": ("contact",),
    "EP_CLOSING_SESSION": ("session_held", "closed"),
}
# Episodes after which the mentee is invited to reflect (a chemistry meeting or a corridor
# chat is not what GROW and OSKAR are written for).
PROMPT_AFTER = frozenset({"EP_FORMAL_SESSION", "EP_CLOSING_SESSION"})

# [0-9], not \d: \d matches other scripts' digits too, and int() would accept them.
_CALLBACK = re.compile(r"^r:([za]):([0-9]{1,12}):([a-z])$")
_HM = re.compile(r"^([0-9]{1,2})(?::?([0-9]{2}))?$")


# -- quiet hours and time zones ----------------------------------------------------------
def _clock_time(text: str) -> time:
    match = _HM.match(text.strip())
    if not match:
        raise ValueError(f"not a time of day: {text!r}")
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour == 24 and minute == 0:
        hour = 0
    return time(hour, minute)  # raises ValueError when out of range


@dataclass(frozen=True)
class QuietHours:
    """Local hours when nothing is sent. start == end means no quiet hours at all."""

    start: time = time(21, 0)
    end: time = time(8, 0)

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        text = text.strip().lower().replace(" ", "")
        if text in ("off", "none"):
            return cls(time(0), time(0))
        head, sep, tail = text.replace("to", "-").partition("-")
        if not sep:
            raise ValueError(f"quiet hours look like 21:00-08:00, not {text!r}")
        return cls(_clock_time(head), _clock_time(tail))

    @property
    def off(self) -> bool:
        return self.start == self.end

    def contains(self, moment: time) -> bool:
        moment = moment.replace(tzinfo=None)
        if self.off:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # spans midnight

    def strings(self) -> tuple[str, str]:
        return self.start.strftime("%H:%M"), self.end.strftime("%H:%M")


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def is_quiet(at: datetime, tz: str, quiet: QuietHours) -> bool:
    return quiet.contains(at.astimezone(zone(tz)).time())


def next_allowed(at: datetime, tz: str, quiet: QuietHours) -> datetime:
    """``at`` itself when sending is allowed then, else the end of that quiet spell."""
    if not is_quiet(at, tz, quiet):
        return at
    here = zone(tz)
    local = at.astimezone(here)
    end = datetime.combine(local.date(), quiet.end, tzinfo=here)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=here)
    return end.astimezone(UTC)


def snooze_until(choice: str, now: datetime, tz: str, quiet: QuietHours) -> datetime:
    """'h': an hour from now; 't': the same time tomorrow. Either moves out of quiet hours."""
    if choice == "h":
        target = now + timedelta(hours=1)
    else:
        here = zone(tz)
        local = now.astimezone(here)
        target = datetime.combine(
            local.date() + timedelta(days=1), local.time().replace(tzinfo=None), tzinfo=here
        ).astimezone(UTC)
    return next_allowed(target, tz, quiet)


# -- per-programme settings ------------------------------------------------------------
@dataclass(frozen=True)
class ReminderSettings:
    reflection_delay: timedelta = timedelta(hours=2)
    reflection_max_age: timedelta = timedelta(days=14)
    quiet_pair_after: timedelta = timedelta(weeks=5)
    chemistry_overdue_after: timedelta = timedelta(weeks=3)
    check_after_months: int = 6
    extend_months: int = 3
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    min_gap: timedelta = timedelta(minutes=60)
    busy_for: timedelta = timedelta(minutes=10)
    unreachable_retry: timedelta = timedelta(days=7)
    button_life: timedelta = timedelta(days=7)
    max_snoozes: int = 3
    max_attempts: int = 8

    @classmethod
    def from_programme(cls, settings: Mapping[str, Any]) -> ReminderSettings:
        """Read ``settings["reminders"]``; a misspelt or out-of-range value is an error."""
        raw = settings.get("reminders") or {}
        if not isinstance(raw, Mapping):
            raise ValueError("programme setting 'reminders' must be a mapping")
        unknown = set(raw) - set(_SETTING_KEYS)
        if unknown:
            raise ValueError(f"unknown reminder settings: {', '.join(sorted(unknown))}")
        out = cls()
        for key, value in raw.items():
            attribute, convert = _SETTING_KEYS[key]
            try:
                converted = convert(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"reminder setting {key}: {exc}") from None
            out = replace(out, **{attribute: converted})
        return out


def _positive(unit: str) -> Any:
    def convert(value: Any) -> timedelta:
        number = float(value)
        if number < 0:
            raise ValueError("must not be negative")
        return timedelta(**{unit: number})

    return convert


def _count(low: int, high: int) -> Any:
    def convert(value: Any) -> int:
        number = int(value)
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return convert


_SETTING_KEYS: dict[str, tuple[str, Any]] = {
    "reflection_delay_hours": ("reflection_delay", _positive("hours")),
    "reflection_max_age_days": ("reflection_max_age", _positive("days")),
    "quiet_pair_weeks": ("quiet_pair_after", _positive("weeks")),
    "chemistry_overdue_weeks": ("chemistry_overdue_after", _positive("weeks")),
    "check_after_months": ("check_after_months", _count(1, 36)),
    "extend_months": ("extend_months", _count(1, 12)),
    "quiet_hours": ("quiet_hours", lambda v: QuietHours.parse(str(v))),
    "min_gap_minutes": ("min_gap", _positive("minutes")),
    "busy_minutes": ("busy_for", _positive("minutes")),
    "unreachable_retry_days": ("unreachable_retry", _positive("days")),
    "button_life_days": ("button_life", _positive("days")),
    "max_snoozes": ("max_snoozes", _count(0, 10)),
}

SETTING_NAMES = tuple(sorted(_SETTING_KEYS))  # the reminder settings a programme may set


# -- what to schedule ------------------------------------------------------------------
def planned_end(facts: PairFacts, settings: ReminderSettings) -> datetime | None:
    if facts.matched_at is None:
        return None
    return facts.matched_at + (settings.check_after_months + facts.extension_months) * MONTH


def check_months(facts: PairFacts, settings: ReminderSettings) -> int:
    return settings.check_after_months + facts.extension_months


def quiet_anchor(facts: PairFacts) -> datetime | None:
    """The quiet-pair clock starts at matching and restarts at every contact."""
    if facts.matched_at is None:
        return None
    if facts.last_episode_at is None:
        return facts.matched_at
    return max(facts.matched_at, facts.last_episode_at)


def plan_pair(
    facts: PairFacts, settings: ReminderSettings, coordinators: Sequence[int]
) -> list[NewReminder]:
    """Quiet-pair nudges, the six-month check and the chemistry note for one open pair.

    The keys carry what the reminder depends on (the anchor contact, the planned end), so a
    new contact or an extension plans a new reminder and the old one is seen as superseded.
    """
    if facts.matched_at is None or facts.closed:
        return []
    out: list[NewReminder] = []
    anchor = quiet_anchor(facts)
    assert anchor is not None
    anchor_key = anchor.strftime("%Y%m%dT%H%M%S")
    weeks = round(settings.quiet_pair_after / timedelta(weeks=1))
    end = planned_end(facts, settings)
    assert end is not None
    months = check_months(facts, settings)
    for member in facts.members:
        out.append(
            NewReminder(
                Kind.QUIET_PAIR,
                member,
                facts.pair_id,
                anchor + settings.quiet_pair_after,
                f"quiet:{facts.pair_id}:{member}:{anchor_key}",
                {"anchor": anchor_key, "weeks": weeks},
            )
        )
        out.append(
            NewReminder(
                Kind.SIX_MONTH,
                member,
                facts.pair_id,
                end,
                f"check:{facts.pair_id}:{member}:{months}",
                {"months": months, "extended": facts.extension_months > 0},
            )
        )
    # One member said "we've finished" at this check: the others are asked that, once.
    said = {member for member, m in facts.finish_said if m == months}
    if said:
        for member in facts.members:
            if member not in said:
                out.append(
                    NewReminder(
                        Kind.SIX_MONTH,
                        member,
                        facts.pair_id,
                        end,
                        f"check:{facts.pair_id}:{member}:{months}:asked",
                        {"months": months, "extended": facts.extension_months > 0,
                         "asked": True},
                    )
                )
    if facts.chemistry_at is None:
        overdue = round(settings.chemistry_overdue_after / timedelta(weeks=1))
        for coordinator in coordinators:
            out.append(
                NewReminder(
                    Kind.CHEMISTRY,
                    coordinator,
                    facts.pair_id,
                    facts.matched_at + settings.chemistry_overdue_after,
                    f"chemistry:{facts.pair_id}:{coordinator}",
                    {"weeks": overdue},
                )
            )
    return out


def plan_waves(
    participant_id: int,
    pair_id: int | None,
    start: datetime,
    closed_at: datetime | None,
    done: Collection[str],
    now: datetime,
    flows: Collection[str],
) -> list[NewReminder]:
    """The wave check-in due now (if unanswered) and the next one, for one person.

    ``flows`` are the check-in flows this person's role may answer.
    """
    out = []
    current = due_wave(start, now, set(done), closed_at)
    upcoming = next_wave(start, now, closed_at)
    for wave in (current, upcoming[0] if upcoming else None):
        if wave is None or wave.flow not in flows:
            continue
        when = wave_date(wave, start, closed_at)
        if when is None:
            continue
        out.append(
            NewReminder(
                Kind.WAVE,
                participant_id,
                pair_id,
                when,
                f"wave:{participant_id}:{pair_id or 0}:{wave.id}",
                {"wave": wave.id},
            )
        )
    return out


# -- whether a due reminder still makes sense -------------------------------------------
@dataclass(frozen=True)
class Situation:
    """What the sweep knows about one person when their reminder comes due."""

    pair: PairFacts | None
    wave_start: datetime | None
    waves_done: frozenset[str] = frozenset()
    reflected_since_due: bool = False
    consents: bool = True


def skip_reason(
    reminder: Reminder, situation: Situation, now: datetime, settings: ReminderSettings
) -> str | None:
    """Why this reminder should not go (now or ever), or None when it should."""
    pair = situation.pair
    kind = reminder.kind
    if kind in (Kind.REFLECTION, Kind.WAVE) and not situation.consents:
        return "no_consent"  # nothing they wrote could be kept
    if kind is Kind.REFLECTION:
        return "done" if situation.reflected_since_due else None
    if kind is Kind.WAVE:
        if situation.wave_start is None:
            return "not_due"
        closed_at = pair.closed_at if pair else None
        current = due_wave(situation.wave_start, now, set(situation.waves_done), closed_at)
        if current is None or current.id != reminder.detail.get("wave"):
            return "not_due"
        return None
    if pair is None or pair.closed:
        return "pair_closed"
    if kind is Kind.QUIET_PAIR:
        anchor = quiet_anchor(pair)
        if anchor is None or anchor.strftime("%Y%m%dT%H%M%S") != reminder.detail.get("anchor"):
            return "resolved"
        return None
    if kind is Kind.SIX_MONTH:
        months = check_months(pair, settings)
        return None if reminder.detail.get("months") == months else "superseded"
    if kind is Kind.CHEMISTRY:
        return "resolved" if pair.chemistry_at is not None else None
    return None


# -- what it says ----------------------------------------------------------------------
def compose(
    texts: Texts,
    reminders: Sequence[Reminder],
    role: str,
    settings: ReminderSettings,
    about: str | None = None,
    *,
    prefix: str | None = None,
) -> Reply:
    """One message for one person: a single reminder, or a coordinator's digest.

    ``about`` names the mentee a mentor's reminder is about (a mentor may hold several
    pairs); it is the mentor's own mentee's first name, never anyone else's."""
    first = reminders[0]
    kind = first.kind
    snooze = first.snoozes < settings.max_snoozes
    buttons: list[tuple[Button, ...]] = []
    if kind is Kind.CHEMISTRY:
        pairs = sorted({r.pair_id for r in reminders if r.pair_id is not None})
        text = texts.say(
            "rem_chemistry",
            count=len(pairs),
            weeks=first.detail.get("weeks", 3),
            pairs=", ".join(str(p) for p in pairs),
        )
        snooze = False
    elif kind is Kind.REFLECTION:
        text = texts.say("rem_reflection")
    elif kind is Kind.QUIET_PAIR:
        key = "rem_quiet_mentor" if role == "mentor" else "rem_quiet_mentee"
        text = texts.say(key, weeks=first.detail.get("weeks", 5))
    elif kind is Kind.WAVE:
        wave = BY_ID.get(str(first.detail.get("wave")))
        text = texts.say("rem_wave", wave_label=wave.label if wave else "next")
    else:
        key = ("rem_check_asked" if first.detail.get("asked")
               else "rem_check_extended" if first.detail.get("extended") else "rem_check")
        text = texts.say(key, months=first.detail.get("months", 6))
        buttons.append(
            (
                Button(texts.say("rem_btn_still"), callback("a", first.id, "s")),
                Button(texts.say("rem_btn_finished"), callback("a", first.id, "f")),
            )
        )
    if prefix and kind is not Kind.CHEMISTRY:
        # which membership and pair, for someone in several (ReminderPlanner.prefix)
        text = prefix + " " + text
    elif about and kind is not Kind.CHEMISTRY:
        text = texts.say("rem_about", name=about) + " " + text
    if snooze:
        buttons.append(
            (
                Button(texts.say("rem_btn_hour"), callback("z", first.id, "h")),
                Button(texts.say("rem_btn_tomorrow"), callback("z", first.id, "t")),
            )
        )
    return Reply(text, tuple(buttons))


def callback(action: str, reminder_id: int, arg: str) -> str:
    return f"r:{action}:{reminder_id}:{arg}"


def parse_callback(data: str) -> tuple[str, int, str] | None:
    match = _CALLBACK.match(data or "")
    if not match:
        return None
    action, rid, arg = match.group(1), int(match.group(2)), match.group(3)
    if (action == "z" and arg not in "ht") or (action == "a" and arg not in "sf"):
        return None
    return action, rid, arg


def when_words(texts: Texts, at: datetime, now: datetime, tz: str) -> str:
    here = zone(tz)
    local, today = at.astimezone(here), now.astimezone(here).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return texts.say("rem_when_today", time=clock)
    if local.date() == today + timedelta(days=1):
        return texts.say("rem_when_tomorrow", time=clock)
    return texts.say("rem_when_later", date=local.strftime("%d %b"), time=clock)


# -- the episode log as lifecycle events -----------------------------------------------
def episode_events(answers: Mapping[str, Any]) -> tuple[str, ...]:
    return EPISODE_EVENTS.get(str(answers.get("kind")), ())


def episode_time(answers: Mapping[str, Any], tz: str, now: datetime) -> datetime:
    """When the episode happened: midday, local time, on the date the mentor gave.

    The log asks for a date only; midday keeps the day right in every zone. A date in the
    future (a typo) is taken as now, so it cannot hold back the quiet-pair nudge.
    """
    try:
        day = date.fromisoformat(str(answers.get("when")))
    except ValueError:
        return now
    at = datetime.combine(day, time(12), tzinfo=zone(tz)).astimezone(UTC)
    return min(at, now)
