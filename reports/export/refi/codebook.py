"""The REFI-QDA code tree from the codebook, and the ``.qdc`` codebook file."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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
from reports.export.files import atomic_binary

if TYPE_CHECKING:
    pass
from reports.export.refi.ids import code_guid, stable_guid
from reports.export.refi.xml import _tag, _text

CODEBOOK_XMLNS = "urn:QDA-XML:codebook:1.0"


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
