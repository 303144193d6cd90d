"""A pair's lifecycle: a timestamped event history, and the state it folds to.

States follow the programme: matched, chemistry meeting held, active, six-month check, then
closed, extended (still meeting past the planned end) or re-matched (closed without blame,
so either person can be paired again). The state is never stored on its own: it is the fold
of the events, so a late-logged session or a deleted log entry gives the same answer as if
things had been recorded in order. ``pairs.state`` and ``pairs.closed_at`` are kept as a
cache for the rest of the code, which only asks "is this pair closed?".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from storage.db import Database, iso, parse_iso

STATES = (
    "matched",
    "chemistry_held",
    "active",
    "six_month_check",
    "extended",
    "closed",
    "rematched",
)
TERMINAL = frozenset({"closed", "rematched"})
EVENTS = frozenset(
    {
        "matched",
        "chemistry_held",
        "session_held",
        "contact",
        "six_month_check",
        "still_meeting",
        "finish_said",  # one member's "we've finished" at the check: history only
        "extended",
        "closed",
        "rematched",
    }
)
# Contacts between the pair: the quiet-pair nudge counts from the latest of these.
EPISODES = frozenset({"chemistry_held", "session_held", "contact"})
SOURCES = frozenset({"system", "episode_log", "answer", "coordinator"})


class LifecycleError(ValueError):
    """An unknown event or source (a programming error, never user input)."""


def step(state: str, event: str) -> str:
    """The state after ``event``. Closed and re-matched pairs stay so: nothing reopens them."""
    if state in TERMINAL:
        return state
    if event in TERMINAL:
        return event
    if event == "chemistry_held":
        return "chemistry_held" if state == "matched" else state
    if event == "session_held":
        return "active" if state in ("matched", "chemistry_held") else state
    if event in ("six_month_check", "extended"):
        return event
    return state  # matched, contact, still_meeting, finish_said: history only


def fold(events: Iterable[str], initial: str = "matched") -> str:
    state = initial
    for event in events:
        state = step(state, event)
    return state


@dataclass(frozen=True)
class PairEvent:
    id: int
    pair_id: int
    event: str
    at: datetime
    source: str
    participant_id: int | None
    entry_id: int | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class PairFacts:
    """What reminders need to know about a pair, read in one go."""

    pair_id: int
    programme_id: int
    mentor_id: int | None
    mentee_id: int | None
    matched_at: datetime | None
    closed_at: datetime | None
    state: str
    last_episode_at: datetime | None
    chemistry_at: datetime | None  # chemistry meeting, or the first session if none was logged
    extension_months: int
    # (member, months of the check) for every "we've finished" said at a six-month check
    finish_said: frozenset[tuple[int, int]] = frozenset()

    @property
    def closed(self) -> bool:
        return self.state in TERMINAL or self.closed_at is not None

    @property
    def members(self) -> tuple[int, ...]:
        return tuple(p for p in (self.mentor_id, self.mentee_id) if p is not None)


def _event(r: aiosqlite.Row) -> PairEvent:
    return PairEvent(
        r["id"],
        r["pair_id"],
        r["event"],
        parse_iso(r["at"]),
        r["source"],
        r["participant_id"],
        r["entry_id"],
        json.loads(r["detail"]),
    )


def usable(event: PairEvent, allowed: Set[int]) -> bool:
    """May a report or summary use this pair event: the one rule.

    Events the bot derived from episode logs never: the jobs read the consented logs
    themselves, and a non-consenting person's logs must not reach them this way. An event
    one person caused only if that person is among ``allowed`` (whose data the reader may
    use); an event no one caused (matching, a coordinator's closing) always.
    """
    return event.source != "episode_log" and (
        event.participant_id is None or event.participant_id in allowed)


def _placeholders(ids: Sequence[int]) -> str:
    return ",".join("?" * len(ids))


class Lifecycle:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ensure_matched(self, now: datetime) -> int:
        """Give every matched pair its 'matched' event (joining sets only pairs.matched_at)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO pair_events "
                "(pair_id, event, at, recorded_at, source, dedupe_key) "
                "SELECT id, 'matched', matched_at, ?, 'system', 'matched:' || id FROM pairs "
                "WHERE matched_at IS NOT NULL",
                (iso(now),),
            )
            return cur.rowcount

    async def record(
        self,
        pair_id: int,
        event: str,
        *,
        at: datetime,
        source: str,
        now: datetime,
        participant_id: int | None = None,
        entry_id: int | None = None,
        detail: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> bool:
        """Append one event; False when ``key`` says it was already recorded."""
        self._check(event, source)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO pair_events (pair_id, event, at, recorded_at, source, "
                "participant_id, entry_id, detail, dedupe_key) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    pair_id,
                    event,
                    iso(at),
                    iso(now),
                    source,
                    participant_id,
                    entry_id,
                    json.dumps(detail or {}, sort_keys=True),
                    key,
                ),
            )
            if cur.rowcount != 1:
                return False
            await self._refresh(conn, pair_id)
        return True

    async def replace_for_entry(
        self,
        entry_id: int,
        pair_id: int,
        participant_id: int,
        events: Sequence[tuple[str, datetime]],
        *,
        source: str,
        now: datetime,
    ) -> None:
        """The events one diary entry implies, replacing what an earlier save of it implied.

        Editing a log from /history saves it again; replacing (not appending) keeps one
        entry's facts counted once, and a changed answer corrects the history.
        """
        for event, _ in events:
            self._check(event, source)
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM pair_events WHERE entry_id=?", (entry_id,))
            for event, at in events:
                await conn.execute(
                    "INSERT INTO pair_events (pair_id, event, at, recorded_at, source, "
                    "participant_id, entry_id, dedupe_key) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        pair_id,
                        event,
                        iso(at),
                        iso(now),
                        source,
                        participant_id,
                        entry_id,
                        f"entry:{entry_id}:{event}",
                    ),
                )
            await self._refresh(conn, pair_id)

    async def history(self, pair_id: int) -> list[PairEvent]:
        rows = await self.db.fetchall(
            "SELECT * FROM pair_events WHERE pair_id=? ORDER BY at, id", (pair_id,)
        )
        return [_event(r) for r in rows]

    async def usable_events(self, pair_ids: Iterable[int], allowed: Set[int]
                            ) -> dict[int, list[PairEvent]]:
        """The events of ``pair_ids`` that :func:`usable` lets a reader use, per pair (every
        pair asked for is a key), oldest first."""
        wanted = set(pair_ids)
        out: dict[int, list[PairEvent]] = {p: [] for p in sorted(wanted)}
        if not wanted:
            return out
        for r in await self.db.fetchall("SELECT * FROM pair_events ORDER BY pair_id, at, id"):
            if r["pair_id"] in wanted:
                event = _event(r)
                if usable(event, allowed):
                    out[event.pair_id].append(event)
        return out

    async def state(self, pair_id: int) -> str | None:
        found = await self.facts([pair_id])
        return found[pair_id].state if pair_id in found else None

    async def facts(self, pair_ids: Sequence[int] | None = None) -> dict[int, PairFacts]:
        where, ev_where, params = "", "", ()
        if pair_ids is not None:
            if not pair_ids:
                return {}
            marks = _placeholders(pair_ids)
            where, ev_where = f" WHERE id IN ({marks})", f" WHERE pair_id IN ({marks})"
            params = tuple(pair_ids)
        pairs = await self.db.fetchall(
            "SELECT id, programme_id, mentor_id, mentee_id, state, matched_at, closed_at "
            "FROM pairs" + where,
            params,
        )
        events: dict[int, list[tuple[str, datetime, dict[str, Any]]]] = {}
        said: dict[int, set[tuple[int, int]]] = {}
        for r in await self.db.fetchall(
            "SELECT pair_id, event, at, detail, participant_id FROM pair_events"  # noqa: S608
            + ev_where
            + " ORDER BY pair_id, at, id",
            params,
        ):
            detail = json.loads(r["detail"])
            events.setdefault(r["pair_id"], []).append(
                (r["event"], parse_iso(r["at"]), detail)
            )
            if r["event"] == "finish_said" and r["participant_id"] is not None:
                said.setdefault(r["pair_id"], set()).add(
                    (int(r["participant_id"]), int(detail.get("months") or 0)))
        out: dict[int, PairFacts] = {}
        for p in pairs:
            history = events.get(p["id"], [])
            matched_at = parse_iso(p["matched_at"]) if p["matched_at"] else None
            closed_at = parse_iso(p["closed_at"]) if p["closed_at"] else None
            if matched_at is None:
                state = p["state"]
            else:
                state = fold(e for e, _, _ in history)
                if closed_at is not None and state not in TERMINAL:
                    state = "closed"
            episodes = [at for e, at, _ in history if e in EPISODES]
            first_meeting = [at for e, at, _ in history if e in ("chemistry_held", "session_held")]
            out[p["id"]] = PairFacts(
                pair_id=p["id"],
                programme_id=p["programme_id"],
                mentor_id=p["mentor_id"],
                mentee_id=p["mentee_id"],
                matched_at=matched_at,
                closed_at=closed_at,
                state=state,
                last_episode_at=max(episodes) if episodes else None,
                chemistry_at=min(first_meeting) if first_meeting else None,
                extension_months=sum(
                    int(d.get("months", 0)) for e, _, d in history if e == "extended"
                ),
                finish_said=frozenset(said.get(p["id"], set())),
            )
        return out

    # -- internals ---------------------------------------------------------------------
    @staticmethod
    def _check(event: str, source: str) -> None:
        if event not in EVENTS:
            raise LifecycleError(f"unknown pair event {event!r}")
        if source not in SOURCES:
            raise LifecycleError(f"unknown event source {source!r}")

    @staticmethod
    async def _refresh(conn: aiosqlite.Connection, pair_id: int) -> None:
        """Bring the pairs row's cached state in line with its events."""
        async with conn.execute(
            "SELECT event, at FROM pair_events WHERE pair_id=? ORDER BY at, id", (pair_id,)
        ) as cur:
            rows = list(await cur.fetchall())
        async with conn.execute("SELECT matched_at FROM pairs WHERE id=?", (pair_id,)) as cur:
            pair = await cur.fetchone()
        if pair is None or pair[0] is None:
            return  # an unmatched pair has no lifecycle yet
        state = fold(r[0] for r in rows)
        closed_at = next((r[1] for r in rows if r[0] in TERMINAL), None)
        # Other modules only distinguish open from closed pairs (pair_of() skips 'closed'),
        # so a re-matched pair is cached as closed; the reason stays in the history.
        cached = "closed" if state in TERMINAL else state
        await conn.execute(
            "UPDATE pairs SET state=?, closed_at=? WHERE id=?", (cached, closed_at, pair_id)
        )
