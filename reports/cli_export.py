"""``mentorbot export`` (researchers) and ``mentorbot report coordinator`` (programme leads)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import click

FORMATS = ("csv", "jsonl", "qdpx")
STATS_FORMATS = ("dta", "sav")  # Stata and SPSS, with the stats extra


def _fail(message: str) -> None:
    click.echo(f"mentorbot: {message}", err=True)
    sys.exit(2)


async def run_export(store: Any, out: Path, study: str, date_mode: str,
                     formats: tuple[str, ...], workers: int | None = None,
                     options: Any = None) -> Any:
    """Build the export and write the formats asked for (all of them by default).

    ``options``: a :class:`reports.export.model.ExportOptions` (masked text, code point
    offsets, CSV with a byte order mark by default)."""
    from reports.codebook import load_codebook
    from reports.export import sharded
    from reports.export.bundle import plan_export

    if workers is None:
        # an upper bound (consent is applied in the plan) is enough to decide
        workers = sharded.default_workers(await store.entries.complete_count())
    pool = sharded.start_workers(workers)
    try:
        plan = await plan_export(store, study, date_mode, options)
    except BaseException:
        if pool is not None:
            pool.close()
        raise
    # the store stays open (and its thread idle) while workers read the database file
    return sharded.export(plan, load_codebook(), out, formats or FORMATS, workers, pool)


@click.command("export")
@click.option("--format", "formats", type=click.Choice(FORMATS + STATS_FORMATS), multiple=True,
              help="Format to write (repeat for several); csv, jsonl and qdpx if left out. "
                   "dta (Stata) and sav (SPSS) need the stats extra and come with the CSV files.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the export files.")
@click.option("--study", required=True,
              help="Study name: pseudonyms are stable within a study and unrelated across.")
@click.option("--dates", "date_mode", type=click.Choice(("shift", "relative")), default="shift",
              show_default=True,
              help="shift: dates moved by a consistent random offset per person; relative: "
                   "days since the pair's matching date (or the person's first entry).")
@click.option("--text", "text_mode", type=click.Choice(("masked", "verbatim")),
              default="masked", show_default=True,
              help="masked: names, emails, phone numbers and links replaced, as the consent "
                   "question promises; verbatim: as written, only where the study's approval "
                   "allows it.")
@click.option("--for", "tool", type=click.Choice(("qualcoder", "nvivo", "atlasti", "maxqda")),
              default=None, help="QDA tool the project is for: chooses --offsets.")
@click.option("--offsets", type=click.Choice(("codepoints", "utf16")), default=None,
              help="Unit of REFI-QDA selection positions: codepoints (QualCoder, the default) "
                   "or utf16 (NVivo, ATLAS.ti, MAXQDA).")
@click.option("--no-bom", "no_bom", is_flag=True,
              help="CSV without the UTF-8 byte order mark (Excel and QualCoder need it).")
def export_cmd(formats: tuple[str, ...], out: Path, study: str, date_mode: str,
               text_mode: str, tool: str | None, offsets: str | None, no_bom: bool) -> None:
    """Export entries whose authors consent to research export, pseudonymised."""
    from bot.cli import friendly
    from reports.export.model import ExportOptions
    from reports.export.stats import StatsUnavailable
    from storage.pseudonyms import StudyError

    started = time.perf_counter()
    options = ExportOptions.choose(text_mode, offsets, tool, not no_bom)

    async def go() -> Any:
        from reports.cli_report import open_store

        store = await open_store()
        try:
            return await run_export(store, out, study, date_mode, formats, options=options)
        finally:
            await store.close()

    try:
        result = friendly(asyncio.run)(go())
    except (StudyError, StatsUnavailable) as exc:
        _fail(str(exc))
        return
    click.echo(
        f"Exported {result.facts.entries} entries from {len(result.facts.cases)} people "
        f"(study {study!r}, dates {date_mode}, text {options.text}, offsets "
        f"{options.offsets}) to {out} in {time.perf_counter() - started:.1f} s: "
        + ", ".join(p.name for p in result.paths)
        + f". {len(result.withheld)} signposted answer(s) withheld."
    )


@click.command("coordinator")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for coordinator.html and coordinator.json.")
@click.option("--programme", "programme_name", default=None,
              help="Programme name (needed when the database holds more than one).")
def coordinator_cmd(out: Path, programme_name: str | None) -> None:
    """Anonymised programme summary (small counts hidden) as HTML and JSON."""
    from bot.cli import friendly
    from reports.coordinator import write_report

    async def go() -> list[Path]:
        from reports.cli_report import open_store

        store = await open_store()
        try:
            if programme_name is not None:
                programme = await store.programmes.by_name(programme_name)
            else:
                programmes = await store.programmes.all()
                if len(programmes) != 1:
                    _fail("name the programme with --programme (the database holds "
                          f"{len(programmes)})")
                programme = programmes[0]
            return await write_report(store, programme.id, out)
        finally:
            await store.close()

    paths = friendly(asyncio.run)(go())
    click.echo("Coordinator summary written: " + ", ".join(str(p) for p in paths))


def register(main: click.Group) -> None:
    main.add_command(export_cmd)
    report = main.commands.get("report")
    if isinstance(report, click.Group):
        report.add_command(coordinator_cmd)
    else:
        @click.group("report")
        def report_group() -> None:
            """Offline reports."""

        report_group.add_command(coordinator_cmd)
        main.add_command(report_group)
