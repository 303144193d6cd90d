"""Entries are coded once, when saved, and the codes go wherever the answers go."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations import mydata
from conversations.catalogue import load_flows
from reports.codebook import load_codebook
from reports.entry_codes import StoredCoder, code_entry, coder_id, recode, shift_spans
from reports.export import bundle as bundle_module
from reports.export import sharded
from reports.export.bundle import plan_export
from reports.synthetic import generate_cohort
from storage.db import iso, utcnow
from storage.models import Role
from storage.store import Store
from tests.people import GROW_ANSWERS, Cohort
from tests.support.harness import TgUser, running_app

pytestmark = pytest.mark.both_backends


async def _codes(store: Store) -> dict[int, tuple[str, bytes]]:
    rows = await store.db.fetchall("SELECT entry_id, coder, codes_ct FROM entry_codes")
    return {r["entry_id"]: (r["coder"], r["codes_ct"]) for r in rows}


async def test_a_reflection_saved_in_telegram_is_coded_and_stored_encrypted(
    cohort: Cohort, store: Store, db_path: Path
) -> None:
    async with running_app(store) as (app, standin):
        mentee = TgUser(app, standin, 700_002, "Robin")
        await mentee.join(cohort.mentee_code)
        await mentee.send("/reflect")
        await mentee.tap("GROW: goal, reality, options, will")
        for step in ("goal", "reality", "options", "will"):
            await mentee.send(GROW_ANSWERS[step])
        for _ in range(6):
            await mentee.send("/skip")
        await mentee.tap("Save")

    me = await store.participants.by_user(700_002)
    assert me is not None
    (entry,) = await store.entries.of(me.id, "complete")
    stored = await _codes(store)
    coder, blob = stored[entry.id]
    codebook = load_codebook()
    assert coder == coder_id(codebook)
    answers = await store.entries.answers(me.id, entry.id)
    expected = code_entry(load_flows()["grow"], answers, "mentee", codebook)
    assert expected, "the fixture answers should carry codes"
    got = await store.vault.decrypt(me.id, "entry_codes", entry.id, "codes", blob)
    assert got == {k: [list(h) for h in v] for k, v in expected.items()}
    # the person's own copy of their data shows them too
    mine = await mydata.collect(store, me, load_flows())
    (listed,) = mine["entries"]
    assert {(c["step"], c["code"]) for c in listed["automatic_codes"]} == {
        (step, hit[2]) for step, hits in expected.items() for hit in hits}
    # ciphertext on disk: no code id appears in clear next to the row
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    some_code = next(iter(expected.values()))[0][2]
    assert some_code.encode() not in blob
    assert b'"' + some_code.encode() + b'"' not in raw


async def test_codes_are_dropped_whenever_an_answer_changes(store: Store) -> None:
    await generate_cohort(store, pairs=1, sessions=1, consent_rate=1.0)
    row = await store.db.fetchone(
        "SELECT id, participant_id FROM entries WHERE flow != 'episode_log'")
    entry_id, pid = row["id"], row["participant_id"]
    coder = coder_id(load_codebook())
    assert entry_id in await _codes(store)  # generated as the bot would have saved it

    await store.entries.save_answer(pid, entry_id, "goal", "A new goal entirely")
    assert entry_id not in await _codes(store)

    stale = "2000-01-01T00:00:00+00:00"
    assert not await store.entries.save_codes(pid, entry_id, coder, {}, stale)
    assert await store.entries.save_codes(pid, entry_id, coder, {}, iso(utcnow()))
    assert entry_id in await _codes(store)

    await store.entries.clear_answer(pid, entry_id, "goal")
    assert entry_id not in await _codes(store)
    assert await store.entries.save_codes(pid, entry_id, coder, {}, iso(utcnow()))
    # someone else's entry, or one that is not complete, takes no codes
    other = await store.db.scalar("SELECT id FROM participants WHERE id != ?", (pid,))
    assert not await store.entries.save_codes(other, entry_id, coder, {}, iso(utcnow()))
    await store.entries.set_status(pid, entry_id, "draft")
    assert not await store.entries.save_codes(pid, entry_id, coder, {}, iso(utcnow()))
    await store.entries.set_status(pid, entry_id, "complete")

    assert await store.entries.save_codes(pid, entry_id, coder, {}, iso(utcnow()))
    await store.erase(pid)
    assert entry_id not in await _codes(store)


async def test_exports_read_stored_codes_and_code_what_is_missing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await generate_cohort(store, pairs=8, sessions=3, seed=4, consent_rate=1.0)
    codebook = load_codebook()
    plan = await plan_export(store, "s", "shift")
    first = sharded.export(plan, codebook, tmp_path / "first", workers=1)
    assert first.facts.segments > 0

    real = bundle_module.code_texts

    def refuse(*args: object) -> object:
        raise AssertionError("coded again although the codes were stored")

    monkeypatch.setattr(bundle_module, "code_texts", refuse)
    stored = sharded.export(plan, codebook, tmp_path / "stored", workers=1)

    # codes made by another coder (an older codebook) are not used: coded here instead
    await store.db.execute("UPDATE entry_codes SET coder='old-codebook/1'")
    with pytest.raises(AssertionError, match="coded again"):
        sharded.export(plan, codebook, tmp_path / "x", workers=1)
    monkeypatch.setattr(bundle_module, "code_texts", real)
    recoded = sharded.export(plan, codebook, tmp_path / "recoded", workers=1)
    await store.db.execute("DELETE FROM entry_codes")
    missing = sharded.export(plan, codebook, tmp_path / "missing", workers=1)

    for name in ("segments.csv", "entries.jsonl", "answers.csv"):
        first = (tmp_path / "stored" / name).read_bytes()
        for other in ("first", "recoded", "missing"):
            assert (tmp_path / other / name).read_bytes() == first, (name, other)
    assert stored.facts.segments == missing.facts.segments == recoded.facts.segments


def test_masked_names_keep_the_spans_on_the_same_words() -> None:
    text = "Jo said my mentor shared her experience, and Jo will book protected time"
    codes = code_entry(load_flows()["grow"], {"options": text}, Role.MENTEE.value,
                       load_codebook())
    assert codes["options"], "the text should carry codes"
    names = [(0, 2), (45, 47)]
    assert [text[s:e] for s, e in names] == ["Jo", "Jo"]
    masked = text.replace("Jo", "[name]")
    moved = shift_spans(codes["options"], 0, names, 6)
    for (s, e, *_), (ms, me, *_) in zip(codes["options"], moved, strict=True):
        assert masked[ms:me] == text[s:e].replace("Jo", "[name]")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_shifted_spans_cover_the_same_text(data: st.DataObject) -> None:
    words = data.draw(st.lists(st.sampled_from(["Sam", "help", "me", "plan", "time"]),
                               min_size=1, max_size=12))
    prefix = data.draw(st.sampled_from(["", "Their experience; "]))
    typed = " ".join(words)
    names, pos = [], 0
    for word in words:
        if word == "Sam":
            names.append((pos, pos + 3))
        pos += len(word) + 1
    text = prefix + typed
    masked = prefix + typed.replace("Sam", "[name]")
    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(a, len(text)))
    ((ms, me, *_),) = shift_spans([(a, b, "X", 1.0, "realised", "rules", None)], len(prefix),
                                  names, 6)
    assert 0 <= ms <= me <= len(masked)
    inside = any(s < a - len(prefix) < e or s < b - len(prefix) < e for s, e in names)
    if not inside:
        assert masked[ms:me] == text[a:b].replace("Sam", "[name]")


async def test_recode_codes_what_lacks_current_codes(store: Store) -> None:
    await generate_cohort(store, pairs=3, sessions=2, consent_rate=1.0, coded=False)
    assert await _codes(store) == {}
    first = await recode(store)
    assert first.coded == first.entries == 12 and first.current == 0
    # the combined coder's id where the semantic extra is installed, else the rules'
    coder = StoredCoder().coder
    assert {c for c, _ in (await _codes(store)).values()} == {coder}
    again = await recode(store)
    assert (again.coded, again.current) == (0, 12)
    row = await store.db.fetchone(
        "SELECT id, participant_id FROM entries WHERE flow='grow' OR flow='oskar' LIMIT 1")
    step = "goal" if (await store.entries.get(row["id"], row["participant_id"])).flow == \
        "grow" else "outcome"
    await store.entries.save_answer(row["participant_id"], row["id"], step, "Lead the audit")
    assert (await recode(store)).coded == 1


def test_recode_command(tmp_path: Path, master_key: bytes,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import contextlib
    import sqlite3

    from click.testing import CliRunner

    from bot.cli import main
    from tests.test_ops import configure, populate

    db = tmp_path / "live.sqlite3"
    asyncio.run(populate(db, master_key, people=2))  # coded, as the bot would have
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE entry_codes SET coder='an-older-codebook/1'")
        conn.commit()
    configure(monkeypatch, db, master_key)
    runner = CliRunner()
    result = runner.invoke(main, ["recode"])
    assert result.exit_code == 0, result.output
    assert "2 of 2 saved entries coded" in result.output
    result = runner.invoke(main, ["recode"])
    assert "0 of 2 saved entries coded" in result.output
    assert "2 already had current codes" in result.output


async def test_stored_codes_that_do_not_fit_are_coded_again(
    store: Store, tmp_path: Path
) -> None:
    await generate_cohort(store, pairs=2, sessions=2, seed=4, consent_rate=1.0)
    codebook = load_codebook()
    plan = await plan_export(store, "s", "shift")
    good = sharded.export(plan, codebook, tmp_path / "good", workers=1)
    rows = await store.db.fetchall(
        "SELECT e.id, e.participant_id, e.flow, p.role FROM entries e "
        "JOIN participants p ON p.id = e.participant_id")
    coder = coder_id(codebook)
    damaged = 0
    for n, row in enumerate(rows):
        answers = await store.entries.answers(row["participant_id"], row["id"])
        codes = code_entry(load_flows()[row["flow"]], answers, row["role"], codebook)
        # every step with codes gets a list that cannot be right for its text
        bad = {step: ([[0, 10_000, "C_MOTIVATION", 0.5]], [["x"]], "nonsense",
                      [[5, 1, "C_MOTIVATION", 0.5]])[(n + k) % 4]
               for k, step in enumerate(codes)}
        damaged += len(bad)
        assert await store.entries.save_codes(row["participant_id"], row["id"], coder, bad,
                                              iso(utcnow()))
    assert damaged > 4
    again = sharded.export(plan, codebook, tmp_path / "again", workers=1)
    assert again.facts.segments == good.facts.segments
    for name in ("segments.csv", "entries.jsonl"):
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "good" / name).read_bytes()
