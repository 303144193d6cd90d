"""The evaluator's review loop: suggested codes out, decisions in, agreement reported."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest

from reports.codebook import load_codebook
from reports.review import (
    COLUMNS,
    Decision,
    ReviewError,
    ReviewWriter,
    cell,
    csv_field,
    find_decision,
    id_code,
    iter_rows,
    read_review,
    review_id,
)
from storage.store import Store
from tests.people import Cohort
from tests.test_report_evaluator import START, episode, pair_ids, report, write_entry

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends


async def _programme(cohort: Cohort, store: Store) -> None:
    await cohort.joined_mentee()
    await cohort.joined_mentor()
    mentor_id, mentee_id = await pair_ids(store, cohort)
    for k in range(2):
        day = START + timedelta(days=30 * k + 10)
        await write_entry(
            store,
            mentee_id,
            cohort.pair_id,
            "grow",
            {
                "goal": "to feel more confident about managing my team",
                "reality": "my manager is supportive but there's never protected time",
                "options": "my mentor shared how she handled her first year, which helped",
                "will": "I will block out an hour a week by friday",
            },
            day,
        )
        await write_entry(
            store, mentor_id, cohort.pair_id, "episode_log", episode(day, "PH_PROGRESSION"), day
        )


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _entries(data: dict, code: str, role: str) -> int:
    for level in data["cmo_framework"]["cells"].values():
        for item in level[role]:
            if item["code"] == code:
                return int(item["entries"])
    return 0


async def test_review_decisions_apply_next_run_and_agreement_is_reported(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    await _programme(cohort, store)
    first = await report(store, tmp_path / "one")
    rows = list(iter_rows(tmp_path / "one" / "review.csv"))
    assert rows and all(r["decision"] == "" for r in rows)
    assert {r["method"] for r in rows} <= {"rules", "structured", "semantic"}
    assert not any(
        r["method"] == "structured"
        and r["code"] == "M_SHARING_EXPERIENCE"
        and r["step"] == "What you offered"
        for r in rows
    )  # own buttons: not listed
    by_code: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_code.setdefault(r["code"], []).append(r)
    # accept sharing experience, reject every decision-action, change one learning code
    accepted = by_code["M_SHARING_EXPERIENCE"][0]
    accepted["decision"] = "accept"
    for r in by_code["R_DECISION_ACTION"]:
        r["decision"] = "reject"
    changed = by_code["O_LEARNING_CHANGE"][0]
    changed.update(
        decision="change", new_code="O_DEVELOPMENT_CHANGE", note="personal, not practice"
    )
    reviewed = tmp_path / "reviewed.csv"
    _write(reviewed, rows)
    assert _entries(first, "R_DECISION_ACTION", "RESPONSE") > 0
    second = await report(store, tmp_path / "two", review=reviewed)
    review = second["review"]
    rejected = len(by_code["R_DECISION_ACTION"])
    assert review["file_given"] and review["applied"] == 2 + rejected
    assert (review["accept"], review["reject"], review["change"]) == (1, rejected, 1)
    assert review["agreement"] == round(1 / (2 + rejected), 3)
    assert review["changes"] == [["O_LEARNING_CHANGE", "O_DEVELOPMENT_CHANGE", 1]]
    assert review["not_applied"] == 0
    assert _entries(second, "R_DECISION_ACTION", "RESPONSE") == 0
    # a distal outcome said before the closing check-in counts as an early, proximal sign
    assert _entries(second, "O_DEVELOPMENT_CHANGE", "OUTCOME_PROXIMAL") >= 1
    # decisions carry over into the next review file, so the work is never lost
    carried = {r["review_id"]: r for r in iter_rows(tmp_path / "two" / "review.csv")}
    assert carried[accepted["review_id"]]["decision"] == "accept"
    assert carried[changed["review_id"]]["new_code"] == "O_DEVELOPMENT_CHANGE"
    assert carried[changed["review_id"]]["note"] == "personal, not practice"
    html = (tmp_path / "two" / "report.html").read_text(encoding="utf-8")
    assert "Evaluator review" in html and "Agreement" in html
    # the same review file gives the same report, byte for byte
    await report(store, tmp_path / "three", review=reviewed)
    assert (tmp_path / "two" / "report.json").read_bytes() == (
        tmp_path / "three" / "report.json"
    ).read_bytes()


async def test_decisions_for_entries_no_longer_in_scope_are_not_applied(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    await _programme(cohort, store)
    await report(store, tmp_path / "one")
    rows = list(iter_rows(tmp_path / "one" / "review.csv"))
    for r in rows:
        r["decision"] = "accept"
    reviewed = tmp_path / "reviewed.csv"
    _write(reviewed, rows)
    mentee = cohort.person(7001, "Robin")
    await mentee.cmd("withdraw")
    await mentee.tap("Stop evaluation use")
    data = await report(store, tmp_path / "two", review=reviewed)
    assert data["review"]["not_applied"] > 0
    assert data["review"]["applied"] + data["review"]["not_applied"] == len(rows)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"code": "NOT_A_CODE", "decision": "accept"},
            "unknown codebook id 'NOT_A_CODE' in column code",
        ),
        (
            {"decision": "change", "new_code": "O_NOPE"},
            "unknown codebook id 'O_NOPE' in column new_code",
        ),
        ({"decision": "change"}, "a change needs a new_code"),
        ({"decision": "maybe"}, "decision must be accept, reject or change"),
        ({"decision": "accept", "review_id": ""}, "the review_id is empty"),
    ],
)
def test_bad_review_files_say_which_line_and_why(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    row = (
        {c: "" for c in COLUMNS}
        | {"review_id": "E-1:goal:O_INSIGHT:-:rules", "code": "O_INSIGHT"}
        | change
    )
    path = tmp_path / "review.csv"
    _write(path, [{c: "" for c in COLUMNS} | {"review_id": "x", "code": "O_INSIGHT"}, row])
    with pytest.raises(ReviewError, match=message) as info:
        read_review(path, load_codebook())
    assert "line 3" in str(info.value)


def test_missing_columns_duplicates_and_missing_file(tmp_path: Path) -> None:
    book = load_codebook()
    with pytest.raises(ReviewError, match="no review file"):
        read_review(tmp_path / "nope.csv", book)
    path = tmp_path / "review.csv"
    path.write_text("review_id,decision\nx,accept\n", encoding="utf-8")
    with pytest.raises(ReviewError, match="missing column"):
        read_review(path, book)
    row = {c: "" for c in COLUMNS} | {"review_id": "r", "code": "O_INSIGHT", "decision": "accept"}
    _write(path, [row, row])
    with pytest.raises(ReviewError, match="appears twice"):
        read_review(path, book)
    blank = {c: "" for c in COLUMNS} | {"review_id": "r", "code": "O_INSIGHT"}
    _write(path, [blank])
    assert read_review(path, book) == {}  # not reviewed yet is not an error


def test_review_ids_and_safe_cells() -> None:
    assert review_id("E-1", "goal", "O_INSIGHT", None, "rules") == \
        "E-1:goal:O_INSIGHT:-:realised:rules"
    assert review_id("E-1", "goal", "O_INSIGHT", None, "rules", "intended") == \
        "E-1:goal:O_INSIGHT:-:intended:rules"
    assert id_code("E-1:goal:O_INSIGHT:-:intended:rules") == "O_INSIGHT"
    assert id_code("E-1:goal:O_INSIGHT:-:rules") == "O_INSIGHT"  # a file from before modality
    assert id_code("x") is None


def test_old_review_ids_still_find_their_decision() -> None:
    old = Decision("reject", None, "", 2)
    decisions = {"E-1:goal:O_INSIGHT:-:rules": old}
    assert find_decision(decisions, "E-1", "goal", "O_INSIGHT", None, "rules", "realised") is old
    # a code the heads now confirm ("both") keeps the decision made on the rules' suggestion
    assert find_decision(decisions, "E-1", "goal", "O_INSIGHT", None, "both", "intended") is old
    assert find_decision(decisions, "E-1", "goal", "O_INSIGHT", None, "semantic",
                         "realised") is None
    new = Decision("accept", None, "", 3)
    decisions["E-1:goal:O_INSIGHT:-:intended:rules"] = new
    assert find_decision(decisions, "E-1", "goal", "O_INSIGHT", None, "rules", "intended") is new
    assert find_decision({}, "E-1", "goal", "O_INSIGHT", None, "rules", "intended") is None
    assert cell("=1+1") == "'=1+1" and cell("@SUM(A1)") == "'@SUM(A1)" and cell("fine") == "fine"
    fields = ["a,b", 'say "hi"', "line\nbreak", "plain", ""]
    line = ",".join(csv_field(f) for f in fields) + "\n"
    assert next(csv.reader(io.StringIO(line, newline=""))) == fields
    buffer = io.StringIO()
    writer = ReviewWriter(buffer)
    writer.write({"review_id": "r", "evidence": "=cmd()", "code": "O_INSIGHT"})
    assert "'=cmd()" in buffer.getvalue() and writer.rows == 1
