"""Benchmark one run over many small accounts: requests per account-stream, wall, log lines.

    uv run python -m benchmarks.accounts                  # 100 and 1 000 accounts, 0 and 100 ms
    uv run python -m benchmarks.accounts --quick          # 20 and 100 accounts, 0 and 20 ms
    uv run python -m benchmarks.accounts --accounts 300 --start-date with without \\
        --previous DIR                                    # first runs, two checkouts in turn
    uv run python -m benchmarks.accounts --reconcile      # 1 000 accounts, 0 and 100 ms
    uv run python -m benchmarks.accounts --reconcile --quick   # 100 accounts, 0 and 20 ms

Each account holds 30 records (10 per stream), so every account's stream is one page: a
first run is all first pages, the case the prefetch of partitions (prefetch.py) exists
for, and its ideal is one request per account-stream. The tap runs as a user runs it
(``python -m tap_maesn_qonto --config cfg.json``) against an emulator in another process,
with the default ``max_concurrency`` (8). Per run:

* requests per account-stream: requests the emulator served / (accounts x 3 streams);
* limit: ``ceil(requests / max_concurrency) * latency``, the time those requests spend
  waiting alone (ideal: the same with one request per account-stream);
* log lines per account: the tap's stderr lines / accounts (default log level);
* state bytes per account: the final STATE message's JSON size / accounts.

``--start-date without`` leaves ``start_date`` out of the config: each partition reads
its whole list. ``--reconcile`` measures the reconcile job of orchestration/dagster (an
unsharded run over every account with ``reconcile_interval_days: 0``): from the state of
a first run (read at 0 ms, not measured, by each checkout for itself), an incremental run
(what the shards' runs cost together) and a reconcile run (every account read whole,
then ACTIVATE_VERSION), each at every latency. With ``--previous DIR`` that checkout's
tap (its own ``.venv``) runs each measurement right after this one's, on the same
emulator. Timings are for reading, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import measure
from benchmarks.measure import Checkout, EmulatorProcess, Report
from tap_maesn_qonto.emulator import many_accounts

PER_STREAM = 10
STREAMS = ("invoices", "bills", "booking_proposals")
CONCURRENCY = measure.DEFAULT_CONCURRENCY
TARGET_REQUESTS_PER_ACCOUNT_STREAM = 1.1


@dataclass
class AccountsRow:
    """One tap run over every account."""

    mode: str  # first, incremental or reconcile
    checkout: str
    accounts: int
    latency_ms: float
    start_date: bool
    records: int
    activations: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    requests: int
    stderr_lines: int
    state_bytes: int

    @property
    def account_streams(self) -> int:
        return self.accounts * len(STREAMS)

    @property
    def requests_per_account_stream(self) -> float:
        return self.requests / self.account_streams

    @property
    def limit_s(self) -> float:
        return math.ceil(self.requests / CONCURRENCY) * self.latency_ms / 1000

    @property
    def ideal_s(self) -> float:
        return math.ceil(self.account_streams / CONCURRENCY) * self.latency_ms / 1000

    @property
    def lines_per_account(self) -> float:
        return self.stderr_lines / self.accounts


def config_for(emulator: EmulatorProcess, mode: str, *, start_date: bool) -> dict[str, object]:
    keys = list(many_accounts(emulator.accounts or 0))
    config = measure.tap_config(
        emulator.url,
        CONCURRENCY,
        start_date=measure.START_DATE if start_date else None,
        account_keys=keys,
    )
    del config["page_size"]  # the tap's default, as a user runs it
    if mode == "reconcile":
        config["reconcile_interval_days"] = 0
    elif mode == "incremental":
        config["reconcile_interval_days"] = -1  # never, whatever the default
    return config


def run(
    emulator: EmulatorProcess,
    checkout: Checkout,
    latency_ms: float,
    workdir: Path,
    *,
    mode: str = "first",
    start_date: bool = True,
    state: Path | None = None,
) -> tuple[AccountsRow, Path]:
    """One tap run: ``first`` (no state), ``incremental`` or ``reconcile`` (from ``state``).

    Returns its row and where its final state was written.
    """
    emulator.set_latency(latency_ms)
    accounts = emulator.accounts or 0
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config_for(emulator, mode, start_date=start_date)))
    out_path, err_path = workdir / "out.jsonl", workdir / "err.log"
    before = emulator.request_count()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        usage = measure.run_measured(checkout.tap_argv(config_path, state), err, out, checkout.root)
    served = emulator.request_count() - before
    stderr_text = err_path.read_text(errors="replace")
    activations, last_state, records_out = 0, "", 0
    parents = tuple(f'{{"type":"RECORD","stream":"{stream}"' for stream in STREAMS)
    with out_path.open() as lines:
        for line in lines:
            if line.startswith(parents):
                records_out += 1
            elif line.startswith('{"type":"STATE"'):
                last_state = line
            elif line.startswith('{"type":"ACTIVATE_VERSION"'):
                activations += 1
    whole = mode != "incremental"
    if (
        usage.exit_code != 0
        or not last_state
        or (whole and records_out != emulator.records)
        or (activations > 0) != (mode == "reconcile")
    ):
        raise measure.BenchmarkError(
            f"{mode}, {accounts} accounts at {latency_ms} ms ({checkout.label}): exit "
            f"{usage.exit_code}, {records_out} of {emulator.records} "
            f"records, {activations} ACTIVATE_VERSION:\n"
            f"{stderr_text[-2000:]}"
        )
    final_state = json.loads(last_state)["value"]
    state_path = workdir / f"state-{mode}.json"
    state_path.write_text(json.dumps(final_state))
    row = AccountsRow(
        mode=mode,
        checkout=checkout.label,
        accounts=accounts,
        latency_ms=latency_ms,
        start_date=start_date,
        records=records_out,
        activations=activations,
        wall_s=usage.wall_s,
        cpu_s=usage.cpu_s,
        peak_rss_mb=usage.peak_rss_mb,
        requests=served,
        stderr_lines=stderr_text.count("\n"),
        state_bytes=len(json.dumps(final_state, separators=(",", ":"))),
    )
    return row, state_path


# --------------------------------------------------------------------------- first runs


FIRST_COLUMNS = (
    "accounts",
    "start_date",
    "latency ms",
    "checkout",
    "records",
    "requests",
    "requests/account-stream",
    "wall s",
    "limit s",
    "wall/limit",
    "ideal s",
    "wall/ideal",
    "CPU s",
    "peak RSS MB",
    "log lines",
    "log lines/account",
    "state B/account",
)


def first_runs(
    sizes: Sequence[int],
    latencies_ms: Sequence[float],
    start_dates: Sequence[bool],
    checkouts: Sequence[Checkout],
    runs: int = 1,
) -> list[AccountsRow]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="tap-accounts-") as tmp:
        workdir = Path(tmp)
        for accounts in sizes:
            measure.note(f"starting an emulator with {accounts} accounts")
            counts = dict.fromkeys(("invoices", "bills", "bookingProposals"), PER_STREAM)
            with EmulatorProcess(workdir, counts=counts, accounts=accounts) as emulator:
                for latency_ms in latencies_ms:
                    for start_date in start_dates:
                        for round_ in range(1, runs + 1):
                            for checkout in checkouts:
                                measure.note(
                                    f"first run, {accounts} accounts, {latency_ms:g} ms, "
                                    f"start_date {'set' if start_date else 'unset'}, "
                                    f"{checkout.label}, round {round_} of {runs}"
                                )
                                row, _ = run(
                                    emulator, checkout, latency_ms, workdir, start_date=start_date
                                )
                                rows.append(row)
    return rows


def format_first_runs(rows: Sequence[AccountsRow]) -> str:
    cells = [
        [
            f"{row.accounts}",
            "set" if row.start_date else "unset",
            f"{row.latency_ms:g}",
            row.checkout,
            f"{row.records}",
            f"{row.requests}",
            f"{row.requests_per_account_stream:.3f}",
            f"{row.wall_s:.2f}",
            f"{row.limit_s:.2f}",
            f"{row.wall_s / row.limit_s:.2f}" if row.limit_s else "-",
            f"{row.ideal_s:.2f}",
            f"{row.wall_s / row.ideal_s:.2f}" if row.ideal_s else "-",
            f"{row.cpu_s:.2f}",
            f"{row.peak_rss_mb:.1f}",
            f"{row.stderr_lines}",
            f"{row.lines_per_account:.2f}",
            f"{row.state_bytes / row.accounts:.0f}",
        ]
        for row in rows
    ]
    lines = [
        f"First runs (no state): {PER_STREAM} records per stream and account (one page each), "
        f"max_concurrency {CONCURRENCY}; ideal = ceil(accounts x 3 / {CONCURRENCY}) x latency.",
        "",
        measure.render_table(FIRST_COLUMNS, cells),
        "",
        f"Target: a first run of one-page accounts in <= {TARGET_REQUESTS_PER_ACCOUNT_STREAM} "
        "requests per account-stream:",
    ]
    for row in rows:
        met = row.requests_per_account_stream <= TARGET_REQUESTS_PER_ACCOUNT_STREAM
        lines.append(
            f"  {row.checkout}, {row.accounts} accounts, start_date "
            f"{'set' if row.start_date else 'unset'}, {row.latency_ms:g} ms: "
            f"{row.requests_per_account_stream:.3f} -> {'met' if met else 'NOT MET'}"
        )
    labels = list(dict.fromkeys(row.checkout for row in rows))
    sizes = sorted({row.accounts for row in rows})
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        lines.append(f"Peak RSS {large}/{small} accounts:")
        for label in labels:
            for latency_ms in sorted({row.latency_ms for row in rows}):
                rss = {
                    r.accounts: r.peak_rss_mb
                    for r in rows
                    if r.latency_ms == latency_ms and r.checkout == label
                }
                if small in rss and large in rss:
                    lines.append(f"  {label}, {latency_ms:g} ms: {rss[large] / rss[small]:.2f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- reconcile


RECONCILE_COLUMNS = (
    "run",
    "checkout",
    "latency ms",
    "records",
    "ACTIVATE_VERSION",
    "requests",
    "requests/account",
    "wall s",
    "limit s",
    "wall/limit",
    "CPU s",
    "peak RSS MB",
    "log lines",
)


def reconcile_runs(
    accounts: int, latencies_ms: Sequence[float], checkouts: Sequence[Checkout]
) -> list[AccountsRow]:
    """From each checkout's own first-run state: an incremental and a reconcile run."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="tap-accounts-") as tmp:
        workdir = Path(tmp)
        measure.note(f"starting an emulator with {accounts} accounts")
        counts = dict.fromkeys(("invoices", "bills", "bookingProposals"), PER_STREAM)
        with EmulatorProcess(workdir, counts=counts, accounts=accounts) as emulator:
            states = {}
            for index, checkout in enumerate(checkouts):
                measure.note(f"the first run of {checkout.label} (its state is its runs')")
                _, state = run(emulator, checkout, 0, workdir)
                states[checkout.label] = state.rename(workdir / f"state-before-{index}.json")
            for latency_ms in latencies_ms:
                for mode in ("incremental", "reconcile"):
                    for checkout in checkouts:
                        measure.note(
                            f"{mode}, {accounts} accounts, {latency_ms:g} ms, {checkout.label}"
                        )
                        row, _ = run(
                            emulator,
                            checkout,
                            latency_ms,
                            workdir,
                            mode=mode,
                            state=states[checkout.label],
                        )
                        rows.append(row)
    return rows


