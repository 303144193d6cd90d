"""The REFI-QDA project (``.qdpx``): cases, variables, sources, selections, parts."""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from reports.codebook import (
    Codebook,
)
from reports.export.model import (
    Case,
    ExportBundle,
    ExportEntry,
    ExportFacts,
    all_cases,
    facts_of,
    segments_by_entry,
)

if TYPE_CHECKING:
    pass
from reports.export.refi.archive import _STREAM_LEVEL, _crc32_combine, _ZipRecord, _ZipWriter
from reports.export.refi.codebook import _code_tree, _write_codes
from reports.export.refi.ids import _user_guid, code_guid, selection_base, source_guid, stable_guid
from reports.export.refi.xml import _INVALID_RE, _attr, _plain, _tag, _text

PROJECT_XMLNS = "urn:QDA-XML:project:1.0"
PROJECT_FILE = "project.qde"
SOURCES_DIR = "sources/"  # lower case: REFI-QDA 1.5 section 8.1; ATLAS.ti rejects "Sources/"


# ---------------------------------------------------------------------------
# Project
# ---------------------------------------------------------------------------

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class _Variable:
    key: str
    name: str
    type: str  # typeOfVariable
    description: str
    guid: str


def _case_variables(cases: Sequence[Case]) -> list[_Variable]:
    out = [
        _Variable("role", "role", "Text", "Participant role: mentee or mentor",
                  stable_guid("variable:case:role")),
        _Variable("pair", "pair", "Text", "Study pseudonym of the participant's pair",
                  stable_guid("variable:case:pair")),
    ]
    # The Case's own role and pair fields win over attributes of the same name.
    keys = sorted({k for c in cases for k in c.attributes} - {"role", "pair"})
    out += [_Variable(k, k, "Text", f"Case attribute {k}", stable_guid(f"variable:case:{k}"))
            for k in keys]
    return out


_SOURCE_VARIABLES = [
    _Variable(key, f"entry_{key}", kind, desc, stable_guid(f"variable:source:{key}"))
    for key, kind, desc in [
        ("flow", "Text", "Flow (question set) of the entry"),
        ("flow_version", "Integer", "Version of the flow definition"),
        ("question_set_version", "Text", "Version of the prompt wording"),
        ("wave", "Text", "Check-in wave (baseline, m3, m6, m9, m12, closing, followup)"),
        ("date", "Date", "Entry date as exported (see the project description for the mode)"),
        ("day", "Integer", "Days since the pair's matching date (relative date mode)"),
        ("consent", "Text", "Consent state that admitted the entry"),
    ]
]
_INTEGER_ATTRIBUTES = frozenset(("entries",))


def _case_source_variables(cases: Sequence[Case]) -> list[_Variable]:
    """The case's variables again, as source variables: QualCoder ignores a Case's
    SourceRefs, so a tool filters coded text by role, pair or participant only through
    variables on the source itself."""
    out = [
        _Variable("case", "case_id", "Text", "Study pseudonym of the participant who wrote it",
                  stable_guid("variable:source-case:case")),
    ]
    for var in _case_variables(cases):
        kind = "Integer" if var.key in _INTEGER_ATTRIBUTES else var.type
        out.append(_Variable(var.key, f"case_{var.name}", kind,
                             f"{var.description} (of the case that wrote the entry)",
                             stable_guid(f"variable:source-case:{var.key}")))
    return out
_SV = {v.key: v for v in _SOURCE_VARIABLES}
_VALUE_TAG = {"Text": "TextValue", "Integer": "IntegerValue", "Date": "DateValue"}
_INTEGER = re.compile(r"-?\d+")


def _value(var: _Variable, value: str | int | None) -> str:
    if value is None or value == "":
        return ""
    if var.type == "Integer" and isinstance(value, str) and not _INTEGER.fullmatch(value):
        return ""  # an attribute that is not a number after all: left out, not invalid
    tag = _VALUE_TAG[var.type]
    body = _text(value) if isinstance(value, str) else str(value)
    return (f'<VariableValue><VariableRef targetGUID="{var.guid}"/>'
            f"<{tag}>{body}</{tag}></VariableValue>\n")


