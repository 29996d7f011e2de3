"""The reliability report: every scenario of tests/e2e/test_reliability.py, run once, one
row each, printed and written to ``docs/reports/reliability-<date>.md`` (with the commit,
the machine and its load; docs/reliability.md links the reports).

    uv run --locked python -m tests.e2e.reliability          # full: >= 20 000 records each
    uv run --locked python -m tests.e2e.reliability --quick  # reduced, as the tests run them
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from benchmarks.measure import REPORTS_DIR, commit_of, machine
from tests.e2e.test_reliability import QUICK_SIZE, Outcome, Scenarios
from tests.support.tap import REPO_ROOT

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


def _load() -> str:
    return ", ".join(f"{figure:.2f}" for figure in os.getloadavg())


def write_report(table: str, command: str, started: dt.datetime, seconds: float, load: str) -> Path:
    """The report under docs/reports/: reliability-<date>.md (-2, -3... when taken)."""
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"reliability-{started:%Y-%m-%d}"
    path, number = REPORTS_DIR / f"{stem}.md", 1
    while path.exists():
        number += 1
        path = REPORTS_DIR / f"{stem}-{number}.md"
    path.write_text(
        f"# Reliability report, {started:%Y-%m-%d}\n\n"
        f"- When: {started:%Y-%m-%d %H:%M} UTC, {seconds:.0f} s\n"
        f"- Commit: {commit_of(REPO_ROOT)}\n"
        f"- Machine: {machine()}\n"
        f"- Load average (1, 5, 15 min): {load} before, {_load()} after\n"
        f"- Command: `{command}`\n\n"
        f"```\n{table.rstrip()}\n```\n",
        encoding="utf-8",
    )
    return path


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
    parser.add_argument("--no-report", action="store_true", help="print only, write no report")
    args = parser.parse_args()
    os.environ.setdefault("TAP_MAESN_QONTO_LOGLEVEL", "info")
    started, load, clock = dt.datetime.now(dt.UTC), _load(), time.monotonic()
    outcomes = run_report(quick=args.quick, seed=args.seed)
    seconds = time.monotonic() - clock
    with redirect_stdout(io.StringIO()) as table:
        print_table(outcomes)
        print(f"\n{len(outcomes)} scenarios in {seconds:.0f} s")
    print(table.getvalue(), end="")
    if not args.no_report:
        command = "uv run --locked python -m tests.e2e.reliability " + " ".join(sys.argv[1:])
        path = write_report(table.getvalue(), command.strip(), started, seconds, load)
        print(f"(report written to {path})")
    return 0 if all(o.result == "PASS" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
