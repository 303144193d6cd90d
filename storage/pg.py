"""The PostgreSQL backend: the same ``Database`` interface over psycopg 3.

Chosen by a ``postgresql://`` connection string in ``MENTORBOT_DB``. The storage code's SQL
is SQLite's; :mod:`storage.dialect` translates each statement. The key store is another
PostgreSQL database (``MENTORBOT_KEYSTORE=postgresql://...``), never the entries' own: a
backup of the data must not carry the keys that open it, and erasure destroys a key there
first. Statements that name ``keys.`` tables go to it.

Connections, per database: one for writes and transactions, behind the same asyncio lock as
SQLite's (so one process's statements never interleave inside each other's transactions),
and one for reads outside a transaction (autocommit: each read sees the latest commit of
any process). A read inside a transaction uses the transaction's connection and so sees its
uncommitted writes, as on SQLite.

A transaction that writes both databases commits the key store first, then the data (the
order a join and an erasure need: a key exists before anything sealed with it, and is gone
before anything else of an erased person). Like SQLite in WAL mode with an attached key
store, the two commits are not atomic as a pair; start-up repairs what a crash between
them leaves (see storage.store and storage.vault).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from storage import dialect
from storage.db import Database, DatabaseError, iso, migrations, utcnow

SCHEMES = ("postgresql://", "postgres://")
MIGRATION_LOCK = 0x6D656E74  # advisory lock key: one process migrates, the others wait

# Set while the current task (and what it starts) holds a transaction.
_IN_TX: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
    "mentorbot_pg_tx", default=None)


def is_postgres(target: object) -> bool:
    return isinstance(target, str) and target.startswith(SCHEMES)


def redact(url: str) -> str:
    """A connection string fit for a message: no password, no query options."""
    parts = urlsplit(url)
    host = parts.hostname or "local socket"
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql://{host}{port}{parts.path or '/'}"


class Row(tuple):
    """A result row read by position or by column name (like sqlite3.Row)."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@dataclass
class Cursor:
    """What a statement left: the part of aiosqlite's cursor the storage code reads."""

    rows: list[Row]
    rowcount: int
    lastrowid: int

    async def fetchall(self) -> list[Row]:
        return self.rows

    async def fetchone(self) -> Row | None:
        return self.rows[0] if self.rows else None

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Pending:
    """``conn.execute(...)`` is awaited or used with ``async with``, as with aiosqlite."""

    def __init__(self, coro: Any) -> None:
        self._coro = coro

    def __await__(self) -> Any:
        return self._coro.__await__()

    async def __aenter__(self) -> Cursor:
        cursor: Cursor = await self._coro
        return cursor

    async def __aexit__(self, *exc: object) -> None:
        return None


def _params(params: Any) -> Any:
    # SQLite stores True as 1; PostgreSQL refuses a boolean for an integer column
    if isinstance(params, dict):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return tuple(int(v) if isinstance(v, bool) else v for v in params)


async def _run(conn: Any, stmt: dialect.Statement, params: Any) -> Cursor:
    async with conn.cursor() as cur:
        await cur.execute(stmt.sql, _params(params))
        rows: list[Row] = []
        if cur.description is not None:
            index = {c.name: i for i, c in enumerate(cur.description)}
            rows = [Row(v, index) for v in await cur.fetchall()]
        lastrowid = 0
        if stmt.returns_id:
            lastrowid = int(rows[-1][0]) if rows else 0
            rows = []
        return Cursor(rows, max(cur.rowcount, 0), lastrowid)


async def _connect(url: str, what: str, autocommit: bool = True) -> Any:
    import psycopg

    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=autocommit)
    except psycopg.Error as exc:
        # the driver's message may quote the connection string: say what and where only
        raise DatabaseError(
            f"cannot connect to the {what} at {redact(url)} ({type(exc).__name__}); check "
            f"{'MENTORBOT_DB' if what == 'database' else 'MENTORBOT_KEYSTORE'}") from None


class Transaction:
    """The connection object a ``transaction()`` block gets: routes each statement to the
    data or the key store database, opening the key store's transaction when first used."""

    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        self.keys_open = False
        self.sequences: dict[str, None] = {}

    @property
    def total_changes(self) -> int:
        return self.db.conn.total_changes

    def execute(self, sql: str, params: Any = ()) -> _Pending:
        return _Pending(self._execute(sql, params))

    async def _execute(self, sql: str, params: Any) -> Cursor:
        stmt = dialect.statement(sql)
        if stmt.sql.upper().startswith("PRAGMA"):
            return Cursor([], 0, 0)  # checkpoints and the like: nothing to do here
        if stmt.keystore:
            if not self.keys_open:
                await self.db.keys_write.execute("BEGIN")
                self.keys_open = True
            return await _run(self.db.keys_write, stmt, params)
        if stmt.sets_id:
            self.sequences.update(stmt.sets_id)
        cursor = await _run(self.db.write, stmt, params)
        self.db.conn.total_changes += cursor.rowcount
        return cursor

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        stmt = dialect.statement(sql)
        batch = [_params(r) for r in rows]
        if not batch:
            return Cursor([], 0, 0)
        if stmt.keystore:
            if not self.keys_open:
                await self.db.keys_write.execute("BEGIN")
                self.keys_open = True
            target = self.db.keys_write
        else:
            target = self.db.write
            if stmt.sets_id:
                self.sequences.update(stmt.sets_id)
        plain = stmt.sql.removesuffix(" RETURNING id") if stmt.returns_id else stmt.sql
        async with target.cursor() as cur:
            await cur.executemany(plain, batch)
            changed = max(0, cur.rowcount)  # psycopg sums the rows of every statement
        if not stmt.keystore:
            self.db.conn.total_changes += changed
        return Cursor([], changed, 0)


