"""REFI-QDA exports: a codebook (``.qdc``) and a project (``.qdpx``) for NVivo, ATLAS.ti,
MAXQDA and QualCoder, valid against the QDA-XML 1.0 schemas in ``reports/schemas``.

Codebook
    Each codebook scheme is a non-codable parent code (``isCodable="false"``); CMO elements sit
    under their role and, below that, their level (``CMO elements > Enabling contexts >
    Enabling contexts / People individually > Motivation``); factors under helping or hindering;
    framework steps under GROW or OSKAR. Every codebook id is a codable leaf named by its label
    (the id is appended where two labels would clash, since QualCoder merges codes of equal
    name) and described as ``Codebook id <ID>. ...`` so an import can be mapped back to ids.
    Group names are unique across the tree for the same reason.

GUIDs
    ``uuid5(NAMESPACE, name)`` in lower-case RFC 4122 text form, which the schemas' GUID
    pattern accepts. A code's name is its codebook id, so a code keeps its GUID across exports
    and codebook versions; other names carry a prefix (``source:``, ``answer:``, ``segment:``,
    ``case:``, ...) so they can never collide with a code id. Selections and their codings are
    numbered within their source instead (see :func:`selection_base`): version 8 GUIDs that
    share the source's hash, so millions of them cost one hash per entry.

Project (``.qdpx``, a zip)
    ``project.qde`` holds Users (one generated user), CodeBook (same codes and GUIDs as the
    ``.qdc``), Variables, Cases (one per participant, with role, pair and case attributes, and a
    SourceRef to each of their entries) and Sources. Each source repeats its case's values as
    source variables (``case_id``, ``case_role``, ``case_pair``, ``case_<attribute>``): QualCoder
    ignores a Case's SourceRefs, and a source variable is what every tool filters text by.
    Each entry is one TextSource named by its pseudonym; its text is ``sources/<guid>.txt``
    and is laid out, answer by answer, as
    ``prompt + "\\n" + answer + "\\n\\n"``. The answer part is the answer text, or the scale
    value when there is no text. Each non-empty answer gets a PlainTextSelection over its answer
    part, coded with its framework step and any codes chosen with buttons. Each
    :class:`CodedSegment` gets its own PlainTextSelection, its method and confidence in the
    Description (QualCoder shows that as the coding memo).

Offsets
    Positions in the ``.qde`` are 0-based offsets into the UTF-8 (no BOM) text of the source
    file, end exclusive, in the unit ``ExportOptions.offsets`` names: Unicode code points
    (``text[start:end]`` in Python; QualCoder) or UTF-16 code units (NVivo, ATLAS.ti, MAXQDA,
    where a character beyond U+FFFF counts two); the project's Description says which. A
    segment's answer-relative offsets are translated by adding the offset of its answer part
    (in code points, then converted to the unit). Source text
    uses ``\\n`` line ends only: ``\\r\\n`` in an answer becomes ``\\n`` (segment offsets after it
    move back one per pair) and a lone ``\\r`` becomes ``\\n``, because QDA tools read text files
    with universal newlines and would otherwise count positions differently from us. Characters
    XML 1.0 cannot carry are replaced one-for-one by U+FFFD, so offsets do not move. A segment
    with ``start == end`` is widened to its whole answer part (an empty selection codes nothing
    in any QDA tool); one on an answer with no text and no scale is left out of the project
    (CSV and JSONL keep it). The standard does not say which unit it means, so the tool the
    project is for decides (``mentorbot export --for``).

Determinism
    No clock is read: sources and selections carry ``creationDateTime`` only when the entry has
    a (shifted) date, set to midnight UTC of it. Zip members have a fixed 1980-01-01 timestamp,
    fixed permissions and a fixed order (``sources/``, the source files in bundle order, then
    ``project.qde``), so the same bundle gives byte-identical files (with the same zlib).
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import os
import re
import struct
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

from reports.codebook import (
    CMO_ROLES,
    SCHEME_CLIMATE,
    SCHEME_CMO,
    SCHEME_DOMAIN,
    SCHEME_EPISODE_KIND,
    SCHEME_EPISODE_MODE,
    SCHEME_FACTOR,
    SCHEME_FRAMEWORK_STEP,
    SCHEME_KRAM,
    SCHEME_PHASE,
    SCHEME_STANCE,
    SCHEME_THEORY,
    SCHEME_TOPIC,
    SCHEME_WELLBEING,
    Codebook,
    CodeDef,
)
from reports.export.files import append_file, atomic_binary
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
    import xmlschema

NAMESPACE = uuid.UUID("c9972c21-0837-49cf-8845-7cfaf3e04596")
CODEBOOK_XMLNS = "urn:QDA-XML:codebook:1.0"
PROJECT_XMLNS = "urn:QDA-XML:project:1.0"
PROJECT_FILE = "project.qde"
SOURCES_DIR = "sources/"  # lower case: REFI-QDA 1.5 section 8.1; ATLAS.ti rejects "Sources/"

_DEFLATE_FROM = 1024  # bytes; see _ZipWriter
# Deflate level 1 throughout: project.qde is mostly random-looking GUID text, on which level 1
# wrote a 20,000-entry part in 8 % less time than level 3 for 5 % more bytes (and level 3 was
# already 2.5 times quicker than the default 6); source files are a few hundred characters.
_MEMBER_LEVEL = 1
_STREAM_LEVEL = 1

# ---------------------------------------------------------------------------
# GUIDs
# ---------------------------------------------------------------------------

_NS_SHA1 = hashlib.sha1(NAMESPACE.bytes, usedforsecurity=False)
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def stable_guid(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))``, computed without building a UUID object.

    A project needs about fifteen GUIDs per entry; this is four times quicker than
    ``uuid.uuid5`` and gives the same text (a test holds the two equal).
    """
    h = _NS_SHA1.copy()
    h.update(name.encode("utf-8"))
    x = h.hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


