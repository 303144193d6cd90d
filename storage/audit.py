"""The audit log: who did what, never what anyone wrote."""

from __future__ import annotations

import json

from storage.db import Database, iso, utcnow


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        actor: str,
        action: str,
        participant_id: int | None = None,
        **detail: str | int | bool | None,
    ) -> None:
        await self.db.execute(
            "INSERT INTO audit_log (at, actor, action, participant_id, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            (iso(utcnow()), actor, action, participant_id, json.dumps(detail, sort_keys=True)),
        )

    async def actions(self, participant_id: int | None = None) -> list[str]:
        if participant_id is None:
            rows = await self.db.fetchall("SELECT action FROM audit_log ORDER BY id")
        else:
            rows = await self.db.fetchall(
                "SELECT action FROM audit_log WHERE participant_id=? ORDER BY id",
                (participant_id,),
            )
        return [r["action"] for r in rows]
