"""docs/ARCHITECTURE.md: its flow diagrams are what the flow YAML gives today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conversations import diagrams
from conversations.catalogue import load_flows

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def test_the_committed_flow_diagrams_are_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert diagrams.updated(text, load_flows()) == text, (
        "docs/ARCHITECTURE.md is stale: run python -m conversations.diagrams"
    )


def test_every_flow_has_one_diagram() -> None:
    text = DOC.read_text(encoding="utf-8")
    for flow_id in load_flows():
        assert text.count(f"#### `{flow_id}` (") == 1, flow_id
    assert text.count("```mermaid") == len(load_flows())


def test_a_step_added_to_a_flow_shows_in_its_diagram() -> None:
    flow = load_flows()["grow"]
    step = flow.steps[0].model_copy(update={"id": "extra_step", "label": "An added step"})
    changed = flow.model_copy(update={"steps": (*flow.steps, step)})
    drawn = diagrams.flow_diagram(changed)
    assert 's_extra_step["An added step<br/>typed"]' in drawn
    assert f"s_{flow.steps[-1].id} --> s_extra_step" in drawn


def test_the_check_command_fails_on_a_stale_document(tmp_path: Path) -> None:
    stale = tmp_path / "ARCHITECTURE.md"
    stale.write_text(DOC.read_text(encoding="utf-8").replace("flowchart TD", "flowchart LR", 1),
                     encoding="utf-8")
    run = [sys.executable, "-m", "conversations.diagrams"]
    failed = subprocess.run([*run, str(stale), "--check"], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    assert failed.returncode == 1 and "out of date" in failed.stderr
    subprocess.run([*run, str(stale)], capture_output=True, cwd=ROOT, check=True)
    assert stale.read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")
    current = subprocess.run([*run, str(DOC), "--check"], capture_output=True, cwd=ROOT,
                             check=False)
    assert current.returncode == 0


def test_the_mentorbot_command_checks_and_writes_the_diagrams(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bot.cli import main

    stale = tmp_path / "ARCHITECTURE.md"
    stale.write_text(DOC.read_text(encoding="utf-8").replace("flowchart TD", "flowchart LR", 1),
                     encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(main, ["diagrams", str(stale), "--check"]).exit_code == 1
    assert runner.invoke(main, ["diagrams", str(stale)]).exit_code == 0
    assert stale.read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")
    assert runner.invoke(main, ["diagrams", str(DOC), "--check"]).exit_code == 0