def selection_base(source_name: str) -> str:
    """The shared start of the GUIDs of one source's selections and codings.

    A 100,000-entry project has millions of selections and codings; hashing a name for each
    was a third of the writer's time. They share one hash per source instead: RFC 9562
    version 8 (custom) GUIDs whose first 80 bits come from the uuid5 hash of ``source_name``
    and whose last 32 bits count, in the order they are written (``f"{base}{n:08x}"``).
    Unique across sources (80 hashed bits) and within one (the count); the same bundle gives
    the same GUIDs.
    """
    h = _NS_SHA1.copy()
    h.update(source_name.encode("utf-8"))
    x = h.hexdigest()
    return f"{x[:8]}-{x[8:12]}-8{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:24]}"


def source_guid(entry_id: str) -> str:
    return stable_guid(f"source:{entry_id}")


def _user_guid(generated_by: str) -> str:
    return stable_guid(f"user:{generated_by}")


def code_guid(code_id: str) -> str:
    """GUID of a codebook id, the same in every ``.qdc`` and ``.qdpx`` this project writes."""
    return stable_guid(code_id)


# ---------------------------------------------------------------------------
# XML text
# ---------------------------------------------------------------------------

_XML_INVALID = r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"
_INVALID_RE = re.compile(_XML_INVALID)
_ATTR_RE = re.compile(r'[&<>"\t\n\r]|' + _XML_INVALID)
_TEXT_RE = re.compile(r"[&<>\r]|" + _XML_INVALID)
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;",
            "\n": "&#10;", "\r": "&#13;"}


def _sub_escape(match: re.Match[str]) -> str:
    return _ESCAPES.get(match.group(), "\ufffd")


def _attr(value: str) -> str:
    # Tabs and line breaks are escaped too: a parser would otherwise normalise them to spaces.
    return value if _ATTR_RE.search(value) is None else _ATTR_RE.sub(_sub_escape, value)


def _text(value: str) -> str:
    return value if _TEXT_RE.search(value) is None else _TEXT_RE.sub(_sub_escape, value)


def _plain(value: str) -> str:
    """Source-file text: LF line ends only, XML-invalid characters replaced one for one."""
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if _INVALID_RE.search(value) is not None:
        value = _INVALID_RE.sub("\ufffd", value)
    return value


