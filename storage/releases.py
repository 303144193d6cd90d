"""The record of released coordinator-summary figures (the disclosure rule's memory).

The rule itself lives in :mod:`reports.releases`; this module only stores and reads what was
released, per programme and figure group, oldest first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.db import Database


@dataclass(frozen=True)
class Release:
    group: str
    released_on: str
    figures: Any
    fingerprints: dict[str, str]  # pair id (as text) -> fingerprint of its contribution


class SummaryReleases:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def history(self, programme_id: int) -> dict[str, list[Release]]:
        rows = await self.db.fetchall(
            "SELECT grp, released_on, figures, fingerprints FROM summary_releases "
            "WHERE programme_id=? ORDER BY id", (programme_id,))
        out: dict[str, list[Release]] = {}
        for r in rows:
            out.setdefault(r["grp"], []).append(Release(
                r["grp"], r["released_on"], json.loads(r["figures"]),
                json.loads(r["fingerprints"])))
        return out

    async def record(self, programme_id: int, releases: list[Release]) -> None:
        if not releases:
            return
        await self.db.executemany(
            "INSERT INTO summary_releases (programme_id, grp, released_on, figures, "
            "fingerprints) VALUES (?, ?, ?, ?, ?)",
            [(programme_id, r.group, r.released_on, json.dumps(r.figures, sort_keys=True),
              json.dumps(r.fingerprints, sort_keys=True)) for r in releases])
