"""Researcher exports: pure writers over an already pseudonymised, consent-filtered bundle.

``model`` holds the records the storage side fills; ``tabular`` writes CSV, JSON Lines and the
data dictionary; ``refi`` writes the REFI-QDA codebook (``.qdc``) and project (``.qdpx``).
:func:`write_all` writes the lot from one bundle; ``sharded`` builds and writes one export in
several processes, through the same writers.
"""

from __future__ import annotations

from pathlib import Path

from reports.codebook import Codebook
from reports.export.model import ExportBundle, facts_of

CODEBOOK_FILE = "codebook.qdc"
PROJECT_FILE = "project.qdpx"


def write_all(bundle: ExportBundle, codebook: Codebook, out_dir: Path | str) -> list[Path]:
    """Write every export format into ``out_dir`` and return the paths written.

    CSV files, ``entries.jsonl``, the data dictionary, ``codebook.csv``, ``datapackage.json``,
    ``codebook.qdc`` and ``project.qdpx``.
    Bad input raises ``ValueError`` before anything is written.
    """
    # Imported here so that importing the model (as storage does) stays cheap.
    from reports.export import package, refi, tabular

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    refi.check(bundle, codebook)
    facts = facts_of(bundle)
    paths = tabular.write_csv(bundle, out, facts)
    paths.append(tabular.write_jsonl(bundle, out))
    paths += tabular.write_data_dictionary(facts, out)
    paths.append(package.write_codebook_csv(codebook, out, facts.options.bom))
    paths.append(package.write_package(facts, [p.name for p in paths], out))
    paths.append(refi.write_qdc(codebook, out / CODEBOOK_FILE))
    paths.append(refi.write_qdpx(bundle, codebook, out / PROJECT_FILE, facts))
    return paths
