"""Researcher exports: pure writers over an already pseudonymised, consent-filtered bundle.

``model`` holds the records the storage side fills; ``tabular`` writes CSV, JSON Lines and the
data dictionary; ``refi`` writes the REFI-QDA codebook (``.qdc``) and project (``.qdpx``).
:func:`write_all` writes the lot.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from reports.codebook import Codebook
from reports.export.model import ExportBundle, segments_by_entry

CODEBOOK_FILE = "codebook.qdc"
PROJECT_FILE = "project.qdpx"


def write_all(
    bundle: ExportBundle, codebook: Codebook, out_dir: Path | str, *, parallel: bool = True
) -> list[Path]:
    """Write every export format into ``out_dir`` and return the paths written.

    CSV files, ``entries.jsonl``, the data dictionary, ``codebook.qdc`` and ``project.qdpx``.
    Bad input raises ``ValueError`` before anything slow starts. With ``parallel`` the project
    is written by a forked child while this process writes the rest: the two halves take about
    the same time, so two cores finish in about half. Fork shares the bundle without copying or
    pickling it. Where fork is unavailable, or threads are running (fork would copy their locks
    mid-use), everything is written here in turn.
    """
    # Imported here so that importing the model (as storage does) stays cheap.
    from reports.export import refi, tabular

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    segments_by_entry(bundle)  # validate once; the cached index is inherited by the child
    write_project = refi.prepare_qdpx(bundle, codebook)
    project = out / PROJECT_FILE

    child = None
    failure: str | None = None
    if (parallel and "fork" in multiprocessing.get_all_start_methods()
            and threading.active_count() == 1):
        ctx = multiprocessing.get_context("fork")
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_run_project, args=(write_project, project, send),
                            name="mentorbot-qdpx")
        child.start()
        send.close()
    paths: list[Path] = []
    try:
        paths += tabular.write_csv(bundle, out)
        paths.append(tabular.write_jsonl(bundle, out))
        paths += tabular.write_data_dictionary(bundle, out)
        paths.append(refi.write_qdc(codebook, out / CODEBOOK_FILE))
        if child is None:
            paths.append(write_project(project))
    finally:
        if child is not None:
            try:
                failure = receive.recv()  # waits for the child's report
            except EOFError:
                failure = "the writer exited without a report"
            child.join()
            receive.close()
    if child is not None:
        if failure is not None or child.exitcode != 0:
            raise RuntimeError(f"writing {project} failed: {failure or child.exitcode}")
        paths.append(project)
    return paths


def _run_project(write: Callable[[Path], Path], path: Path, report: Connection) -> None:
    try:
        write(path)
        report.send(None)
    except BaseException as exc:  # every failure, even KeyboardInterrupt, must reach the parent
        report.send(f"{type(exc).__name__}: {exc}")
    finally:
        report.close()
