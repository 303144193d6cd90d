"""What every bulk job over the whole store shares."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk job, and restore it after.

    The offline jobs build millions of small objects that live until the job ends and form no
    cycles; the collector would walk them again and again (a quarter of the report's run time
    and a fifth of an export's build at 100,000 entries).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
