"""Validation of ``.qdc`` and ``.qdpx`` files against the QDA-XML schemas and references."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

if TYPE_CHECKING:
    import xmlschema
from reports.export.refi.project import PROJECT_FILE, PROJECT_XMLNS, SOURCES_DIR, UTF16_UNITS

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
