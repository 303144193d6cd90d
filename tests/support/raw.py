"""A test's own plain connection to a store's database, outside the store, on either backend:
what a test reads to check what was really committed. SQL as the storage code writes it
(SQLite's dialect); on PostgreSQL it passes through storage.dialect like the store's own."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from storage import dialect


class _Pg:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.conn.execute(dialect.statement(sql).sql, params)


@contextlib.contextmanager
def connect(db: Path | str) -> Iterator[Any]:
    """``db`` is a SQLite file or a postgresql:// URL (a test's ``place.db``)."""
    if isinstance(db, str) and db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            yield _Pg(conn)
        return
    conn = sqlite3.connect(db)
    try:
        yield conn
    finally:
        conn.close()
