"""The SQLite connection: WAL, foreign keys, versioned migrations, serialised writes.

One aiosqlite connection is shared by the whole process. Writes go through
``Database.transaction()`` (an asyncio lock around BEGIN/COMMIT) so that coroutines of
different chats never interleave statements inside each other's transactions.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from storage.private import narrow, private_dir, private_file

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class DatabaseError(Exception):
    """The database file is missing, unreadable or from a newer version."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def migrations() -> list[tuple[int, str, str]]:
    found = []
    for item in resources.files("storage").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    return sorted(found)


def default_keystore(path: Path) -> Path:
    return path.with_name(path.name + ".keys")


class Database:
    dialect = "sqlite"  # or "postgresql" (storage.pg.PgDatabase)

    def __init__(self, conn: aiosqlite.Connection, path: Path, keystore: Path) -> None:
        self.conn = conn
        self.path = path
        self.keystore = keystore
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, path: Path | str, *, keystore: Path | str | None = None, create: bool = True
    ) -> Database:
        if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
            # imported here: storage.pg imports this module
            from storage.pg import PgDatabase

            return await PgDatabase.open_url(path, None if keystore is None else str(keystore))
        if isinstance(keystore, str) and keystore.startswith(("postgresql://", "postgres://")):
            raise DatabaseError("a PostgreSQL key store needs the database on PostgreSQL too "
                                "(MENTORBOT_DB=postgresql://...), in another database")
        path = Path(path)
        keys = Path(keystore) if keystore else default_keystore(path)
        if not create and not path.exists():
            raise DatabaseError(f"no database at {path}")
        if path.exists() and not keys.exists() and not create:
            raise DatabaseError(f"no key store at {keys}")
        for file in (path, keys):
            try:
                private_dir(file.parent)
                private_file(file)
            except OSError as exc:
                raise DatabaseError(f"cannot create {file} ({type(exc).__name__})") from None
            for companion in ("-wal", "-shm"):
                narrow(file.with_name(file.name + companion))
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except Exception as exc:
            raise DatabaseError(f"cannot open database at {path}: {type(exc).__name__}") from None
        conn.row_factory = aiosqlite.Row
        db = cls(conn, path, keys)
        try:
            await db._configure()
            await db._migrate()
        except Exception:
            await conn.close()
            raise
        return db

    async def _configure(self) -> None:
        try:
            mode = await self.scalar("PRAGMA journal_mode=WAL")
        except aiosqlite.DatabaseError as exc:
            raise DatabaseError(f"{self.path} is not a usable SQLite database: {exc}") from None
        if str(mode).lower() != "wal":
            raise DatabaseError(f"could not switch {self.path} to WAL mode")
        await self.conn.execute("ATTACH DATABASE ? AS keys", (str(self.keystore),))
        try:
            await self.scalar("PRAGMA keys.journal_mode=WAL")
        except aiosqlite.DatabaseError as exc:
            raise DatabaseError(f"{self.keystore} is not a usable key store: {exc}") from None
        await self.conn.execute("PRAGMA keys.synchronous=NORMAL")
        await self.conn.execute("PRAGMA keys.secure_delete=ON")
        # NORMAL in WAL mode survives a process crash (SIGKILL); only an OS crash or power
        # loss can drop the last commits, which suits a chat bot with pending updates kept
        # by Telegram for 24 hours.
        await self.conn.execute("PRAGMA synchronous=NORMAL")
        await self.conn.execute("PRAGMA foreign_keys=ON")
        await self.conn.execute("PRAGMA busy_timeout=5000")
        # Freed pages are zeroed so deleted ciphertext does not linger in the file.
        await self.conn.execute("PRAGMA secure_delete=ON")

    async def _migrate(self) -> None:
        await self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        keystore_sql = resources.files("storage").joinpath("keystore.sql").read_text("utf-8")
        async with self._write_lock:
            await self.conn.executescript(keystore_sql)
            columns = {r[1] for r in await self.fetchall("PRAGMA keys.table_info(data_keys)")}
            if "pending" not in columns:
                # 1 from the moment a joining person's key is written until their participant
                # row is committed (storage.store.Store.join): a crash in between leaves a
                # pending key that start-up removes, never a participant without a key.
                await self.conn.execute(
                    "ALTER TABLE keys.data_keys ADD COLUMN pending INTEGER NOT NULL DEFAULT 0"
                )
        applied = {row[0] for row in await self.fetchall("SELECT version FROM schema_migrations")}
        known = migrations()
        newest = max((v for v, _, _ in known), default=0)
        if applied and max(applied) > newest:
            raise DatabaseError(
                f"{self.path} was written by a newer mentorbot (schema {max(applied)}); upgrade"
            )
        for version, name, sql in known:
            if version in applied:
                continue
            async with self._write_lock:
                # executescript commits implicitly, so the migration and its record are
                # written in one script to keep them atomic.
                await self.conn.executescript(
                    "BEGIN;\n"
                    + sql
                    + f"\nINSERT INTO schema_migrations VALUES ({version}, '{name}', "
                    f"'{iso(utcnow())}');\nCOMMIT;"
                )

    async def schema_version(self) -> int:
        return int(await self.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def close(self) -> None:
        await self.conn.close()

    # -- reads -------------------------------------------------------------------------
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self.conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self.conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    # -- writes ------------------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement, atomic on its own (autocommit); returns lastrowid.

        Taking the write lock keeps it out of any other coroutine's open transaction;
        skipping BEGIN/COMMIT saves two round trips to the database thread.
        """
        async with self._write_lock:
            cur = await self.conn.execute(sql, params)
            return int(cur.lastrowid or 0)

    async def execute_count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Like execute, but returns the number of rows changed."""
        async with self._write_lock:
            cur = await self.conn.execute(sql, params)
            return int(cur.rowcount)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def integrity_check(self) -> str:
        return str(await self.scalar("PRAGMA integrity_check"))
