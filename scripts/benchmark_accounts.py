"""Benchmark one run over many connected accounts: wall against the limit, RSS, state size.

    uv run python scripts/benchmark_accounts.py              # 100 and 1 000 accounts, 0 and 100 ms
    uv run python scripts/benchmark_accounts.py --quick      # 20 and 100 accounts, 0 and 20 ms

Each account holds ~30 records (10 per stream), so every account's stream is one
page: the run is all first pages, the case the prefetch of partitions exists for.
The tap runs as a user runs it (``python -m tap_maesn_qonto --config cfg.json``)
against an emulator in another process, with the default ``max_concurrency`` (8).

* limit: ``ceil(requests / max_concurrency) * latency``, the time spent waiting alone;
* state bytes per account: the final STATE message's JSON size / accounts.

Timings are for reading, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def run(emulator: AccountsEmulator, latency_ms: float, workdir: Path) -> dict[str, float]:
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
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    out_path, err_path = workdir / "out.jsonl", workdir / "err.log"
    before = emulator.requests_served()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        usage = benchmark.run_measured(
            [sys.executable, "-m", "tap_maesn_qonto", "--config", str(config_path)], err, out
        )
    served = emulator.requests_served() - before
    reported = benchmark.records_reported(err_path.read_text(errors="replace"))
    if usage.exit_code != 0 or reported != emulator.records:
        raise SystemExit(
            f"{emulator.accounts} accounts at {latency_ms} ms: exit {usage.exit_code}, "
            f"{reported} of {emulator.records} records:\n{err_path.read_text()[-2000:]}"
        )
    last_state = ""
    with out_path.open() as lines:
        for line in lines:
            if line.startswith('{"type":"STATE"'):
                last_state = line
    state_bytes = len(json.dumps(json.loads(last_state)["value"], separators=(",", ":")))
    limit = math.ceil(served / CONCURRENCY) * latency_ms / 1000
    return {
        "accounts": emulator.accounts,
        "latency_ms": latency_ms,
        "records": emulator.records,
        "wall_s": usage.wall_s,
        "cpu_s": usage.cpu_s,
        "peak_rss_mb": usage.peak_rss_mb,
        "requests": served,
        "limit_s": limit,
        "state_bytes_per_account": state_bytes / emulator.accounts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 and 100 accounts, 0 and 20 ms")
    args = parser.parse_args()
    sizes, latencies = ((20, 100), (0, 20)) if args.quick else ((100, 1000), (0, 100))
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
