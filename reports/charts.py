"""Charts for the evaluator report: matplotlib (Agg) drawn to PNG data URIs.

The report must open offline and be handed on as one file, so every chart is embedded as an
image; no script, font or style sheet is fetched. Figures are built with the object API (no
pyplot state), and PNGs carry no software or date metadata, so equal data gives equal bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.patches import Patch

PHASE_COLOURS = {
    "PH_BUILDING_RAPPORT": "#8ecae6",
    "PH_SETTING_DIRECTION": "#219ebc",
    "PH_PROGRESSION": "#126782",
    "PH_WINDING_UP": "#fb8500",
    "PH_MOVING_ON": "#ffb703",
}
CLIMATE_COLOURS = {
    "SC_GROWTH": "#2a9d8f",
    "SC_CONFIRMATION": "#8ab17d",
    "SC_RETREAT": "#e76f51",
    "SC_STASIS": "#b0b0b0",
}
SERIES = ("#264653", "#e76f51", "#2a9d8f", "#e9c46a", "#8d99ae", "#6a4c93")
HELPING, HINDERING = "#2a9d8f", "#e76f51"
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.6,
    "svg.hashsalt": "mentorbot",
}


def _uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _month_labels(months: Sequence[int]) -> list[str]:
    return [str(m + 1) for m in months]


def phase_distribution(
    months: Sequence[int], counts: Mapping[str, Sequence[int]], labels: Mapping[str, str]
) -> str:
    """Share of observed pairs in each phase, by month of the relationship."""
    with rc_context(STYLE):
        fig = Figure(figsize=(7.5, 3.0))
        ax = fig.add_subplot()
        totals = [sum(counts[p][i] for p in counts) or 1 for i in range(len(months))]
        bottom = [0.0] * len(months)
        for phase, colour in PHASE_COLOURS.items():
            values = [
                counts.get(phase, [0] * len(months))[i] / totals[i] for i in range(len(months))
            ]
            ax.bar(
                _month_labels(months),
                values,
                bottom=bottom,
                color=colour,
                width=0.85,
                label=labels.get(phase, phase),
            )
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of pairs")
        ax.set_xlabel("month of the relationship")
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _uri(fig)


def _month_axis(ax: Any, months: Sequence[int], offset: float) -> None:
    """The report's one month axis: months 1..N of the relationship, whatever the chart."""
    if months:
        ax.set_xlim(months[0] - 0.5 + offset, months[-1] + 0.5 + offset)
        ax.set_xticks([m + offset for m in months], _month_labels(months))
    ax.set_xlabel("month of the relationship")


def phase_timelines(
    rows: Sequence[tuple[str, Sequence[tuple[str, float, float]], Sequence[float]]],
    labels: Mapping[str, str],
    months: Sequence[int] = (),
) -> str:
    """One lane per pair: phase segments by month, regressions marked with a triangle."""
    height = max(1.6, 0.26 * len(rows) + 0.9)
    with rc_context(STYLE):
        fig = Figure(figsize=(7.5, height))
        ax = fig.add_subplot()
        for y, (_, segments, regressions) in enumerate(rows):
            for phase, start, end in segments:
                ax.broken_barh(
                    [(start, max(0.15, end - start))],
                    (y - 0.38, 0.76),
                    facecolors=PHASE_COLOURS.get(phase, "#999999"),
                )
            for month in regressions:
                ax.plot([month], [y], marker="v", color="#d62828", markersize=6, linestyle="none")
        ax.set_yticks(range(len(rows)), [label for label, _, _ in rows])
        ax.invert_yaxis()
        # months since matching: month k of the relationship spans k-1..k, centred on k-0.5
        _month_axis(ax, months, 0.5)
        ax.grid(axis="y", visible=False)
        handles: list[Patch | object] = [
            Patch(color=c, label=labels.get(p, p)) for p, c in PHASE_COLOURS.items()
        ]
        (marker,) = ax.plot(
            [], [], marker="v", color="#d62828", linestyle="none", label="regression"
        )
        handles.append(marker)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _uri(fig)


