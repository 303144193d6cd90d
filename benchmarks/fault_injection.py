"""Fault injection at the Bot API while people reflect: the bot keeps serving everyone.

The stand-in answers a share of all calls (getUpdates included) with 429 + retry_after,
500, 502, slow answers or dropped connections, and two people have blocked the bot (403
on every send to them). Everyone else must finish, and no acknowledged answer may be lost.

    python benchmarks/fault_injection.py [--people 20] [--rate 0.05]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.crash import faults, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--kills", type=int, default=0)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    r = run(args.kills, args.people, args.seed, faults=faults(args.rate), blocked=2)
    print(f"people served: {r.people} (+2 who blocked the bot)   finished: {r.finished}")
    print(f"faults injected: {r.faults_injected}   kills: {r.kills}")
    print(
        f"answers acknowledged: {r.acknowledged}   lost: {r.lost}   "
        f"integrity_check: {r.integrity}   wall time: {r.seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
