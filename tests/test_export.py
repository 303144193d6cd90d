"""Researcher export: consent, pseudonyms, dates, masking, and no identifiers in any file."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from reports.codebook import load_codebook
from reports.export.bundle import build_export
from reports.export.refi import validate_qdc, validate_qdpx
from storage.models import Scope
from storage.pseudonyms import Pseudonymiser
from storage.store import Store
from tests.conftest import Place
from tests.people import GROW_ANSWERS, Cohort, Person
from tests.support.harness import TgUser, running_app

# the flow, report and export suites run on both backends (issue #20)
pytestmark = pytest.mark.both_backends

# Distinctive identifiers, so a scan can't hit them by chance (in a GUID, an offset...).
MENTEE_ID, MENTOR_ID, SHY_ID, GONE_ID = 581_234_977, 582_345_988, 583_456_999, 584_567_911
PEOPLE = {
    MENTEE_ID: ("Zephyrine", "zephy_rn"),
    MENTOR_ID: ("Quillon", "quill_mentor"),
    SHY_ID: ("Ottoline", "otto_shy"),
    GONE_ID: ("Barnabus", "barn_gone"),
}
CHAT_OFFSET = 1_000_000  # tests.people: a person's chat id is their user id + 1,000,000
OWN_NAME_TEXT = "Zephyrine, I told myself: plan protected time with my mentor"


async def _join_with_username(store: Store, code: str, uid: int) -> None:
    """Join through the real Application so the username really reaches the bot."""
    name, username = PEOPLE[uid]
    async with running_app(store) as (app, standin):
        user = TgUser(app, standin, uid, name, username)
        await user.send(f"/start {code}")
        await user.tap("Yes, keep them")
        for _ in range(3):
            await user.tap("Yes")


async def _world(store: Store, cohort: Cohort) -> dict[str, Person]:
    await _join_with_username(store, cohort.mentee_code, MENTEE_ID)
    mentee = cohort.person(MENTEE_ID, PEOPLE[MENTEE_ID][0])
    me = await store.participants.by_user(MENTEE_ID)
    assert me is not None
    await store.participants.set_field(me.id, "preferred_framework", "grow")
    await mentee.grow({**GROW_ANSWERS, "goal": OWN_NAME_TEXT})
    await mentee.grow({**GROW_ANSWERS, "reality": "I want to die, honestly"})  # signposted
    mentor = await cohort.joined_mentor(MENTOR_ID, PEOPLE[MENTOR_ID][0])

    # a second pair: one who never consented to research, one who withdrew later
    pair = await store.programmes.create_pair(cohort.programme_id)
    from storage.models import Role

    shy_code = await store.programmes.create_invite(cohort.programme_id, Role.MENTEE, pair)
    gone_code = await store.programmes.create_invite(cohort.programme_id, Role.MENTEE)
    shy = cohort.person(SHY_ID, PEOPLE[SHY_ID][0])
    await shy.start(shy_code)
    await shy.tap("Yes, keep them")
    await shy.tap("Yes")  # programme summary
    await shy.tap("Yes")  # evaluation
    await shy.tap("No")  # research export
    gone = cohort.person(GONE_ID, PEOPLE[GONE_ID][0])
    await gone.start(gone_code)
    await gone.consent_all()
    for uid in (SHY_ID, GONE_ID):
        p = await store.participants.by_user(uid)
        assert p is not None
        await store.participants.set_field(p.id, "preferred_framework", "grow")
    await shy.grow({**GROW_ANSWERS, "goal": "Ottoline-only xylophone sentence"})
    await gone.grow({**GROW_ANSWERS, "goal": "Barnabus-only xylophone sentence"})
    await gone.cmd("withdraw")
    await gone.tap("Stop research use")
    return {"mentee": mentee, "mentor": mentor, "shy": shy, "gone": gone}


def _all_text(out: Path) -> dict[str, str]:
    """Every exported file as text, the qdpx unpacked member by member."""
    files: dict[str, str] = {}
    for path in sorted(out.rglob("*")):
        if path.suffix == ".qdpx":
            with zipfile.ZipFile(path) as zf:
                for name in zf.namelist():
                    files[f"{path.name}:{name}"] = zf.read(name).decode("utf-8", "replace")
        elif path.is_file():
            files[path.name] = path.read_text(encoding="utf-8", errors="replace")
    return files


async def test_export_has_no_identifiers_and_only_consenting_people(
    store: Store, cohort: Cohort, tmp_path: Path
) -> None:
    from reports.export.run import run_export

    await _world(store, cohort)
    out = tmp_path / "export"
    result = await run_export(store, out, "study-A", "shift", ())
    names = {p.name for p in result.paths}
    assert {"answers.csv", "entries.csv", "entries.jsonl", "data_dictionary.csv",
            "codebook.qdc", "project.qdpx", "withheld.csv"} <= names
    validate_qdc(out / "codebook.qdc")
    validate_qdpx(out / "project.qdpx")

    files = _all_text(out)
    assert len(files) > 8
    for uid, (name, username) in PEOPLE.items():
        for needle in (str(uid), str(uid + CHAT_OFFSET), name, username):
            hits = [f for f, text in files.items() if needle.lower() in text.lower()]
            assert hits == [], f"{needle!r} found in {hits}"

    # only the consenting mentee wrote anything exportable; the refuser and the withdrawn
    # person wrote entries too, and neither appears
    people = set(result.facts.entries_by_person)
    mentee = await store.participants.by_user(MENTEE_ID)
    assert mentee is not None
    pseudonyms = await Pseudonymiser.for_study(store.vault, "study-A")
    assert people == {pseudonyms.person(mentee.subject_ref)}
    assert result.facts.entries == 2
    assert "xylophone" not in "".join(files.values())

    # names are masked by the evaluator's masker: the author's own and third parties'
    answers = list(csv.DictReader((out / "answers.csv").open(encoding="utf-8-sig",
                                                              newline="")))
    goals = [a["text"] for a in answers if a["step_id"] == "goal"]
    assert "[name], I told myself: plan protected time with my mentor" in goals
    texts = [a["text"] for a in answers]
    assert "The ward is short-staffed and my manager [name] is not supportive" in texts
    assert "Get ready for my appraisal with Dr [name]" in texts

    # the signposted answer keeps its row with no text, and is listed as withheld
    (withheld,) = list(csv.DictReader((out / "withheld.csv").open(encoding="utf-8-sig")))
    assert withheld["step_id"] == "reality" and withheld["reason"] == "signposted"
    row = next(a for a in answers if a["entry_id"] == withheld["entry_id"]
               and a["step_id"] == "reality")
    assert row["text"] == ""
    assert "I want to die" not in "".join(files.values())
    dictionary = (out / "data_dictionary.csv").read_text(encoding="utf-8")
    assert "withheld.csv" in dictionary and "codebook_version" in dictionary


async def test_pseudonyms_stable_within_a_study_and_different_across(
    store: Store, cohort: Cohort
) -> None:
    await _world(store, cohort)
    book = load_codebook()
    a1 = (await build_export(store, "study-A", "shift", book)).bundle
    a2 = (await build_export(store, "study-A", "shift", book)).bundle
    b = (await build_export(store, "study-B", "shift", book)).bundle
    assert a1 == a2  # same study: same pseudonyms, same shifted dates, same bytes to write
    ids_a = {e.person for e in a1.entries} | {e.entry_id for e in a1.entries}
    ids_b = {e.person for e in b.entries} | {e.entry_id for e in b.entries}
    assert ids_a and not ids_a & ids_b
    assert {e.pair for e in a1.entries} != {e.pair for e in b.entries}


async def test_dates_shifted_per_person_or_relative_to_first_session(
    store: Store, cohort: Cohort
) -> None:
    await _world(store, cohort)
    book = load_codebook()
    shifted = (await build_export(store, "study-A", "shift", book)).bundle
    relative = (await build_export(store, "study-A", "relative", book)).bundle
    rows = await store.db.fetchall("SELECT created_at FROM entries")
    real = {r["created_at"][:10] for r in rows}
    assert all(e.date is not None and e.day is None for e in shifted.entries)
    assert not {e.date for e in shifted.entries} & real
    # one person, one offset: their entries keep their spacing
    by_person: dict[str, set[str | None]] = {}
    for e in shifted.entries:
        by_person.setdefault(e.person, set()).add(e.date)
    assert all(len(d) == 1 for d in by_person.values())  # all written today, so one date each
    assert all(e.date is None for e in relative.entries)
    # the pair has not logged a session, so days count from matching: today is day 0
    assert {e.day for e in relative.entries} == {0}


async def test_export_cli_needs_a_study_and_writes_chosen_format(
    store: Store, cohort: Cohort, tmp_path: Path, monkeypatch: object
) -> None:
    from bot.cli import main

    result = CliRunner().invoke(main, ["export", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "--study" in result.output
    await _world(store, cohort)
    from reports.export.run import run_export

    result = await run_export(store, tmp_path / "j", "s1", "relative", ("jsonl",))
    assert {p.name for p in result.paths} == {"entries.jsonl", "data_dictionary.csv",
                                       "data_dictionary.md", "withheld.csv"}
    first = json.loads((tmp_path / "j" / "entries.jsonl").read_text().splitlines()[0])
    assert first["day"] == 0 and first["date"] is None
    assert result.facts.date_mode == "relative"
    assert first["consent"] == Scope.RESEARCH_EXPORT.value


NAMED_TEXT = ("Quillon and I agreed Zephyrine should ask my ward manager Priya Sharma; "
              "Sister Agnes helps too. Email priya.sharma@nhs.example or ring 07700 900123, "
              "see https://intranet.example/rota. I feel more confident now, thanks to "
              "quillon and to me, zephyrine.")
NAMED = ("Quillon", "Zephyrine", "Priya", "Sharma", "Agnes", "priya.sharma@nhs.example",
         "07700 900123", "intranet.example")


async def test_exported_text_carries_no_name_unless_verbatim(
    store: Store, cohort: Cohort, tmp_path: Path
) -> None:
    import pandas as pd

    from reports.export.model import ExportOptions
    from reports.export.run import run_export

    await _world(store, cohort)
    await cohort.person(MENTEE_ID, PEOPLE[MENTEE_ID][0]).grow(
        {**GROW_ANSWERS, "options": NAMED_TEXT})
    masked = await run_export(store, tmp_path / "m", "study-A", "shift", ())
    assert masked.masked > 0
    for name, text in _all_text(tmp_path / "m").items():
        for needle in NAMED:
            assert needle.lower() not in text.lower(), f"{needle!r} in {name}"
    answers = pd.read_csv(tmp_path / "m" / "answers.csv", dtype=str, keep_default_na=False)
    (shown,) = answers.loc[answers["text"].str.contains("ward manager"), "text"]
    assert shown == ("[name] and I agreed [name] should ask my ward manager [name]; Sister "
                     "[name] helps too. Email [email] or ring [number], see [link] I feel "
                     "more confident now, thanks to [name] and to me, [name].")
    # coded spans still point at the words they code in the masked text
    segments = pd.read_csv(tmp_path / "m" / "segments.csv", dtype=str, keep_default_na=False)
    assert len(segments) > 0
    for row in segments.itertuples():
        (text,) = answers.loc[(answers["entry_id"] == row.entry_id)
                              & (answers["step_id"] == row.step_id), "text"]
        assert text[int(row.start):int(row.end)] == row.quote.removeprefix("'")

    await run_export(store, tmp_path / "v", "study-A", "shift", (),
                     options=ExportOptions.choose(text="verbatim"))
    answers = pd.read_csv(tmp_path / "v" / "answers.csv", dtype=str, keep_default_na=False)
    assert NAMED_TEXT in set(answers["text"])
    assert "verbatim" in (tmp_path / "v" / "data_dictionary.csv").read_text(encoding="utf-8-sig")


async def test_a_real_export_is_a_valid_data_package(
    store: Store, cohort: Cohort, tmp_path: Path
) -> None:
    import pandas as pd
    from frictionless import validate

    from reports.export.run import run_export

    await _world(store, cohort)
    out = tmp_path / "export"
    await run_export(store, out, "study-A", "relative", ())
    report = validate(out / "datapackage.json")
    assert report.valid, [e.message for t in report.tasks for e in t.errors][:10]
    assert {t.name for t in report.tasks} == {
        "answers", "entries", "cases", "segments", "codebook", "withheld"}
    descriptor = json.loads((out / "datapackage.json").read_text(encoding="utf-8"))
    assert descriptor["mentorbot"]["date_mode"] == "relative"
    assert descriptor["mentorbot"]["text"] == "masked"
    assert descriptor["mentorbot"]["codebook_hash"] == load_codebook().content_hash
    cases = pd.read_csv(out / "cases.csv", dtype={"entries": "Int64"})
    assert cases["entries"].tolist() == [2]
    dictionary = pd.read_csv(out / "data_dictionary.csv", dtype=str, keep_default_na=False)
    meta = dictionary[dictionary["file"] == "(export)"].set_index("column")
    assert meta.loc["date_mode", "value"] == "relative"
    assert "matching date" in meta.loc["date_mode", "meaning"]
    day = dictionary[(dictionary["file"] == "answers.csv") & (dictionary["column"] == "day")]
    assert "matching date" in day["meaning"].item()


async def test_check_ins_carry_their_wave_and_prompts_read_as_shown(
    store: Store, cohort: Cohort, tmp_path: Path
) -> None:
    import pandas as pd

    from conversations.catalogue import load_flows
    from conversations.scripted import walk
    from reports.export.run import run_export
    from storage.db import iso, utcnow

    flows = load_flows()
    mentee = await cohort.joined_mentee()
    await cohort.joined_mentor()
    await mentee.cmd("checkin")  # the baseline, at joining
    for text in ("Support", "Confidence"):
        await mentee.say(text)
    await mentee.cmd("skip")
    await mentee.tap("Save")
    await store.db.execute("UPDATE pairs SET matched_at=?",
                           (iso(utcnow() - timedelta(days=125)),))
    await mentee.cmd("checkin")  # four months on: the 3-month check-in
    answers = {s.id: f"answer {s.id}" for s in flows["checkin"].steps if not s.optional}
    await walk(mentee.service, mentee.sender, flows["checkin"], mentee.last, answers)
    await run_export(store, tmp_path / "x", "study-A", "relative", ("csv",))

    rows = pd.read_csv(tmp_path / "x" / "answers.csv", dtype=str, keep_default_na=False)
    assert set(rows["wave"]) == {"baseline", "m3"}
    entries = pd.read_csv(tmp_path / "x" / "entries.csv", dtype=str, keep_default_na=False)
    assert sorted(entries["wave"]) == ["baseline", "m3"]
    # days count from the matching date, 125 days ago
    assert set(entries["day"]) == {"125"}
    prompts = set(rows["prompt"])
    assert not [p for p in prompts if "{" in p]
    assert any("your mentor" in p for p in prompts)  # {partner}, as the mentee saw it
    assert set(rows["codebook_version"]) == {load_codebook().version}


async def test_report_and_export_pseudonyms_never_coincide(
    store: Store, cohort: Cohort, tmp_path: Path
) -> None:
    from reports.evaluator import STUDY
    from reports.evaluator import build_report as report_of

    await _world(store, cohort)
    built = await build_export(store, STUDY, "shift", load_codebook())
    exported = {e.person for e in built.bundle.entries} | {e.entry_id
                                                           for e in built.bundle.entries}
    assert exported
    await report_of(store, tmp_path / "report")
    text = (tmp_path / "report" / "report.json").read_text(encoding="utf-8")
    labels = set(re.findall(r"\b[PE]-[A-Z2-7]{10,12}\b", text))
    assert labels  # the report does name people and entries by pseudonym
    assert not labels & exported


async def test_stata_and_spss_files_carry_the_dictionarys_labels(
    store: Store, cohort: Cohort, tmp_path: Path
) -> None:
    import pandas as pd
    import pyreadstat

    from reports.export.run import run_export

    await _world(store, cohort)
    out = tmp_path / "x"
    result = await run_export(store, out, "study-A", "relative", ("dta", "sav"))
    names = {p.name for p in result.paths}
    assert {"answers.dta", "answers.sav", "entries.dta", "cases.sav", "codebook.dta"} <= names
    answers = pd.read_csv(out / "answers.csv", dtype=str, keep_default_na=False)

    # Stata: read by pandas' own reader, not the library that wrote it
    with pd.io.stata.StataReader(out / "answers.dta") as reader:
        stata = reader.read(convert_categoricals=True)
        labels = reader.variable_labels()
    assert len(stata) == len(answers)
    assert labels["day"].startswith("Days since the pair's matching date")
    assert set(stata["role"].astype(str)) == {"mentee"}  # a labelled number, read as its label
    assert stata["day"].tolist() == [float(d) for d in answers["day"]]
    assert list(stata["text"]) == list(answers["text"])

    sav, meta = pyreadstat.read_sav(out / "answers.sav", apply_value_formats=True)
    assert meta.column_names_to_labels["kind"].startswith("Input kind of the step")
    assert set(sav["kind"]) <= {"text", "choice", "multi", "scale", "date"}
    assert meta.variable_value_labels["role"] == {1.0: "mentee", 2.0: "mentor"}
    cases, _ = pyreadstat.read_sav(out / "cases.sav")
    assert cases["entries"].tolist() == [2.0]


async def test_the_command_takes_the_text_tool_and_bom_options(
    store: Store, cohort: Cohort, tmp_path: Path, place: Place, master_key: bytes,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from bot.cli import main
    from storage.crypto import encode_key

    await _world(store, cohort)
    monkeypatch.setenv("MENTORBOT_DB", str(place.db))
    if place.keystore:
        monkeypatch.setenv("MENTORBOT_KEYSTORE", place.keystore)
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(master_key))
    out = tmp_path / "nvivo"
    # the command runs its own event loop: off this test's loop, in a thread
    result = await asyncio.to_thread(CliRunner().invoke, main, [
        "export", "--study", "s1", "--out", str(out), "--for", "nvivo", "--no-bom",
        "--text", "verbatim", "--format", "csv", "--format", "qdpx"])
    assert result.exit_code == 0, result.output
    assert "text verbatim, offsets utf16" in result.output
    assert not (out / "answers.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    descriptor = json.loads((out / "datapackage.json").read_text(encoding="utf-8"))
    settings = descriptor["mentorbot"]
    assert (settings["qdpx_tool"], settings["qdpx_offsets"], settings["text"],
            settings["bom"]) == ("nvivo", "utf16", "verbatim", False)
    with zipfile.ZipFile(out / "project.qdpx") as zf:
        assert "UTF-16 code unit offsets" in zf.read("project.qde").decode("utf-8")
    validate_qdpx(out / "project.qdpx")
