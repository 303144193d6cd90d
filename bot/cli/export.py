"""`mentorbot export` (researchers): thin over reports.export.run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click

from bot.cli.common import fail, friendly, open_store
from reports.export.run import FORMATS, STATS_FORMATS, run_export


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
    from reports.export.model import ExportOptions
    from reports.export.stats import StatsUnavailable
    from storage.pseudonyms import StudyError

    started = time.perf_counter()
    options = ExportOptions.choose(text_mode, offsets, tool, not no_bom)

    async def go() -> Any:
        store = await open_store()
        try:
            return await run_export(store, out, study, date_mode, formats, options=options)
        finally:
            await store.close()

    try:
        result = friendly(asyncio.run)(go())
    except (StudyError, StatsUnavailable) as exc:
        fail(str(exc))
        return
    click.echo(
        f"Exported {result.facts.entries} entries from {len(result.facts.cases)} people "
        f"(study {study!r}, dates {date_mode}, text {options.text}, offsets "
        f"{options.offsets}) to {out} in {time.perf_counter() - started:.1f} s: "
        + ", ".join(p.name for p in result.paths)
        + f". {len(result.withheld)} signposted answer(s) withheld."
    )
