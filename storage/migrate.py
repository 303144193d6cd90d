"""Moving a programme's store from SQLite to PostgreSQL (``mentorbot migrate-store``).

Rows are copied as they are stored: ciphertext stays ciphertext (no key is unwrapped and no
entry opened to copy it), ids stay the same (every sealed value's associated data and every
tamper MAC names its row), and the wrapped data and system keys go to the new key store
database, never to the data's. Both targets must be empty; each is written in one
transaction, so a failed copy leaves nothing behind but the empty schema. The caller then
compares counts per table (returned here) and opens a sample with the master key
(bot.ops.migrate_store). Table names and counts only: nothing a person wrote.
"""

from __future__ import annotations

import graphlib
import itertools
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.db import DatabaseError

KEY_TABLES = ("data_keys", "system_keys", "erasures", "markers")  # storage/keystore.sql
SKIPPED = ("schema_migrations",)  # the target's own, at the same version (both migrated)
BATCH = 5000


@dataclass(frozen=True)
class Copied:
    tables: dict[str, int]  # data tables: rows in the source, equal in the target
    keys: dict[str, int]  # key store tables likewise


def _source_tables(conn: sqlite3.Connection, schema: str) -> list[str]:
    rows = conn.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type='table' AND "  # noqa: S608
                        "name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    return [r[0] for r in rows if r[0] not in SKIPPED]


