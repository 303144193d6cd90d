"""Researcher export writers: CSV, JSONL, data dictionary, REFI-QDA codebook and project."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import uuid
import zipfile
from dataclasses import replace
from importlib import resources
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from reports.codebook import Codebook, parse_codebook
from reports.export import package, refi, tabular, write_all
from reports.export.model import (
    Case,
    CodedSegment,
    ExportAnswer,
    ExportBundle,
    ExportEntry,
    ExportOptions,
    facts_of,
)
from reports.export.refi import archive

HOSTILE = 'He said "no", then left,\r\nagain; =HYPERLINK("http://x.invalid","click") 😀 done'
SCRIPT = "<script>alert('x')</script> & ]]> café 漢字 👩‍👩‍👧 end"
P = "{urn:QDA-XML:project:1.0}"
C = "{urn:QDA-XML:codebook:1.0}"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def codebook() -> Codebook:
    # The canonical ids only; the writers do not need the coding rules.
    text = resources.files("reports").joinpath("codebook.yaml").read_text(encoding="utf-8")
    return parse_codebook(text)


def _answer(
    step: str,
    text: str | None,
    *,
    framework: str | None = None,
    kind: str = "text",
    codes: tuple[str, ...] = (),
    scale: int | None = None,
    prompt: str | None = None,
) -> ExportAnswer:
    return ExportAnswer(step, framework, prompt or f"Prompt for {step}?", kind, text, codes, scale)


@pytest.fixture(scope="module")
def bundle(codebook: Codebook) -> ExportBundle:
    e1 = ExportEntry(
        "E-alpha",
        "P-one",
        "D-1",
        "mentee",
        "grow",
        2,
        "2024.1",
        "2024-03-05",
        -3,
        "research_export",
        (
            _answer(
                "goal", HOSTILE, framework="GROW_GOAL", prompt='What "goal", exactly?\nBe brief.'
            ),
            _answer("reality", SCRIPT, framework="GROW_REALITY", prompt="<b>Reality</b> & now"),
            _answer("options", "+44 call them\tlater\rok", framework="GROW_OPTIONS"),
            _answer("will", "@everyone -- will do", framework="GROW_WILL"),
            _answer("topic", "Workload", kind="choice", codes=("TOPIC_WORKLOAD",)),
            _answer("confidence", None, kind="scale", scale=7),
        ),
    )
    e2 = ExportEntry(
        "E-beta",
        "P-one",
        "D-1",
        "mentee",
        "oskar",
        1,
        None,
        None,
        None,
        "research_export",
        (
            _answer("outcome", "\tleading tab and a control \x0b char", framework="OSKAR_OUTCOME"),
            _answer("outcome", "second answer to the same step", framework="OSKAR_OUTCOME"),
            _answer("skipped", None),
        ),
    )
    e3 = ExportEntry(
        "=E-gamma",
        "-P-two",
        None,
        "mentor",
        "episode_log",
        1,
        "v1",
        "2024-04-01",
        20,
        "research_export",
        (),
    )
    hostile = e1.answers[0].text or ""
    crlf_at = hostile.index("\r\n")
    link = hostile.index("HYPERLINK")
    emoji = hostile.index("😀")
    segments = (
        CodedSegment("E-alpha", "goal", 0, 11, "M_VOICE_STORY", "rules", 0.9),
        CodedSegment("E-alpha", "goal", link, link + 9, "R_REFLECTION", "semantic", 0.612345),
        CodedSegment("E-alpha", "goal", emoji + 2, emoji + 6, "O_INSIGHT", "rules", 0.5),
        CodedSegment("E-alpha", "goal", crlf_at, crlf_at + 2, "C_DYAD_TRUST", "review", 1.0),
        CodedSegment("E-alpha", "goal", 0, 11, "M_VOICE_STORY", "rules", 0.9),  # duplicate
        CodedSegment("E-alpha", "reality", 0, 0, "HIN_TIME_CONSTRAINTS", "structured", 1.0),
        CodedSegment("E-beta", "outcome", 1, 8, "O_AGENCY", "rules", 0.75),
    )
    cases = (Case("P-one", "D-1", "mentee", {"phase": "PH_PROGRESSION", "cohort": "=2024"}),)
    return ExportBundle(
        "study-x",
        "mentorbot 0.1.0 test",
        codebook.version,
        codebook.content_hash,
        "shifted",
        (e1, e2, e3),
        segments,
        cases,
    )


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def _records(path: Path) -> list[dict[str, str]]:
    header, *rows = _read_csv(path)
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory, bundle: ExportBundle, codebook: Codebook
) -> Path:
    out = tmp_path_factory.mktemp("export")
    tabular.write_csv(bundle, out)
    tabular.write_jsonl(bundle, out)
    tabular.write_data_dictionary(bundle, out)
    package.write_codebook_csv(codebook, out)
    package.write_package(facts_of(bundle), [p.name for p in out.iterdir()], out)
    refi.write_qdc(codebook, out / "codebook.qdc")
    refi.write_qdpx(bundle, codebook, out / "project.qdpx")
    return out


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------


def test_write_csv_returns_the_four_files(
    written: Path, bundle: ExportBundle, tmp_path: Path
) -> None:
    paths = tabular.write_csv(bundle, tmp_path)
    assert [p.name for p in paths] == ["answers.csv", "entries.csv", "cases.csv", "segments.csv"]
    assert not list(tmp_path.glob("*.partial"))


def test_answers_csv_round_trips_hostile_text(written: Path, bundle: ExportBundle) -> None:
    header, *rows = _read_csv(written / "answers.csv")
    assert header[0] == "case_id"
    answers = [(e, a) for e in bundle.entries for a in e.answers]
    assert len(rows) == len(answers)
    for row, (entry, answer) in zip(rows, answers, strict=True):
        rec = {k: tabular.restore_cell(v) for k, v in zip(header, row, strict=True)}
        assert rec["case_id"] == entry.person
        assert rec["entry_id"] == entry.entry_id
        assert rec["text"] == (answer.text or "")
        assert rec["prompt"] == answer.prompt
        assert rec["codes"] == ";".join(answer.codes)
        assert rec["scale"] == ("" if answer.scale is None else str(answer.scale))
        assert rec["date"] == (entry.date or "")
        assert rec["day"] == ("" if entry.day is None else str(entry.day))


def test_formula_cells_are_neutralised(written: Path) -> None:
    text = {
        r["step_id"]: r["text"]
        for r in _records(written / "answers.csv")
        if r["entry_id"] == "E-alpha"
    }
    assert text["goal"] == HOSTILE  # starts with a letter: untouched
    assert text["options"] == "'+44 call them\tlater\rok"
    assert text["will"] == "'@everyone -- will do"
    for name in ("answers.csv", "entries.csv", "cases.csv", "segments.csv"):
        numeric = {
            "flow_version",
            "day",
            "scale",
            "answer_no",
            "n_answers",
            "start",
            "end",
            "confidence",
        }
        for rec in _records(written / name):
            for column, value in rec.items():
                if column in numeric or column.endswith("_scale"):
                    assert value == "" or isinstance(float(value), float)  # a plain number
                    continue
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (name, column)
    gamma = [r for r in _records(written / "entries.csv") if r["case_id"] == "'-P-two"]
    assert gamma and gamma[0]["entry_id"] == "'=E-gamma"
    alpha = [r for r in _records(written / "answers.csv") if r["entry_id"] == "E-alpha"]
    assert alpha[0]["day"] == "-3"  # numbers are never prefixed


CSV_FILES = ("answers.csv", "entries.csv", "cases.csv", "segments.csv", "data_dictionary.csv")


def test_csv_encoding_and_record_ends(written: Path, bundle: ExportBundle,
                                      tmp_path: Path) -> None:
    for name in CSV_FILES:
        raw = (written / name).read_bytes()
        # one byte order mark, at the start only: what Excel and QualCoder need for UTF-8
        assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
        assert raw.endswith(b"\r\n")
        raw.decode("utf-8")
    # QualCoder's survey import opens the file with the locale's encoding; on Windows that is
    # cp1252 unless the file announces UTF-8. Python's "utf-8-sig" stands for what a BOM-aware
    # reader does: the emoji with its zero-width joiners comes through whole.
    with open(written / "answers.csv", encoding="utf-8-sig", newline="") as fh:
        assert SCRIPT in [row[-3] for row in csv.reader(fh)]
    plain = replace(bundle, options=ExportOptions(bom=False))
    tabular.write_csv(plain, tmp_path)
    tabular.write_data_dictionary(plain, tmp_path)
    for name in CSV_FILES:
        assert not (tmp_path / name).read_bytes().startswith(b"\xef\xbb\xbf")
    # an embedded CRLF stays inside its quoted field
    assert b'"He said ""no"", then left,\r\nagain;' in (written / "answers.csv").read_bytes()


def test_entries_csv_is_wide_with_a_unique_first_column(
    written: Path, bundle: ExportBundle
) -> None:
    header, *rows = _read_csv(written / "entries.csv")
    assert header[:2] == ["entry_id", "case_id"]
    assert len({r[0] for r in rows}) == len(rows) == len(bundle.entries)  # QualCoder needs this
    for column in (
        "goal_text",
        "confidence_scale",
        "topic_codes",
        "outcome_text",
        "outcome_2_text",
    ):
        assert column in header
    beta = dict(zip(header, rows[1], strict=True))
    assert beta["outcome_text"] == "'\tleading tab and a control \x0b char"
    assert beta["outcome_2_text"] == "second answer to the same step"
    assert beta["goal_text"] == ""
    alpha = dict(zip(header, rows[0], strict=True))
    assert alpha["goal_text"] == HOSTILE
    assert alpha["confidence_scale"] == "7"
    assert alpha["topic_codes"] == "TOPIC_WORKLOAD"


def test_cases_csv_includes_people_without_a_case_record(written: Path) -> None:
    cases = _records(written / "cases.csv")
    assert [c["case_id"] for c in cases] == ["P-one", "'-P-two"]
    assert cases[0]["phase"] == "PH_PROGRESSION"
    assert cases[0]["cohort"] == "'=2024"
    assert cases[1]["role"] == "mentor" and cases[1]["phase"] == ""


def test_segments_csv_quotes_the_coded_span(written: Path, bundle: ExportBundle) -> None:
    rows = _records(written / "segments.csv")
    assert len(rows) == len(bundle.segments)
    # offsets index the text cell as a reader of answers.csv gets it, guard and all
    cells = {(r["entry_id"], r["answer_no"]): r["text"]
             for r in _records(written / "answers.csv")}
    guarded = 0
    for row, seg in zip(rows, bundle.segments, strict=True):
        assert row["code_id"] == seg.code_id
        cell = cells[(row["entry_id"], row["answer_no"])]
        guarded += cell.startswith("'")
        assert cell[int(row["start"]) : int(row["end"])] == tabular.restore_cell(row["quote"])
        assert tabular.restore_cell(cell)[seg.start : seg.end] == tabular.restore_cell(
            row["quote"])
        assert float(row["confidence"]) == seg.confidence
        assert row["codebook_version"] == bundle.codebook_version
    assert guarded  # the "\tleading tab" answer: its cell starts with the apostrophe


# ---------------------------------------------------------------------------
# JSONL and data dictionary
# ---------------------------------------------------------------------------


def test_jsonl_parses_with_sorted_keys_and_exact_text(written: Path, bundle: ExportBundle) -> None:
    lines = (written / "entries.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(bundle.entries)
    for line, entry in zip(lines, bundle.entries, strict=True):
        obj = json.loads(line)
        assert line == json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        assert obj["entry_id"] == entry.entry_id  # no apostrophe in JSON
        assert obj["case_id"] == entry.person
        assert [a["text"] for a in obj["answers"]] == [a.text for a in entry.answers]
        assert [a["scale"] for a in obj["answers"]] == [a.scale for a in entry.answers]
    alpha = json.loads(lines[0])
    goal_segments = alpha["answers"][0]["segments"]
    assert [s["code_id"] for s in goal_segments][:2] == ["M_VOICE_STORY", "R_REFLECTION"]
    assert json.loads(lines[1])["date"] is None


def _json_paths(value: object, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= _json_paths(inner, path)
    elif isinstance(value, list):
        for item in value:
            paths |= _json_paths(item, f"{prefix}[]")
    return paths


def test_data_dictionary_lists_every_column_present(written: Path, bundle: ExportBundle) -> None:
    rows = _records(written / "data_dictionary.csv")
    listed = {(r["file"], r["column"]) for r in rows}
    markdown = (written / "data_dictionary.md").read_text(encoding="utf-8")
    for name in ("answers.csv", "entries.csv", "cases.csv", "segments.csv"):
        header = _read_csv(written / name)[0]
        for column in header:
            assert (name, column) in listed, (name, column)
            assert f"`{column}`" in markdown
    present: set[str] = set()
    for line in (written / "entries.jsonl").read_text(encoding="utf-8").splitlines():
        present |= _json_paths(json.loads(line))
    for path in present:
        assert ("entries.jsonl", path) in listed, path
    for r in rows:
        assert r["type"] and r["meaning"]
    meta = {r["column"]: r["value"] for r in rows if r["file"] == "(export)"}
    assert meta["codebook_version"] == bundle.codebook_version
    assert meta["codebook_hash"] == bundle.codebook_hash
    assert meta["date_mode"] == "shifted"
    assert bundle.codebook_hash in markdown and "shifted" in markdown
    assert "<b>" not in markdown  # prompts are escaped, not rendered


# ---------------------------------------------------------------------------
# REFI-QDA codebook
# ---------------------------------------------------------------------------


def test_stable_guid_is_uuid5() -> None:
    for name in ("C_MOTIVATION", "source:E-1", "answer:é:3", "😀"):
        assert refi.stable_guid(name) == str(uuid.uuid5(refi.NAMESPACE, name))


def test_qdc_validates_and_holds_every_code(written: Path, codebook: Codebook) -> None:
    refi.validate_qdc(written / "codebook.qdc")
    root = ET.parse(written / "codebook.qdc").getroot()
    assert root.tag == f"{C}CodeBook"
    codes = list(root.iter(f"{C}Code"))
    codable = {c.get("guid"): c for c in codes if c.get("isCodable") == "true"}
    for code_id in codebook.codes:
        node = codable[str(uuid.uuid5(refi.NAMESPACE, code_id))]
        assert node.findtext(f"{C}Description", "").startswith(f"Codebook id {code_id}.")
    assert len(codable) == len(codebook.codes)
    for code in codes:
        assert GUID.fullmatch(code.get("guid", ""))
        if code.find(f"{C}Code") is not None:
            assert code.get("isCodable") == "false"
    names = [c.get("name", "").casefold() for c in codes]
    assert len(names) == len(set(names))  # QualCoder merges codes with equal names
    top = [c.get("name") for c in root.find(f"{C}Codes") or []]
    for group in (
        "CMO elements",
        "Relationship phases",
        "Kram phases",
        "Learning domains",
        "Helping and hindering factors",
        "Topics",
        "Reflection framework steps",
        "Programme theories",
        "Support and challenge",
    ):
        assert group in top
    groups = {c.get("name") for c in codes if c.get("isCodable") == "false"}
    assert {
        "Enabling contexts",
        "Mechanism: resources",
        "Proximal outcomes",
        "GROW",
        "OSKAR",
        "Helping factors",
        "Hindering factors",
    } <= groups
    assert "Enabling contexts / People individually" in groups


def test_qdc_is_stable(written: Path, codebook: Codebook, tmp_path: Path) -> None:
    refi.write_qdc(codebook, tmp_path / "again.qdc")
    assert (tmp_path / "again.qdc").read_bytes() == (written / "codebook.qdc").read_bytes()


# ---------------------------------------------------------------------------
# REFI-QDA project
# ---------------------------------------------------------------------------


def _project(path: Path) -> tuple[ET.Element, dict[str, str]]:
    with zipfile.ZipFile(path) as zf:
        root = ET.fromstring(zf.read("project.qde"))
        texts = {
            n: zf.read(n).decode("utf-8")
            for n in zf.namelist()
            if n.startswith("sources/") and n.endswith(".txt")
        }
    return root, texts


def test_qdpx_validates_against_the_schema(written: Path) -> None:
    refi.validate_qdpx(written / "project.qdpx")
    assert refi.qdpx_errors(written / "project.qdpx") == []


def test_qdpx_coderefs_resolve_and_match_the_qdc(written: Path) -> None:
    root, _ = _project(written / "project.qdpx")
    project_codes = {c.get("guid"): c.get("name") for c in root.iter(f"{P}Code")}
    qdc = ET.parse(written / "codebook.qdc").getroot()
    assert project_codes == {c.get("guid"): c.get("name") for c in qdc.iter(f"{C}Code")}
    refs = [r.get("targetGUID") for r in root.iter(f"{P}CodeRef")]
    assert refs and all(ref in project_codes for ref in refs)
    guids = [el.get("guid") for el in root.iter() if el.get("guid")]
    assert len(guids) == len(set(guids))


def test_qdpx_sources_and_selection_offsets(written: Path, bundle: ExportBundle) -> None:
    root, texts = _project(written / "project.qdpx")
    sources = list(root.iter(f"{P}TextSource"))
    assert [s.get("name") for s in sources] == [e.entry_id for e in bundle.entries]
    for source, entry in zip(sources, bundle.entries, strict=True):
        guid = source.get("guid")
        assert guid == refi.stable_guid(f"source:{entry.entry_id}")
        assert source.get("plainTextPath") == f"internal://{guid}.txt"
        text = texts[f"sources/{guid}.txt"]
        assert "\r" not in text
        for answer in entry.answers:
            assert answer.prompt.replace("\r\n", "\n") in text
        for sel in source.iter(f"{P}PlainTextSelection"):
            start, end = int(sel.get("startPosition", "")), int(sel.get("endPosition", ""))
            assert 0 <= start < end <= len(text)

    alpha = texts[f"sources/{refi.stable_guid('source:E-alpha')}.txt"]
    assert alpha.startswith('What "goal", exactly?\nBe brief.\nHe said "no", then left,\nagain;')
    assert "<script>alert('x')</script>" in alpha  # plain text, never markup
    assert not any(el.tag.endswith("script") for el in root.iter())

    by_code: dict[str, list[str]] = {}
    for sel in sources[0].iter(f"{P}PlainTextSelection"):
        code_ref = sel.find(f"{P}Coding/{P}CodeRef")
        assert code_ref is not None
        span = alpha[int(sel.get("startPosition", "")) : int(sel.get("endPosition", ""))]
        by_code.setdefault(code_ref.get("targetGUID", ""), []).append(span)
    assert by_code[refi.code_guid("GROW_GOAL")] == [HOSTILE.replace("\r\n", "\n")]
    assert by_code[refi.code_guid("TOPIC_WORKLOAD")] == ["Workload"]
    assert by_code[refi.code_guid("R_REFLECTION")] == ["HYPERLINK"]  # after a CRLF
    assert by_code[refi.code_guid("O_INSIGHT")] == ["done"]  # after an emoji
    assert by_code[refi.code_guid("C_DYAD_TRUST")] == ["\n"]
    assert by_code[refi.code_guid("M_VOICE_STORY")] == ['He said "no', 'He said "no']
    # an empty segment codes its whole answer
    assert by_code[refi.code_guid("HIN_TIME_CONSTRAINTS")] == [SCRIPT]
    assert refi.code_guid("OSKAR_OUTCOME") not in by_code  # that was entry two


def test_qdpx_cases_and_variables(written: Path) -> None:
    root, _ = _project(written / "project.qdpx")
    variables = {v.get("guid"): v.get("name") for v in root.iter(f"{P}Variable")}
    assert {"role", "pair", "phase", "cohort", "entry_date", "entry_day"} <= set(
        variables.values()
    )
    cases = {c.get("name"): c for c in root.iter(f"{P}Case")}
    assert set(cases) == {"P-one", "-P-two"}
    one = cases["P-one"]
    refs = [r.get("targetGUID") for r in one.iter(f"{P}SourceRef")]
    assert refs == [refi.stable_guid("source:E-alpha"), refi.stable_guid("source:E-beta")]
    values = {variables[v[0].get("targetGUID")]: v[1].text for v in one.iter(f"{P}VariableValue")}
    assert values == {
        "role": "mentee",
        "pair": "D-1",
        "phase": "PH_PROGRESSION",
        "cohort": "=2024",
    }


def test_qdpx_bytes_are_stable(
    written: Path, bundle: ExportBundle, codebook: Codebook, tmp_path: Path
) -> None:
    refi.write_qdpx(bundle, codebook, tmp_path / "again.qdpx")
    assert (tmp_path / "again.qdpx").read_bytes() == (written / "project.qdpx").read_bytes()
    with zipfile.ZipFile(tmp_path / "again.qdpx") as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert infos[0].filename == "sources/" and infos[-1].filename == "project.qde"
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_zip64_end_records_are_readable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A project with 65,535+ sources needs Zip64 end records; force them on a small archive.
    monkeypatch.setattr(archive._ZipWriter, "_ZIP64_FROM", 2)
    path = tmp_path / "z.zip"
    with open(path, "wb") as fh:
        zw = archive._ZipWriter(fh)
        zw.add("sources/", b"")
        zw.add("sources/a.txt", "é".encode() * 2000)
        zw.add("sources/b.txt", b"short")
        zw.close()
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert zf.read("sources/a.txt") == "é".encode() * 2000
        assert zf.getinfo("sources/a.txt").compress_type == zipfile.ZIP_DEFLATED
        assert zf.getinfo("sources/b.txt").compress_type == zipfile.ZIP_STORED
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(path)], check=True, capture_output=True)


def test_write_all_matches_the_single_writers(
    written: Path, bundle: ExportBundle, codebook: Codebook, tmp_path: Path
) -> None:
    paths = write_all(bundle, codebook, tmp_path)
    assert {p.name for p in paths} == {p.name for p in written.iterdir()}
    for path in paths:
        assert path.read_bytes() == (written / path.name).read_bytes(), path.name


def test_write_all_reports_a_failed_project(
    bundle: ExportBundle, codebook: Codebook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(refi.project, "write_project_part", broken)
    with pytest.raises(OSError, match="disk full"):
        write_all(bundle, codebook, tmp_path)
    assert not (tmp_path / "project.qdpx").exists()
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".qdpx-*"))


# ---------------------------------------------------------------------------
# Bad input and validation errors
# ---------------------------------------------------------------------------


def _with(bundle: ExportBundle, **changes: object) -> ExportBundle:
    fields = {f: getattr(bundle, f) for f in ExportBundle.__dataclass_fields__}
    return ExportBundle(**{**fields, **changes})  # type: ignore[arg-type]


def test_inconsistent_bundles_are_refused(
    bundle: ExportBundle, codebook: Codebook, tmp_path: Path
) -> None:
    outside = _with(
        bundle, segments=(CodedSegment("E-alpha", "will", 0, 999, "O_AGENCY", "rules", 0.5),)
    )
    with pytest.raises(ValueError, match="outside"):
        tabular.write_csv(outside, tmp_path)
    unknown_step = _with(
        bundle, segments=(CodedSegment("E-alpha", "nope", 0, 1, "O_AGENCY", "rules", 0.5),)
    )
    with pytest.raises(ValueError, match="lacks"):
        tabular.write_jsonl(unknown_step, tmp_path)
    twice = _with(bundle, entries=bundle.entries + bundle.entries[:1])
    with pytest.raises(ValueError, match="duplicate entry"):
        tabular.write_csv(twice, tmp_path)
    unknown_code = _with(
        bundle, segments=(CodedSegment("E-alpha", "will", 0, 1, "NOT_A_CODE", "rules", 0.5),)
    )
    with pytest.raises(ValueError, match="NOT_A_CODE"):
        refi.write_qdpx(unknown_code, codebook, tmp_path / "x.qdpx")
    with pytest.raises(ValueError, match="codebook"):
        refi.write_qdpx(_with(bundle, codebook_hash="0" * 16), codebook, tmp_path / "y.qdpx")
    assert not list(tmp_path.glob("*.qdpx*"))


def test_validation_errors_are_readable(written: Path, tmp_path: Path) -> None:
    bad_qdc = tmp_path / "bad.qdc"
    bad_qdc.write_text(
        (written / "codebook.qdc")
        .read_text(encoding="utf-8")
        .replace('isCodable="true"', 'isCodable="maybe"', 1),
        encoding="utf-8",
    )
    with pytest.raises(refi.RefiValidationError, match="isCodable") as info:
        refi.validate_qdc(bad_qdc)
    assert info.value.errors

    with zipfile.ZipFile(written / "project.qdpx") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    qde = members["project.qde"].decode("utf-8")
    target = refi.code_guid("GROW_GOAL")
    broken = qde.replace(f'targetGUID="{target}"', f'targetGUID="{uuid.UUID(int=1)}"', 1)
    broken = re.sub(r'endPosition="(\d+)"', 'endPosition="99999"', broken, count=1)
    bad_qdpx = tmp_path / "bad.qdpx"
    with zipfile.ZipFile(bad_qdpx, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, broken.encode() if name == "project.qde" else data)
    errors = refi.qdpx_errors(bad_qdpx)
    assert any("CodeRef to undefined code" in e for e in errors)
    assert any("outside its" in e for e in errors)
    with pytest.raises(refi.RefiValidationError):
        refi.validate_qdpx(bad_qdpx)
    assert refi.qdpx_errors(tmp_path / "missing.qdpx")[0].startswith("not a readable zip")


# ---------------------------------------------------------------------------
# Data package and codebook.csv, read by third-party libraries
# ---------------------------------------------------------------------------


def test_frictionless_validates_the_package(written: Path) -> None:
    from frictionless import Package, validate

    report = validate(written / "datapackage.json")
    errors = [e.message for task in report.tasks for e in task.errors] + [
        e.message for e in report.errors]
    assert report.valid, errors[:10]
    pkg = Package(written / "datapackage.json")
    assert {r.path for r in pkg.resources} == {
        "answers.csv", "entries.csv", "cases.csv", "segments.csv", "codebook.csv"}
    # the checks really ran: every row of every file was read against its schema and keys
    rows = {task.name: task.stats["rows"] for task in report.tasks}
    assert rows["answers"] == 9 and rows["segments"] == 7 and rows["codebook"] > 100
    assert pkg.get_resource("answers").schema.foreign_keys


def test_frictionless_catches_a_broken_key(written: Path, tmp_path: Path) -> None:
    """The validation above can fail: a segment naming a code the codebook lacks does."""
    from frictionless import validate

    shutil.copytree(written, tmp_path / "x")
    seg = tmp_path / "x" / "segments.csv"
    seg.write_bytes(seg.read_bytes().replace(b"O_AGENCY", b"O_NO_SUCH_CODE"))
    report = validate(tmp_path / "x" / "datapackage.json")
    assert not report.valid
    assert "foreign-key" in {e.type for t in report.tasks for e in t.errors}


_PANDAS = {"integer": "Int64", "number": "float64", "boolean": "boolean"}


def test_pandas_reads_every_csv_with_the_dictionarys_types(written: Path) -> None:
    import pandas as pd

    dictionary = pd.read_csv(written / "data_dictionary.csv", dtype=str, keep_default_na=False)
    for name in ("answers.csv", "entries.csv", "cases.csv", "segments.csv"):
        cols = dictionary[dictionary["file"] == name]
        types = dict(zip(cols["column"], cols["type"], strict=True))
        dtypes = {c: _PANDAS.get(t, "string") for c, t in types.items() if t != "date"}
        frame = pd.read_csv(written / name, dtype=dtypes, keep_default_na=False,
                            na_values={c: [""] for c in types},
                            parse_dates=[c for c, t in types.items() if t == "date"])
        assert list(frame.columns) == list(types)  # the BOM did not stick to the first name
        for column, kind in types.items():
            if kind == "date":
                assert str(frame[column].dtype).startswith("datetime64"), (name, column)
    answers = pd.read_csv(written / "answers.csv", keep_default_na=False)
    assert HOSTILE in set(answers["text"]) and SCRIPT in set(answers["text"])


def test_codebook_csv_has_every_code_with_its_place(written: Path, codebook: Codebook) -> None:
    import pandas as pd

    book = pd.read_csv(written / "codebook.csv", dtype=str, keep_default_na=False)
    assert set(book["code_id"]) == set(codebook.codes)
    row = book.set_index("code_id").loc["GROW_GOAL"]
    assert row["label"] == codebook.codes["GROW_GOAL"].label
    assert row["qdc_group"].startswith("Reflection framework steps")
    qdc = ET.parse(written / "codebook.qdc").getroot()
    names = {c.get("name") for c in qdc.iter(f"{C}Code") if c.get("isCodable") == "true"}
    assert set(book["qdc_name"]) == names


# ---------------------------------------------------------------------------
# REFI-QDA projects read by an independent reader (pyrefiqda)
# ---------------------------------------------------------------------------

# emoji (one beyond U+FFFF; a family joined by zero-width joiners), a combining accent and a
# CRLF, each before a coded word
TRICKY = "Trust 😀 grew.\r\nCafe\u0301 talk 👩‍👩‍👧 built trust, then more trust 🙂 again"


def _tricky_bundle(codebook: Codebook, offsets: str) -> tuple[ExportBundle, dict[str, str]]:
    answers = (_answer("goal", TRICKY, framework="GROW_GOAL"),
               _answer("reality", "plain words only", framework="GROW_REALITY"))
    entry = ExportEntry("E-t", "P-t", "D-t", "mentee", "grow", 2, None, "2024-05-01", None,
                        "research_export", answers, "m3")
    codes = ["M_VOICE_STORY", "R_REFLECTION", "O_INSIGHT", "O_AGENCY", "C_DYAD_TRUST"]
    spans = [(0, 5), (TRICKY.index("Cafe"), TRICKY.index("Cafe") + 5),
             (TRICKY.index("trust"), TRICKY.index("trust") + 5),
             (TRICKY.rindex("trust"), TRICKY.rindex("trust") + 5),
             (TRICKY.index("🙂"), len(TRICKY))]
    segments = tuple(CodedSegment("E-t", "goal", a, b, c, "rules", 0.8)
                     for (a, b), c in zip(spans, codes, strict=True))
    # what each selection must show: the words, with the CRLF as the source file has it
    expected = {c: TRICKY[a:b].replace("\r\n", "\n") for (a, b), c in zip(spans, codes,
                                                                          strict=True)}
    case = Case("P-t", "D-t", "mentee", {"entries": "1", "cohort": "north"})
    return ExportBundle("s", "t", codebook.version, codebook.content_hash, "shift", (entry,),
                        segments, (case,), ExportOptions.choose(offsets=offsets)), expected


@pytest.mark.parametrize("offsets", ["codepoints", "utf16"])
def test_an_independent_reader_finds_every_segment_at_its_words(
    codebook: Codebook, tmp_path: Path, offsets: str
) -> None:
    from pyrefiqda import RefiProject

    bundle, expected = _tricky_bundle(codebook, offsets)
    refi.write_qdpx(bundle, codebook, tmp_path / "p.qdpx")
    refi.validate_qdpx(tmp_path / "p.qdpx")
    project = RefiProject.load(tmp_path / "p.qdpx", extract_dir=str(tmp_path / "x"))
    codes = {c.guid: c.name for c in _walk_codes(project.code_book.codes.code)}
    (source,) = project.sources.text_source
    text = RefiProject.resolve_source_path(source.plain_text_path, tmp_path / "x").read_text(
        encoding="utf-8")
    units = text.encode("utf-16-le")

    def shown(start: int, end: int) -> str:
        if offsets == "utf16":  # as NVivo counts: two units for a character beyond U+FFFF
            return units[2 * start : 2 * end].decode("utf-16-le")
        return text[start:end]

    found = {}
    for sel in source.plain_text_selection:
        for coding in sel.coding:
            found.setdefault(codes[coding.code_ref.target_guid], []).append(
                shown(sel.start_position, sel.end_position))
    for code_id, words in expected.items():
        label = codebook.codes[code_id].label
        assert words in found[label], (code_id, found[label])
    # the whole-answer selections too: the goal answer as written (line end as in the file)
    assert TRICKY.replace("\r\n", "\n") in found[codebook.codes["GROW_GOAL"].label]
    assert "plain words only" in found[codebook.codes["GROW_REALITY"].label]
    # the other unit reads the wrong words after the first emoji: the two modes really differ
    if offsets == "utf16":
        sel = next(s for s in source.plain_text_selection if s.name == "O_AGENCY")
        assert text[sel.start_position : sel.end_position] != expected["O_AGENCY"]


def _walk_codes(codes: list) -> list:  # type: ignore[type-arg]
    out = []
    for code in codes:
        out.append(code)
        out += _walk_codes(code.code or [])
    return out


def test_each_source_carries_its_case_attributes(codebook: Codebook, tmp_path: Path) -> None:
    from pyrefiqda import RefiProject

    bundle, _ = _tricky_bundle(codebook, "codepoints")
    refi.write_qdpx(bundle, codebook, tmp_path / "p.qdpx")
    project = RefiProject.load(tmp_path / "p.qdpx", extract_dir=str(tmp_path / "x"))
    variables = {v.guid: v.name for v in project.variables.variable}
    (source,) = project.sources.text_source
    values = {variables[v.variable_ref.target_guid]: v.text_value or v.integer_value
              for v in source.variable_value}
    assert values["case_id"] == "P-t" and values["case_role"] == "mentee"
    assert values["case_pair"] == "D-t" and values["case_cohort"] == "north"
    assert values["case_entries"] == 1  # an IntegerValue, not text
    assert values["entry_wave"] == "m3"
    (case,) = project.cases.case
    assert {variables[v.variable_ref.target_guid] for v in case.variable_value} >= {
        "role", "pair", "cohort", "entries"}


def test_tool_profiles_choose_the_offsets() -> None:
    assert ExportOptions.choose().offsets == "codepoints"
    assert ExportOptions.choose(tool="qualcoder").offsets == "codepoints"
    for tool in ("nvivo", "atlasti", "maxqda"):
        assert ExportOptions.choose(tool=tool).offsets == "utf16"
    assert ExportOptions.choose(tool="nvivo", offsets="codepoints").offsets == "codepoints"
    with pytest.raises(ValueError, match="unknown tool"):
        ExportOptions.choose(tool="excel")
    with pytest.raises(ValueError, match="text mode"):
        ExportOptions.choose(text="raw")
