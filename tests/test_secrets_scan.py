"""After a full scripted programme (the demo: flows, reports, summary, export), scan every
file it wrote and every log line for each person's name, Telegram id and chat id, and the
places that must never hold entry text (database, WAL, key store, logs, coordinator
outputs) for every answer anyone gave."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.demo import FIRST_NAMES, run_demo
from conversations.catalogue import load_flows
from storage.crypto import KeyRing, decode_key
from storage.store import Store


async def all_answer_texts(db: Path, key: bytes) -> set[str]:
    store = await Store.open(db, KeyRing(key), load_flows()["consent"].version, create=False)
    texts: set[str] = set()
    try:
        for person in await store.participants.all():
            for entry in await store.entries.of(person.id):
                for value in (await store.entries.answers(person.id, entry.id)).values():
                    if isinstance(value, str) and len(value) > 12 and " " in value:
                        texts.add(value)
    finally:
        await store.close()
    return texts


async def test_nothing_personal_outside_the_encrypted_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "demo"
    with caplog.at_level(logging.DEBUG):
        result = await run_demo(out, pairs=6, months=3)
    logs = caplog.text.encode()
    key = decode_key(result.key_file.read_text())
    texts = await all_answer_texts(result.database, key)
    assert len(texts) > 50
    user_ids = [str(5_000_000 + n) for n in range(1, 13)]  # also the chat ids in the demo
    names = [n for n in FIRST_NAMES if len(n) > 3][:12]

    files = [p for p in out.rglob("*") if p.is_file() and p != result.key_file]
    assert any(p.suffix == ".qdpx" for p in files) and any(p.suffix == ".html" for p in files)
    for path in files:
        blob = path.read_bytes()
        for ident in user_ids:
            assert ident.encode() not in blob, (path.name, "telegram id")
        for name in names:
            # names appear in no file at all: reports and exports mask them
            assert f"{name} ".encode() not in blob and f"{name},".encode() not in blob, (
                path.name, "name")
    for ident in [*user_ids, *names]:
        assert ident.encode() not in logs
    never_text = [p for p in files if p.name.startswith("mentorbot.sqlite3")
                  or "coordinator" in p.parts[-2:][0]]
    assert len(never_text) >= 3
    for path in never_text:
        blob = path.read_bytes()
        for text in texts:
            assert text.encode() not in blob, (path.name, "entry text")
    for text in texts:
        assert text.encode() not in logs
