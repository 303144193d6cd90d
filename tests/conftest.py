"""Shared fixtures: real SQLite files in tmp_path, real keys, no network anywhere."""

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

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conversations.catalogue import load_flows
from conversations.service import Service
from storage.crypto import KeyRing, generate_key
from storage.store import Store
from tests.people import Cohort


@pytest.fixture
def master_key() -> bytes:
    return generate_key()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "mentorbot.sqlite3"


@pytest.fixture
async def store(db_path: Path, master_key: bytes) -> AsyncIterator[Store]:
    s = await Store.open(db_path, KeyRing(master_key), load_flows()["consent"].version)
    yield s
    await s.close()


@pytest.fixture
def service(store: Store) -> Service:
    return Service(store)


@pytest.fixture
async def cohort(store: Store, service: Service) -> Cohort:
    return await Cohort.create(store, service)
