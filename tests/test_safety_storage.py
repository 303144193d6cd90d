"""What a safety flag touches: the encrypted verdict, never plaintext; every output withholds
the answer; recode judges stored answers again; old plaintext flags are sealed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conversations.catalogue import load_flows
from conversations.safety import rule_version
from reports.entry_codes import recode
from reports.evaluator import Options, build_report
from storage.crypto import KeyRing
from storage.store import Store
from tests.people import GROW_ANSWERS, Cohort

pytestmark = pytest.mark.both_backends

DISGUISED = "honestly k\u200bill my\u00adself some nights, the rota is relentless"
LATER_RISK = "the bridge on the way home keeps calling me, I know which bridge id use"


async def _exported(store: Store, out: Path, study: str) -> tuple[bytes, list[str]]:
    """Every exported file's bytes, and the steps withheld.csv lists."""
    from reports.export.run import run_export

    await run_export(store, out, study, "shift", ())
    data = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    withheld = list(csv.DictReader((out / "withheld.csv").open(encoding="utf-8")))
    return data, [w["step_id"] for w in withheld]


async def _everything_written(db_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


async def test_flag_is_encrypted_and_no_audit_row_says_so(
    cohort: Cohort, store: Store, db_path: Path
) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow({**GROW_ANSWERS, "reality": DISGUISED})
    entry = (await store.entries.of(1))[0]
    assert await store.entries.flagged_steps(1, entry.id) == {"reality"}
    rows = await store.db.fetchall("SELECT step_id, flags, safety_ct, safety_rule FROM answers")
    assert rows and all(r["flags"] == "" for r in rows)
    assert all(r["safety_ct"] is not None and r["safety_rule"] == rule_version() for r in rows)
    actions = {r["action"] for r in await store.db.fetchall("SELECT action FROM audit_log")}
    assert not {a for a in actions if "signpost" in a}
    raw = await _everything_written(db_path)
    assert b"signpost" not in raw and b'"risk"' not in raw
    assert b"rota is relentless" not in raw


async def test_flagged_answer_leaves_no_output(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    from reports.export.run import run_export

    mentee = await cohort.joined_mentee()
    await cohort.joined_mentor()
    await mentee.grow({**GROW_ANSWERS, "reality": DISGUISED})
    await mentee.grow(GROW_ANSWERS)
    report_dir, export_dir = tmp_path / "report", tmp_path / "export"
    await build_report(store, report_dir, options=Options(workers=0))
    await run_export(store, export_dir, "study-S", "shift", ())
    outputs = [p for d in (report_dir, export_dir) for p in d.rglob("*") if p.is_file()]
    assert {"report.html", "report.json", "review.csv", "answers.csv"} <= {
        p.name for p in outputs}
    for path in outputs:
        data = path.read_bytes()
        for needle in ("rota is relentless", "ill my", "myself some nights"):
            assert needle.encode() not in data, (path.name, needle)
    withheld = list(csv.DictReader((export_dir / "withheld.csv").open(encoding="utf-8")))
    assert [w["step_id"] for w in withheld] == ["reality"]
    quotes = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))["quotes"]
    assert all("relentless" not in q["text"] for q in quotes.values())


