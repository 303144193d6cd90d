"""The consent ledger and the one consent rule every reader applies.

Decisions are appended, never updated. The effective state of a scope is the latest
decision for it; a decision taken under an older consent text still counts for
``participate`` but not for the other scopes until the person answers the new text. Every
other scope also needs ``participate``: someone who stopped taking part is used for nothing.
:func:`permits` is that rule; the bot, reports and exports all ask it (through
:meth:`ConsentState.allows`, :meth:`ConsentLedger.may_use` or, in bulk,
:meth:`ConsentLedger.consenting`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
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


def _granted(decision: Decision | None, scope: Scope, current_version: str) -> bool:
    if decision is None or not decision.granted:
        return False
    return scope is Scope.PARTICIPATE or decision.version == current_version


def permits(decisions: Mapping[Scope, Decision], scope: Scope, current_version: str) -> bool:
    """May this person's data be used for ``scope`` now: the one consent rule.

    ``decisions`` are the person's latest decision per scope. The scope's own decision must
    be a grant (under the current consent text, except for ``participate``), and for any
    scope but ``participate`` the person must still participate.
    """
    if not _granted(decisions.get(scope), scope, current_version):
        return False
    return scope is Scope.PARTICIPATE or _granted(
        decisions.get(Scope.PARTICIPATE), Scope.PARTICIPATE, current_version)


@dataclass(frozen=True)
class ConsentState:
    decisions: dict[Scope, Decision]
    current_version: str

    def allows(self, scope: Scope) -> bool:
        return permits(self.decisions, scope, self.current_version)

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

    async def may_use(self, participant_id: int, scope: Scope) -> bool:
        """May this person's data be used for ``scope`` now (:func:`permits`)."""
        return (await self.state(participant_id)).allows(scope)

    async def consenting(
        self, scope: Scope, participant_ids: Iterable[int] | None = None
    ) -> set[int]:
        """Participants whose *current* consent allows ``scope`` (withdrawal applies
        backwards): :func:`permits` for everyone at once, from one query."""
        rows = await self.db.fetchall(
            "SELECT l.participant_id, l.scope, l.granted, l.version, l.at FROM consent_ledger l "
            "JOIN (SELECT participant_id, scope, MAX(id) AS id FROM consent_ledger "
            "      WHERE scope IN (?, ?) AND participant_id IS NOT NULL "
            "      GROUP BY participant_id, scope) m "
            "ON l.id = m.id",
            (scope.value, Scope.PARTICIPATE.value),
        )
        wanted = None if participant_ids is None else set(participant_ids)
        latest: dict[int, dict[Scope, Decision]] = {}
        for r in rows:
            pid = int(r["participant_id"])
            if wanted is None or pid in wanted:
                s = Scope(r["scope"])
                latest.setdefault(pid, {})[s] = Decision(s, bool(r["granted"]), r["version"],
                                                         r["at"])
        return {pid for pid, decisions in latest.items()
                if permits(decisions, scope, self.current_version)}
