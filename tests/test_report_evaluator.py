"""The evaluator's report end to end: consent, privacy in quotes, escaping, determinism, CLI."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import main
from conversations.catalogue import load_flows
from reports.codebook import load_codebook
from reports.evaluator import Options, build_report
from reports.review import WITHHELD, iter_rows
from reports.structured import StepIndex, mask_text, sentence_spans, split_entry
from reports.synthetic import generate_cohort
from storage.crypto import KeyRing, encode_key, generate_key
from storage.models import Role
from storage.pseudonyms import Pseudonymiser
from storage.store import Store
from tests.people import Cohort, Person

# the flow, report and export suites run on both backends (issue #20)
pytestmark = pytest.mark.both_backends

START = date(2026, 1, 5)


# -- helpers shared by the report tests ------------------------------------------------
async def write_entry(
    store: Store, pid: int, pair_id: int | None, flow: str, answers: dict[str, Any], day: date
) -> int:
    """A complete entry through the storage API, dated ``day`` (the chat would date it now)."""
    eid = await store.entries.create(pid, pair_id, flow, load_flows()[flow].version, "{}")
    for step, value in answers.items():
        await store.entries.save_answer(pid, eid, step, value)
    await store.entries.set_status(pid, eid, "complete")
    stamp = f"{day.isoformat()}T12:00:00+00:00"
    await store.db.execute(
        "UPDATE entries SET created_at=?, completed_at=? WHERE id=?", (stamp, stamp, eid)
    )
    return eid


def episode(
    day: date,
    phase: str,
    *,
    kind: str = "EP_FORMAL_SESSION",
    learned: str = "I learned more about the new rota from their side.",
    climate: str = "SC_GROWTH",
) -> dict[str, Any]:
    return {
        "when": day.isoformat(),
        "kind": kind,
        "mode": "MODE_VIDEO",
        "offered": {"selected": ["M_SHARING_EXPERIENCE"]},
        "phase": phase,
        "climate": climate,
        "learned": learned,
    }


async def pair_ids(store: Store, cohort: Cohort) -> tuple[int, int]:
    pair = await store.programmes.pair(cohort.pair_id)
    assert pair is not None and pair.mentor_id and pair.mentee_id
    await store.db.execute(
        "UPDATE pairs SET matched_at=? WHERE id=?",
        (f"{START.isoformat()}T09:00:00+00:00", cohort.pair_id),
    )
    return pair.mentor_id, pair.mentee_id


async def another_pair(
    store: Store, cohort: Cohort, *, mentee: str = "Yes", mentor: str = "Yes"
) -> tuple[int, int, Person, int]:
    """A second pair in the programme: (mentee id, mentor id, the mentor, pair id); ``mentee``
    and ``mentor`` are their answers to the optional consents."""
    pair_id = await store.programmes.create_pair(cohort.programme_id)
    ids = []
    person = None
    for user, role, name, answer in (
        (7101, Role.MENTEE, "Sam", mentee),
        (7102, Role.MENTOR, "Ali", mentor),
    ):
        code = await store.programmes.create_invite(cohort.programme_id, role, pair_id)
        person = cohort.person(user, name)
        await person.start(code)
        await person.consent_all(answer)
        me = await store.participants.by_user(user)
        assert me is not None
        ids.append(me.id)
    assert person is not None
    return ids[0], ids[1], person, pair_id


async def report(store: Store, out: Path, **options: Any) -> dict[str, Any]:
    await build_report(store, out, options=Options(workers=options.pop("workers", 0), **options))
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def everything(out: Path) -> str:
    return "\n".join(
        (out / name).read_text(encoding="utf-8")
        for name in ("report.json", "report.html", "review.csv")
    )


# -- consent ------------------------------------------------------------------------------
async def test_only_current_evaluation_consent_reaches_any_output(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    mentee = await cohort.joined_mentee()
    await cohort.joined_mentor()
    mentor_id, mentee_id = await pair_ids(store, cohort)
    day = START + timedelta(days=20)
    await write_entry(
        store,
        mentee_id,
        cohort.pair_id,
        "grow",
        {
            "goal": "to feel more confident about the marmalade rota",
            "reality": "my manager is supportive but there's never protected time",
            "options": "my mentor shared how she handled the marmalade rota, which helped",
            "will": "I will block out an hour a week by friday",
        },
        day,
    )
    await write_entry(
        store,
        mentor_id,
        cohort.pair_id,
        "episode_log",
        episode(
            day,
            "PH_SETTING_DIRECTION",
            learned="I learned a lot about the zeppelin ward from their side",
        ),
        day,
    )
    # a second pair: the mentee declines evaluation, the mentor consents and later withdraws
    declining, withdrawing, other_mentor, other_pair = await another_pair(
        store, cohort, mentee="No", mentor="Yes"
    )
    await write_entry(
        store,
        declining,
        other_pair,
        "grow",
        {
            "goal": "to feel more confident about the quokka clinic",
            "options": "my mentor shared her experience of the quokka clinic, which helped",
        },
        day,
    )
    await write_entry(
        store,
        withdrawing,
        other_pair,
        "episode_log",
        episode(day, "PH_PROGRESSION", learned="I learned about the narwhal audit"),
        day,
    )
    out = tmp_path / "out"
    data = await report(store, out)
    # the withdrawing mentor was included while they consented ...
    assert "narwhal" in (out / "review.csv").read_text(encoding="utf-8")
    await other_mentor.cmd("withdraw")
    await other_mentor.tap("Stop evaluation use")
    data = await report(store, out)
    text = everything(out)
    assert "marmalade" in text and "zeppelin" in text
    for secret in ("quokka", "narwhal"):
        assert secret not in text
    assert data["summary"]["entries"] == 2
    assert data["summary"]["people"] == 2 and data["summary"]["pairs"] == 1
    pseudonyms = await Pseudonymiser.for_study(store.vault, "evaluation", "report")
    for pid in (declining, withdrawing):
        person = await store.participants.get(pid)
        assert person is not None
        assert pseudonyms.person(person.subject_ref) not in text
    assert pseudonyms.pair(other_pair) not in text
    assert mentee.sender.first_name not in text  # never a name, even the consenting one's


async def test_pair_events_of_people_who_do_not_consent_are_not_used(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    await cohort.joined_mentee()
    mentor = cohort.person(7002, "Morgan")
    await mentor.start(cohort.mentor_code)
    await mentor.consent_all("No")
    mentor_id, mentee_id = await pair_ids(store, cohort)
    await write_entry(
        store,
        mentee_id,
        cohort.pair_id,
        "grow",
        {"goal": "to feel more confident about my career plans"},
        START + timedelta(days=5),
    )
    await store.db.execute(
        "INSERT INTO pair_events (pair_id, event, at, recorded_at, source, participant_id) "
        "VALUES (?, 'still_meeting', ?, ?, 'answer', ?), (?, 'closed', ?, ?, 'coordinator', "
        "NULL)",
        (
            cohort.pair_id,
            "2026-02-01T10:00:00+00:00",
            "2026-02-01T10:00:00+00:00",
            mentor_id,
            cohort.pair_id,
            "2026-03-01T10:00:00+00:00",
            "2026-03-01T10:00:00+00:00",
        ),
    )
    data = await report(store, tmp_path / "out")
    (timeline,) = data["phases"]["pairs"].values()
    days = {s["from_day"] for s in timeline["segments"]}
    assert 55 in days  # the coordinator's closure (day 55) counts
    assert 27 not in days  # the non-consenting mentor's answer (day 27) does not
    assert data["summary"]["entries_by_author"] == {"mentee": 1}


# -- quotes: names, flags, escaping ---------------------------------------------------------
async def test_hostile_text_is_escaped_and_names_masked(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    await cohort.joined_mentee(name="Robin")
    await cohort.joined_mentor(name="Morgan")
    _, mentee_id = await pair_ids(store, cohort)
    await write_entry(
        store,
        mentee_id,
        cohort.pair_id,
        "grow",
        {
            # a realised change: a goal stated as a wish is no outcome, so it is not quoted
            "goal": "<script>alert('x')</script> I feel more confident now, Robin here",
            "options": "Morgan shared her experience with Dr Okafor, which helped. "
            "<img src=x onerror=alert(1)> My manager Jo agreed.",
            "will": '=HYPERLINK("http://evil.example") I will book time with Jo by friday',
        },
        START + timedelta(days=3),
    )
    out = tmp_path / "out"
    await report(store, out)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html or "&lt;img" in html
    text = everything(out)
    for name in ("Robin", "Morgan", "Okafor", " Jo "):
        assert name not in text
    assert "Dr [name]" in text and "[name]" in html
    rows = list(iter_rows(out / "review.csv"))
    assert rows and not any(r["evidence"].startswith("=") for r in rows)
    assert any(r["evidence"].startswith("'=") for r in rows)  # kept, but inert in a spreadsheet
    assert "http://evil.example" not in text


async def test_safety_flagged_answers_are_never_quoted(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    mentee = await cohort.joined_mentee()
    await cohort.joined_mentor()
    await pair_ids(store, cohort)
    await mentee.grow(
        {
            "goal": "to feel more confident about my career plans",
            "reality": "I want to die, honestly, my manager is not supportive",
            "options": "my mentor shared her experience, which helped",
            "will": "I will book protected time by friday",
        }
    )
    out = tmp_path / "out"
    data = await report(store, out)
    text = everything(out)
    assert "want to die" not in text
    reality = [r for r in iter_rows(out / "review.csv") if r["step"] == "Reality"]
    assert reality and all(r["evidence"] == WITHHELD for r in reality)
    assert all("die" not in q["text"] for q in data["quotes"].values())


# -- determinism and scale ----------------------------------------------------------------
async def test_same_database_gives_identical_json_with_or_without_workers(
    store: Store, tmp_path: Path
) -> None:
    await generate_cohort(store, pairs=8, sessions=6, seed=11)
    first = tmp_path / "a"
    await report(store, first)
    await report(store, tmp_path / "b")
    await report(store, tmp_path / "c", workers=2)
    a = (first / "report.json").read_bytes()
    assert a == (tmp_path / "b" / "report.json").read_bytes()
    assert a == (tmp_path / "c" / "report.json").read_bytes()
    assert (first / "review.csv").read_bytes() == (tmp_path / "c" / "review.csv").read_bytes()
    data = json.loads(a)
    assert data["codebook"] == {
        "version": load_codebook().version,
        "hash": load_codebook().content_hash,
        "rules_version": load_codebook().rules_version,
    }
    assert data["configurations"]["count"] == len(data["configurations"]["items"]) > 0
    assert data["phases"]["pairs"] and data["learning_domains"]["by_month"]
    html = (first / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 5
    assert "http://" not in html and "https://" not in html  # nothing to fetch: opens offline


async def test_empty_programme_still_renders(store: Store, tmp_path: Path) -> None:
    data = await report(store, tmp_path / "out")
    assert data["summary"]["entries"] == 0 and data["configurations"]["count"] == 0
    assert "No configurable outcomes yet" in (tmp_path / "out" / "report.html").read_text()


# -- structured coding and masking ----------------------------------------------------------
def test_structured_codes_come_from_buttons_and_prompts() -> None:
    book = load_codebook()
    index = StepIndex(load_flows(), book)
    split = split_entry(
        "grow",
        {
            "goal": "get ready for my appraisal",
            "will": "book protected time by friday",
            "helped": {
                "selected": ["M_SHARING_EXPERIENCE", "C_DYAD_SAFE_SPACE"],
                "other": "the coffee",
            },
            "factors": {"selected": ["HIN_TIME_CONSTRAINTS"]},
            "learning": {"selected": ["DOM_AFFECTIVE"]},
        },
        index,
    )
    codes = {(c.code_id, c.cmo_role, c.method, c.start) for c in split.codes}
    assert ("M_SHARING_EXPERIENCE", "RESOURCE", "structured", -1) in codes
    assert ("C_DYAD_SAFE_SPACE", "CONTEXT_ENABLING", "structured", -1) in codes
    assert ("HIN_TIME_CONSTRAINTS", "CONTEXT_INHIBITING", "structured", -1) in codes
    assert ("DOM_AFFECTIVE", "OUTCOME_DISTAL", "structured", -1) in codes
    assert ("helped.other", "the coffee") in split.texts
    prompt = index.prompt_codes("grow", "will", "book protected time by friday")
    assert [(c.code_id, c.confidence) for c in prompt] == [("R_DECISION_ACTION", 0.5)]
    # a goal elicits setting direction, but a session goal is not the relationship's phase
    assert index.prompt_codes("grow", "goal", "get ready for my appraisal") == []
    assert index.prompt_codes("grow", "will", "no") == []
    log = split_entry("episode_log", episode(START, "PH_PROGRESSION"), index)
    assert log.day == START.isoformat()
    assert {c.code_id for c in log.codes} >= {"PH_PROGRESSION", "SC_GROWTH", "EP_FORMAL_SESSION"}


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        (
            "Get ready for my appraisal with Dr Okafor",
            (),
            "Get ready for my appraisal with Dr [name]",
        ),
        ("my manager Jo is not supportive", (), "my manager [name] is not supportive"),
        ("Robin said it went well", ("Robin",), "[name] said it went well"),
        ("priyanka said it went well", ("Priyanka",), "[name] said it went well"),
        ("a robin sang", ("Robin",), "a robin sang"),  # a name that is also a word
        ("I will try. Will said so.", ("Will",), "I will try. [name] said so."),
        (
            "Jo Smith told me, call 07700 900123 or jo@nhs.net",
            (),
            "[name] told me, call [number] or [email]",
        ),
        ("On Monday the NHS Trust board met.", (), "On Monday the NHS Trust board met."),
        ("Priya and I talked it through.", (), "[name] and I talked it through."),
    ],
)
def test_masking(text: str, names: tuple[str, ...], expected: str) -> None:
    assert mask_text(text, names) == expected


def test_sentence_spans_cover_the_text() -> None:
    text = "One thing. Another!\nA third? Last"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "One thing.",
        "Another!",
        "A third?",
        "Last",
    ]


# -- the command line -------------------------------------------------------------------------
ENV = (
    "MENTORBOT_DB",
    "MENTORBOT_MASTER_KEY",
    "MENTORBOT_KEY_FILE",
    "MENTORBOT_KEYSTORE",
    "MENTORBOT_PREVIOUS_MASTER_KEYS",
)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def _make_db(path: Path, key: bytes) -> None:
    s = await Store.open(path, KeyRing(key), load_flows()["consent"].version)
    try:
        await generate_cohort(s, pairs=2, sessions=3, seed=3)
    finally:
        await s.close()


def test_cli_reports_and_explains_failures(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    db = cli_env / "m.sqlite3"
    key = generate_key()
    runner = CliRunner()
    monkeypatch.setenv("MENTORBOT_DB", str(db))
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(key))
    missing = runner.invoke(main, ["report", "evaluator", "--out", "out"])
    assert missing.exit_code == 2 and "no database at" in missing.output
    assert not db.exists()  # a report never creates a database
    asyncio.run(_make_db(db, key))
    ok = runner.invoke(main, ["report", "evaluator", "--out", "out"])
    assert ok.exit_code == 0, ok.output
    assert "report.html, report.json, review.csv" in ok.output
    assert {p.name for p in (cli_env / "out").iterdir()} == {
        "report.html",
        "report.json",
        "review.csv",
    }
    review = cli_env / "out" / "review.csv"
    rows = review.read_text(encoding="utf-8").splitlines()
    rows[1] = rows[1].rstrip(",") + ",change,NOT_A_CODE,"
    bad = cli_env / "bad.csv"
    bad.write_text("\n".join(rows[:2]) + "\n", encoding="utf-8")
    wrong_id = runner.invoke(main, ["report", "evaluator", "--out", "out2", "--review", str(bad)])
    assert wrong_id.exit_code == 2
    assert "unknown codebook id 'NOT_A_CODE'" in wrong_id.output and "line 2" in wrong_id.output
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(generate_key()))
    wrong_key = runner.invoke(main, ["report", "evaluator", "--out", "out3"])
    assert wrong_key.exit_code == 2 and "master key" in wrong_key.output
    assert "Traceback" not in wrong_key.output


def test_cli_code_reads_json_lines(cli_env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["code"],
        input=(
            '{"id": "a", "role": "mentee", "text": "My manager has been really supportive."}\n'
            '{"id": "b", "text": 5}\n'
        ),
    )
    assert result.exit_code == 1
    first, second = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert first["id"] == "a" and any(c["code"] == "FAC_LINE_MGMT_SUPPORT" for c in first["codes"])
    assert second == {"error": "text must be a string", "id": "b"}
    assert "1 line(s) could not be coded" in result.stderr


async def test_semantic_layer_is_optional_and_progress_is_reported(
    store: Store, tmp_path: Path
) -> None:
    from conversations import sentence_encoder

    await generate_cohort(store, pairs=2, sessions=3, seed=5)
    stages: list[tuple[str, int | None]] = []
    advanced = 0

    class Sink:
        def stage(self, name: str, total: int | None) -> None:
            stages.append((name, total))

        def advance(self, n: int = 1) -> None:
            nonlocal advanced
            advanced += n

    out = tmp_path / "out"
    result = await build_report(store, out, options=Options(semantic=True), progress=Sink())
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    ok, why = sentence_encoder.availability()
    if not ok:
        assert data["method"]["coders"]["semantic"] == why
    assert [name for name, _ in stages] == [
        "Coding entries",
        "Phases and configurations",
        "Writing the report",
    ]
    assert stages[0][1] == result.entries and advanced == result.entries + result.pairs
    assert {p.name for p in result.paths} == {"report.html", "report.json", "review.csv"}


def test_chart_names_are_plain_never_cut_and_never_shared() -> None:
    """A chart names "Dyad: safe space, time out" as the page does ("Safe space, time out",
    not "Dyad"), a domain by the name before its colon, and the two "New knowledge: ..."
    resources by what follows it, so no two bars carry the same name."""
    from reports.evaluator.render import chart_names

    labels = {k: c.label for k, c in load_codebook().codes.items()}
    names = chart_names(labels)
    assert names["C_DYAD_SAFE_SPACE"] == "Safe space, time out"
    assert names["DOM_COGNITIVE"] == "Cognitive"
    assert names["M_NEW_KNOWLEDGE_LOCAL"] != names["M_NEW_KNOWLEDGE_POLICY_EVIDENCE"]
    assert names["M_NEW_KNOWLEDGE_POLICY_EVIDENCE"].replace("\n", " ") == (
        "New knowledge: policy and evidence")
    cmo = [names[k] for k, c in load_codebook().codes.items() if c.scheme == "cmo"]
    assert len(set(cmo)) == len(cmo)
