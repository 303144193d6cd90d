"""Backup of a PostgreSQL store with pg_dump: the data database and the key store database,
each to a file of its own (pg_dump's custom format, mode 0600, never overwriting one).

What ``mentorbot backup`` does on PostgreSQL. It is the per-programme logical copy an
operator takes before an upgrade or on a schedule of their own; a production server's
point-in-time recovery (WAL archiving, or a managed service's backups) stays the server's
own business and comes first (deploy/README.md, PostgreSQL). Restores are pg_restore's.

Each dump is taken from an exported snapshot of a transaction that also counts what it
holds, so the counts printed are those of the copy. The password never reaches pg_dump's
command line (where ``ps`` shows it): it goes by the PGPASSWORD environment variable.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from storage.backup import BackupResult
from storage.db import DatabaseError
from storage.private import private_file


def pg_dump() -> Path:
    """pg_dump from PATH, else the newest of Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which("pg_dump")
    if found:
        return Path(found)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"),
                      key=lambda p: int(Path(p).parent.parent.name)
                      if Path(p).parent.parent.name.isdigit() else 0)
    if versions:
        return Path(versions[-1])
    raise DatabaseError("pg_dump is not installed (apt-get install postgresql-client, of the "
                        "server's major version or newer)")


def without_password(url: str) -> tuple[str, dict[str, str]]:
    """The connection string with no password in it, and the environment that carries it."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    password = next((v for k, v in query if k == "password"), None)
    if parts.password:
        password = unquote(parts.password)
    netloc = parts.netloc.rsplit("@", 1)
    if len(netloc) == 2:
        user = netloc[0].split(":", 1)[0]
        netloc = [f"{user}@{netloc[1]}"]
    clean = urlunsplit((parts.scheme, netloc[0], parts.path,
                        urlencode([(k, v) for k, v in query if k != "password"]), ""))
    return clean, ({"PGPASSWORD": password} if password else {})


def _dump(url: str, out: Path, what: str, count: str) -> tuple[int, ...]:
    """Dump one database to ``out`` from a snapshot; what ``count`` counted in it."""
    import psycopg

    from storage.pg import redact

    clean, env = without_password(url)
    try:
        conn: Any = psycopg.connect(url, autocommit=False)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the {what} at {redact(url)} "
                            f"({type(exc).__name__})") from None
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        counts = tuple(int(v or 0) for v in conn.execute(count).fetchone())
        private_file(out, exclusive=True)
        done = subprocess.run(  # noqa: S603 (our own argument list, no shell)
            [str(pg_dump()), "--format=custom", "--no-owner", "--no-privileges",
             f"--snapshot={snapshot}", f"--file={out}", f"--dbname={clean}"],
            env={**os.environ, **env}, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            out.unlink(missing_ok=True)
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            for secret in env.values():
                last = last.replace(secret, "***")
            raise DatabaseError(f"pg_dump of the {what} at {redact(url)} failed: {last[:200]}")
    finally:
        conn.close()
    os.chmod(out, 0o600)
    return counts


def dump(url: str, keys_url: str, out: Path, keys_out: Path | None) -> BackupResult:
    """Both databases, each from its own snapshot (the key store's taken after the data's:
    every data row of the copy then has its key in the key store copy, as the order of a
    join's commits promises)."""
    for target in (out, keys_out):
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    version, people, entries = _dump(
        url, out, "database",
        "SELECT (SELECT MAX(version) FROM schema_migrations), "
        "(SELECT COUNT(*) FROM participants), (SELECT COUNT(*) FROM entries)")
    keys = 0
    if keys_out is not None:
        (keys,) = _dump(keys_url, keys_out, "key store", "SELECT COUNT(*) FROM data_keys")
    return BackupResult(out, keys_out, version, people, entries, keys, out.stat().st_size,
                        keys_out.stat().st_size if keys_out is not None else 0)