def _tag(tag: str, attrs: Iterable[tuple[str, str | None]], *, empty: bool = False) -> str:
    parts = [f' {k}="{_attr(v)}"' for k, v in attrs if v is not None]
    return f"<{tag}{''.join(parts)}{'/>' if empty else '>'}"


# ---------------------------------------------------------------------------
# Code tree
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Code:
    guid: str
    name: str
    codable: bool
    description: str
    color: str | None
    code_id: str | None = None
    children: list[_Code] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Scheme:
    scheme: str
    name: str
    description: str
    color: str


_SCHEMES = [
    _Scheme(SCHEME_CMO, "CMO elements", "Realist context, mechanism and outcome elements of "
            "the final CMO configuration framework, by role and level", "#1565C0"),
    _Scheme(SCHEME_THEORY, "Programme theories", "Final programme theories", "#00838F"),
    _Scheme(SCHEME_CLIMATE, "Support and challenge", "Support-challenge matrix: climate of "
            "a session", "#5D4037"),
    _Scheme(SCHEME_PHASE, "Relationship phases", "Developmental mentoring phases (coded as "
            "proximal outcomes)", "#AD1457"),
    _Scheme(SCHEME_KRAM, "Kram phases", "Kram's relationship phases, reported beside the five "
            "developmental phases", "#4527A0"),
    _Scheme(SCHEME_DOMAIN, "Learning domains", "Learning outcome domains (multi-label)",
            "#283593"),
    _Scheme(SCHEME_FACTOR, "Helping and hindering factors", "Moderating factors of the "
            "programme", "#558B2F"),
    _Scheme(SCHEME_WELLBEING, "Wellbeing themes", "Themes of the wellbeing-focused realist "
            "study of trained mentors", "#00695C"),
    _Scheme(SCHEME_STANCE, "Mentor stance", "How the mentor positions agency", "#6D4C41"),
    _Scheme(SCHEME_TOPIC, "Topics", "Topics a mentee may bring; sensitive ones are never "
            "shown to coordinators", "#37474F"),
    _Scheme(SCHEME_FRAMEWORK_STEP, "Reflection framework steps", "Steps of the structured "
            "reflection frameworks the flows walk through", "#0277BD"),
    _Scheme(SCHEME_EPISODE_MODE, "Episode modes", "How a mentoring episode took place",
            "#757575"),
    _Scheme(SCHEME_EPISODE_KIND, "Episode kinds", "Kind of mentoring episode", "#9E9D24"),
]

_ROLE_COLORS = dict(zip(CMO_ROLES, ("#2E7D32", "#C62828", "#6A1B9A", "#1565C0", "#EF6C00",
                                     "#F9A825"), strict=True))
_POLARITY = {"helping": ("Helping factors", "#558B2F"),
             "hindering": ("Hindering factors", "#D84315")}


def _describe(code: CodeDef, codebook: Codebook) -> str:
    parts = [f"Codebook id {code.id}."]
    if code.scheme == SCHEME_CMO:
        role = codebook.cmo_roles.get(code.role or "", code.role)
        level = codebook.cmo_levels.get(code.level or "", code.level)
        parts.append(f"Default CMO role: {role}. Level: {level}.")
    if code.polarity:
        parts.append(f"{code.polarity.capitalize()} factor.")
    if code.parent:
        parts.append(f"Step of {code.parent}.")
    aliases = code.extra.get("aliases")
    if aliases:
        parts.append("Also called: " + "; ".join(str(a) for a in aliases) + ".")
    if code.sensitive:
        parts.append("Sensitive: never shown to coordinators, even as a count.")
    return " ".join(parts)


def _group(key: str, name: str, description: str, color: str | None) -> _Code:
    return _Code(stable_guid(f"group:{key}"), name, False, description, color)


def _subgroup(key: str, name: str, description: str, color: str | None,
              parent: _Code) -> _Code:
    guid = stable_guid(f"group:{key}")
    for child in parent.children:
        if child.guid == guid:
            return child
    node = _Code(guid, name, False, description, color)
    parent.children.append(node)
    return node


