"""Plain records returned by the repositories. None of them holds decrypted text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    MENTEE = "mentee"
    MENTOR = "mentor"
    COORDINATOR = "coordinator"


class Scope(StrEnum):
    PARTICIPATE = "participate"
    PROGRAMME_SUMMARY = "programme_summary"
    EVALUATION = "evaluation"
    RESEARCH_EXPORT = "research_export"


@dataclass(frozen=True)
class Programme:
    id: int
    name: str
    settings: dict[str, object]


@dataclass(frozen=True)
class Participant:
    id: int
    programme_id: int
    role: Role
    status: str
    timezone: str
    preferred_framework: str | None
    menu_version: int
    subject_ref: str
    created_at: str
    # The account (one Telegram user) this membership belongs to; None only for rows a
    # caller builds by hand.
    account_id: int | None = None


@dataclass(frozen=True)
class Pair:
    id: int
    programme_id: int
    mentor_id: int | None
    mentee_id: int | None
    state: str
    created_at: str
    matched_at: str | None


@dataclass(frozen=True)
class Invite:
    id: int
    programme_id: int
    pair_id: int | None
    role: Role
    expires_at: str
    used_at: str | None
    revoked_at: str | None = None
    used_by: int | None = None


@dataclass(frozen=True)
class Entry:
    id: int
    participant_id: int
    pair_id: int | None
    flow: str
    flow_version: str
    status: str
    created_at: str
    updated_at: str
    completed_at: str | None
    wave: str | None = None
