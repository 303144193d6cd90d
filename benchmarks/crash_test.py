"""Crash safety: SIGKILL `mentorbot run` at random moments while people reflect
(the runner is tests/support/crash.py; CI runs a smaller count through tests/test_crash.py).

    python benchmarks/crash_test.py --kills 25 --people 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.crash import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    r = run(args.kills, args.people, args.seed)
    print(f"kills survived: {r.kills}   people: {r.people}   finished: {r.finished}")
    print(
        f"answers acknowledged: {r.acknowledged}   lost: {r.lost}   "
        f"resumed at the wrong step: {r.resumed_wrong}   integrity_check: {r.integrity}"
    )
    print(f"wall time: {r.seconds:.1f} s")


if __name__ == "__main__":
    main()