def _code_tree(codebook: Codebook) -> list[_Code]:
    """The codebook as REFI codes: non-codable scheme groups holding every codebook id."""
    roots: list[_Code] = []
    by_scheme: dict[str, list[CodeDef]] = {}
    for code in codebook.codes.values():
        by_scheme.setdefault(code.scheme, []).append(code)
    schemes = list(_SCHEMES)
    known = {s.scheme for s in schemes}
    # A scheme added to the codebook later still exports: every id must be codable.
    schemes += [_Scheme(s, f"Other codes: {s}", f"Codebook scheme {s}", "#607D8B")
                for s in by_scheme if s not in known]

    for spec in schemes:
        codes = by_scheme.get(spec.scheme, [])
        if not codes:
            continue
        root = _group(spec.scheme, spec.name, spec.description, spec.color)
        roots.append(root)
        if spec.scheme == SCHEME_CMO:
            # Roles then levels in the codebook's own order, so the tree reads like its table.
            role_rank = {r: i for i, r in enumerate(codebook.cmo_roles)}
            level_rank = {lv: i for i, lv in enumerate(codebook.cmo_levels)}
            codes = sorted(codes, key=lambda c: (role_rank.get(c.role or "", 99),
                                                 level_rank.get(c.level or "", 99)))
        for code in codes:
            parent = root
            color = spec.color
            if spec.scheme == SCHEME_CMO and code.role:
                color = _ROLE_COLORS.get(code.role, spec.color)
                role_label = codebook.cmo_roles.get(code.role, code.role)
                parent = _subgroup(f"cmo:{code.role}", role_label,
                                  f"CMO role {code.role}", color, root)
                if code.level:
                    level_label = codebook.cmo_levels.get(code.level, code.level)
                    parent = _subgroup(f"cmo:{code.role}:{code.level}",
                                      f"{role_label} / {level_label}",
                                      f"CMO role {code.role} at level {code.level}",
                                      color, parent)
            elif spec.scheme == SCHEME_FACTOR and code.polarity in _POLARITY:
                name, color = _POLARITY[code.polarity]
                parent = _subgroup(f"factor:{code.polarity}", name,
                                  f"Factors observed as {code.polarity}", color, root)
            elif spec.scheme == SCHEME_FRAMEWORK_STEP and code.parent:
                parent = _subgroup(f"framework:{code.parent}", code.parent,
                                  f"Steps of the {code.parent} model", color, root)
            parent.children.append(_Code(code_guid(code.id), code.label, True,
                                         _describe(code, codebook), color, code.id))
    _unique_names(roots)
    return roots


def _walk(codes: Iterable[_Code]) -> Iterator[_Code]:
    for code in codes:
        yield code
        yield from _walk(code.children)


def _unique_names(roots: list[_Code]) -> None:
    counts: dict[str, int] = {}
    for node in _walk(roots):
        counts[node.name.casefold()] = counts.get(node.name.casefold(), 0) + 1
    for node in _walk(roots):
        if counts[node.name.casefold()] > 1:
            node.name = f"{node.name} ({node.code_id})" if node.code_id else f"{node.name} (group)"


def code_paths(codebook: Codebook) -> dict[str, tuple[str, str]]:
    """Codebook id -> (its name in the ``.qdc`` tree, the groups above it joined by " > "),
    so a researcher can map codes an import shows by name back to ids."""
    out: dict[str, tuple[str, str]] = {}

    def walk(codes: Iterable[_Code], above: tuple[str, ...]) -> None:
        for code in codes:
            if code.code_id is not None:
                out[code.code_id] = (code.name, " > ".join(above))
            walk(code.children, (*above, code.name))

    walk(_code_tree(codebook), ())
    return out


def _write_codes(write: Callable[[str], object], codes: Sequence[_Code]) -> None:
    for code in codes:
        write(_tag("Code", [("guid", code.guid), ("name", code.name),
                            ("isCodable", "true" if code.codable else "false"),
                            ("color", code.color)]))
        write(f"<Description>{_text(code.description)}</Description>\n")
        _write_codes(write, code.children)
        write("</Code>\n")


def _origin(codebook: Codebook) -> str:
    return f"mentorbot codebook {codebook.version} ({codebook.content_hash})"


