"""The consent ledger and the one consent rule every reader applies.

Decisions are appended, never updated. The effective state of a scope is the latest
decision for it; a decision taken under an older consent text still counts for
``participate`` but not for the other scopes until the person answers the new text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from storage.db import Database, iso, utcnow
from storage.integrity import Integrity
from storage.models import Scope


@dataclass(frozen=True)
class Decision:
    scope: Scope
    granted: bool
    version: str
    at: str


@dataclass(frozen=True)
class ConsentState:
    decisions: dict[Scope, Decision]
    current_version: str

    def allows(self, scope: Scope) -> bool:
        decision = self.decisions.get(scope)
        if decision is None or not decision.granted:
            return False
        return scope is Scope.PARTICIPATE or decision.version == self.current_version

    @property
    def needs_asking(self) -> bool:
        """True before the first answer, and after the consent text changes."""
        if Scope.PARTICIPATE not in self.decisions:
            return True
        return any(d.version != self.current_version for d in self.decisions.values())

    def snapshot(self) -> str:
        return json.dumps({s.value: self.allows(s) for s in Scope}, sort_keys=True)


class ConsentLedger:
    def __init__(self, db: Database, current_version: str, integrity: Integrity) -> None:
        self.db = db
        self.current_version = current_version
        self.integrity = integrity

    async def record(
        self,
        participant_id: int,
        subject_ref: str,
        scope: Scope,
        granted: bool,
        source: str,
        version: str | None = None,
    ) -> None:
        async with self.db.transaction() as conn:  # the row and its MAC, one commit
            cur = await conn.execute(
                "INSERT INTO consent_ledger (participant_id, subject_ref, scope, version, "
                "granted, source, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    participant_id,
                    subject_ref,
                    scope.value,
                    version or self.current_version,
                    int(granted),
                    source,
                    iso(utcnow()),
                ),
            )
            await self.integrity.sign_consent_row(conn, int(cur.lastrowid or 0))

    async def state(self, participant_id: int) -> ConsentState:
        rows = await self.db.fetchall(
            "SELECT scope, granted, version, at FROM consent_ledger WHERE participant_id=? "
            "ORDER BY id",
            (participant_id,),
        )
        decisions: dict[Scope, Decision] = {}
        for r in rows:
            scope = Scope(r["scope"])
            decisions[scope] = Decision(scope, bool(r["granted"]), r["version"], r["at"])
        return ConsentState(decisions, self.current_version)

    async def consenting(
        self, scope: Scope, participant_ids: Iterable[int] | None = None
    ) -> set[int]:
        """Participants whose *current* consent allows ``scope`` (withdrawal applies backwards)."""
        rows = await self.db.fetchall(
            "SELECT l.participant_id, l.granted, l.version FROM consent_ledger l "
            "JOIN (SELECT participant_id, MAX(id) AS id FROM consent_ledger "
            "      WHERE scope=? AND participant_id IS NOT NULL GROUP BY participant_id) m "
            "ON l.id = m.id",
            (scope.value,),
        )
        wanted = None if participant_ids is None else set(participant_ids)
        out = set()
        for r in rows:
            if not r["granted"]:
                continue
            if scope is not Scope.PARTICIPATE and r["version"] != self.current_version:
                continue
            if wanted is None or r["participant_id"] in wanted:
                out.add(int(r["participant_id"]))
        return out
