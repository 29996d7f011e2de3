"""Run every reliability scenario against the Maesn emulator and print one table.

    uv run python scripts/reliability_report.py          # full: >= 20 000 records per scenario
    uv run python scripts/reliability_report.py --quick  # reduced, as the test suite runs it

Each scenario runs the real tap CLI (``python -m tap_maesn_qonto``) as a subprocess
against an in-process emulator, possibly several times (a follow-up incremental run,
a resume after SIGKILL or after a failure), and compares the union of what it emitted
with the emulator's truth at the end:

* expected   records that exist at the end (all three streams)
* received   distinct ids emitted over all runs of the scenario
* lost       expected ids never emitted (must be 0)
* duplicates the same record version (id and updatedDate) emitted twice in one run
* retries    retries the tap reported in its per-stream summary lines
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tap_maesn_qonto.emulator import Emulator

RESOURCES = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}
RETRY_LINE = re.compile(r"; retry \d+ in ")


@dataclass
class TapRun:
    """What one tap process emitted before it ended (or was killed)."""

    records: list[tuple[str, str, str | None]] = field(
        default_factory=list
    )  # stream, id, updatedDate
    last_state: dict | None = None
    exit_code: int = 0
    retries: int = 0
    seconds: float = 0.0
    stderr: str = ""


@dataclass
class Outcome:
    scenario: str
    expected: int
    received: int
    lost: int
    duplicates: int
    retries: int
    result: str
    note: str = ""


def run_tap(
    config: dict, state: dict | None, workdir: Path, kill_after_records: int | None = None
) -> TapRun:
    """Run the tap CLI; optionally SIGKILL it after that many RECORD messages."""
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    argv = [sys.executable, "-m", "tap_maesn_qonto", "--config", str(config_path)]
    if state is not None:
        state_path = workdir / "state.json"
        state_path.write_text(json.dumps(state))
        argv += ["--state", str(state_path)]
    run = TapRun()
    started = time.monotonic()
    with (
        (workdir / "stderr.log").open("w+") as stderr,
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            message = json.loads(line)
            if message["type"] == "RECORD":
                record = message["record"]
                run.records.append((message["stream"], record["id"], record["updatedDate"]))
                if kill_after_records is not None and len(run.records) >= kill_after_records:
                    process.send_signal(signal.SIGKILL)
                    break
            elif message["type"] == "STATE":
                run.last_state = message["value"]
        process.wait()
        run.exit_code = process.returncode
        stderr.seek(0)
        run.stderr = stderr.read()
    run.seconds = time.monotonic() - started
    run.retries = len(RETRY_LINE.findall(run.stderr))
    return run


def judge(
    name: str, emulator: Emulator, runs: list[TapRun], note: str = "", ok: bool = True
) -> Outcome:
    """Compare the union of all runs with the emulator's truth at the end."""
    expected = {(s, i) for s, r in RESOURCES.items() for i in emulator.truth(r)}
    received = {(s, i) for run in runs for s, i, _ in run.records}
    duplicates = sum(n - 1 for run in runs for n in Counter(run.records).values() if n > 1)
    lost = len(expected - received)
    passed = ok and lost == 0 and duplicates == 0
    return Outcome(
        scenario=name,
        expected=len(expected),
        received=len(received & expected),
        lost=lost,
        duplicates=duplicates,
        retries=sum(run.retries for run in runs),
        result="PASS" if passed else "FAIL",
        note=note,
    )


def stop_after_burst(emulator: Emulator, requests: int) -> None:
    """Turn the emulator's automatic changes off once it has served ``requests`` lists."""

    def watch() -> None:
        while sum(emulator.stats()["list_requests"].values()) < requests:
            time.sleep(0.01)
        emulator.configure(mutate_every_requests=0)

    threading.Thread(target=watch, daemon=True).start()


def config_for(emulator: Emulator, **overrides: object) -> dict:
    return {
        "api_key": "emulator-api-key",
        "account_key": "emulator-account-qonto",
        "api_url": emulator.url,
        "start_date": "2020-01-01T00:00:00Z",
        "max_retry_seconds": 60,
        **overrides,
    }