def _in_order(conn: sqlite3.Connection,
              tables: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Referenced tables before the tables that refer to them (PostgreSQL checks foreign
    keys row by row), and the nullable reference columns left out of that order to break a
    cycle (accounts.in_use and participants.account_id refer to each other): those are
    copied as NULL and set once every row is in."""
    edges: dict[tuple[str, str], tuple[str, bool]] = {}  # (table, referenced) -> column
    for table in tables:
        notnull = {r[1]: bool(r[3]) for r in conn.execute(f"PRAGMA main.table_info({table})")}
        for ref in conn.execute(f"PRAGMA main.foreign_key_list({table})"):
            if ref[2] in tables and ref[2] != table:
                edges[(table, ref[2])] = (ref[3], notnull.get(ref[3], False))
    deferred: dict[str, list[str]] = {}
    while True:
        graph: dict[str, set[str]] = {t: set() for t in tables}
        for (table, referenced) in edges:
            graph[table].add(referenced)
        try:
            return list(graphlib.TopologicalSorter(graph).static_order()), deferred
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            links = list(itertools.pairwise(cycle))
            # the cycle lists each table after the one it depends on, or before: try both
            nullable = [e for pair in links for e in (pair, pair[::-1])
                        if e in edges and not edges[e][1]]
            if not nullable:
                raise DatabaseError("the source's tables refer to each other in a cycle of "
                                    "required columns; this mentorbot cannot order the copy"
                                    ) from None
            table, referenced = nullable[0]
            deferred.setdefault(table, []).append(edges.pop((table, referenced))[0])


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def _target_columns(pg: Any, table: str) -> set[str]:
    rows = pg.execute("SELECT column_name FROM information_schema.columns WHERE table_schema "
                      "= current_schema() AND table_name = %s", (table,)).fetchall()
    return {r[0] for r in rows}


def _rows(conn: sqlite3.Connection, schema: str, table: str,
          columns: list[str]) -> Iterator[tuple[Any, ...]]:
    cur = conn.execute(f"SELECT {', '.join(columns)} FROM {schema}.{table} "  # noqa: S608
                       "ORDER BY rowid")  # insertion order, which some reads rely on
    while batch := cur.fetchmany(BATCH):
        yield from batch


def _count(pg: Any, table: str) -> int:
    return int(pg.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


def refuse_unless_empty(url: str, keys_url: str, tables: list[str]) -> None:
    """Both targets hold no rows in any table the copy writes."""
    import psycopg

    from storage.pg import redact

    for target, names, what in ((url, tables, "database"), (keys_url, KEY_TABLES, "key store")):
        with psycopg.connect(target, autocommit=True) as pg:
            full = [t for t in names if _count(pg, t)]
        if full:
            raise DatabaseError(
                f"the target {what} {redact(target)} is not empty ({', '.join(full[:4])} "
                "hold rows): migrate-store only writes into new, empty databases "
                "(createdb NAME, then run it again)")


def copy(source: Path, source_keys: Path, url: str, keys_url: str) -> Copied:
    """Copy every data table and key store table; the targets' schema must exist (opened
    once by mentorbot) and be empty. Returns the counts, checked equal in the targets."""
    import psycopg

    from storage.dialect import id_tables

    lite = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True,
                           isolation_level=None)
    try:
        lite.execute("ATTACH DATABASE ? AS keys", (f"{source_keys.resolve().as_uri()}?mode=ro",))
        lite.execute("BEGIN")  # one snapshot of both files
        tables, deferred = _in_order(lite, _source_tables(lite, "main"))
        missing = set(KEY_TABLES) - set(_source_tables(lite, "keys"))
        if missing:
            raise DatabaseError(f"{source_keys} is not a mentorbot key store")
        refuse_unless_empty(url, keys_url, tables)
        with psycopg.connect(keys_url) as keys_pg, psycopg.connect(url) as data_pg:
            keys = {t: _copy_table(lite, keys_pg, "keys", t) for t in KEY_TABLES}
            # the triggers that drop stale codes and embeddings when an answer is written
            # must not fire for rows copied as they are
            for table in tables:
                data_pg.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            copied = {t: _copy_table(lite, data_pg, "main", t, deferred.get(t, []))
                      for t in tables}
            for table, columns in deferred.items():
                for column in columns:
                    with data_pg.cursor() as cur:
                        cur.executemany(
                            f"UPDATE {table} SET {column} = %s WHERE id = %s",  # noqa: S608
                            lite.execute(f"SELECT {column}, id FROM main.{table} "  # noqa: S608
                                         f"WHERE {column} IS NOT NULL").fetchall())
            for table in tables:
                data_pg.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            for table in sorted(set(tables) & id_tables()):
                # new rows continue after the copied ids, as SQLite's would
                data_pg.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                                f"GREATEST((SELECT MAX(id) FROM {table}), 1))")
            # the key store first: no data row is ever committed without its key
            keys_pg.commit()
            data_pg.commit()
    finally:
        lite.close()
    with psycopg.connect(url, autocommit=True) as data_pg, \
            psycopg.connect(keys_url, autocommit=True) as keys_pg:
        wrong = [t for t, n in copied.items() if _count(data_pg, t) != n]
        wrong += [t for t, n in keys.items() if _count(keys_pg, t) != n]
    if wrong:
        raise DatabaseError(f"counts differ after the copy in {', '.join(wrong)}: drop both "
                            "target databases, create them again and run migrate-store again")
    return Copied(copied, keys)


def _copy_table(lite: sqlite3.Connection, pg: Any, schema: str, table: str,
                later: list[str] | None = None) -> int:
    """One table by COPY; ``later`` columns are written NULL (set afterwards)."""
    columns = _columns(lite, schema, table)
    blank = [i for i, c in enumerate(columns) if c in (later or [])]
    absent = set(columns) - _target_columns(pg, table)
    if absent:
        raise DatabaseError(f"the target's {table} lacks columns {sorted(absent)}: the two "
                            "mentorbot versions differ; run migrate-store with the same one")
    count = 0
    with pg.cursor() as cur, cur.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN") as out:
        for row in _rows(lite, schema, table, columns):
            if blank:
                row = tuple(None if i in blank else v for i, v in enumerate(row))
            out.write_row(row)
            count += 1
    return count


async def same_sample(old: Any, new: Any, size: int) -> int:
    """Open up to ``size`` complete entries, spread over the ids, in both stores (each with
    its own key store) and compare them; returns how many, raises on any difference."""
    rows = await old.db.fetchall(
        "SELECT id, participant_id FROM entries WHERE status='complete' ORDER BY id")
    step = max(1, len(rows) // max(1, size))
    picked = rows[::step][:size]
    for row in picked:
        entry, person = int(row[0]), int(row[1])
        theirs = await new.entries.answers(person, entry)
        if not theirs or theirs != await old.entries.answers(person, entry):
            raise DatabaseError(f"entry {entry} does not open the same in the target; drop "
                                "both target databases and run migrate-store again")
    return len(picked)