def write_qdc(codebook: Codebook, path: Path | str) -> Path:
    """Write the codebook as a REFI-QDA ``.qdc`` file (``urn:QDA-XML:codebook:1.0``)."""
    target = Path(path)
    buf = io.StringIO()
    buf.write('<?xml version="1.0" encoding="utf-8"?>\n')
    buf.write(_tag("CodeBook", [("xmlns", CODEBOOK_XMLNS), ("origin", _origin(codebook))]))
    buf.write("\n<Codes>\n")
    _write_codes(buf.write, _code_tree(codebook))
    buf.write("</Codes>\n</CodeBook>\n")
    with atomic_binary(target) as fh:
        fh.write(buf.getvalue().encode("utf-8"))
    return target


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
        self._notes = _Memo(lambda mc: _text(f"{mc[0]}, confidence {mc[1]:.2f}"))

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
                    f"<Description>{notes[(s.method, s.confidence)]}</Description>"
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


_ZipRecord = tuple[bytes, int, int, int, int, int, int]  # name, method, crc, csizes, attr, offset


class _ZipWriter:
    """A deterministic ZIP writer for one project: fixed timestamps, attributes and order.

    ``zipfile`` spends about 50 µs of Python on every member, and a 100,000-entry project has
    100,000 source files; this writes one in a few µs. It covers what a project needs: stored or
    deflated members under 4 GiB, and Zip64 end records once there are 65,535 members or more
    (read by zipfile, Info-ZIP, 7-Zip, .NET and Java alike). Members shorter than
    :data:`_DEFLATE_FROM` bytes are stored: deflating a few hundred bytes saves little and
    costs as much time as everything else about the member.

    A run of members written by another writer into a file of its own can be adopted whole
    (:meth:`adopt`), which is how the parts of a project written in several processes join.
    """

    _DOS_TIME, _DOS_DATE = 0, (1 << 5) | 1  # 1980-01-01 00:00, the ZIP epoch
    _FILE_ATTR = 0o100644 << 16
    _DIR_ATTR = (0o040755 << 16) | 0x10
    _MADE_BY = (3 << 8) | 20  # Unix, spec 2.0: fixed, or bytes would differ by platform
    _ZIP64_FROM = 0xFFFF  # member count the classic end record cannot hold

    def __init__(self, fh: IO[bytes], records: Sequence[_ZipRecord] = (),
                 size: int = 0) -> None:
        """``records`` and ``size``: members another writer already put at the start of
        ``fh``, which is positioned after them."""
        self._fh = fh
        self._pos = size
        self.records: list[_ZipRecord] = list(records)

    @property
    def size(self) -> int:
        return self._pos

    def _local(self, name: bytes, method: int, crc: int, csize: int, size: int) -> bytes:
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, self._DOS_TIME,
                           self._DOS_DATE, crc, csize, size, len(name), 0) + name

    def _record(self, name: bytes, method: int, crc: int, csize: int, size: int,
                attr: int, offset: int) -> None:
        if max(csize, size, offset) >= 0xFFFFFFFF:
            raise ValueError("project archive over 4 GiB: split the export")
        self.records.append((name, method, crc, csize, size, attr, offset))

    def add(self, name: str, data: bytes) -> None:
        raw = name.encode("ascii")
        method, payload = 0, data
        if len(data) >= _DEFLATE_FROM:
            packed = zlib.compress(data, _MEMBER_LEVEL, wbits=-15)
            if len(packed) < len(data):
                method, payload = 8, packed
        crc = zlib.crc32(data)
        attr = self._DIR_ATTR if name.endswith("/") else self._FILE_ATTR
        self._record(raw, method, crc, len(payload), len(data), attr, self._pos)
        header = self._local(raw, method, crc, len(payload), len(data))
        self._fh.write(header)
        self._fh.write(payload)
        self._pos += len(header) + len(payload)

    def adopt(self, src: IO[bytes], records: Sequence[_ZipRecord], size: int) -> None:
        """Append ``size`` bytes of members another writer wrote to ``src``, with its records."""
        append_file(src, self._fh, size)
        base = self._pos
        for name, method, crc, csize, usize, attr, offset in records:
            self._record(name, method, crc, csize, usize, attr, base + offset)
        self._pos += size

    def add_deflated(self, name: str, pieces: Sequence[tuple[IO[bytes] | bytes, int]],
                     crc: int, size: int) -> None:
        """A member whose raw deflate stream is ``pieces`` (data or files, with lengths)."""
        raw = name.encode("ascii")
        csize = sum(n for _, n in pieces)
        self._record(raw, 8, crc, csize, size, self._FILE_ATTR, self._pos)
        header = self._local(raw, 8, crc, csize, size)
        self._fh.write(header)
        for piece, n in pieces:
            if isinstance(piece, bytes):
                self._fh.write(piece)
            else:
                append_file(piece, self._fh, n)
        self._pos += len(header) + csize

    def close(self) -> None:
        start, count = self._pos, len(self.records)
        directory = b"".join(
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, self._MADE_BY, 20, 0, method,
                        self._DOS_TIME, self._DOS_DATE, crc, csize, size, len(name), 0, 0, 0,
                        0, attr, offset) + name
            for name, method, crc, csize, size, attr, offset in self.records
        )
        self._fh.write(directory)
        end = start + len(directory)
        if count >= self._ZIP64_FROM:
            self._fh.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, (3 << 8) | 45,
                                       45, 0, 0, count, count, len(directory), start))
            self._fh.write(struct.pack("<IIQI", 0x07064B50, 0, end, 1))
            count = 0xFFFF
        self._fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count,
                                   len(directory), start, 0))


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of ``a + b`` from crc32(a), crc32(b) and len(b), as zlib's crc32_combine (which
    Python does not expose): the parts of project.qde are checksummed in different processes."""

    def times(matrix: list[int], vector: int) -> int:
        total, i = 0, 0
        while vector:
            if vector & 1:
                total ^= matrix[i]
            vector >>= 1
            i += 1
        return total

    def square(matrix: list[int]) -> list[int]:
        return [times(matrix, matrix[n]) for n in range(32)]

    if len2 <= 0:
        return crc1
    op = [0xEDB88320] + [1 << n for n in range(31)]  # appends one zero bit
    op = square(square(square(op)))  # one zero byte
    while len2:  # append len2 zero bytes to crc1, squaring for each bit of len2
        if len2 & 1:
            crc1 = times(op, crc1)
        len2 >>= 1
        if len2:
            op = square(op)
    return crc1 ^ crc2


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


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


class RefiValidationError(ValueError):
    """A ``.qdc`` or ``.qdpx`` that breaks the schema or points at things that are not there."""

    def __init__(self, what: str, errors: list[str]) -> None:
        self.errors = errors
        shown = "\n  - ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{what} is not a valid REFI-QDA file ({len(errors)} problem(s)):"
                         f"\n  - {shown}{more}")


@lru_cache(maxsize=2)
def _schema(name: str) -> xmlschema.XMLSchema10:
    import xmlschema  # only validation needs it, and it takes half a second to import

    ref = resources.files("reports").joinpath("schemas", name)
    with resources.as_file(ref) as xsd:
        return xmlschema.XMLSchema10(str(xsd))


def _resource(data: bytes) -> xmlschema.XMLResource:
    import xmlschema

    # defuse="always": validation may be pointed at a file from elsewhere, so no entity
    # expansion tricks and no DTD fetching, whatever its origin.
    return xmlschema.XMLResource(io.BytesIO(data), defuse="always")


def _schema_errors(schema: xmlschema.XMLSchema10, data: bytes, limit: int = 50) -> list[str]:
    errors = []
    for err in schema.iter_errors(_resource(data)):
        errors.append(f"{err.path or '/'}: {err.reason or err.message}")
        if len(errors) >= limit:
            break
    return errors


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def qdc_errors(path: Path | str) -> list[str]:
    """Readable problems with a ``.qdc`` file; empty if it is valid."""
    data = Path(path).read_bytes()
    errors = _schema_errors(_schema("Codebook.xsd"), data)
    if not errors:
        errors += _guid_clashes(_resource(data).root.iter())
    return errors


def validate_qdc(path: Path | str) -> None:
    """Raise :class:`RefiValidationError` unless ``path`` is a valid REFI-QDA codebook."""
    errors = qdc_errors(path)
    if errors:
        raise RefiValidationError(str(path), errors)


def _guid_clashes(elements: Iterable[ET.Element]) -> list[str]:
    seen: dict[str, str] = {}
    errors = []
    for el in elements:
        guid = el.get("guid")
        if guid is None:
            continue
        if guid.lower() in seen:
            errors.append(f"GUID {guid} used by both {seen[guid.lower()]} and {_local(el.tag)}")
        else:
            seen[guid.lower()] = _local(el.tag)
    return errors


def qdpx_errors(path: Path | str) -> list[str]:
    """Readable problems with a ``.qdpx`` file; empty if it is valid.

    Beyond the schema this checks what the schema cannot: GUIDs are unique, every CodeRef,
    SourceRef and VariableRef points at something defined, every internal source file exists,
    and every selection lies inside its source text. xmlschema is pure Python (about 5 ms per
    entry here), so this is for tests and spot checks, not for every large export.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"not a readable zip: {exc}"]
    with zf:
        names = set(zf.namelist())
        if PROJECT_FILE not in names:
            return [f"{PROJECT_FILE} missing from the archive"]
        data = zf.read(PROJECT_FILE)
        errors = _schema_errors(_schema("Project.xsd"), data)
        if errors:
            return errors
        root = _resource(data).root
        errors += _guid_clashes(root.iter())
        ns = f"{{{PROJECT_XMLNS}}}"
        codes = {c.get("guid", "").lower() for c in root.iter(f"{ns}Code")}
        variables = {v.get("guid", "").lower() for v in root.iter(f"{ns}Variable")}
        sources = {s.get("guid", "").lower() for s in root.iter(f"{ns}TextSource")}
        for ref in root.iter(f"{ns}CodeRef"):
            if ref.get("targetGUID", "").lower() not in codes:
                errors.append(f"CodeRef to undefined code {ref.get('targetGUID')}")
        for ref in root.iter(f"{ns}VariableRef"):
            if ref.get("targetGUID", "").lower() not in variables:
                errors.append(f"VariableRef to undefined variable {ref.get('targetGUID')}")
        for ref in root.iter(f"{ns}SourceRef"):
            if ref.get("targetGUID", "").lower() not in sources:
                errors.append(f"SourceRef to undefined source {ref.get('targetGUID')}")
        description = root.find(f"{ns}Description")
        utf16 = description is not None and UTF16_UNITS in (description.text or "")
        for src in root.iter(f"{ns}TextSource"):
            errors += _source_errors(zf, names, src, ns, utf16)
            if len(errors) >= 50:
                break
    return errors


