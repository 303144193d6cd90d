"""Export writer throughput: a synthetic 100,000-entry bundle to CSV, JSONL and QDPX.

Goal (DESIGN section 7, brief): all three formats well under 30 s on 2 cores. The bundle is
built in memory (no database), about five answers and two coded segments per entry, with
multi-line and non-ASCII text so escaping and newline handling do real work.

    .venv/bin/python benchmarks/export_writers.py [n_entries]

Prints wall and CPU seconds and entries/s per format written one after another, then
``write_all`` in one process (the writers alone; ``benchmarks/export_scale.py`` measures the
command, which shares the entries among worker processes). The last line holds the ratio to the
30 s budget and the absolutes.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from reports.codebook import Codebook, parse_codebook
from reports.export import refi, tabular, write_all
from reports.export.model import (
    Case,
    CodedSegment,
    ExportAnswer,
    ExportBundle,
    ExportEntry,
    segments_by_entry,
)

BUDGET_S = 30.0

_STEPS = [
    ("grow_goal", "GROW_GOAL", "What did you want from today's session?"),
    ("grow_reality", "GROW_REALITY", "Where are things now?"),
    ("grow_options", "GROW_OPTIONS", "What options did you explore?"),
    ("grow_will", "GROW_WILL", "What will you do next, and by when?"),
]
_PHRASES = [
    "My mentor listened and asked good questions about the rota.",
    "I felt more confident raising it with my line manager afterwards.",
    "We didn't have protected time, so it was rushed — again.",
    "She shared how she handled a similar situation on the ward.",
    "I'm not sure it helped, but writing it down did.",
    "Next step: draft the business case, \"properly\" this time, by Friday.",
    "Time constraints are the main thing getting in the way 😕",
    "=SUM(A1:A2) is what I'd write if this were a spreadsheet",
]
_CODES = ["O_AGENCY", "M_SHARING_EXPERIENCE", "HIN_TIME_CONSTRAINTS", "R_REFLECTION",
          "C_DYAD_TRUST", "FAC_LINE_MGMT_SUPPORT"]


def _codebook() -> Codebook:
    # The canonical ids only: the writers need labels and GUIDs, not the coding rules.
    text = resources.files("reports").joinpath("codebook.yaml").read_text(encoding="utf-8")
    return parse_codebook(text)


def synthetic_bundle(n: int, codebook: Codebook, seed: int = 7) -> ExportBundle:
    rng = random.Random(seed)
    entries: list[ExportEntry] = []
    segments: list[CodedSegment] = []
    n_people = max(1, n // 25)
    for i in range(n):
        person = f"P{i % n_people:06d}"
        answers = []
        for step_id, framework, prompt in _STEPS:
            text = " ".join(rng.choice(_PHRASES) for _ in range(rng.randint(1, 3)))
            if rng.random() < 0.2:
                text = text.replace(". ", ".\r\n", 1)
            answers.append(ExportAnswer(step_id, framework, prompt, "text", text, (), None))
        answers.append(ExportAnswer("confidence", None, "How confident do you feel (0-10)?",
                                    "scale", None, (), rng.randint(0, 10)))
        entry_id = f"E{i:07d}"
        for _ in range(2):
            a = answers[rng.randrange(4)]
            size = len(a.text or "")
            start = rng.randrange(max(1, size // 2))
            segments.append(CodedSegment(entry_id, a.step_id, start, min(size, start + 30),
                                         rng.choice(_CODES), "rules", 0.7))
        entries.append(ExportEntry(
            entry_id, person, f"D{(i % n_people) // 2:05d}", rng.choice(["mentee", "mentor"]),
            "grow", 2, "2024.1", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", i % 300,
            "research_export", tuple(answers)))
    cases = tuple(Case(f"P{p:06d}", f"D{p // 2:05d}", "mentee" if p % 2 else "mentor",
                       {"phase": "PH_PROGRESSION", "cohort": f"C{p % 4}"})
                  for p in range(n_people))
    return ExportBundle("bench", "mentorbot benchmark", codebook.version,
                        codebook.content_hash, "shifted", tuple(entries), tuple(segments), cases)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    codebook = _codebook()
    t0 = time.perf_counter()
    bundle = synthetic_bundle(n, codebook)
    build = time.perf_counter() - t0
    n_answers = sum(len(e.answers) for e in bundle.entries)
    print(f"bundle: {n} entries, {n_answers} answers, {len(bundle.segments)} segments "
          f"(built in {build:.1f} s, not counted)")

    # Wall time and this process's CPU time: on a shared machine the wall clock also counts
    # other people's processes, the CPU time does not.
    timings: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name, run in [
            ("check", lambda: segments_by_entry(bundle)),  # shared by all writers, cached
            ("csv", lambda: tabular.write_csv(bundle, out)),
            ("jsonl", lambda: tabular.write_jsonl(bundle, out)),
            ("dictionary", lambda: tabular.write_data_dictionary(bundle, out)),
            ("qdpx", lambda: refi.write_qdpx(bundle, codebook, out / "project.qdpx")),
        ]:
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            timings[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        write_all(bundle, codebook, tmp)
        together, together_cpu = time.perf_counter() - wall, time.process_time() - cpu

    for name, (seconds, cpu_s) in timings.items():
        print(f"{name:>10}: {seconds:6.2f} s wall {cpu_s:6.2f} s cpu "
              f"{n / seconds:>10,.0f} entries/s")
    print("files: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(sizes.items())))
    sequential = sum(w for w, _ in timings.values())
    sequential_cpu = sum(c for _, c in timings.values())
    print(f"one after another: {sequential:.2f} s wall, {sequential_cpu:.2f} s cpu")
    print(f"write_all: {together:.2f} s wall, {together_cpu:.2f} s cpu "
          f"(ratio {together / sequential:.2f} of one after another: facts worked out once)")
    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"ratio {together / BUDGET_S:.2f} of the {BUDGET_S:.0f} s budget in one process; "
          f"{n} entries, {together:.2f} s wall ({n / together:,.0f} entries/s)")

if __name__ == "__main__":
    main()
