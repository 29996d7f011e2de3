"""The reliability report's table (the README shows the full one): every scenario of
tests/e2e/test_reliability.py, run once, one row each.

    uv run --locked python -m tests.e2e.reliability          # full: >= 20 000 records each
    uv run --locked python -m tests.e2e.reliability --quick  # reduced, as the tests run them
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.test_reliability import QUICK_SIZE, Outcome, Scenarios

FULL_SIZE = 20000


def print_table(outcomes: list[Outcome]) -> None:
    header = (
        "scenario",
        "records expected",
        "distinct received",
        "lost",
        "duplicates",
        "stale",
        "retries",
        "result",
    )
    rows = [
        (o.scenario, o.expected, o.received, o.lost, o.duplicates, o.stale, o.retries, o.result)
        for o in outcomes
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    line = " | ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))
    for outcome in outcomes:
        if outcome.note:
            print(f"  {outcome.scenario}: {outcome.note}")


def run_report(*, quick: bool, seed: int = 7) -> list[Outcome]:
    size = QUICK_SIZE if quick else FULL_SIZE
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = Scenarios(size, Path(tmp), random.Random(seed))  # noqa: S311
        return [scenario() for scenario in scenarios.all().values()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small data sizes (the test tier's run)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for the random kill points")
    args = parser.parse_args()
    os.environ.setdefault("TAP_MAESN_QONTO_LOGLEVEL", "info")
    started = time.monotonic()
    outcomes = run_report(quick=args.quick, seed=args.seed)
    print_table(outcomes)
    print(f"\n{len(outcomes)} scenarios in {time.monotonic() - started:.0f} s")
    return 0 if all(o.result == "PASS" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
