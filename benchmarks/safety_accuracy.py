"""How well the safety rule recognises risk to self, on lines it was never tuned on.

    python benchmarks/safety_accuracy.py               # --no-frozen: leave the frozen part be

Prints recall on risk lines and the false-alarm rate on near misses, with the lexicon alone and
with the semantic layer, for:

- the frozen test part (``tests/fixtures/safety/frozen_test_v4.yaml``), written by an
  independent author and never read while tuning. It is placed there only for the one
  measurement; where it is absent the script says so and goes on with the rest.
- the check part (``dev5.yaml``), written by the rule's author after the method was settled
  and never trained on: a sanity check, not an independent test.
- the development parts (``tuning.yaml``, ``dev.yaml`` … ``dev4.yaml``; ``dev2``-``dev4``
  were the first three frozen parts, each until it had been measured once), which are
  optimistic by construction. ``benchmarks/safety_train.py`` gives the honest
  leave-one-file-out figures for them.

Per-form recall and false alarms are given as counts; the lines themselves are never printed.
Also times the rule (per answer) against folding alone, measured in the same run.
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conversations.safety import assess_many, fold, semantic_available  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "safety"
TARGET_RECALL, TARGET_FALSE_ALARMS = 0.95, 0.10
FROZEN = "frozen_test_v4"
CHECK = "dev5"
TUNING = ("tuning", "dev", "dev2", "dev3", "dev4")


def lines(*names: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for name in names:
        out += yaml.safe_load((FIXTURES / f"{name}.yaml").read_text(encoding="utf-8"))["lines"]
    return out


def score(data: list[dict[str, str]], semantic: bool) -> dict[str, object]:
    verdicts = assess_many([d["text"] for d in data], semantic=semantic)
    risk = [v.risk for d, v in zip(data, verdicts, strict=True) if d["label"] == "risk"]
    safe = [v.risk for d, v in zip(data, verdicts, strict=True) if d["label"] != "risk"]
    forms: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for d, v in zip(data, verdicts, strict=True):
        forms[f"{d['label']}/{d['form']}"][0] += int(v.risk)
        forms[f"{d['label']}/{d['form']}"][1] += 1
    return {"recall": sum(risk) / len(risk), "false_alarms": sum(safe) / len(safe),
            "risk": len(risk), "near_misses": len(safe), "forms": dict(forms)}


def show(title: str, result: dict[str, object]) -> None:
    print(f"  {title:<22} recall {result['recall']:.3f}  false alarms "
          f"{result['false_alarms']:.3f}  ({result['risk']} risk, {result['near_misses']} "
          "near misses)")


def by_form(title: str, result: dict[str, object]) -> None:
    print(f"{title}: flagged / lines")
    for form, (hit, n) in sorted(result["forms"].items()):  # type: ignore[attr-defined]
        print(f"  {form:<40} {hit:>3} / {n}")


def main() -> None:
    tuning = lines(*TUNING)
    modes = [("lexicon alone", False)]
    if semantic_available():
        modes.append(("lexicon + semantic", True))
    else:
        print("semantic layer not installed: figures for the lexicon alone")
    frozen: list[dict[str, str]] = []
    if "--no-frozen" in sys.argv:
        print(f"{FROZEN} not read (--no-frozen)")
    elif (FIXTURES / f"{FROZEN}.yaml").exists():
        frozen = lines(FROZEN)
        results = {}
        print(f"FROZEN TEST PART {FROZEN} (never tuned on):")
        for title, semantic in modes:
            results[title] = score(frozen, semantic)
            show(title, results[title])
        best = results[modes[-1][0]]
        print(f"target on the frozen part: recall >= {TARGET_RECALL}, false alarms <= "
              f"{TARGET_FALSE_ALARMS}: "
              + ("met" if best["recall"] >= TARGET_RECALL
                 and best["false_alarms"] <= TARGET_FALSE_ALARMS else "NOT met"))
        by_form(f"frozen part by form ({modes[-1][0]})", best)
    else:
        print(f"no frozen test part: tests/fixtures/safety/{FROZEN}.yaml is absent (it is "
              "placed there only for the one measurement); figures below are not test "
              "figures")
    check: list[dict[str, str]] = []
    if (FIXTURES / f"{CHECK}.yaml").exists():
        check = lines(CHECK)
        print(f"check part {CHECK} (written after the method was settled, never trained on):")
        for title, semantic in modes:
            result = score(check, semantic)
            show(title, result)
        by_form(f"check part by form ({modes[-1][0]})", result)
    print("development parts (tuned on, optimistic):")
    for title, semantic in modes:
        show(title, score(tuning, semantic))

    texts = [d["text"] for d in frozen + check + tuning]
    start = time.perf_counter()
    for text in texts:
        fold(text)
    folding = (time.perf_counter() - start) / len(texts)
    for title, semantic in modes:
        start = time.perf_counter()
        for text in texts:
            assess_many([text], semantic=semantic)
        per = (time.perf_counter() - start) / len(texts)
        print(f"speed, {title}: {per * 1e3:.2f} ms an answer, one at a time as the chat "
              f"judges ({per / folding:.1f}x folding alone, {folding * 1e6:.0f} µs)")


if __name__ == "__main__":
    main()
