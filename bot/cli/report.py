"""`mentorbot report` (the evaluator's and the coordinator's), `code` and `recode`: thin over
reports.evaluator, reports.coordinator, reports.code_command and reports.entry_codes."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import click

from bot.cli.common import fail, friendly, open_store
from reports.review import ReviewError
from storage.pseudonyms import StudyError


class _RichProgress:
    """A progress bar on stderr, only when stderr is a terminal (never in logs or pipes)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
            transient=False,
        )
        self.task: Any = None

    def __enter__(self) -> _RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish()
        self.progress.stop()

    def _finish(self) -> None:
        """Show the current stage as done (a stage of unknown length as one step)."""
        if self.task is not None:
            task = self.progress.tasks[-1]
            total = task.total if task.total is not None else 1
            self.progress.update(self.task, total=total, completed=total)

    def stage(self, name: str, total: int | None) -> None:
        self._finish()
        self.task = self.progress.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)


@click.group("report")
def report_group() -> None:
    """Offline reports: the evaluator's and the coordinator's."""


@report_group.command("evaluator")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for report.html, report.json and review.csv.",
)
@click.option(
    "--review",
    "review",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A review.csv with your decisions, from an earlier run.",
)
@click.option(
    "--study",
    default="evaluation",
    show_default=True,
    help="Study name for the pseudonyms (P-, D-, E-) in the report.",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=None,
    help="Processes for rule coding [default: 2 on large programmes, else 0].",
)
@click.option(
    "--semantic/--no-semantic",
    default=None,
    help="Join the semantic heads to the rules [default: on where the semantic extra is "
    "installed and `mentorbot recode` has stored embeddings; the report says which].",
)
def evaluator_cmd(
    out: Path, review: Path | None, study: str, workers: int | None, semantic: bool | None
) -> None:
    """Code consented entries, build CMO configurations and phases, and write the report."""
    friendly(_evaluator)(out, review, study, workers, semantic)


def _evaluator(
    out: Path, review: Path | None, study: str, workers: int | None, semantic: bool | None
) -> None:
    from reports.evaluator import Options, build_report

    started = time.perf_counter()

    async def go() -> Any:
        store = await open_store()
        try:
            with _RichProgress() as progress:
                return await build_report(
                    store,
                    out,
                    options=Options(
                        study=study, review=review, workers=workers, semantic=semantic
                    ),
                    progress=progress,
                )
        finally:
            await store.close()

    try:
        result = asyncio.run(go())
    except (ReviewError, StudyError) as exc:
        fail(str(exc))
        return
    click.echo(
        f"Report on {result.entries} entries from {result.people} people in {result.pairs} "
        f"pairs written to {result.out_dir} in {time.perf_counter() - started:.1f} s: "
        "report.html, report.json, review.csv "
        f"({result.review_rows} suggested codes to review"
        + (
            f"; agreement with your review {result.agreement:.0%}"
            if result.agreement is not None
            else ""
        )
        + ")."
    )
    if result.coding:
        click.echo(result.coding)


@click.command("code")
@click.option("--semantic", is_flag=True,
              help="Add the semantic heads to the rules (needs the semantic extra); says on "
                   "stderr when it has to code with the rules alone.")
@click.option("--review", "review_path", type=click.Path(path_type=Path), default=None,
              help="An evaluator's review.csv: with --semantic, its decisions refit the "
                   "element head for this programme first.")
def code_cmd(semantic: bool, review_path: Path | None) -> None:
    """Code text from elsewhere with the same codebook: JSON Lines on stdin, codes on stdout.

    Each input line is {"id": ..., "role": "mentee"|"mentor" (optional), "text": ...,
    "flow": ..., "step": ... (optional; a goal step makes its outcomes intended)}.
    """
    from reports.code_command import code_stream
    from reports.codebook import load_codebook
    from reports.review import ReviewError, read_review

    decisions = None
    if review_path is not None:
        try:
            decisions = read_review(review_path, load_codebook())
        except ReviewError as exc:
            raise click.ClickException(str(exc)) from None
    errors = code_stream(sys.stdin, sys.stdout, semantic=semantic,
                         note=lambda text: click.echo(f"mentorbot code: {text}", err=True),
                         review=decisions)
    sys.stdout.flush()
    if errors:
        click.echo(f'mentorbot: {errors} line(s) could not be coded; see their "error"', err=True)
        sys.exit(1)


@click.command("recode")
def recode_cmd() -> None:
    """Code saved entries that lack current codes (run once after an upgrade)."""
    friendly(_recode)()


def _recode() -> None:
    from reports.entry_codes import recode

    started = time.perf_counter()

    async def go() -> Any:
        store = await open_store()
        try:
            with _RichProgress() as progress:
                progress.stage("Coding and embedding entries",
                               await store.entries.complete_count())
                return await recode(store, progress=progress.advance)
        finally:
            await store.close()

    result = asyncio.run(go())
    click.echo(
        f"{result.judged} answers judged by the current safety rule "
        f"({result.newly_flagged} newly flagged: withheld from reports and exports from now "
        f"on; nobody was sent anything). {result.coded} of {result.entries} saved entries "
        f"coded and stored in {time.perf_counter() - started:.1f} s; {result.current} already "
        f"had current codes. {result.embedded} answers embedded for the semantic layer"
        + (f" ({result.embeddings_note})." if result.embeddings_note else ".")
    )


@report_group.command("coordinator")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for coordinator.html and coordinator.json.")
@click.option("--programme", "programme_name", default=None,
              help="Programme name (needed when the database holds more than one).")
def coordinator_cmd(out: Path, programme_name: str | None) -> None:
    """Anonymised programme summary (small counts hidden) as HTML and JSON."""
    from reports.coordinator import write_report

    async def go() -> list[Path]:
        store = await open_store()
        try:
            if programme_name is not None:
                programme = await store.programmes.by_name(programme_name)
            else:
                programmes = await store.programmes.all()
                if len(programmes) != 1:
                    fail("name the programme with --programme (the database holds "
                          f"{len(programmes)})")
                programme = programmes[0]
            return await write_report(store, programme.id, out)
        finally:
            await store.close()

    paths = friendly(asyncio.run)(go())
    click.echo("Coordinator summary written: " + ", ".join(str(p) for p in paths))
