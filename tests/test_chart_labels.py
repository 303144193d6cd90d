"""Chart labels (issue 14): a long name is wrapped onto lines, never cut short with an
ellipsis, and two patterns of one outcome are two bars, not one bar drawn twice."""

from __future__ import annotations

from typing import Any

from reports import charts as draw
from reports.codebook import load_codebook
from reports.evaluator.render import chart_label, charts


def test_every_codebook_label_fits_a_chart_whole() -> None:
    for code in load_codebook().codes.values():
        shown = chart_label(code.label)
        head = code.label.split(":", 1)[0].strip() if ":" in code.label else code.label
        assert "…" not in shown
        assert shown.replace("\n", " ") == head  # every word kept, in order
        assert all(len(line) <= 30 or " " not in line for line in shown.split("\n"))
        assert shown.count("\n") <= 3


def test_the_charts_get_whole_labels(monkeypatch: Any) -> None:
    long_ = "C_COMMITMENT"
    book = load_codebook()
    labels = {c: d.label for c, d in book.codes.items()}
    seen: list[str] = []
    real = draw.grades_by_outcome

    def spy(rows: Any, grades: Any) -> str:
        seen.extend(r[0] for r in rows)
        return real(rows, grades)

    monkeypatch.setattr(draw, "grades_by_outcome", spy)
    pattern = {"outcome_role": "OUTCOME_PROXIMAL", "grades": {"strong": 1}}
    data = {
        "labels": labels,
        "phases": {"distribution": {"months": [], "counts": {}}, "pairs": {}},
        "summary": {"months_observed": 0},
        "learning_domains": {"by_month": {}},
        "factors": {"rows": []},
        "climate": {"months": [], "totals": {}, "counts": {}},
        "configurations": {"patterns": [
            pattern | {"outcome": long_},
            pattern | {"outcome": "DOM_COGNITIVE"},
            pattern | {"outcome": "DOM_COGNITIVE", "outcome_role": "OUTCOME_DISTAL"}]},
    }
    assert "configurations" in charts(data)
    assert seen[0].replace("\n", " ") == labels[long_].split(":", 1)[0]
    assert "\n" in seen[0] and "…" not in "".join(seen)
    assert seen[1] != seen[2] and seen[2].endswith("(distal)")