class _Changes:
    """Stands in for ``Database.conn`` where the code reads ``total_changes``."""

    def __init__(self) -> None:
        self.total_changes = 0

    async def execute(self, sql: str, params: Any = ()) -> Cursor:
        # the checkpoints SQLite needs after an erasure; PostgreSQL has no such step
        if sql.lstrip().upper().startswith("PRAGMA"):
            return Cursor([], 0, 0)
        raise DatabaseError("direct connection use is not available on PostgreSQL")


class SnapshotRead:
    """Reads in one REPEATABLE READ, READ ONLY transaction on a connection of its own: every
    statement sees the same committed state, whatever commits meanwhile (see
    :meth:`PgDatabase.snapshot_read`)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._cursors = 0

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return (await _run(self._conn, dialect.statement(sql), params)).rows

    async def stream(self, sql: str, params: Sequence[Any] = ()) -> ServerCursor:
        """``sql``'s rows from a server-side (named) cursor, fetched batch by batch."""
        self._cursors += 1
        cur = self._conn.cursor(f"mentorbot_bulk_{self._cursors}")
        await cur.execute(dialect.statement(sql).sql, _params(params))
        return ServerCursor(cur)


class ServerCursor:
    def __init__(self, cur: Any) -> None:
        self._cur = cur
        self._index: dict[str, int] | None = None

    async def fetchmany(self, size: int) -> list[Row]:
        values = await self._cur.fetchmany(size)
        if self._index is None and self._cur.description is not None:
            self._index = {c.name: i for i, c in enumerate(self._cur.description)}
        return [Row(v, self._index or {}) for v in values]