class _Memo(dict[Any, str]):
    def __init__(self, fn: Callable[[Any], str]) -> None:
        super().__init__()
        self._fn = fn

    def __missing__(self, key: Any) -> str:
        value = self[key] = self._fn(key)
        return value


def _crlf_starts(text: str) -> list[int]:
    starts, i = [], text.find("\r\n")
    while i >= 0:
        starts.append(i)
        i = text.find("\r\n", i + 2)
    return starts


def _moved(pos: int, crlf: list[int]) -> int:
    # Each CRLF wholly before pos collapses to one character: shift pos back by their count.
    return pos - bisect.bisect_right(crlf, pos - 2) if crlf else pos


def _project_head(write: Callable[[str], object], b: ExportFacts, codebook: Codebook) -> None:
    user = _user_guid(b.generated_by)
    write('<?xml version="1.0" encoding="utf-8"?>\n')
    write(_tag("Project", [("xmlns", PROJECT_XMLNS), ("name", f"mentorbot {b.study}"),
                           ("origin", b.generated_by), ("creatingUserGUID", user)]))
    write("\n<Users>")
    write(_tag("User", [("guid", user), ("name", b.generated_by), ("id", "export")],
               empty=True))
    write("</Users>\n<CodeBook>\n<Codes>\n")
    _write_codes(write, _code_tree(codebook))
    write("</Codes>\n</CodeBook>\n")

    case_vars = _case_variables(b.cases)
    write("<Variables>\n")
    for var in [*case_vars, *_SOURCE_VARIABLES, *_case_source_variables(b.cases)]:
        write(_tag("Variable", [("guid", var.guid), ("name", var.name),
                                ("typeOfVariable", var.type)]))
        write(f"<Description>{_text(var.description)}</Description></Variable>\n")
    write("</Variables>\n")

    if b.cases:
        write("<Cases>\n")
        for case in b.cases:
            write(_tag("Case", [("guid", stable_guid(f"case:{case.person}")),
                                ("name", case.person)]))
            write("\n")
            values = {"role": case.role, "pair": case.pair, **{
                k: v for k, v in case.attributes.items() if k not in ("role", "pair")}}
            for var in case_vars:
                write(_value(var, values.get(var.key)))
            for entry_id in b.entries_by_person.get(case.person, ()):
                write(f'<SourceRef targetGUID="{source_guid(entry_id)}"/>\n')
            write("</Case>\n")
        write("</Cases>\n")
    if b.entries:
        write("<Sources>\n")


def _project_tail(write: Callable[[str], object], b: ExportFacts) -> None:
    if b.entries:
        write("</Sources>\n")
    unit = (UTF16_UNITS if b.options.offsets == "utf16" else CODEPOINT_UNITS)
    description = (
        f"Research export of study {b.study} by {b.generated_by}. Codebook "
        f"{b.codebook_version} ({b.codebook_hash}). Date mode: {b.date_mode}. Text: "
        f"{b.options.text}. {b.entries} entries, {b.segments} coded segments. Selection "
        f"positions are 0-based {unit} offsets into the UTF-8 source text, end exclusive."
    )
    write(f"<Description>{_text(description)}</Description>\n</Project>\n")


