"""The evaluator report rendered: report.json (sorted, stable), charts and report.html."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from reports.configurations import (
    GRADES,
)
from reports.evaluator.analysis import ITEMS_MARKER
from reports.evaluator.for_whom import differs
from reports.evaluator.model import MIN_MONTH_ENTRIES, ROLES, TIMELINES_SHOWN
from reports.evaluator.rameses import ITEMS
from reports.evaluator.wording import phrase, plain_label
from reports.phases import DAYS_PER_MONTH, PHASES

# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------


def write_json(path: Path, data: Mapping[str, Any], items: Sequence[str]) -> None:
    """report.json: ``data`` with the configuration items (already encoded, in order) put
    where the marker stands. Equal input gives equal bytes: keys are sorted throughout."""
    text = _dumps(data)
    head, tail = text.split(json.dumps(ITEMS_MARKER), 1)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(head)
        handle.write("[")
        for k, item in enumerate(items):
            if k:
                handle.write(",")
            handle.write(item)
        handle.write("]")
        handle.write(tail)


def _dumps(data: Mapping[str, Any]) -> str:
    # compact: with ``indent`` json falls back to its pure-Python encoder, ten times slower on
    # the tens of megabytes a large programme gives; ``python -m json.tool`` pretty-prints it
    return (
        json.dumps(
            data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
        + "\n"
    )


def chart_label(label: str, width: int = 30) -> str:
    """A label as a chart shows it: the name before any colon (the definition after it is in
    the page), wrapped onto lines of about ``width`` characters; never cut short, so a long
    name takes two or three lines instead of losing its end (issue 14)."""
    head = label.split(":", 1)[0].strip() if ":" in label else label
    return textwrap.fill(head, width, break_long_words=False) if len(head) > width else head


def chart_names(labels: Mapping[str, str], width: int = 30) -> dict[str, str]:
    """Every code's name in a chart: its plain label (no "Dyad:"), shortened to the name
    before its colon only where no other code has that name ("Cognitive", but both "New
    knowledge: ..." resources keep what follows, wrapped), so two bars never share a name."""
    plain = {k: plain_label(labels, k) for k in labels}
    heads = Counter(v.split(":", 1)[0].strip() for v in plain.values())
    return {k: chart_label(v, width) if heads[v.split(":", 1)[0].strip()] == 1
            else textwrap.fill(v, width, break_long_words=False) for k, v in plain.items()}


def charts(data: Mapping[str, Any]) -> dict[str, str]:
    from reports import charts as draw

    labels = data["labels"]
    short = chart_names(labels)
    phase_labels = {p: labels[p].split(":", 1)[0] for p in PHASES}
    out: dict[str, str] = {}
    dist = data["phases"]["distribution"]
    if dist["months"]:
        out["phase_distribution"] = draw.phase_distribution(
            dist["months"], dist["counts"], phase_labels
        )
    lanes = []
    for label, t in _timelines_shown(data["phases"]["pairs"]):
        segments = t["segments"]
        spans = []
        for k, s in enumerate(segments):
            end = segments[k + 1]["from_day"] if k + 1 < len(segments) else s["to_day"] + 7
            spans.append((s["phase"], s["from_day"] / DAYS_PER_MONTH, end / DAYS_PER_MONTH))
        regressions = [
            tr["day"] / DAYS_PER_MONTH for tr in t["transitions"] if tr["kind"] == "regression"
        ]
        lanes.append((label, spans, regressions))
    axis = list(range(data["summary"]["months_observed"]))  # one month axis for every chart
    if lanes:
        out["phase_timelines"] = draw.phase_timelines(lanes, phase_labels, axis)
    domains = data["learning_domains"]["by_month"]
    panels = {
        f"{a}s": {
            d: [(int(m), float(s)) for m, s, _, total in pts if total >= MIN_MONTH_ENTRIES]
            for d, pts in sorted(domains.get(a, {}).items())
        }
        for a in ROLES
        if domains.get(a)
    }
    if panels:
        out["learning_domains"] = draw.lines_by_month(
            panels, chart_names(labels, 24),
            "share of entries", axis,
        )
    rows = [
        (_factor_name(r, short), r["helping"], r["hindering"])
        for r in data["factors"]["rows"][:14]
    ]
    if rows:
        out["factors"] = draw.diverging(rows)
    climate = data["climate"]
    if climate["months"] and any(climate["totals"].values()):
        out["climate"] = draw.stacked_shares(
            climate["months"],
            climate["counts"],
            {k: labels[k].split(":", 1)[0] for k in climate["counts"]},
            draw.CLIMATE_COLOURS,
        )
    patterns_ = data["configurations"]["patterns"][:12]
    if patterns_:
        out["configurations"] = draw.grades_by_outcome(
            # a distal and a proximal pattern of one outcome are two bars, named apart
            [(short[p["outcome"]] + (" (distal)" if p["outcome_role"] == "OUTCOME_DISTAL"
                                     else ""), p["grades"]) for p in patterns_], GRADES
        )
    return out


def _factor_name(row: Mapping[str, Any], short: Mapping[str, str]) -> str:
    if row.get("counterpart") and short[row["counterpart"]] != short[row["factor"]]:
        # joined first, then wrapped: the pair reads as one label
        return chart_label(" / ".join(short[row[k]].replace("\n", " ")
                                      for k in ("factor", "counterpart")), 34)
    return short[row["factor"]]


def _timelines_shown(pairs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Pairs with regressions first (they need a look), then the rest, by pseudonym."""
    with_regression = [
        (k, v)
        for k, v in sorted(pairs.items())
        if any(t["kind"] == "regression" for t in v["transitions"])
    ]
    rest = [
        (k, v)
        for k, v in sorted(pairs.items())
        if not any(t["kind"] == "regression" for t in v["transitions"])
    ]
    return (with_regression[: TIMELINES_SHOWN // 2] + rest)[:TIMELINES_SHOWN]


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def plain_summary(data: Mapping[str, Any]) -> list[str]:
    """Five or six sentences a steering group can read first, from the report's own figures."""
    labels = data["labels"]
    s = data["summary"]
    roles = s["people_by_role"]
    out = [
        f"This report reads {_plural(s['entries'], 'entry', 'entries')} from "
        f"{_plural(s['pairs'], 'mentoring pair')} ({_plural(roles.get('mentee', 0), 'mentee')} "
        f"and {_plural(roles.get('mentor', 0), 'mentor')} who consent to evaluation) over "
        f"{_plural(s['months_observed'], 'month')} of their relationships."
    ]
    patterns = data["configurations"]["patterns"]
    if patterns:
        p = patterns[0]
        typical = p["typical"]
        leading = typical["context"][:1] + typical["resource"][:1]
        before = [phrase(labels, c) for c, _, _ in leading]
        out.append(
            f"The outcome most often preceded by a mechanism was {phrase(labels, p['outcome'])}, "
            f"in {_plural(p['units'], 'pair')}"
            + (f", usually where {' and '.join(before)} came first." if before else ".")
        )
        if p.get("contrasts"):
            c = p["contrasts"][0]
            total = c["with_outcome"] + c["without_outcome"]
            out.append(
                f"It did not always follow: of {total} times "
                f"{' and '.join(phrase(labels, x) for x in (c['context'], c['mechanism']) if x)} "
                f"came together, the outcome was reported in {c['with_outcome']}."
            )
    scaling = data["change_over_time"]["scaling"]["programme"]
    goals = data["change_over_time"]["goals"]
    if scaling["units_rated_twice"]:
        out.append(
            f"Of {_plural(scaling['units_rated_twice'], 'pair')} whose mentee rated their "
            f"progress (0 to 10) more than once, {scaling['up']} moved up, {scaling['same']} "
            f"stayed level and {scaling['down']} went down."
        )
    if goals["aims"]:
        out.append(
            f"{goals['realised']} of the {goals['aims']} aims people stated were later reported "
            "as achieved by the same person."
        )
    negative = data["negative_cases"]["by_kind"]
    if negative:
        parts = [f"{n} {kind}" for kind, n in negative.items() if kind != "aims not reported"]
        out.append(
            f"{_plural(data['negative_cases']['pairs'], 'pair')} need a closer look"
            + (f" ({', '.join(parts)})" if parts else "") + "; see the negative cases."
        )
    return out[:6]


def render_html(
    data: Mapping[str, Any], images: Mapping[str, str], best: Sequence[Mapping[str, Any]] = ()
) -> str:
    import jinja2

    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["pct"] = lambda v: f"{100 * float(v):.0f}%"
    env.filters["month"] = lambda m: "before matching" if m is None or m < 0 else f"month {m + 1}"
    env.filters["months"] = lambda d: f"{d / DAYS_PER_MONTH:.1f}"
    env.filters["phrase"] = lambda code: phrase(data["labels"], code)
    env.filters["plain"] = lambda code: plain_label(data["labels"], code)
    env.globals["differs"] = differs
    source = (
        resources.files("reports")
        .joinpath("templates", "evaluator.html.j2")
        .read_text(encoding="utf-8")
    )
    template = env.from_string(source)
    return template.render(
        d=data,
        images=images,
        labels=data["labels"],
        phase_names={p: data["labels"][p].split(":", 1)[0] for p in PHASES},
        timelines=_timelines_shown(data["phases"]["pairs"]),
        best=best,
        roles_order=list(data["cmo_framework"]["roles"]),
        grades=GRADES,
        plain=plain_summary(data),
        rameses=ITEMS,
        fw=data["for_whom"],
    )