async def test_recode_flags_an_old_answer_the_new_rule_sees(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow(GROW_ANSWERS)
    entry = (await store.entries.of(1))[0]
    # as an older rule left it: judged, and not seen as risk
    await store.entries.save_answer(1, entry.id, "options", LATER_RISK, (False, "older-rule"))
    assert await store.entries.flagged_steps(1, entry.id) == set()
    assert await store.entries.unjudged(rule_version()) == 1

    result = await recode(store)
    assert (result.judged, result.newly_flagged) == (1, 1)
    assert await store.entries.flagged_steps(1, entry.id) == {"options"}
    assert await store.entries.unjudged(rule_version()) == 0

    data, withheld = await _exported(store, tmp_path / "export", "study-R")
    assert b"which bridge" not in data and withheld == ["options"]
    # a flag is never taken away by a later judgement
    assert (await recode(store)).judged == 0
    await store.entries.set_safety(1, entry.id, "options", True, "older-rule")
    assert (await recode(store)).newly_flagged == 0
    assert await store.entries.flagged_steps(1, entry.id) == {"options"}


async def test_unjudged_answers_are_judged_on_the_spot_by_reports(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow(GROW_ANSWERS)
    entry = (await store.entries.of(1))[0]
    await store.entries.save_answer(1, entry.id, "will", "i want to die tbh")  # no verdict
    data, withheld = await _exported(store, tmp_path / "export", "study-U")
    assert b"want to die" not in data and withheld == ["will"]


@pytest.mark.sqlite_only  # the SQLite files themselves
async def test_plaintext_flags_from_before_are_sealed_when_the_store_opens(
    cohort: Cohort, store: Store, db_path: Path, master_key: bytes
) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow(GROW_ANSWERS)
    entry = (await store.entries.of(1))[0]
    # what migration 002's column held before verdicts were encrypted
    await store.db.execute(
        "UPDATE answers SET flags='signpost', safety_ct=NULL, safety_rule=NULL "
        "WHERE entry_id=? AND step_id='reality'", (entry.id,))
    keystore = store.db.keystore
    await store.close()
    again = await Store.open(db_path, KeyRing(master_key), load_flows()["consent"].version,
                             keystore=keystore)
    try:
        assert await again.entries.flagged_steps(1, entry.id) == {"reality"}
        assert await again.db.scalar("SELECT COUNT(*) FROM answers WHERE flags != ''") == 0
    finally:
        await again.close()
    assert b"signpost" not in await _everything_written(db_path)


@pytest.mark.sqlite_only  # the SQLite files themselves
async def test_upgrading_an_old_database_leaves_no_plaintext_trace(
    cohort: Cohort, store: Store, db_path: Path, master_key: bytes
) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow(GROW_ANSWERS)
    entry = (await store.entries.of(1))[0]
    me = await store.participants.by_user(mentee.sender.user_id)
    assert me is not None
    # the database as a release before migration 005 left it: a plaintext flag on the answer,
    # an audit row that says who was signposted, no verdict columns
    await store.db.execute("UPDATE answers SET flags='signpost' WHERE step_id='reality'")
    await store.db.execute(
        "INSERT INTO audit_log (at, actor, action, participant_id) "
        "VALUES ('2026-01-01T00:00:00+00:00', 'participant', 'signposted', ?)", (me.id,))
    await store.db.conn.executescript(
        "DROP TRIGGER answers_update_uncodes;"
        "CREATE TRIGGER answers_update_uncodes AFTER UPDATE ON answers BEGIN "
        "DELETE FROM entry_codes WHERE entry_id = NEW.entry_id OR entry_id = OLD.entry_id; END;"
        "ALTER TABLE answers DROP COLUMN safety_ct;"
        "ALTER TABLE answers DROP COLUMN safety_rule;"
        "DELETE FROM schema_migrations WHERE version = 5;")
    keystore = store.db.keystore
    await store.close()

    again = await Store.open(db_path, KeyRing(master_key), load_flows()["consent"].version,
                             keystore=keystore)
    try:
        assert await again.db.scalar(
            "SELECT COUNT(*) FROM schema_migrations WHERE version = 5") == 1
        assert await again.entries.flagged_steps(me.id, entry.id) == {"reality"}
        assert await again.db.scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action LIKE '%signpost%'") == 0
        await again.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await again.close()
    assert b"signpost" not in await _everything_written(db_path)


OVER = "My own recovery from self-harm as a teenager is why I went into CAMHS nursing."


async def test_a_stored_no_risk_verdict_gets_no_risk_code(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    """The stored verdict decides the risk-to-self code: an answer the rule judged no risk
    (as the semantic layer's resolved-past head judges ``OVER``, whose words the lexicon alone
    flags) is quoted and exported like any other and never carries TOPIC_SELF_HARM_RISK."""
    from conversations.safety import risk_span

    assert risk_span(OVER) is not None  # the lexicon alone would code it
    mentee = await cohort.joined_mentee()
    await cohort.joined_mentor()
    await mentee.grow(GROW_ANSWERS)
    entry = (await store.entries.of(1))[0]
    await store.entries.save_answer(1, entry.id, "reality", OVER, (False, rule_version()))
    assert await store.entries.flagged_steps(1, entry.id) == set()
    report_dir, export_dir = tmp_path / "report", tmp_path / "export"
    await build_report(store, report_dir, options=Options(workers=0))
    data, withheld = await _exported(store, export_dir, "study-N")
    assert withheld == [] and b"CAMHS nursing" in data  # not withheld
    coded = {"segments.csv", "entries.csv", "entries.jsonl", "answers.csv", "report.json",
             "report.html", "review.csv"}  # the codebook's own files list every code
    outputs = [p for d in (report_dir, export_dir) for p in d.rglob("*") if p.name in coded]
    assert {p.name for p in outputs} == coded
    for path in outputs:
        assert b"TOPIC_SELF_HARM_RISK" not in path.read_bytes(), path.name
    assert b"CAMHS nursing" in (export_dir / "answers.csv").read_bytes()
