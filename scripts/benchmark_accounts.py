"""Benchmark one run over many connected accounts: wall against the limit, RSS, state size.

    uv run python scripts/benchmark_accounts.py              # 100 and 1 000 accounts, 0 and 100 ms
    uv run python scripts/benchmark_accounts.py --quick      # 20 and 100 accounts, 0 and 20 ms
    uv run python scripts/benchmark_accounts.py --reconcile  # 1 000 accounts, 0 and 100 ms
    uv run python scripts/benchmark_accounts.py --reconcile --quick   # 100 accounts, 0 and 20 ms

Each account holds ~30 records (10 per stream), so every account's stream is one
page: the run is all first pages, the case the prefetch of partitions exists for.
The tap runs as a user runs it (``python -m tap_maesn_qonto --config cfg.json``)
against an emulator in another process, with the default ``max_concurrency`` (8).

* limit: ``ceil(requests / max_concurrency) * latency``, the time spent waiting alone;
* state bytes per account: the final STATE message's JSON size / accounts.

``--reconcile`` measures the reconcile job of orchestration/dagster (an unsharded run over
every account with ``reconcile_interval_days: 0``): from the state of a first run (read at
0 ms, not measured), an incremental run (what the shards' runs cost together) and a
reconcile run (every account read whole, then ACTIVATE_VERSION), each at every latency.

Timings are for reading, never asserted. The first lines say when, at which commit and on
which machine they were taken.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS.parent))
sys.path.insert(0, str(SCRIPTS))

import benchmark  # noqa: E402  (the single-account benchmark's measuring tools)

from tap_maesn_qonto.emulator import many_accounts  # noqa: E402

PER_STREAM = 10
CONCURRENCY = benchmark.DEFAULT_CONCURRENCY


class AccountsEmulator:
    """The emulator in its own process, ``accounts`` accounts of ~30 records each."""

    def __init__(self, accounts: int, workdir: Path) -> None:
        self.accounts = accounts
        self.records = accounts * PER_STREAM * 3
        self.url_file = workdir / f"emulator-{accounts}.url"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> AccountsEmulator:
        self.url_file.unlink(missing_ok=True)
        argv = [
            *(sys.executable, "-m", "tap_maesn_qonto.emulator", "--port", "0"),
            *("--url-file", str(self.url_file), "--many-accounts", str(self.accounts)),
            *("--invoices", str(PER_STREAM), "--bills", str(PER_STREAM)),
            *("--booking-proposals", str(PER_STREAM)),
        ]
        self.process = subprocess.Popen(
            argv, cwd=SCRIPTS.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 300
        while not self.url_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the emulator did not start")
            time.sleep(0.05)
        self.url = self.url_file.read_text().strip()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def admin(self, name: str, payload: dict | None = None) -> dict:
        url = f"{self.url}/_emulator/{name}"
        response = (
            requests.get(url, timeout=60)
            if payload is None
            else requests.post(url, json=payload, timeout=60)
        )
        response.raise_for_status()
        return response.json()

    def requests_served(self) -> int:
        return int(self.admin("stats")["requests"])


def machine() -> str:
    """When, at which commit and where: the lines printed above the figures."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    memory = next(
        (
            f"{int(line.split()[1]) / 1024**2:.0f} GiB"
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        ),
        "?",
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=SCRIPTS.parent,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=SCRIPTS.parent,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    commit = f"{commit or '?'}{' + uncommitted changes' if dirty else ''}"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}; "
        f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs, {memory}; "
        f"Python {platform.python_version()}; load average {load}"
    )


def run(
    emulator: AccountsEmulator,
    latency_ms: float,
    workdir: Path,
    *,
    mode: str = "first",
    state: Path | None = None,
) -> dict[str, Any]:
    """One tap run: ``first`` (no state), ``incremental`` or ``reconcile`` (from ``state``)."""
    emulator.admin("configure", {"latency_ms": latency_ms})
    keys = many_accounts(emulator.accounts)
    config = {
        "api_key": benchmark.API_KEY,
        "accounts": [
            {"label": f"company-{i:04d}", "account_key": key} for i, key in enumerate(keys)
        ],
        "api_url": emulator.url,
        "start_date": benchmark.START_DATE,
        "max_concurrency": CONCURRENCY,
    }
    if mode == "reconcile":
        config["reconcile_interval_days"] = 0
    elif mode == "incremental":
        config["reconcile_interval_days"] = -1  # never, whatever the default
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    argv = [sys.executable, "-m", "tap_maesn_qonto", "--config", str(config_path)]
    if state is not None:
        argv += ["--state", str(state)]
    out_path, err_path = workdir / "out.jsonl", workdir / "err.log"
    before = emulator.requests_served()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        usage = benchmark.run_measured(argv, err, out)
    served = emulator.requests_served() - before
    reported = benchmark.records_reported(err_path.read_text(errors="replace"))
    activations, last_state = 0, ""
    with out_path.open() as lines:
        for line in lines:
            if line.startswith('{"type":"STATE"'):
                last_state = line
            elif line.startswith('{"type":"ACTIVATE_VERSION"'):
                activations += 1
    whole = mode != "incremental"
    if (
        usage.exit_code != 0
        or (whole and reported != emulator.records)
        or (activations > 0) != (mode == "reconcile")
    ):
        raise SystemExit(
            f"{mode}, {emulator.accounts} accounts at {latency_ms} ms: exit {usage.exit_code}, "
            f"{reported} of {emulator.records} records, {activations} ACTIVATE_VERSION:\n"
            f"{err_path.read_text()[-2000:]}"
        )
    (workdir / f"state-{mode}.json").write_text(json.dumps(json.loads(last_state)["value"]))
    state_bytes = len(json.dumps(json.loads(last_state)["value"], separators=(",", ":")))
    limit = math.ceil(served / CONCURRENCY) * latency_ms / 1000
    return {
        "mode": mode,
        "accounts": emulator.accounts,
        "latency_ms": latency_ms,
        "records": reported,
        "activations": activations,
        "wall_s": usage.wall_s,
        "cpu_s": usage.cpu_s,
        "peak_rss_mb": usage.peak_rss_mb,
        "requests": served,
        "limit_s": limit,
        "state_bytes_per_account": state_bytes / emulator.accounts,
    }


