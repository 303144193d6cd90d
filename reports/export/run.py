"""Building a researcher export from an open store: workers started, the plan read through
the consent rule, the formats written (what `mentorbot export` and the demo run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FORMATS = ("csv", "jsonl", "qdpx")
STATS_FORMATS = ("dta", "sav")  # Stata and SPSS, with the stats extra


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
