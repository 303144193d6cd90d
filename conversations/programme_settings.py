"""A programme's settings as a coordinator or admin sees and changes them, with validation.

The reminder settings (``conversations.reminder_rules.ReminderSettings``) live under the
``reminders`` key; the mentor cap (``storage.programmes.PAIR_CAP``) and join approval
(``storage.store.JOIN_APPROVAL``) beside them. A change is checked by reading the settings
back exactly as the bot will, so nothing is stored that the reminders would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conversations.reminder_rules import SETTING_NAMES, ReminderSettings
from storage.programmes import DEFAULT_PAIR_CAP, MAX_PAIR_CAP, PAIR_CAP
from storage.store import JOIN_APPROVAL

REMINDER_DEFAULTS = {
    "reflection_delay_hours": 2,
    "reflection_max_age_days": 14,
    "quiet_pair_weeks": 5,
    "chemistry_overdue_weeks": 3,
    "check_after_months": 6,
    "extend_months": 3,
    "quiet_hours": "21:00-08:00",
    "min_gap_minutes": 60,
    "busy_minutes": 10,
    "unreachable_retry_days": 7,
    "button_life_days": 7,
    "max_snoozes": 3,
}


class SettingError(ValueError):
    """A setting that cannot be set as asked; the message says what is allowed."""


def keys() -> list[str]:
    return [PAIR_CAP, JOIN_APPROVAL, *SETTING_NAMES]


def current(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting with the value in force (the default where none is stored)."""
    reminders = settings.get("reminders") or {}
    out: dict[str, Any] = {
        PAIR_CAP: settings.get(PAIR_CAP, DEFAULT_PAIR_CAP),
        JOIN_APPROVAL: "on" if settings.get(JOIN_APPROVAL) else "off",
    }
    for key in SETTING_NAMES:
        out[key] = reminders.get(key, REMINDER_DEFAULTS.get(key))
    return out


def _number(text: str) -> int | float:
    try:
        number = float(text)
    except ValueError:
        raise SettingError(f"{text!r} is not a number") from None
    return int(number) if number.is_integer() else number


def changed(settings: Mapping[str, Any], assignment: str) -> dict[str, Any]:
    """The whole settings mapping after ``key=value``; SettingError if it is not allowed."""
    key, sep, value = assignment.partition("=")
    key, value = key.strip().lower(), value.strip()
    if not sep or not key or not value:
        raise SettingError("write a setting as key=value, e.g. quiet_pair_weeks=4")
    out = {k: v for k, v in settings.items()}
    if key == PAIR_CAP:
        number = _number(value)
        if not isinstance(number, int) or not 1 <= number <= MAX_PAIR_CAP:
            raise SettingError(f"{PAIR_CAP} must be a whole number from 1 to {MAX_PAIR_CAP}")
        out[PAIR_CAP] = number
        return out
    if key == JOIN_APPROVAL:
        if value.lower() not in ("on", "off"):
            raise SettingError(f"{JOIN_APPROVAL} is on or off")
        out[JOIN_APPROVAL] = value.lower() == "on"
        return out
    if key not in SETTING_NAMES:
        raise SettingError(f"no setting called {key!r}; the settings are: {', '.join(keys())}")
    reminders = dict(settings.get("reminders") or {})
    reminders[key] = value if key == "quiet_hours" else _number(value)
    out["reminders"] = reminders
    try:
        ReminderSettings.from_programme(out)
    except ValueError as exc:
        raise SettingError(str(exc)) from None
    return out