class Scenarios:
    """Each method builds an emulator, runs the tap one or more times, returns an Outcome."""

    def __init__(self, size: int, workdir: Path, rng: random.Random) -> None:
        self.size = size
        self.workdir = workdir
        self.rng = rng

    def counts(self, total: int | None = None) -> dict[str, int]:
        total = total or self.size
        # Uneven on purpose: not multiples of the page size.
        return {
            "invoices": total // 2 + 7,
            "bills": total // 4 + 3,
            "bookingProposals": total // 4 + 1,
        }

    def clean(self) -> Outcome:
        with Emulator(counts=self.counts()) as emulator:
            run = run_tap(config_for(emulator), None, self.workdir)
            return judge("clean sync", emulator, [run], ok=run.exit_code == 0)

    def changes_while_paging(
        self, name: str, batch: dict[str, int], burst_requests: int | None = None, **knobs: object
    ) -> Outcome:
        """Records change while run 1 pages; run 2 (incremental) follows.

        With ``burst_requests`` the changes stop after that many list requests, so the
        tap's re-read pass can settle within run 1; without, they go on all run long.
        """
        with Emulator(counts=self.counts(), **knobs) as emulator:
            present_before = {(s, i) for s, r in RESOURCES.items() for i in emulator.truth(r)}
            emulator.configure(mutate_every_requests=2, mutations_per_batch=batch)
            if burst_requests is not None:
                stop_after_burst(emulator, burst_requests)
            # Small pages and little prefetch: many page boundaries for records to slide across.
            first = run_tap(
                config_for(emulator, page_size=10, max_concurrency=2), None, self.workdir
            )
            emulator.configure(mutate_every_requests=0)
            # Records changed after the first run started are the next run's to read.
            second = run_tap(config_for(emulator), first.last_state, self.workdir)
            mutations = sum(emulator.stats()["mutations"].values())
            repasses = first.stderr.count("Reading all pages again")
            unresolved = first.stderr.count("still changing after")
            still_there = {(s, i) for s, r in RESOURCES.items() for i in emulator.truth(r)}
            missed_by_run_1 = (present_before & still_there) - {(s, i) for s, i, _ in first.records}
            return judge(
                name,
                emulator,
                [first, second],
                note=(
                    f"{mutations} changes during run 1; {repasses} re-read passes, "
                    f"{unresolved} streams still drifting (bookmark held); run 1 alone "
                    f"missed {len(missed_by_run_1)} records that existed before it"
                ),
                ok=first.exit_code == second.exit_code == 0
                and (unresolved > 0 or not missed_by_run_1),
            )

    def ignored_filter_and_order(self) -> Outcome:
        with Emulator(counts=self.counts(), honor_filters=False, honor_ordering=False) as emulator:
            first = run_tap(config_for(emulator), None, self.workdir)
            for resource in RESOURCES.values():
                emulator.mutate(resource, update=5, create=3, delete=1)
            second = run_tap(config_for(emulator), first.last_state, self.workdir)
            changed_ok = len(second.records) < len(first.records) / 2
            return judge(
                "server ignores filter+order",
                emulator,
                [first, second],
                note=f"run 2 emitted {len(second.records)} (filtered client side)",
                ok=changed_ok and first.exit_code == second.exit_code == 0,
            )

    def faults(self) -> Outcome:
        with Emulator(
            counts=self.counts(max(self.size, 2000)),
            fault_rate=0.10,
            retry_after=1,
            slow_seconds=2.0,
        ) as emulator:
            run = run_tap(config_for(emulator, request_timeout=1), None, self.workdir)
            faults = sum(emulator.stats()["faults"].values())
            return judge(
                "10% faults (429/5xx/reset/slow)",
                emulator,
                [run],
                note=f"{faults} faults injected, {run.seconds:.0f} s",
                ok=run.exit_code == 0 and run.retries >= faults,
            )

    def sigkill(self, kills: int = 3) -> Outcome:
        with Emulator(counts=self.counts()) as emulator:
            runs: list[TapRun] = []
            state: dict | None = None
            total = sum(len(emulator.truth(r)) for r in RESOURCES.values())
            for _ in range(kills):
                run = run_tap(
                    config_for(emulator, max_concurrency=4),
                    state,
                    self.workdir,
                    kill_after_records=self.rng.randint(1, total),
                )
                runs.append(run)
                state = run.last_state or state
            final = run_tap(config_for(emulator), state, self.workdir)
            runs.append(final)
            return judge(
                f"SIGKILL x{kills}, resume",
                emulator,
                runs,
                note=f"killed after {', '.join(str(len(r.records)) for r in runs[:-1])} records",
                ok=final.exit_code == 0,
            )

    def never_clears(self) -> Outcome:
        with Emulator(counts=self.counts(2000)) as emulator:
            first = run_tap(config_for(emulator), None, self.workdir)  # a good run first
            emulator.configure(fail_always="503")
            config = config_for(emulator, max_retries=3, max_retry_seconds=5)
            failing = run_tap(config, first.last_state, self.workdir)
            emulator.configure(fail_always=None)
            for resource in RESOURCES.values():
                emulator.mutate(resource, update=3, create=2)
            resumed = run_tap(
                config_for(emulator), failing.last_state or first.last_state, self.workdir
            )
            gave_up = failing.exit_code != 0 and failing.seconds < 30
            return judge(
                "fault never clears, then resume",
                emulator,
                [first, failing, resumed],
                note=f"gave up after {failing.seconds:.1f} s, exit {failing.exit_code}",
                ok=gave_up and resumed.exit_code == 0,
            )

    def past_last_page(self) -> Outcome:
        counts = {"invoices": 500, "bills": 300, "bookingProposals": 100}  # multiples of 100
        with Emulator(counts=counts, pagination_meta="null", past_last_page="422") as emulator:
            run = run_tap(config_for(emulator), None, self.workdir)
            return judge("422 past last page, no totals", emulator, [run], ok=run.exit_code == 0)

    def broken_page_then_resume(self) -> Outcome:
        with Emulator(counts=self.counts(2000)) as emulator:
            emulator.fail_next("truncated", count=1, resource="invoices")
            broken = run_tap(config_for(emulator), None, self.workdir)
            resumed = run_tap(config_for(emulator), broken.last_state, self.workdir)
            return judge(
                "truncated JSON, then resume",
                emulator,
                [broken, resumed],
                note=f"first run exit {broken.exit_code}",
                ok=broken.exit_code == 1 and resumed.exit_code == 0,
            )

    def all(self) -> list[Callable[[], Outcome]]:
        return [
            self.clean,
            lambda: self.changes_while_paging(
                "burst of changes, then quiet", {"update": 3, "create": 2, "delete": 2}, 60
            ),
            lambda: self.changes_while_paging(
                "updates+creates while paging", {"update": 5, "create": 2}
            ),
            lambda: self.changes_while_paging(
                "deletes while paging", {"update": 2, "create": 1, "delete": 2}
            ),
            lambda: self.changes_while_paging(
                "changes, server ignores order",
                {"update": 3, "create": 2, "delete": 2},
                honor_ordering=False,
            ),
            self.ignored_filter_and_order,
            self.faults,
            self.sigkill,
            self.never_clears,
            self.past_last_page,
            self.broken_page_then_resume,
        ]


def print_table(outcomes: list[Outcome]) -> None:
    header = (
        "scenario",
        "records expected",
        "distinct received",
        "lost",
        "duplicates",
        "retries",
        "result",
    )
    rows = [
        (o.scenario, o.expected, o.received, o.lost, o.duplicates, o.retries, o.result)
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
    size = 1200 if quick else 20000
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = Scenarios(size, Path(tmp), random.Random(seed))
        return [scenario() for scenario in scenarios.all()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small data sizes (the test suite's run)"
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
