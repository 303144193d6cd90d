"""A throw-away PostgreSQL server for the tests: initdb in a temporary folder, a unix socket
only (no TCP port), stopped and removed at the end.

The binaries come from PATH or from Debian's /usr/lib/postgresql/<version>/bin (``.ci/run``
installs the ``postgresql`` package when neither has them). PostgreSQL refuses to run as
root; as root the server runs as the ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit


class NoServer(Exception):
    """No PostgreSQL binaries on this machine (the message says how to get them)."""


def binaries() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name)
                      if Path(p).parent.parent.name.isdigit() else 0)
    if versions:
        return Path(versions[-1]).parent
    raise NoServer("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
                   "/usr/lib/postgresql/*/bin: apt-get install postgresql")


@dataclass
class Server:
    socket_dir: Path
    user: str
    template: tuple[str, str] | None = None

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@/{database}?host={quote(str(self.socket_dir))}"

    def psql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def fresh(self, stem: str = "t", *, migrated: bool = False) -> tuple[str, str]:
        """A new empty database and a new empty key store database: their URLs. With
        ``migrated``, copies of a pair the migrations have already run on (no keys, no
        rows): a file copy on the server, several times faster than migrating each."""
        name = f"{stem}_{uuid.uuid4().hex[:10]}"
        import psycopg

        data_from = keys_from = ""
        if migrated:
            data, keys = self._template()
            data_from = f' TEMPLATE "{data}" STRATEGY FILE_COPY'
            keys_from = f' TEMPLATE "{keys}" STRATEGY FILE_COPY'
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{data_from}')
            conn.execute(f'CREATE DATABASE "{name}_keys"{keys_from}')
        return self.url(name), self.url(name + "_keys")

    def _template(self) -> tuple[str, str]:
        """The migrated pair ``fresh(migrated=True)`` copies, made on first use."""
        if self.template is None:
            import asyncio
            import threading

            from storage.db import Database

            name = f"template_{uuid.uuid4().hex[:10]}"
            import psycopg

            with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
                conn.execute(f'CREATE DATABASE "{name}_keys"')

            async def migrate() -> None:
                db = await Database.open(self.url(name), keystore=self.url(name + "_keys"))
                await db.close()

            # in a thread of its own: a test's event loop may be running in this one
            failed: list[BaseException] = []

            def run() -> None:
                try:
                    asyncio.run(migrate())
                except BaseException as exc:
                    failed.append(exc)

            worker = threading.Thread(target=run)
            worker.start()
            worker.join()
            if failed:
                raise failed[0]
            self.template = (name, name + "_keys")
        return self.template

    def drop(self, *urls: str) -> None:
        """Remove the databases of a finished test (each is several megabytes on disk)."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            for url in urls:
                # the path names the database (the query's host=/… is the socket's folder)
                name = urlsplit(url).path.lstrip("/")
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running() -> Iterator[Server]:
    bindir = binaries()
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="mentorbot-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if as_root:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise NoServer("running as root and there is no postgres user to run the server "
                           "as: apt-get install postgresql creates one") from None
        for path in (base, sock):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        prefix = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}",
                  "--init-groups"]
    user = "mentorbot"
    log = base / "server.log"
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user,
                        "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"],
                       check=True, capture_output=True)
        # throw-away data: durability off, so the suite does not wait on fsync
        options = (f"-k {sock} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log),
                        "-o", options, "-w", "-t", "60", "start"],
                       check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(base, ignore_errors=True)
        raise NoServer(f"the test PostgreSQL server did not start: "
                       f"{exc.stderr.decode(errors='replace')[-500:]}") from None
    try:
        yield Server(sock, user)
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
