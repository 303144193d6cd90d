"""The evaluator's report: extract -> code -> configure -> aggregate -> render.

The package's rooms: ``model`` (options, results and the records the stages pass on),
``pipeline`` (reading consented entries, coding them, the review file, and ``build_report``,
which runs the stages in order), ``analysis`` (phases, configurations, tallies and aggregates)
and ``render`` (report.json, the charts and report.html). The coding stage is
``pipeline._Coder``: the one place a stage that reads stored codes or embeddings instead of
computing them would plug in.

``build_report`` reads the entries whose authors currently consent to ``evaluation`` (through
``reports.extract``, the one place the consent rule is applied), codes them with the structured
and rules layers (and the optional semantic one), applies the evaluator's review decisions,
infers relationship phases, builds CMO configurations per pair and outcome, and writes:

* ``report.json``: everything, machine-readable, keys sorted, no run timestamps, stamped with
  the codebook version and hash: the same database, codebook and review file give the same
  bytes;
* ``report.html``: the report an evaluator hands on (Jinja2 with autoescape; charts embedded as
  PNG data URIs, so it opens offline);
* ``review.csv``: one row per suggested code, for the evaluator to accept, reject or change.

People appear only as study pseudonyms (``P-``, ``D-``, ``E-``); quotes are single sentences
with names masked, never from an answer that was signposted for safety or that touches a
sensitive topic.

Scale: rule coding is most of the work, so free texts go in chunks to a process pool while the
main process decrypts the next batches; results are merged in submission order, so the output
does not depend on which worker finished first.
"""

from __future__ import annotations

from reports.evaluator.model import STUDY, Options, ReportResult
from reports.evaluator.pipeline import build_report
from reports.evaluator.render import charts, render_html
from reports.review import ReviewError

__all__ = [
    "STUDY",
    "Options",
    "ReportResult",
    "ReviewError",
    "build_report",
    "charts",
    "render_html",
]
