"""`mentorbot diagrams`: the flow diagrams in docs/ARCHITECTURE.md, generated from the YAML.

Thin over :mod:`conversations.diagrams` (also ``python -m conversations.diagrams``).
"""

from __future__ import annotations

from pathlib import Path

import click

from conversations import diagrams


@click.command("diagrams")
@click.argument("document", type=click.Path(path_type=Path), default=Path("docs/ARCHITECTURE.md"))
@click.option("--check", is_flag=True, help="Only say whether the diagrams are current.")
def diagrams_cmd(document: Path, check: bool) -> None:
    """Write (or --check) the Mermaid flow diagrams generated from the flow YAML."""
    args = [str(document), *(["--check"] if check else [])]
    code = diagrams.main(args)
    if code:
        raise SystemExit(code)