class PgDatabase(Database):
    """``storage.db.Database`` on PostgreSQL (see the module's docstring)."""

    def __init__(self, url: str, keystore_url: str, conns: dict[str, Any]) -> None:
        super().__init__(_Changes(), url, keystore_url)  # type: ignore[arg-type]
        self.url = url
        self.keystore_url = keystore_url
        self.write = conns["write"]
        self.read = conns["read"]
        self.keys_write = conns["keys_write"]
        self.keys_read = conns["keys_read"]
        self.dialect = "postgresql"

    @classmethod
    async def open_url(cls, url: str, keystore: str | None) -> PgDatabase:
        if not keystore:
            raise DatabaseError(
                "a PostgreSQL database needs its key store in another database: set "
                "MENTORBOT_KEYSTORE=postgresql://... (its own database, role and backups)")
        if not is_postgres(keystore):
            raise DatabaseError(
                "with MENTORBOT_DB on PostgreSQL, MENTORBOT_KEYSTORE must be a postgresql:// "
                "connection string to another database")
        conns: dict[str, Any] = {}
        try:
            for name, target, what in (("write", url, "database"), ("read", url, "database"),
                                       ("keys_write", keystore, "key store"),
                                       ("keys_read", keystore, "key store")):
                conns[name] = await _connect(target, what)
            db = cls(url, keystore, conns)
            await db._refuse_same_database()
            await db._migrate()
        except BaseException:
            for conn in conns.values():
                with contextlib.suppress(Exception):
                    await conn.close()
            raise
        return db

    async def _identity(self, conn: Any) -> tuple[Any, ...]:
        async with conn.cursor() as cur:
            await cur.execute(
                "SELECT current_database(), pg_postmaster_start_time(), "
                "(SELECT oid FROM pg_database WHERE datname = current_database())")
            return tuple(await cur.fetchone())

    async def _refuse_same_database(self) -> None:
        if await self._identity(self.write) == await self._identity(self.keys_write):
            raise DatabaseError(
                f"MENTORBOT_KEYSTORE names the same database as MENTORBOT_DB "
                f"({redact(self.url)}): the keys must live in another database, so that a "
                "copy of the data never carries the keys that open it; create one (for "
                "example createdb mentorbot_keys) and point MENTORBOT_KEYSTORE at it")

    async def _migrate(self) -> None:
        keystore_sql = resources.files("storage").joinpath("keystore.sql").read_text("utf-8")
        async with self._write_lock:
            async with self.keys_write.transaction():
                await self.keys_write.execute("SELECT pg_advisory_xact_lock(%s)",
                                              (MIGRATION_LOCK,))
                for sql in dialect.migration(keystore_sql, {}):
                    await self.keys_write.execute(sql.replace(
                        "CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1).replace(
                        "IF NOT EXISTS IF NOT EXISTS", "IF NOT EXISTS"))
                # see storage.db: a joining person's key is pending until their row commits
                await self.keys_write.execute(
                    "ALTER TABLE data_keys ADD COLUMN IF NOT EXISTS pending BIGINT NOT NULL "
                    "DEFAULT 0")
            async with self.write.transaction():
                # several processes may start at once: one migrates, the others wait here
                # and then find nothing left to do
                await self.write.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                await self.write.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
                cur = await self.write.execute("SELECT version FROM schema_migrations")
                applied = {int(r[0]) for r in await cur.fetchall()}
                known = migrations()
                newest = max((v for v, _, _ in known), default=0)
                if applied and max(applied) > newest:
                    raise DatabaseError(
                        f"{redact(self.url)} was written by a newer mentorbot (schema "
                        f"{max(applied)}); upgrade")
                triggers: dict[str, str] = {}
                for version, name, sql in known:
                    statements = dialect.migration(sql, triggers)  # triggers of all of them
                    if version in applied:
                        continue
                    for stmt in statements:
                        await self.write.execute(stmt)
                    await self.write.execute(
                        "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                        (version, name, iso(utcnow())))

    async def close(self) -> None:
        for conn in (self.write, self.read, self.keys_write, self.keys_read):
            with contextlib.suppress(Exception):
                await conn.close()

    # -- reads -------------------------------------------------------------------------
    async def _query(self, sql: str, params: Any) -> Cursor:
        stmt = dialect.statement(sql)
        head = stmt.sql.lstrip().upper()
        if head.startswith("PRAGMA"):
            return await self._pragma(stmt.sql)
        tx = _IN_TX.get()
        if tx is not None:
            return await tx._execute(sql, params)
        return await _run(self.keys_read if stmt.keystore else self.read, stmt, params)

    async def _pragma(self, sql: str) -> Cursor:
        name = sql.split(None, 1)[1].strip().lower()
        index = {"value": 0}
        if name == "data_version":
            # SQLite's "has anyone else committed": the next transaction id moves with
            # every writing transaction on the server
            async with self.read.cursor() as cur:
                await cur.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
                row = await cur.fetchone()
            return Cursor([Row((int(row[0]),), index)], 0, 0)
        if name in ("integrity_check", "quick_check"):
            # PostgreSQL checks pages itself (checksums, WAL); a query that reads the
            # catalogue is what is left to ask of a running server
            async with self.read.cursor() as cur:
                await cur.execute("SELECT count(*) FROM pg_class")
            return Cursor([Row(("ok",), index)], 0, 0)
        if "wal_checkpoint" in name:
            return Cursor([], 0, 0)
        raise DatabaseError(f"PRAGMA {name} has no PostgreSQL equivalent here")

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return (await self._query(sql, params)).rows

    @contextlib.asynccontextmanager
    async def snapshot_read(self) -> AsyncIterator[SnapshotRead]:
        """A bulk read (a report, an export) in one consistent snapshot: its own connection,
        one REPEATABLE READ, READ ONLY transaction, rolled back at the end. Pages read by key
        on the shared autocommit connection could each see a different commit."""
        import psycopg

        conn = await _connect(self.url, "database", autocommit=False)
        try:
            await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
            await conn.set_read_only(True)
            yield SnapshotRead(conn)
        finally:
            with contextlib.suppress(Exception):
                await conn.rollback()
            await conn.close()

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = (await self._query(sql, params)).rows
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    # -- writes ------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        outer = _IN_TX.get()
        if outer is not None:
            raise DatabaseError("a transaction inside a transaction")
        async with self._write_lock:
            tx = Transaction(self)
            token = _IN_TX.set(tx)
            await self.write.execute("BEGIN")
            try:
                yield tx
                for table in tx.sequences:
                    # rows given explicit ids (bulk writers): the identity continues after
                    # them, as SQLite's rowid would
                    await self.write.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"GREATEST((SELECT MAX(id) FROM {table}), 1))")
            except BaseException:
                _IN_TX.reset(token)
                with contextlib.suppress(Exception):
                    await self.write.execute("ROLLBACK")
                if tx.keys_open:
                    with contextlib.suppress(Exception):
                        await self.keys_write.execute("ROLLBACK")
                raise
            _IN_TX.reset(token)
            try:
                if tx.keys_open:
                    await self.keys_write.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.write.execute("ROLLBACK")
                raise
            await self.write.execute("COMMIT")

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return (await self._write(sql, params)).lastrowid

    async def _write(self, sql: str, params: Any) -> Cursor:
        if _IN_TX.get() is not None:
            return await self._query(sql, params)
        async with self.transaction() as tx:
            return await tx._execute(sql, params)

    async def execute_count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return (await self._write(sql, params)).rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    async def integrity_check(self) -> str:
        return str(await self.scalar("PRAGMA integrity_check"))
