"""An export written by several processes is the export one process writes."""

from __future__ import annotations

import base64
import csv
import io
import itertools
import os
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.codebook import SCHEME_FRAMEWORK_STEP, load_codebook
from reports.export import package, refi, sharded, tabular, write_all
from reports.export.bundle import build_export, document_withheld, plan_export, write_withheld
from reports.export.model import CodedSegment, ExportBundle, facts_of
from reports.export.refi import archive
from reports.extract import split
from reports.synthetic import generate_cohort
from storage.pseudonyms import _code
from storage.store import Store

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends


def _files(out: Path) -> dict[str, bytes]:
    """Every file of an export; the project as its members (deflate pieces may differ)."""
    files = {}
    for path in sorted(out.iterdir()):
        if path.suffix == ".qdpx":
            with zipfile.ZipFile(path) as zf:
                assert zf.testzip() is None  # every member's CRC checks
                for info in zf.infolist():
                    files[f"{path.name}/{info.filename}"] = zf.read(info)
        else:
            files[path.name] = path.read_bytes()
    return files


async def test_two_workers_write_what_one_process_writes(store: Store, tmp_path: Path) -> None:
    await generate_cohort(store, pairs=30, sessions=4, seed=5)
    codebook = load_codebook()
    built = await build_export(store, "study-S", "shift", codebook)
    assert len(built.bundle.entries) > 100 and built.bundle.segments

    whole = tmp_path / "whole"
    write_all(built.bundle, codebook, whole)
    write_withheld(built, whole)
    document_withheld(whole)
    # the command's package describes withheld.csv too, which write_all does not write
    package.write_package(facts_of(built.bundle), [p.name for p in whole.iterdir()], whole)
    expected = _files(whole)

    plan = await plan_export(store, "study-S", "shift")
    for workers in (1, 2, 3):
        out = tmp_path / f"w{workers}"
        result = sharded.export(plan, codebook, out, workers=workers)
        assert result.workers == workers
        got = _files(out)
        assert sorted(got) == sorted(expected)
        for name, data in expected.items():
            assert got[name] == data, f"{name} differs with {workers} workers"
        assert {p.name for p in result.paths} == {p.name for p in out.iterdir()}
        assert not list(out.glob(".export-parts-*"))
        refi.validate_qdpx(out / "project.qdpx")
        assert result.facts.entries == len(built.bundle.entries)
        assert result.withheld == built.withheld


async def test_some_formats_only(store: Store, tmp_path: Path) -> None:
    await generate_cohort(store, pairs=6, sessions=2, seed=3)
    plan = await plan_export(store, "s", "relative")
    out = tmp_path / "out"
    result = sharded.export(plan, load_codebook(), out, ("qdpx",), workers=2)
    assert {p.name for p in result.paths} == {"codebook.qdc", "project.qdpx"}
    assert {p.name for p in out.iterdir()} == {"codebook.qdc", "project.qdpx"}
    refi.validate_qdpx(out / "project.qdpx")


async def test_a_failing_worker_fails_the_export_and_leaves_nothing(
    store: Store, tmp_path: Path
) -> None:
    await generate_cohort(store, pairs=6, sessions=2, seed=3)
    plan = await plan_export(store, "s", "shift")
    codebook = load_codebook()
    # a codebook without the GROW and OSKAR step codes: the project would have dangling
    # CodeRefs, which every worker finds before it writes anything
    crippled = replace(codebook, codes={k: v for k, v in codebook.codes.items()
                                        if v.scheme != SCHEME_FRAMEWORK_STEP},
                       content_hash="not-packaged")
    out = tmp_path / "out"
    with pytest.raises(sharded.PartFailed, match="codes missing from the codebook"):
        sharded.export(plan, crippled, out, workers=2)
    assert [p.name for p in out.iterdir()] == []


async def test_an_empty_export_still_has_its_files(store: Store, tmp_path: Path) -> None:
    plan = await plan_export(store, "s", "shift")
    out = tmp_path / "out"
    result = sharded.export(plan, load_codebook(), out, workers=2)
    assert result.facts.entries == 0 and result.workers == 1
    refi.validate_qdpx(out / "project.qdpx")
    assert (out / "answers.csv").read_text().count("\n") == 1  # the header alone


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(1, 500), max_size=40), st.integers(1, 6))
def test_split_covers_every_id_once(ids: set[int], parts: int) -> None:
    ordered = sorted(ids)
    ranges = split(ordered, parts)
    assert 1 <= len(ranges) <= parts
    assert ranges[0][0] == 0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert [i for lo, hi in ranges for i in ordered if lo < i <= hi] == ordered
    if ordered:
        assert all(any(lo < i <= hi for i in ordered) for lo, hi in ranges)


