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

from reports.export.refi.codebook import CODEBOOK_XMLNS, code_paths, write_qdc
from reports.export.refi.ids import NAMESPACE, code_guid, selection_base, source_guid, stable_guid
from reports.export.refi.project import (
    CODEPOINT_UNITS,
    PROJECT_FILE,
    PROJECT_XMLNS,
    QDE_PART,
    SOURCES_DIR,
    SOURCES_PART,
    UTF16_UNITS,
    ProjectPart,
    assemble_qdpx,
    check,
    write_project_part,
    write_qdpx,
)
from reports.export.refi.validate import (
    RefiValidationError,
    qdc_errors,
    qdpx_errors,
    validate_qdc,
    validate_qdpx,
)

__all__ = [
    "CODEBOOK_XMLNS",
    "CODEPOINT_UNITS",
    "NAMESPACE",
    "PROJECT_FILE",
    "PROJECT_XMLNS",
    "QDE_PART",
    "SOURCES_DIR",
    "SOURCES_PART",
    "UTF16_UNITS",
    "ProjectPart",
    "RefiValidationError",
    "assemble_qdpx",
    "check",
    "code_guid",
    "code_paths",
    "qdc_errors",
    "qdpx_errors",
    "selection_base",
    "source_guid",
    "stable_guid",
    "validate_qdc",
    "validate_qdpx",
    "write_project_part",
    "write_qdc",
    "write_qdpx",
]
