"""One personal-data map (storage.personal_data): every table holding a participant id is in
it, /mydata hands over every table in it, and erasure leaves nothing in any of them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from conversations.catalogue import load_flows
from conversations.mydata import collect
from storage import personal_data
from storage.db import iso, utcnow
from storage.store import Store
from tests.people import Cohort

pytestmark = pytest.mark.both_backends


def unmapped(conn: sqlite3.Connection) -> set[str]:
    """Tables that hold a participant id, directly or through an entry, and are not in the
    map. Read from the schema the migrations built, not from a list kept by hand."""
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    holding = set()
    for table in tables:
        columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        refs = {r[2] for r in conn.execute(f"PRAGMA foreign_key_list({table})")}
        if "participant_id" in columns or refs & {"participants", "entries"}:
            holding.add(table)
    return holding - personal_data.ACCOUNTED


@pytest.mark.sqlite_only  # reads SQLite's own schema tables
async def test_every_table_holding_a_participant_id_is_in_the_map(store: Store,
                                                                  db_path: Path) -> None:
    await store.close()  # every migration applied
    conn = sqlite3.connect(db_path)
    try:
        assert unmapped(conn) == set()
        # a table added tomorrow without a line in the map is caught, by column or by key
        conn.execute("CREATE TABLE nudges (id INTEGER PRIMARY KEY, participant_id INTEGER)")
        conn.execute("CREATE TABLE entry_notes (entry_id INTEGER REFERENCES entries(id))")
        assert unmapped(conn) == {"nudges", "entry_notes"}
    finally:
        conn.close()
    for table in personal_data.TABLES:
        assert table.section is None or table.columns, table.name


async def test_mydata_holds_every_table_and_erasure_empties_them(
        cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow()
    me = await store.participants.by_user(7001)
    assert me is not None
    now = iso(utcnow())
    # one row in each table the chat fills over weeks (reminders, quiet hours, ...)
    await store.db.execute(
        "INSERT INTO reminders (kind, participant_id, pair_id, due_at, dedupe_key, created_at, "
        "updated_at) VALUES ('reflection', ?, ?, ?, 'test:1', ?, ?)",
        (me.id, cohort.pair_id, now, now, now))
    await store.db.execute(
        "INSERT INTO reminder_prefs (participant_id, quiet_start, quiet_end, updated_at) "
        "VALUES (?, '22:00', '07:00', ?)", (me.id, now))
    await store.db.execute(
        "INSERT INTO chat_prefs (participant_id, tidy_chat, updated_at) VALUES (?, 1, ?)",
        (me.id, now))
    await store.lifecycle.record(cohort.pair_id, "contact", at=utcnow(), source="answer",
                                 now=utcnow(), participant_id=me.id)
    await store.digests.set(me.id, 1, "08:30")
    await store.context.mark_asked(me.id)
    await store.context.save(me.id, "sector", "acute")

    data = await collect(store, me, load_flows())
    for table in personal_data.TABLES:
        if table.section is not None:
            assert data[table.section], table.name  # the person's row is handed over
            assert set(data[table.section][0]) == set(table.columns)
    assert data["quiet_hours"][0]["quiet_start"] == "22:00"
    assert data["weekly_summary"][0] == {"weekday": 1, "at": "08:30",
                                         "updated_at": data["weekly_summary"][0]["updated_at"]}
    json.dumps(data)  # all of it fits the JSON file

    report = await store.erase(me.id)
    for table in personal_data.TABLES:
        left = await store.db.scalar(
            f"SELECT COUNT(*) FROM {table.name} WHERE {table.where.replace(':p', '?')}",
            (me.id,))
        assert left == 0, table.name
    told = {personal_data.describe(k) for k, n in report.deleted.items() if n}
    assert {"your quiet hours", "scheduled reminders", "your chat settings",
            "your weekly summary schedule", "answers",
            "your answers about your role and how you joined"} <= told
    assert data["about_your_role"][0]["answer"] == "Hospital (acute)"