def lines_by_month(
    panels: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]],
    labels: Mapping[str, str],
    ylabel: str,
    months: Sequence[int] = (),
) -> str:
    """Small multiples: one panel per group (e.g. mentees, mentors), one line per series, each
    series the same colour in every panel."""
    names = list(panels)
    series_names = sorted({s for panel in panels.values() for s in panel})
    colour = {s: SERIES[k % len(SERIES)] for k, s in enumerate(series_names)}
    with rc_context(STYLE):
        fig = Figure(figsize=(7.5, 2.8))
        axes = fig.subplots(1, max(1, len(names)), sharey=True, squeeze=False)[0]
        handles: dict[str, Any] = {}
        for ax, name in zip(axes, names, strict=False):
            for series, points in panels[name].items():
                if not points:
                    continue
                (line,) = ax.plot(
                    [m + 1 for m, _ in points],
                    [v for _, v in points],
                    marker="o",
                    markersize=3,
                    linewidth=1.6,
                    color=colour[series],
                    label=labels.get(series, series),
                )
                handles.setdefault(series, line)
            ax.set_title(name)
            _month_axis(ax, months, 1.0)
            ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        axes[0].set_ylabel(ylabel)
        if handles:
            ordered = [handles[s] for s in series_names if s in handles]
            fig.legend(
                ordered,
                [h.get_label() for h in ordered],
                loc="center left",
                frameon=False,
                bbox_to_anchor=(1.0, 0.5),
            )
        return _uri(fig)


def _rows_height(names: Sequence[str]) -> float:
    """Inches for a bar chart of these labels: a wrapped label's lines all get room."""
    return max(1.6, sum(0.16 + 0.14 * n.count("\n") + 0.14 for n in names) + 0.8)


def diverging(rows: Sequence[tuple[str, int, int]]) -> str:
    """Helping (right) against hindering (left) mentions per factor."""
    height = _rows_height([r[0] for r in rows])
    with rc_context(STYLE):
        fig = Figure(figsize=(7.5, height))
        ax = fig.add_subplot()
        names = [r[0] for r in rows]
        ax.barh(names, [r[1] for r in rows], color=HELPING, label="helping")
        ax.barh(names, [-r[2] for r in rows], color=HINDERING, label="hindering")
        ax.axvline(0, color="#444444", linewidth=0.8)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(lambda v, _: f"{abs(v):.0f}")
        ax.set_xlabel("entries mentioning it (hindering ← | → helping)")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right", frameon=False)
        return _uri(fig)


def stacked_shares(
    months: Sequence[int],
    counts: Mapping[str, Sequence[int]],
    labels: Mapping[str, str],
    colours: Mapping[str, str],
) -> str:
    """Share of each category by month (the support-challenge climate)."""
    with rc_context(STYLE):
        fig = Figure(figsize=(7.5, 2.8))
        ax = fig.add_subplot()
        totals = [sum(counts[c][i] for c in counts) or 1 for i in range(len(months))]
        bottom = [0.0] * len(months)
        for k, (category, series) in enumerate(counts.items()):
            values = [series[i] / totals[i] for i in range(len(months))]
            ax.bar(
                _month_labels(months),
                values,
                bottom=bottom,
                width=0.85,
                color=colours.get(category, SERIES[k % len(SERIES)]),
                label=labels.get(category, category),
            )
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_xlabel("month of the relationship")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _uri(fig)


def grades_by_outcome(rows: Sequence[tuple[str, Mapping[str, int]]], grades: Sequence[str]) -> str:
    """Configurations per outcome, stacked by how well supported they are."""
    colours = {"strong": "#126782", "moderate": "#219ebc", "weak": "#8ecae6", "single": "#d9d9d9"}
    height = _rows_height([r[0] for r in rows])
    with rc_context(STYLE):
        fig = Figure(figsize=(7.5, height))
        ax = fig.add_subplot()
        names = [r[0] for r in rows]
        left = [0] * len(rows)
        for grade in grades:
            values = [r[1].get(grade, 0) for r in rows]
            ax.barh(names, values, left=left, color=colours.get(grade, "#999999"), label=grade)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.invert_yaxis()
        ax.set_xlabel("pairs with a configuration for this outcome")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="support")
        return _uri(fig)
