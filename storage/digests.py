"""Coordinators' weekly summary schedules (/digest): one row per coordinator."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database, iso, utcnow


@dataclass(frozen=True)
class DigestSchedule:
    id: int
    participant_id: int
    weekday: int  # Sunday = 0, as python-telegram-bot's run_daily counts
    at: str  # HH:MM in the coordinator's time zone
    timezone: str


class DigestSchedules:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def of(self, participant_id: int) -> tuple[int, str] | None:
        """(weekday, HH:MM) this person chose, or None."""
        row = await self.db.fetchone(
            "SELECT weekday, at FROM coordinator_digests WHERE participant_id=?",
            (participant_id,))
        return None if row is None else (int(row["weekday"]), str(row["at"]))

    async def set(self, participant_id: int, weekday: int, at: str) -> int:
        """Choose (or change) the day and time; the schedule's id."""
        await self.db.execute(
            "INSERT INTO coordinator_digests (participant_id, weekday, at, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(participant_id) DO UPDATE SET "
            "weekday=excluded.weekday, at=excluded.at, updated_at=excluded.updated_at",
            (participant_id, weekday, at, iso(utcnow())),
        )
        return int(await self.db.scalar(
            "SELECT id FROM coordinator_digests WHERE participant_id=?", (participant_id,)))

    async def clear(self, participant_id: int) -> int | None:
        """Stop the digest; the id the schedule had, or None if there was none."""
        sid = await self.db.scalar(
            "SELECT id FROM coordinator_digests WHERE participant_id=?", (participant_id,))
        await self.db.execute(
            "DELETE FROM coordinator_digests WHERE participant_id=?", (participant_id,))
        return None if sid is None else int(sid)

    async def coordinators(self) -> list[DigestSchedule]:
        """Every schedule of a person who is (still) a coordinator, oldest first."""
        rows = await self.db.fetchall(
            "SELECT d.id, d.participant_id, d.weekday, d.at, p.timezone FROM "
            "coordinator_digests d JOIN participants p ON p.id = d.participant_id "
            "WHERE p.role = 'coordinator' ORDER BY d.id")
        return [DigestSchedule(int(r["id"]), int(r["participant_id"]), int(r["weekday"]),
                               r["at"], r["timezone"]) for r in rows]