def reconcile_main(quick: bool) -> int:
    """The reconcile job's cost beside the incremental runs', per account count and latency."""
    accounts, latencies = (100, (0, 20)) if quick else (1000, (0, 100))
    print(machine())
    rows = []
    with tempfile.TemporaryDirectory(prefix="tap-accounts-") as tmp:
        workdir = Path(tmp)
        print(f"... starting an emulator with {accounts} accounts", file=sys.stderr)
        with AccountsEmulator(accounts, workdir) as emulator:
            print("... the first run (its state is every measured run's)", file=sys.stderr)
            run(emulator, 0, workdir)
            first = workdir / "state-before.json"
            (workdir / "state-first.json").rename(first)
            for latency_ms in latencies:
                for mode in ("incremental", "reconcile"):
                    print(f"... {mode}, {accounts} accounts, {latency_ms} ms", file=sys.stderr)
                    rows.append(run(emulator, latency_ms, workdir, mode=mode, state=first))
    print(
        f"{accounts} accounts x {PER_STREAM * 3} records, max_concurrency {CONCURRENCY}, "
        "from the state of a first run"
    )
    print(
        "| run | latency ms | records | ACTIVATE_VERSION | requests | requests/account "
        "| wall s | limit s | wall/limit | CPU s | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = f"{row['wall_s'] / row['limit_s']:.2f}" if row["limit_s"] else "-"
        print(
            f"| {row['mode']} | {row['latency_ms']:g} | {row['records']} | "
            f"{row['activations']} | {row['requests']} | "
            f"{row['requests'] / row['accounts']:.2f} | {row['wall_s']:.2f} | "
            f"{row['limit_s']:.2f} | {ratio} | {row['cpu_s']:.2f} | {row['peak_rss_mb']:.1f} |"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 and 100 accounts, 0 and 20 ms")
    parser.add_argument(
        "--reconcile", action="store_true", help="the reconcile job's cost (see above)"
    )
    args = parser.parse_args()
    if args.reconcile:
        return reconcile_main(args.quick)
    sizes, latencies = ((20, 100), (0, 20)) if args.quick else ((100, 1000), (0, 100))
    print(machine())
    rows = []
    with tempfile.TemporaryDirectory(prefix="tap-accounts-") as tmp:
        for accounts in sizes:
            print(f"... starting an emulator with {accounts} accounts", file=sys.stderr)
            with AccountsEmulator(accounts, Path(tmp)) as emulator:
                for latency_ms in latencies:
                    print(f"... {accounts} accounts, {latency_ms} ms", file=sys.stderr)
                    rows.append(run(emulator, latency_ms, Path(tmp)))
    print(
        "| accounts | latency ms | records | wall s | CPU s | peak RSS MB | requests "
        "| limit s | wall/limit | state B/account |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = f"{row['wall_s'] / row['limit_s']:.2f}" if row["limit_s"] else "-"
        print(
            f"| {row['accounts']} | {row['latency_ms']:g} | {row['records']} | "
            f"{row['wall_s']:.2f} | {row['cpu_s']:.2f} | {row['peak_rss_mb']:.1f} | "
            f"{row['requests']} | {row['limit_s']:.2f} | {ratio} | "
            f"{row['state_bytes_per_account']:.0f} |"
        )
    small, large = sizes
    for latency_ms in latencies:
        rss = {r["accounts"]: r["peak_rss_mb"] for r in rows if r["latency_ms"] == latency_ms}
        print(
            f"peak RSS {large}/{small} accounts at {latency_ms:g} ms: {rss[large] / rss[small]:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