def _source_errors(zf: zipfile.ZipFile, names: set[str], src: ET.Element, ns: str,
                   utf16: bool = False) -> list[str]:
    label = f"TextSource {src.get('name')!r}"
    inline = src.find(f"{ns}PlainTextContent")
    path = src.get("plainTextPath")
    if inline is not None:
        text = inline.text or ""
    elif path and path.startswith("internal://"):
        member = SOURCES_DIR + path[len("internal://"):]
        if member not in names:
            return [f"{label}: {member} missing from the archive"]
        try:
            text = zf.read(member).decode("utf-8")
        except UnicodeDecodeError as exc:
            return [f"{label}: {member} is not UTF-8 ({exc})"]
    else:
        return [f"{label}: neither PlainTextContent nor an internal plainTextPath"]
    errors = []
    size = len(text.encode("utf-16-le")) // 2 if utf16 else len(text)
    for sel in src.iter(f"{ns}PlainTextSelection"):
        start, end = int(sel.get("startPosition", "0")), int(sel.get("endPosition", "0"))
        if not 0 <= start <= end <= size:
            errors.append(f"{label}: selection {sel.get('guid')} {start}:{end} outside its "
                          f"{size}-unit text")
    return errors


def validate_qdpx(path: Path | str) -> None:
    """Raise :class:`RefiValidationError` unless ``path`` is a valid, self-consistent project."""
    errors = qdpx_errors(path)
    if errors:
        raise RefiValidationError(str(path), errors)
