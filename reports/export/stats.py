"""Stata ``.dta`` and SPSS ``.sav`` copies of the tabular export (``--format dta`` / ``sav``).

Written from the CSV files the export has just written, through ``pyreadstat`` (the optional
``stats`` extra): one file per CSV (``answers.dta``, ``entries.sav``, ...), with the data
dictionary's meanings as variable labels, its types as storage types, and value labels for
the columns that hold one of a few known values (role, step kind, wave, coding method): those
become numbers 1, 2, ... labelled with their text, as Stata and SPSS expect categories. Text
cells lose the CSV formula guard (neither package runs formulas). Variable names that are too
long for Stata (32 characters) are shortened, the full name kept at the start of the label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reports.export import tabular
from reports.export.model import ExportFacts
from reports.export.package import CODEBOOK_COLUMNS
from reports.export.tabular import Column

STATS_FORMATS = ("dta", "sav")
_FILES = (tabular.ANSWERS_CSV, tabular.ENTRIES_CSV, tabular.CASES_CSV, tabular.SEGMENTS_CSV,
          tabular.CODEBOOK_CSV)
# columns holding one of a few values: exported as labelled numbers
CATEGORIES = {
    "role": ("mentee", "mentor"),
    "kind": ("text", "choice", "multi", "scale", "date"),
    "wave": ("baseline", "m3", "m6", "m9", "m12", "closing", "followup"),
    "method": ("structured", "rules", "semantic", "review", "both"),
}
_NAME_LIMIT = {"dta": 32, "sav": 64}
_LABEL_LIMIT = {"dta": 80, "sav": 256}


class StatsUnavailable(RuntimeError):
    """pyreadstat is not installed (``pip install 'mentorbot[stats]'``)."""


def _short(name: str, limit: int, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", name)[:limit]
    candidate, n = base, 1
    while candidate.lower() in taken:
        n += 1
        suffix = f"_{n}"
        candidate = base[: limit - len(suffix)] + suffix
    taken.add(candidate.lower())
    return candidate


def _frame(path: Path, columns: Sequence[Column]) -> tuple[Any, dict[str, dict[int, str]]]:
    import pandas as pd

    types = {c.name: c.type for c in columns}
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    labels: dict[str, dict[int, str]] = {}
    for name in frame.columns:
        kind = types.get(name, "string")
        values = frame[name]
        if kind == "integer":
            frame[name] = pd.to_numeric(values.replace("", None)).astype("float64")
        elif kind == "number":
            frame[name] = pd.to_numeric(values.replace("", None))
        elif kind == "date":
            frame[name] = pd.to_datetime(values.replace("", None), format="%Y-%m-%d")
        elif kind == "boolean":
            frame[name] = values.map({"true": 1.0, "false": 0.0})
            labels[name] = {0: "false", 1: "true"}
        elif name in CATEGORIES:
            known = list(CATEGORIES[name])
            known += sorted(set(values) - set(known) - {""})
            codes = {v: i for i, v in enumerate(known, start=1)}
            frame[name] = values.map(lambda v, codes=codes: codes.get(v)).astype("float64")
            labels[name] = {i: v for v, i in codes.items()}
        else:
            frame[name] = values.map(tabular.restore_cell)
    return frame, labels


def check_available() -> None:
    try:
        import pandas  # noqa: F401
        import pyreadstat  # noqa: F401
    except ImportError as exc:  # an optional extra
        raise StatsUnavailable("Stata and SPSS files need the stats extra: "
                               "pip install 'mentorbot[stats]'") from exc


def write_stats(facts: ExportFacts, out_dir: Path | str, formats: Sequence[str]) -> list[Path]:
    """``<file>.dta`` and/or ``<file>.sav`` for each tabular CSV in ``out_dir``."""
    check_available()
    import pyreadstat
    out = Path(out_dir)
    described = tabular.dictionary_columns(facts)
    described[tabular.CODEBOOK_CSV] = CODEBOOK_COLUMNS
    paths: list[Path] = []
    for name in _FILES:
        csv_path = out / name
        if not csv_path.exists():
            continue
        columns = described[name]
        meanings = {c.name: c.meaning for c in columns}
        frame, value_labels = _frame(csv_path, columns)
        for fmt in formats:
            taken: set[str] = set()
            renamed = {c: _short(c, _NAME_LIMIT[fmt], taken) for c in frame.columns}
            limit = _LABEL_LIMIT[fmt]
            labels = {}
            for original, short in renamed.items():
                label = meanings.get(original, original)
                if short != original:
                    label = f"{original}: {label}"
                labels[short] = label if len(label) <= limit else label[: limit - 1] + "…"
            data = frame.rename(columns=renamed)
            target = csv_path.with_suffix(f".{fmt}")
            file_label = f"mentorbot {facts.study} {name}"
            values = {renamed[k]: v for k, v in value_labels.items()}
            if fmt == "dta":
                pyreadstat.write_dta(data, target, file_label=file_label,
                                     column_labels=labels, variable_value_labels=values)
            else:
                pyreadstat.write_sav(data, target, file_label=file_label,
                                     column_labels=labels, variable_value_labels=values)
            paths.append(target)
    return paths
