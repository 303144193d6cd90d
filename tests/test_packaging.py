"""The wheel built from pyproject.toml: the product and the data it reads, no test support."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("bot", "conversations", "storage", "reports")
TEST_SUPPORT = ("api_standin", "harness", "crash_test", "crash.py", "fault_injection")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a clean copy: a stale build/ folder in the worktree could hide a file that moved out
    src = tmp_path_factory.mktemp("src") / "mentorbot"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
        "data", "demo-output"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=600)
    (built,) = out.glob("mentorbot-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_no_test_support(wheel_files: set[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_files if not name.startswith("mentorbot-")}
    assert tops == set(PRODUCT)
    assert not [n for n in wheel_files if any(part in n for part in TEST_SUPPORT)]
    assert not [n for n in wheel_files if n.startswith(("tests/", "benchmarks/"))]


def test_the_wheel_holds_every_file_the_product_reads(wheel_files: set[str]) -> None:
    for needed in ("conversations/safety/probe.json", "conversations/safety/exemplars.yaml",
                   "conversations/flows/consent.yaml", "storage/keystore.sql",
                   "reports/codebook.yaml", "reports/templates/evaluator.html.j2"):
        assert needed in wheel_files
    # every file of the product packages in the source tree, data and code alike
    source = {
        p.relative_to(ROOT).as_posix()
        for package in PRODUCT
        for p in (ROOT / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert source - wheel_files == set()
    assert "bot/cli/__init__.py" in wheel_files


def test_the_command_is_bot_cli_main(wheel: Path, wheel_files: set[str]) -> None:
    (points,) = [n for n in wheel_files if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(points).decode()
    assert "mentorbot = bot.cli:main" in text