CODEPOINT_UNITS = "Unicode code point"
UTF16_UNITS = "UTF-16 code unit"
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class _ProjectWriter:
    """Streams project.qde and the source files of one bundle into an open zip."""

    def __init__(self, bundle: ExportBundle, codebook: Codebook, checked: bool = False,
                 facts: ExportFacts | None = None) -> None:
        self.bundle = bundle
        self.utf16 = bundle.options.offsets == "utf16"
        # a part's bundle has no cases: they are the whole export's, in the merged facts
        cases = facts.cases if facts is not None else tuple(all_cases(bundle))
        variables = _case_source_variables(cases)
        self._case_values: dict[str, str] = {}
        for case in cases:
            values: dict[str, str | None] = {
                "case": case.person, "role": case.role, "pair": case.pair,
                **{k: v for k, v in case.attributes.items() if k not in ("role", "pair")}}
            self._case_values[case.person] = "".join(
                _value(var, values.get(var.key)) for var in variables)
        self.codebook = codebook
        self.user = _user_guid(bundle.generated_by)
        self.placed = segments_by_entry(bundle)
        self.source_guids = [source_guid(e.entry_id) for e in bundle.entries]
        if not checked:
            self.check_codes(bundle, codebook)
        # Prompts, step ids and code ids repeat on every entry: clean or hash each one once.
        self._plain = _Memo(_plain)
        self._names = _Memo(_attr)
        self._code_guids = {c: code_guid(c) for c in codebook.codes}
        self._fixed_values: dict[tuple[str, int, str | None, str | None, str], str] = {}
        self._date_values = _Memo(lambda d: _value(_SV["date"], d))
        self._day_values = _Memo(lambda d: _value(_SV["day"], d))
        # a segment that does not claim its code happened says so first: an analyst must not
        # read a goal as an outcome (issue 13)
        self._notes = _Memo(lambda mc: _text(
            ("" if mc[2] == "realised" else f"{mc[2]}, not realised; ")
            + f"{mc[0]}, confidence {mc[1]:.2f}"))

    @staticmethod
    def check_codes(bundle: ExportBundle, codebook: Codebook) -> None:
        if bundle.codebook_hash != codebook.content_hash:
            raise ValueError(
                f"bundle was coded with codebook {bundle.codebook_version} "
                f"({bundle.codebook_hash}) but the writer was given "
                f"{codebook.version} ({codebook.content_hash})"
            )
        used: set[str] = {s.code_id for s in bundle.segments}
        for entry in bundle.entries:
            for a in entry.answers:
                used.update(a.codes)
                if a.framework_step:
                    used.add(a.framework_step)
        unknown = sorted(used - codebook.codes.keys())
        if unknown:
            raise ValueError("codes missing from the codebook, a CodeRef would dangle: "
                             + ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else ""))
        for entry in bundle.entries:
            if entry.date is not None and not _ISO_DATE.fullmatch(entry.date):
                raise ValueError(f"entry {entry.entry_id!r} date {entry.date!r} is not "
                                 "an ISO YYYY-MM-DD date")

    def source(self, index: int, entry: ExportEntry) -> tuple[str, str]:
        """(source file text, TextSource XML) for one entry."""
        guid = self.source_guids[index]
        stamp = f' creationDateTime="{entry.date}T00:00:00Z"' if entry.date else ""
        who = f'creatingUser="{self.user}"{stamp}'
        eid = entry.entry_id
        plain, names, codes_of = self._plain, self._names, self._code_guids
        base = selection_base(f"selections:{eid}")
        n = 0  # selections and codings of this source so far

        parts: list[str] = []
        areas: list[tuple[int, int, list[int]]] = []
        xml = [
            f'<TextSource guid="{guid}" name="{_attr(eid)}" '
            f'plainTextPath="internal://{guid}.txt" {who}>\n'
            f"<Description>{_text(self._source_description(entry))}</Description>\n"
        ]
        pos = 0
        for answer in entry.answers:
            prompt = plain[answer.prompt]
            raw = answer.text if answer.text is not None else (
                "" if answer.scale is None else str(answer.scale))
            area = raw if "\r" not in raw and _INVALID_RE.search(raw) is None else _plain(raw)
            start = pos + len(prompt) + 1
            end = start + len(area)
            areas.append((start, end, _crlf_starts(raw) if "\r\n" in raw else []))
            parts += (prompt, "\n", area, "\n\n")
            pos = end + 2
        text = "".join(parts)
        # UTF-16 positions: each character beyond U+FFFF before a position counts twice
        astral = ([m.start() for m in _ASTRAL.finditer(text)]
                  if self.utf16 and _ASTRAL.search(text) is not None else [])

        def unit(p: int) -> int:
            return p + bisect.bisect_left(astral, p) if astral else p

        for answer, (start, end, _) in zip(entry.answers, areas, strict=True):
            if start == end or not (answer.framework_step or answer.codes):
                continue
            codes = [answer.framework_step] if answer.framework_step else []
            if answer.codes:
                codes = list(dict.fromkeys([*codes, *answer.codes]))
            xml.append(
                f'<PlainTextSelection guid="{base}{n:08x}" '
                f'name="{names[answer.step_id]}" startPosition="{unit(start)}" '
                f'endPosition="{unit(end)}" {who}>'
            )
            for k, c in enumerate(codes, start=n + 1):
                xml.append(f'<Coding guid="{base}{k:08x}">'
                           f'<CodeRef targetGUID="{codes_of[c]}"/></Coding>')
            n += 1 + len(codes)
            xml.append("</PlainTextSelection>\n")

        placed = self.placed.get(eid)
        if placed:
            notes = self._notes
            for p in placed:
                a_start, a_end, crlf = areas[p.answer_index]
                if a_start == a_end:
                    continue
                s = p.segment
                if s.start == s.end:
                    start, end = a_start, a_end
                elif crlf:
                    start, end = a_start + _moved(s.start, crlf), a_start + _moved(s.end, crlf)
                else:
                    start, end = a_start + s.start, a_start + s.end
                if astral:
                    start, end = unit(start), unit(end)
                xml.append(
                    f'<PlainTextSelection guid="{base}{n:08x}" name="{names[s.code_id]}" '
                    f'startPosition="{start}" endPosition="{end}" {who}>'
                    f"<Description>{notes[(s.method, s.confidence, s.modality)]}</Description>"
                    f'<Coding guid="{base}{n + 1:08x}">'
                    f'<CodeRef targetGUID="{codes_of[s.code_id]}"/></Coding>'
                    "</PlainTextSelection>\n"
                )
                n += 2

        # Variable values repeat across entries (a handful of flows, dates, days): each
        # distinct block is formatted once.
        key = (entry.flow, entry.flow_version, entry.question_set_version, entry.wave,
               entry.consent)
        fixed = self._fixed_values.get(key)
        if fixed is None:
            fixed = self._fixed_values[key] = "".join(
                _value(_SV[name], value) for name, value in zip(
                    ("flow", "flow_version", "question_set_version", "wave", "consent"), key,
                    strict=True))
        xml += (fixed, self._date_values[entry.date], self._day_values[entry.day],
                self._case_values.get(entry.person, ""), "</TextSource>\n")
        return text, "".join(xml)

    @staticmethod
    def _source_description(entry: ExportEntry) -> str:
        bits = [f"{entry.role} entry, {entry.flow} v{entry.flow_version}"]
        if entry.pair:
            bits.append(f"pair {entry.pair}")
        if entry.day is not None:
            bits.append(f"day {entry.day}")
        return ", ".join(bits)


