"""Files an export writes: all or nothing, and parts joined in the kernel where it can."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_binary(path: Path) -> Iterator[IO[bytes]]:
    """Write to ``<path>.partial`` and rename on success, so a failed export leaves no file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_file(src: IO[bytes], dst: IO[bytes], size: int) -> None:
    """Append the first ``size`` bytes of ``src`` to ``dst``, in the kernel where it can: the
    parts of a 100,000-entry export are hundreds of MB. ``dst`` is flushed before and after,
    so buffered writes and kernel copies land in order."""
    dst.flush()
    src.seek(0)
    done = 0
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None:
        with contextlib.suppress(OSError):  # not between these file systems: copy by hand
            while done < size:
                sent = copy_range(src.fileno(), dst.fileno(), size - done)
                if sent == 0:
                    break
                done += sent
    src.seek(done)
    while done < size:
        block = src.read(min(1 << 20, size - done))
        if not block:
            raise ValueError(f"export part shorter than recorded ({done} of {size} bytes)")
        dst.write(block)
        done += len(block)
    dst.flush()