def format_reconcile(rows: Sequence[AccountsRow]) -> str:
    accounts = rows[0].accounts if rows else 0
    cells = [
        [
            row.mode,
            row.checkout,
            f"{row.latency_ms:g}",
            f"{row.records}",
            f"{row.activations}",
            f"{row.requests}",
            f"{row.requests / row.accounts:.2f}",
            f"{row.wall_s:.2f}",
            f"{row.limit_s:.2f}",
            f"{row.wall_s / row.limit_s:.2f}" if row.limit_s else "-",
            f"{row.cpu_s:.2f}",
            f"{row.peak_rss_mb:.1f}",
            f"{row.stderr_lines}",
        ]
        for row in rows
    ]
    return "\n".join(
        [
            f"{accounts} accounts x {PER_STREAM * 3} records, max_concurrency {CONCURRENCY}, "
            "each checkout from the state of its own first run (start_date set); "
            "limit = ceil(requests / max_concurrency) x latency.",
            "",
            measure.render_table(RECONCILE_COLUMNS, cells),
        ]
    )


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.accounts", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer accounts, 0 and 20 ms")
    parser.add_argument("--accounts", type=int, nargs="+", help="account counts")
    parser.add_argument("--latencies", type=float, nargs="+", help="latencies in ms")
    parser.add_argument(
        "--start-date",
        nargs="+",
        choices=("with", "without"),
        default=["with"],
        help="first runs with start_date set and/or left out (default: with)",
    )
    parser.add_argument(
        "--reconcile", action="store_true", help="the reconcile job's cost (see above)"
    )
    parser.add_argument(
        "--previous",
        type=Path,
        help="another checkout (git worktree add DIR REV; uv sync --locked in DIR), run in turn",
    )
    parser.add_argument("--runs", type=int, default=1, help="rounds of every first run")
    measure.add_report_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    checkouts = measure.checkouts(args.previous)
    if args.reconcile:
        accounts, latencies = (100, (0.0, 20.0)) if args.quick else (1000, (0.0, 100.0))
        report = Report.from_args(
            args, "accounts-reconcile", "benchmarks.accounts", argv, checkouts
        )
        rows = reconcile_runs(
            (args.accounts or [accounts])[0], args.latencies or latencies, checkouts
        )
        report.finish(format_reconcile(rows))
        return 0
    sizes, latencies = ((20, 100), (0.0, 20.0)) if args.quick else ((100, 1000), (0.0, 100.0))
    report = Report.from_args(args, "accounts", "benchmarks.accounts", argv, checkouts)
    rows = first_runs(
        args.accounts or sizes,
        args.latencies or latencies,
        [choice == "with" for choice in args.start_date],
        checkouts,
        args.runs,
    )
    report.finish(format_first_runs(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
