"""Chat preferences (the chat-tidying option); quiet hours live with the reminders."""

from __future__ import annotations

from storage.db import Database, iso, utcnow


class ChatPrefs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def tidy_chat(self, participant_id: int) -> bool:
        value = await self.db.scalar(
            "SELECT tidy_chat FROM chat_prefs WHERE participant_id=?", (participant_id,)
        )
        return bool(value)

    async def set_tidy_chat(self, participant_id: int, on: bool) -> None:
        """For the person's one chat, so for every membership of their account (a new
        membership copies it: storage.participants.SHARED_PREFS)."""
        await self.db.execute(
            "INSERT INTO chat_prefs (participant_id, tidy_chat, updated_at) "
            "SELECT id, ?, ? FROM participants WHERE id=? OR account_id IN "
            "(SELECT account_id FROM participants WHERE id=? AND account_id IS NOT NULL) "
            "ON CONFLICT(participant_id) DO UPDATE SET tidy_chat=excluded.tidy_chat, "
            "updated_at=excluded.updated_at",
            (int(on), iso(utcnow()), participant_id, participant_id),
        )
