"""Wave check-ins: which one is due for a person, from when their pair started.

A baseline at joining, then 3, 6, 9 and 12 months, a closing check-in when the pair
closes, and a follow-up six months after closing (the "sleeper effect").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Wave:
    id: str
    label: str
    flow: str
    months: int | None  # after the pair started; None for closing / follow-up


SCHEDULE = (
    Wave("baseline", "starting", "baseline", 0),
    Wave("m3", "3-month", "checkin", 3),
    Wave("m6", "6-month", "checkin", 6),
    Wave("m9", "9-month", "checkin", 9),
    Wave("m12", "12-month", "checkin", 12),
)
CLOSING = Wave("closing", "closing", "checkin", None)
FOLLOW_UP = Wave("followup", "6-month follow-up", "checkin", None)
BY_ID = {w.id: w for w in (*SCHEDULE, CLOSING, FOLLOW_UP)}
MONTH = timedelta(days=30.44)


def wave_date(wave: Wave, start: datetime, closed_at: datetime | None) -> datetime | None:
    if wave.months is not None:
        return start + wave.months * MONTH
    if closed_at is None:
        return None
    return closed_at if wave is CLOSING else closed_at + 6 * MONTH


def due_wave(
    start: datetime, now: datetime, done: set[str], closed_at: datetime | None = None
) -> Wave | None:
    """The newest wave whose date has passed and which has not been answered.

    Older missed waves are not chased: asking at 9 months for a 3-month check-in would
    mislabel the answers' timing.
    """
    candidates = [*SCHEDULE]
    if closed_at is not None:
        candidates = [w for w in SCHEDULE if w.months == 0 or start + w.months * MONTH < closed_at]
        candidates += [CLOSING, FOLLOW_UP]
    due = [w for w in candidates if (d := wave_date(w, start, closed_at)) and d <= now]
    if not due:
        return None
    newest = due[-1]
    return None if newest.id in done else newest


def next_wave(
    start: datetime, now: datetime, closed_at: datetime | None = None
) -> tuple[Wave, datetime] | None:
    for wave in (*SCHEDULE, CLOSING, FOLLOW_UP):
        when = wave_date(wave, start, closed_at)
        if when is not None and when > now:
            return wave, when
    return None