async def test_workers_started_before_the_plan(store: Store, tmp_path: Path) -> None:
    await generate_cohort(store, pairs=3, sessions=2, seed=3)
    pool = sharded.start_workers(3)
    assert pool is not None
    procs = list(pool.procs)
    plan = await plan_export(store, "s", "shift")
    result = sharded.export(plan, load_codebook(), tmp_path / "a", pool=pool)
    assert result.workers == 3
    assert procs and not any(p.is_alive() for p in procs)
    one = sharded.export(plan, load_codebook(), tmp_path / "b", workers=1)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    # more workers than entries: the spare ones stop
    pool = sharded.start_workers(2)
    assert pool is not None
    procs = list(pool.procs)
    tiny = replace(plan, snapshot=replace(plan.snapshot,
                                          entry_ids=plan.snapshot.entry_ids[:1]))
    assert sharded.export(tiny, load_codebook(), tmp_path / "c", pool=pool).workers == 1
    assert not any(p.is_alive() for p in procs)
    assert one.facts.entries == plan.entries


def test_split_gives_consecutive_ranges_of_equal_size() -> None:
    ids = [3, 4, 9, 10, 11, 20, 21, 40]
    assert split(ids, 1) == [(0, 40)]
    assert split(ids, 2) == [(0, 10), (10, 40)]
    ranges = split(ids, 3)
    assert ranges[0][0] == 0 and ranges[-1][1] == 40
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert sorted(i for lo, hi in ranges for i in ids if lo < i <= hi) == ids
    assert split([], 2) == [(0, 0)]


def test_crc_of_joined_parts() -> None:
    for a, b in ((b"", b"x"), (b"abc", b""), (os.urandom(1000), os.urandom(77777)),
                 (b"head" * 999, os.urandom(1))):
        assert archive._crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_pseudonym_text_is_base32_as_before() -> None:
    # pseudonyms must stay the same across versions of the program for a study
    for _ in range(2000):
        digest = os.urandom(32)
        for length in (8, 10, 12):
            assert _code(digest, length) == base64.b32encode(digest).decode()[:length]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(alphabet=st.sampled_from(list('ab ,"\r\n\'=é😀-')),
                                 max_size=8), min_size=2, max_size=6), max_size=5))
def test_fields_are_encoded_as_the_csv_module_encodes_them(rows: list[list[str]]) -> None:
    expected = io.StringIO(newline="")
    csv.writer(expected, dialect="excel", lineterminator="\r\n").writerows(rows)
    ours = "".join(",".join(tabular._cell(c) for c in row) + "\r\n" for row in rows)
    assert ours == expected.getvalue()


def test_parts_join_in_order_with_or_without_kernel_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reports.export.files import append_file

    parts = [os.urandom(n) for n in (0, 5, 70_000, 3)]
    for kernel in (True, False):
        if not kernel:
            monkeypatch.delattr(os, "copy_file_range", raising=False)
        path = tmp_path / f"joined-{kernel}"
        with open(path, "wb") as dst:
            dst.write(b"head")  # buffered, not yet flushed
            for i, data in enumerate(parts):
                src_path = tmp_path / f"part-{kernel}-{i}"
                src_path.write_bytes(data + b"trailing")
                with open(src_path, "rb") as src:
                    append_file(src, dst, len(data))
                dst.write(b"|")
        assert path.read_bytes() == b"head" + b"".join(p + b"|" for p in parts)


def test_worker_failures_never_quote_anything_but_the_exports_own_checks() -> None:
    try:
        int("my private words")
    except ValueError as exc:
        told = sharded._failure(exc)
    assert "private" not in told and told.startswith("ValueError at ")
    try:
        tabular.segments_by_entry(ExportBundle("s", "g", "1", "h", "shift", (), (
            CodedSegment("E-1", "goal", 0, 1, "C_X", "rules", 0.5),), ()))
    except ValueError as exc:
        told = sharded._failure(exc)
    assert "unknown entry 'E-1'" in told