SOURCES_PART = "sources.zip-part"
QDE_PART = "project.qde-part"


@dataclass(frozen=True)
class ProjectPart:
    """What one process wrote of a project: source members and a deflated run of TextSources.

    ``records`` are the zip directory records of the members in ``SOURCES_PART`` (offsets from
    its start); ``QDE_PART`` is a raw deflate stream ending on a sync flush, so parts can be
    joined into one member.
    """

    records: list[_ZipRecord]
    sources_size: int
    qde_crc: int
    qde_size: int  # uncompressed
    qde_csize: int


def check(bundle: ExportBundle, codebook: Codebook) -> None:
    """Raise ``ValueError`` now if this bundle cannot become a project with this codebook."""
    segments_by_entry(bundle)
    _ProjectWriter.check_codes(bundle, codebook)


def write_project_part(bundle: ExportBundle, codebook: Codebook, part_dir: Path | str,
                       first: bool = True, checked: bool = False,
                       facts: ExportFacts | None = None) -> ProjectPart:
    """Write this bundle's share of a project (its sources) into ``part_dir``; the first
    share's members begin the archive (with its ``sources/`` folder). ``checked``: the
    caller already ran :func:`check` on this bundle. ``facts``: the whole export's, whose
    cases each source's variables repeat (the bundle's own cases by default)."""
    writer = _ProjectWriter(bundle, codebook, checked, facts)
    part = Path(part_dir)
    part.mkdir(parents=True, exist_ok=True)
    deflater = zlib.compressobj(_STREAM_LEVEL, zlib.DEFLATED, -15)
    crc = size = csize = 0
    with open(part / SOURCES_PART, "wb") as members, open(part / QDE_PART, "wb") as qde:
        zf = _ZipWriter(members)
        if first:
            zf.add(SOURCES_DIR, b"")
        chunk: list[str] = []

        def flush(final: bool) -> None:
            nonlocal crc, size, csize
            data = "".join(chunk).encode("utf-8")
            chunk.clear()
            crc = zlib.crc32(data, crc)
            size += len(data)
            out = deflater.compress(data)
            if final:
                out += deflater.flush(zlib.Z_SYNC_FLUSH)
            csize += len(out)
            qde.write(out)

        for index, entry in enumerate(bundle.entries):
            text, xml = writer.source(index, entry)
            zf.add(f"{SOURCES_DIR}{writer.source_guids[index]}.txt", text.encode("utf-8"))
            chunk.append(xml)
            if len(chunk) >= 1024:
                flush(False)
        flush(True)
    return ProjectPart(zf.records, zf.size, crc, size, csize)


