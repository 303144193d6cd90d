"""Every table that holds a participant's data, once: what erasure deletes, what /mydata
hands over and what the erasure message names all come from :data:`TABLES`.

A table holding a participant id (directly, or through one of their entries) that is not
listed here fails tests/test_personal_data.py, so a new table cannot be forgotten by erasure
or by the person's copy of their data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.db import Database

_OF_ENTRIES = "entry_id IN (SELECT id FROM entries WHERE participant_id=:p)"


@dataclass(frozen=True)
class Table:
    name: str
    where: str  # the person's rows, with :p their participant id
    words: str  # what the erasure message calls these rows
    # /mydata: the section these rows appear under and their columns, exported as stored
    # (never a ciphertext column). No section: the rows are shown decrypted and rendered
    # by their own repository (entries, answers, codes, activity), or are the bot's
    # internal bookkeeping of a conversation in progress.
    section: str | None = None
    columns: tuple[str, ...] = ()
    after_links: bool = False  # deleted once the links to the person are cut


# In the order erasure deletes them (embeddings first: deleting an answer deletes its
# embeddings by trigger; answers and codes before their entries; counts of pair events are
# what is left once the entries' own events have gone with them).
TABLES: tuple[Table, ...] = (
    # derived from the answers /mydata hands over, and only readable with the person's key
    Table("answer_embeddings", _OF_ENTRIES, "sentence embeddings of your answers"),
    Table("answers", _OF_ENTRIES, "answers"),
    Table("entry_codes", _OF_ENTRIES, "automatic codes read in your entries"),
    Table("entries", "participant_id=:p",
          "entries (reflections, logs and check-ins, including drafts)"),
    Table("conversation_state", "participant_id=:p", "your place in a conversation"),
    Table("audit_log", "participant_id=:p", "activity records about you"),
    Table("consent_ledger", "participant_id=:p", "your earlier consent decisions",
          "consent_decisions", ("scope", "version", "granted", "source", "at")),
    Table("reminders", "participant_id=:p", "scheduled reminders", "reminders",
          ("kind", "pair_id", "due_at", "status", "sent_at", "reason", "acted", "snoozes",
           "created_at"), after_links=True),
    Table("reminder_prefs", "participant_id=:p", "your quiet hours", "quiet_hours",
          ("quiet_start", "quiet_end", "updated_at"), after_links=True),
    Table("pair_events", "participant_id=:p", "milestones from your session logs",
          "pair_events", ("pair_id", "event", "at", "source", "entry_id"), after_links=True),
    Table("chat_prefs", "participant_id=:p", "your chat settings", "chat_settings",
          ("tidy_chat", "updated_at"), after_links=True),
    # "for whom" (issue 14): sealed answers, shown decrypted by conversations.mydata
    Table("participant_context", "participant_id=:p",
          "your answers about your role and how you joined", after_links=True),
    Table("coordinator_digests", "participant_id=:p", "your weekly summary schedule",
          "weekly_summary", ("weekday", "at", "updated_at"), after_links=True),
)
# Rows that name the person among others': the link is cut, the row stays.
LINKS: tuple[tuple[str, str], ...] = (
    ("pairs", "mentor_id"),
    ("pairs", "mentee_id"),
    ("invites", "used_by"),
    ("accounts", "in_use"),  # the membership in use, when it is this one
)
PAIR_LINKS = "pair_links"
PROFILE = "participant_and_data_key"
# The account (the keyed hash of the Telegram id, the time zone): deleted with the last
# membership it holds, never with one of several.
ACCOUNT = "account"
_WORDS = {t.name: t.words for t in TABLES} | {
    PAIR_LINKS: "your link to your mentoring pair",
    PROFILE: "your profile, chat details and encryption key",
    ACCOUNT: "your account (the keyed hash of your Telegram id, your time zone)",
}
# The tables these rows live in, for the schema check: every table here or in LINKS, or
# the participants table itself, is accounted for.
ACCOUNTED = frozenset({t.name for t in TABLES} | {table for table, _ in LINKS}
                      | {"participants"})


def describe(key: str) -> str:
    """The erasure message's words for one line of an erasure report."""
    return _WORDS.get(key, key)


async def delete_rows(conn: Any, participant_id: int) -> dict[str, int]:
    """Inside the caller's transaction: every row of the person's data, and every link to
    them cut (the participant row itself is the caller's, last). Rows deleted per table."""
    deleted: dict[str, int] = {}
    for table in TABLES:
        if not table.after_links:
            deleted[table.name] = await _delete(conn, table, participant_id)
    for table_name, column in LINKS:
        cur = await conn.execute(
            f"UPDATE {table_name} SET {column}=NULL WHERE {column}=?",  # noqa: S608
            (participant_id,),
        )
        if table_name == "pairs":
            deleted[PAIR_LINKS] = deleted.get(PAIR_LINKS, 0) + cur.rowcount
    for table in TABLES:
        if table.after_links:
            deleted[table.name] = await _delete(conn, table, participant_id)
    return deleted


async def _delete(conn: Any, table: Table, participant_id: int) -> int:
    cur = await conn.execute(
        f"DELETE FROM {table.name} WHERE {table.where}",  # noqa: S608
        {"p": participant_id},
    )
    return int(cur.rowcount)


async def sections(db: Database, participant_id: int) -> dict[str, list[dict[str, Any]]]:
    """/mydata's plain sections: each mapped table's rows of the person, oldest first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for table in TABLES:
        if table.section is None:
            continue
        rows = await db.fetchall(
            f"SELECT {', '.join(table.columns)} FROM {table.name} "  # noqa: S608
            f"WHERE {table.where.replace(':p', '?')} ORDER BY rowid",
            (participant_id,),
        )
        out[table.section] = [dict(r) for r in rows]
    return out
