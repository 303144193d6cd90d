"""Shared fixtures: real SQLite files in tmp_path, real keys, no network anywhere.

Tests marked ``both_backends`` run twice: on SQLite, and on PostgreSQL (a throw-away
server on a unix socket, one per test session, a fresh database and key store database per
test, each a copy of one the migrations ran on once; tests/support/pgserver.py). Without
PostgreSQL binaries those runs skip, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import os

# PTB 22 warns (an error under our warning filter) unless durations are timedeltas.
os.environ.setdefault("PTB_TIMEDELTA", "true")
# The chat's safety rule by its lexicon alone, so flow tests stay fast; the semantic layer has
# its own tests (tests/test_safety_rule.py), which ask for it by name.
os.environ.setdefault("MENTORBOT_SAFETY_SEMANTIC", "off")
# Save-time embeddings (a child process for each running bot) likewise: the tests about them
# turn them on (tests/test_coding_embeddings.py).
os.environ.setdefault("MENTORBOT_CODING_EMBEDDINGS", "off")

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conversations.catalogue import load_flows
from conversations.service import Service
from storage.crypto import KeyRing, generate_key
from storage.store import Store
from tests.people import Cohort
from tests.support import pgserver

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_backends: run on SQLite and on PostgreSQL (the backend fixture)")
    config.addinivalue_line(
        "markers", "sqlite_only: in a both_backends module, a test of SQLite's own files")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    # MENTORBOT_TEST_BACKENDS=postgresql (or sqlite,postgresql) runs every test that opens
    # a store on those backends: for porting a test module before marking it
    forced = os.environ.get("MENTORBOT_TEST_BACKENDS")
    if forced:
        metafunc.parametrize("backend", forced.split(","), indirect=True)
    elif (metafunc.definition.get_closest_marker("both_backends")
          and not metafunc.definition.get_closest_marker("sqlite_only")):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.Server]:
    try:
        server = pgserver.running()
        running = server.__enter__()
    except pgserver.NoServer as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs every backend: {exc}")
        pytest.skip(str(exc))
    try:
        yield running
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@dataclass(frozen=True)
class Place:
    """Where a test's store lives: a SQLite file (key store beside it) or two PostgreSQL
    databases (data and key store)."""

    backend: str
    db: Path | str
    keystore: str | None = None

    async def open(self, ring: KeyRing, consent_version: str | None = None,
                   **kw: object) -> Store:
        return await Store.open(self.db, ring, consent_version or load_flows()["consent"].version,
                                keystore=self.keystore, **kw)  # type: ignore[arg-type]


@pytest.fixture
def master_key() -> bytes:
    return generate_key()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "mentorbot.sqlite3"


@pytest.fixture
def place(backend: str, db_path: Path, request: pytest.FixtureRequest) -> Iterator[Place]:
    if backend == "sqlite":
        yield Place(backend, db_path)
        return
    server: pgserver.Server = request.getfixturevalue("pg_server")
    db, keys = server.fresh(migrated=True)  # copies of a migrated pair (pgserver)
    yield Place(backend, db, keys)
    server.drop(db, keys)


@pytest.fixture
async def store(place: Place, master_key: bytes) -> AsyncIterator[Store]:
    s = await place.open(KeyRing(master_key))
    yield s
    await s.close()


@pytest.fixture
def service(store: Store) -> Service:
    return Service(store)


@pytest.fixture
async def cohort(store: Store, service: Service) -> Cohort:
    return await Cohort.create(store, service)
