"""``codebook.csv`` and ``datapackage.json``: what the CSV files mean, in files tools read.

``datapackage.json`` is a Frictionless Data Package (v1 descriptors, which frictionless,
R's ``frictionless`` and the Data Package tooling read): a Table Schema for every CSV file the
export wrote, from the same column list as the data dictionary, with primary and foreign keys,
``""`` as the only missing-value marker, the CSV dialect and encoding, and the export's
settings (study, codebook version and hash, date mode, text mode, offsets) under
``mentorbot``. A test validates it with the ``frictionless`` library.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from reports.codebook import Codebook
from reports.export import refi, tabular
from reports.export.bundle import WITHHELD_COLUMNS, WITHHELD_CSV
from reports.export.model import ExportFacts
from reports.export.tabular import Column

_TYPES = {"string": "string", "integer": "integer", "number": "number", "date": "date",
          "code": "string", "code list": "string", "boolean": "boolean"}

CODEBOOK_COLUMNS = [
    Column("code_id", "string", "Codebook id, as in every code column of the export"),
    Column("label", "string", "The code's published label"),
    Column("scheme", "string", "Codebook scheme the code belongs to"),
    Column("qdc_name", "string", "Name of the code in codebook.qdc and project.qdpx (the "
           "label, with the id added where two labels would clash)"),
    Column("qdc_group", "string", "Groups above the code in the REFI-QDA code tree, outermost "
           "first, separated by ' > '"),
    Column("parent", "string", "Codebook id or model the code is a step of; may be empty"),
    Column("cmo_role", "string", "Default realist CMO role; may be empty"),
    Column("cmo_level", "string", "CMO level; may be empty"),
    Column("polarity", "string", "helping or hindering, for factors; may be empty"),
    Column("sensitive", "boolean", "true: never shown to coordinators, even as a count"),
    Column("definition", "string", "Definition the coding rules work to; may be empty"),
]


def write_codebook_csv(codebook: Codebook, out_dir: Path | str, bom: bool = True) -> Path:
    paths = refi.code_paths(codebook)
    rows = []
    for code in codebook.codes.values():
        rule = codebook.rules.get(code.id) if codebook.rules is not None else None
        name, group = paths.get(code.id, (code.label, ""))
        role = code.role or (rule.cmo_role if rule is not None else None) or ""
        level = code.level or (rule.level if rule is not None else None) or ""
        rows.append([tabular.neutralise(x) for x in (
            code.id, code.label, code.scheme, name, group, code.parent or "", role, level,
            code.polarity or "", "true" if code.sensitive else "false",
            " ".join((rule.definition if rule is not None else "").split()))])
    return tabular._write_rows(Path(out_dir) / tabular.CODEBOOK_CSV,
                               [c.name for c in CODEBOOK_COLUMNS], rows, bom)


def _fields(columns: Sequence[Column]) -> list[dict[str, Any]]:
    return [{"name": c.name, "type": _TYPES.get(c.type, "string"), "description": c.meaning}
            for c in columns]


def _key(fields: Sequence[str], resource: str, ref: Sequence[str]) -> dict[str, Any]:
    return {"fields": list(fields), "reference": {"resource": resource, "fields": list(ref)}}


def package(facts: ExportFacts, files: Sequence[str]) -> dict[str, Any]:
    """The Data Package descriptor for the CSV files among ``files``."""
    columns = tabular.dictionary_columns(facts)
    columns[tabular.CODEBOOK_CSV] = CODEBOOK_COLUMNS
    columns[WITHHELD_CSV] = [Column(n, k, m) for n, k, m in WITHHELD_COLUMNS]
    keys: dict[str, dict[str, Any]] = {
        tabular.ENTRIES_CSV: {"primaryKey": ["entry_id"], "foreignKeys": [
            _key(["case_id"], "cases", ["case_id"])]},
        tabular.ANSWERS_CSV: {"primaryKey": ["entry_id", "answer_no"], "foreignKeys": [
            _key(["entry_id"], "entries", ["entry_id"]),
            _key(["case_id"], "cases", ["case_id"])]},
        tabular.CASES_CSV: {"primaryKey": ["case_id"]},
        tabular.SEGMENTS_CSV: {"foreignKeys": [
            _key(["entry_id", "answer_no"], "answers", ["entry_id", "answer_no"]),
            _key(["code_id"], "codebook", ["code_id"])]},
        tabular.CODEBOOK_CSV: {"primaryKey": ["code_id"]},
        WITHHELD_CSV: {"primaryKey": ["entry_id", "answer_no"], "foreignKeys": [
            _key(["entry_id", "answer_no"], "answers", ["entry_id", "answer_no"])]},
    }
    present = set(files)
    resources = []
    for name, cols in columns.items():
        if name not in present or not name.endswith(".csv"):
            continue
        schema: dict[str, Any] = {"fields": _fields(cols), "missingValues": [""]}
        for key, value in keys.get(name, {}).items():
            if key == "foreignKeys":
                # a key into a file this export did not write cannot be checked
                value = [k for k in value if f"{k['reference']['resource']}.csv" in present]
                if not value:
                    continue
            schema[key] = value
        resources.append({
            "name": name.removesuffix(".csv").replace("_", "-"),
            "path": name,
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            # "utf-8-sig" is how Python names UTF-8 read past a byte order mark
            "encoding": "utf-8-sig" if facts.options.bom else "utf-8",
            "dialect": {"delimiter": ",", "doubleQuote": True, "lineTerminator": "\r\n",
                        "quoteChar": '"', "header": True},
            "schema": schema,
        })
    for r in resources:  # foreign keys name resources by their package name
        for fk in r["schema"].get("foreignKeys", []):
            fk["reference"]["resource"] = fk["reference"]["resource"].replace("_", "-")
    o = facts.options
    return {
        "profile": "tabular-data-package",
        "name": f"mentorbot-{facts.study.lower()}".replace("_", "-"),
        "title": f"mentorbot research export, study {facts.study}",
        "description": (
            f"Pseudonymised research export ({facts.entries} entries, {facts.answers} answers, "
            f"{facts.segments} coded segments, {len(facts.cases)} cases). Date mode "
            f"{facts.date_mode}: {tabular._DATE_MODE_MEANINGS.get(facts.date_mode, '')}. Text: "
            f"{tabular.TEXT_MEANINGS.get(o.text, o.text)}. CSV text cells starting with = + - "
            "@, a tab or CR carry a leading apostrophe (segments.csv offsets count it). "
            "entries.jsonl holds the same entries nested; data_dictionary.md describes all."),
        "mentorbot": {
            "study": facts.study, "generated_by": facts.generated_by,
            "codebook_version": facts.codebook_version, "codebook_hash": facts.codebook_hash,
            "date_mode": facts.date_mode, "text": o.text, "qdpx_offsets": o.offsets,
            "qdpx_tool": o.tool, "bom": o.bom,
        },
        "resources": resources,
    }


def write_package(facts: ExportFacts, files: Sequence[str], out_dir: Path | str) -> Path:
    # no "created" stamp: the same export gives the same bytes
    descriptor = package(facts, files)
    path = Path(out_dir) / tabular.PACKAGE_JSON
    path.write_bytes(orjson.dumps(descriptor, option=orjson.OPT_INDENT_2) + b"\n")
    return path
