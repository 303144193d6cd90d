"""The rules layer's coarse figures on the shared notes' labelled quotes, plus its throughput.

Usage: python benchmarks/coding_quotes.py [--fixtures PATH] [--sentences N]

The cue lists were tuned looking at these quotes, so this is a regression floor, not a measure
of accuracy: ``benchmarks/coding_accuracy.py`` scores every layer on the labelled bank (and on
these quotes beside it).

Runs every fixture through ``reports.code_command.code_stream`` (the same path the reporting
job uses) and prints, per scheme, precision / recall / F1 per label and the macro-F1 over the
labels seen in gold or prediction. Each scheme is scored only on fixtures whose source labels
that scheme (``scored`` in the fixture file). A deterministic half of the fixtures (by a hash
of the id) is reported as "held-out" beside the "tune" half: rules were tuned looking at all of
them, so a gap between the halves shows overfitting to particular quotes. Ratios come first,
absolute counts last, then a throughput line for coding synthetic sentences.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.extract_fixtures import COARSE_ROLE  # noqa: E402
from reports.code_command import code_stream  # noqa: E402
from reports.codebook import load_codebook  # noqa: E402
from reports.coding.rules import code_text, fold_factor  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "labelled_quotes.yaml"
SCHEMES = ("cmo_role", "cmo_element", "learning_domain", "factor", "phase", "topic")
TITLES = {
    "cmo_role": "CMO role",
    "cmo_element": "CMO element",
    "learning_domain": "learning domain",
    "factor": "factor polarity",
    "phase": "phase",
    "topic": "topic (extra)",
}
TARGETS = {"cmo_role": 0.75, "learning_domain": 0.75, "phase": 0.70}


def load_fixtures(path: Path = FIXTURES) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["fixtures"])


def is_held_out(fixture_id: str) -> bool:
    return hashlib.sha256(fixture_id.encode("utf-8")).digest()[0] % 2 == 1


def predicted_labels(codes: list[dict[str, Any]], pairs: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {scheme: set() for scheme in SCHEMES}
    for code in codes:
        role = code.get("cmo_role")
        if role in COARSE_ROLE:
            out["cmo_role"].add(COARSE_ROLE[role])
        scheme = code["scheme"]
        if scheme == "cmo":
            out["cmo_element"].add(code["code"])
        elif scheme == "learning_domain":
            out["learning_domain"].add(code["code"])
        elif scheme == "factor":
            out["factor"].add(fold_factor(code["code"], code["polarity"], pairs))
        elif scheme == "phase":
            out["phase"].add(code["code"])
        elif scheme == "topic":
            out["topic"].add(code["code"])
    return out


def gold_labels(fixture: dict[str, Any], pairs: dict[str, str]) -> dict[str, set[str]]:
    gold = {scheme: set(fixture["gold"].get(scheme, [])) for scheme in SCHEMES}
    gold["factor"] = {fold_factor(*label.split(":"), pairs) for label in gold["factor"]}
    return gold


@dataclass
class Counts:
    tp: dict[str, int] = field(default_factory=dict)
    fp: dict[str, int] = field(default_factory=dict)
    fn: dict[str, int] = field(default_factory=dict)
    fixtures: int = 0

    def add(self, gold: set[str], pred: set[str]) -> None:
        self.fixtures += 1
        for label in gold & pred:
            self.tp[label] = self.tp.get(label, 0) + 1
        for label in pred - gold:
            self.fp[label] = self.fp.get(label, 0) + 1
        for label in gold - pred:
            self.fn[label] = self.fn.get(label, 0) + 1

    def labels(self) -> list[str]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))

    def prf(self, label: str) -> tuple[float, float, float]:
        tp, fp, fn = self.tp.get(label, 0), self.fp.get(label, 0), self.fn.get(label, 0)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f

    def macro_f1(self) -> float:
        labels = self.labels()
        return sum(self.prf(lb)[2] for lb in labels) / len(labels) if labels else 0.0

    def micro(self) -> tuple[float, float, float]:
        tp, fp, fn = sum(self.tp.values()), sum(self.fp.values()), sum(self.fn.values())
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@dataclass
class Report:
    full: dict[str, Counts]
    tune: dict[str, Counts]
    held_out: dict[str, Counts]
    errors: int
    predictions: dict[str, dict[str, set[str]]]


def evaluate(fixtures: list[dict[str, Any]]) -> Report:
    codebook = load_codebook()
    assert codebook.rules is not None
    pairs = codebook.rules.factor_counterparts
    lines = [json.dumps({"id": f["id"], "role": f["role"], "text": f["text"]}) for f in fixtures]
    buffer = io.StringIO()
    errors = code_stream(lines, buffer, codebook)
    outputs = {row["id"]: row for row in map(json.loads, buffer.getvalue().splitlines())}
    full = {s: Counts() for s in SCHEMES}
    tune = {s: Counts() for s in SCHEMES}
    held = {s: Counts() for s in SCHEMES}
    predictions: dict[str, dict[str, set[str]]] = {}
    for fixture in fixtures:
        pred = predicted_labels(outputs[fixture["id"]].get("codes", []), pairs)
        predictions[fixture["id"]] = pred
        gold = gold_labels(fixture, pairs)
        half = held if is_held_out(fixture["id"]) else tune
        for scheme in fixture["scored"]:
            full[scheme].add(gold[scheme], pred[scheme])
            half[scheme].add(gold[scheme], pred[scheme])
    return Report(full, tune, held, errors, predictions)


def synthetic_sentences(n: int, seed: int = 7) -> list[str]:
    """Reflection-like sentences: cue-bearing fragments mixed with filler, deterministic."""
    rng = random.Random(seed)
    openers = ["Today", "This week", "In our session", "After we met", "Honestly", "Looking back",
               "At work", "On the ward", "Since last month", "Overall"]
    subjects = ["my mentor", "my manager", "I", "we", "the team", "my line manager", "she", "they"]
    middles = [
        "helped me see the bigger picture about how the organisation works",
        "did not support me to protect time for mentoring",
        "asked good questions and I realised I could delegate more",
        "shared her experience of managing a difficult rota",
        "was not sure it helped my confidence much",
        "cancelled our meeting because of workload",
        "feel more confident speaking up in meetings",
        "talked through options for my next career step",
        "set goals for the next three months",
        "found the workshop on emotional intelligence useful",
        "introduced me to contacts in other departments",
        "felt the sessions were coming to an end and reviewed what we achieved",
        "had a coffee and talked about the weather",
        "are making progress on the audit and the new service",
        "kept in touch informally after the programme",
    ]
    tails = ["", ", which was useful", " but it was hard", " and I will try it next week",
             ", maybe", " - not sure yet", " because of the restructure", "."]
    out = []
    for _ in range(n):
        out.append(f"{rng.choice(openers)} {rng.choice(subjects)} {rng.choice(middles)}"
                   f"{rng.choice(tails)}")
    return out


@dataclass
class Throughput:
    texts: int
    coder_s: float  # wall clock, code_text
    stream_s: float  # wall clock, code_stream (JSON in and out)
    stream_cpu_s: float  # CPU time of the same run: what a shared machine cannot inflate


def throughput(n: int) -> Throughput:
    codebook = load_codebook()
    sentences = synthetic_sentences(n)
    code_text(sentences[0], "mentee", codebook)  # compile outside the timing
    start = time.perf_counter()
    for text in sentences:
        code_text(text, "mentee", codebook)
    coder_s = time.perf_counter() - start
    lines = [json.dumps({"id": i, "role": "mentee", "text": t}) for i, t in enumerate(sentences)]
    start, cpu = time.perf_counter(), time.process_time()
    code_stream(lines, io.StringIO(), codebook)
    return Throughput(n, coder_s, time.perf_counter() - start, time.process_time() - cpu)


def _print_scheme(scheme: str, report: Report) -> None:
    counts = report.full[scheme]
    print(f"\n== {TITLES[scheme]} ({scheme}) ==")
    print(f"  {'label':<36} {'P':>5} {'R':>5} {'F1':>5}   {'tp':>3} {'fp':>3} {'fn':>3}")
    for label in counts.labels():
        p, r, f = counts.prf(label)
        print(f"  {label:<36} {p:5.2f} {r:5.2f} {f:5.2f}   {counts.tp.get(label, 0):>3} "
              f"{counts.fp.get(label, 0):>3} {counts.fn.get(label, 0):>3}")
    mp, mr, mf = counts.micro()
    print(f"  macro-F1 {counts.macro_f1():.3f}  tune {report.tune[scheme].macro_f1():.3f}  "
          f"held-out {report.held_out[scheme].macro_f1():.3f}  micro P/R/F1 "
          f"{mp:.2f}/{mr:.2f}/{mf:.2f}  (labels {len(counts.labels())}, fixtures "
          f"{counts.fixtures}: tune {report.tune[scheme].fixtures}, held-out "
          f"{report.held_out[scheme].fixtures})")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--sentences", type=int, default=20_000)
    args = parser.parse_args(list(argv) if argv is not None else None)
    fixtures = load_fixtures(args.fixtures)
    codebook = load_codebook()
    print(f"codebook version {codebook.version}, rules {codebook.rules_version}, "
          f"hash {codebook.content_hash}; {len(fixtures)} fixtures")
    report = evaluate(fixtures)
    for scheme in SCHEMES:
        _print_scheme(scheme, report)
    print("\n== summary: macro-F1 full / tune / held-out (target) ==")
    failed = False
    for scheme in SCHEMES:
        target = TARGETS.get(scheme)
        full = report.full[scheme].macro_f1()
        mark = ""
        if target is not None:
            ok = full >= target
            failed |= not ok
            mark = f"(>= {target:.2f} {'ok' if ok else 'MISSED'})"
        print(f"  {TITLES[scheme]:<18} {full:.3f} / {report.tune[scheme].macro_f1():.3f} / "
              f"{report.held_out[scheme].macro_f1():.3f} {mark}")
    tp = throughput(args.sentences)
    stream_rate = tp.texts / tp.stream_s
    print("\n== throughput (one process; 100,000 entries x 5 answers = 500,000 texts) ==")
    print(f"  code_text   {tp.texts / tp.coder_s:,.0f} texts/s  ({tp.texts} synthetic sentences "
          f"in {tp.coder_s:.2f} s)")
    print(f"  code_stream {stream_rate:,.0f} texts/s  ({tp.texts} JSON lines in "
          f"{tp.stream_s:.2f} s wall, {tp.stream_cpu_s:.2f} s CPU)")
    print(f"  500,000 answers split over 2 processes ~ {500_000 / stream_rate / 2:.1f} s wall "
          f"({500_000 / (tp.texts / tp.stream_cpu_s) / 2:.1f} s by CPU time)")
    print(f"\nabsolute: {len(fixtures)} fixtures, {report.errors} stream errors; "
          + ", ".join(f"{s} tp/fp/fn {sum(report.full[s].tp.values())}/"
                      f"{sum(report.full[s].fp.values())}/{sum(report.full[s].fn.values())}"
                      for s in SCHEMES))
    return 1 if failed or report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