def assemble_qdpx(facts: ExportFacts, codebook: Codebook,
                  parts: Sequence[tuple[Path, ProjectPart]], path: Path | str) -> Path:
    """Join the parts (in order) into one ``.qdpx``: the head and tail of ``project.qde`` come
    from the merged ``facts``, so the project reads as if one process had written it."""
    target = Path(path)
    head: list[str] = []
    _project_head(head.append, facts, codebook)
    tail: list[str] = []
    _project_tail(tail.append, facts)
    head_raw = "".join(head).encode("utf-8")
    tail_raw = "".join(tail).encode("utf-8")
    deflate_head = zlib.compressobj(_STREAM_LEVEL, zlib.DEFLATED, -15)
    head_packed = deflate_head.compress(head_raw) + deflate_head.flush(zlib.Z_SYNC_FLUSH)
    deflate_tail = zlib.compressobj(_STREAM_LEVEL, zlib.DEFLATED, -15)
    tail_packed = deflate_tail.compress(tail_raw) + deflate_tail.flush(zlib.Z_FINISH)
    crc, size = zlib.crc32(head_raw), len(head_raw)
    for _, part in parts:
        crc = _crc32_combine(crc, part.qde_crc, part.qde_size)
        size += part.qde_size
    crc = _crc32_combine(crc, zlib.crc32(tail_raw), len(tail_raw))
    size += len(tail_raw)
    # the first part's members begin the archive: it becomes the file, the rest is appended
    tmp = target.with_name(target.name + ".partial")
    try:
        os.replace(parts[0][0] / SOURCES_PART, tmp)
        with open(tmp, "ab") as out, contextlib.ExitStack() as files:
            zf = _ZipWriter(out, parts[0][1].records, parts[0][1].sources_size)
            for part_dir, part in parts[1:]:
                with open(part_dir / SOURCES_PART, "rb") as members:
                    zf.adopt(members, part.records, part.sources_size)
            pieces: list[tuple[IO[bytes] | bytes, int]] = [(head_packed, len(head_packed))]
            for part_dir, part in parts:
                pieces.append((files.enter_context(open(part_dir / QDE_PART, "rb")),
                               part.qde_csize))
            pieces.append((tail_packed, len(tail_packed)))
            zf.add_deflated(PROJECT_FILE, pieces, crc, size)
            zf.close()
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def write_qdpx(bundle: ExportBundle, codebook: Codebook, path: Path | str,
               facts: ExportFacts | None = None) -> Path:
    """Write a REFI-QDA project (``.qdpx``): ``project.qde`` plus ``sources/<guid>.txt``.

    See the module docstring for the layout, the offset rules and the GUID scheme. Raises
    ``ValueError`` when the bundle and codebook disagree (another codebook hash, a code id the
    codebook lacks, a segment outside its answer, a malformed date).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    facts = facts or facts_of(bundle)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".qdpx-") as tmp:
        part = write_project_part(bundle, codebook, tmp, facts=facts)
        return assemble_qdpx(facts, codebook, [(Path(tmp), part)], target)
