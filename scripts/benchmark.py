"""Benchmark the tap against the Maesn emulator: wall, CPU, peak RSS and requests per run.

    uv run python scripts/benchmark.py            # 10 000 and 100 000 records at 0, 50, 100 ms
    uv run python scripts/benchmark.py --quick    # 2 000 and 5 000 records at 0 and 20 ms
    uv run python scripts/benchmark.py --profile  # cProfile of one in-process sync (30 000 records)
    uv run python scripts/benchmark.py --peer     # beside tap-rest-api-msdk (scripts/peer_benchmark.py)
    uv run python scripts/benchmark.py --timeline # the --peer data, tap in process: requests in flight
    uv run python scripts/benchmark.py --startup  # from the command to the tap's first request
    uv run python scripts/benchmark.py --alternate --previous DIR  # --peer data, 100 ms: two taps

Every run is the tap as a user runs it, ``python -m tap_maesn_qonto --config cfg.json``, in its
own process, so its CPU time and peak RSS come from ``os.wait4`` and nothing else is counted. The
emulator runs in another process (its CPU is not the tap's), one per data size, its latency
changed between runs through ``POST /_emulator/configure``. All records are invoices (the other
streams are empty) and pages hold 100 records.

Each (latency, size) is run twice, ``sequential`` (max_concurrency 1) and ``concurrent`` (the
default, 8), so the gain of concurrency is a ratio measured on the same emulator. "limit" is the
best any client could do:

* latency > 0: ``ceil(pages / max_concurrency) * latency``, the time spent waiting alone;
* latency 0: the wall time of a bare client (the ``baseline read+write`` row) that GETs every
  page in order over one keep-alive session with the tap's headers and query, decodes it with
  ``json.loads(parse_float=Decimal)`` and writes every record as one RECORD line with msgspec
  (as the tap's writer does), to /dev/null like the tap, and nothing else.

Both write their output to /dev/null, as in ``tap-maesn-qonto ... > /dev/null``; completeness
is checked from the record counts each prints on stderr (the tap's per-stream summary line).

Timings are for reading, never asserted: the smoke test only runs the same code at tiny sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import math
import os
import pstats
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import msgspec
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # the tap runs from this checkout, installed or not

from tap_maesn_qonto.settings import DEFAULT_MAX_CONCURRENCY  # noqa: E402

FULL_SIZES = (10_000, 100_000)
FULL_LATENCIES_MS = (0, 50, 100)
QUICK_SIZES = (2_000, 5_000)
QUICK_LATENCIES_MS = (0, 20)
PROFILE_RECORDS = 30_000
PROFILE_TOP = 25

PAGE_SIZE = 100
DEFAULT_CONCURRENCY = DEFAULT_MAX_CONCURRENCY
MODES = {"sequential": 1, "concurrent": DEFAULT_CONCURRENCY}
BASELINE_MODE = "baseline read+write"

API_KEY = "emulator-api-key"
ACCOUNT_KEY = "emulator-account-qonto"
START_DATE = "2020-01-01T00:00:00Z"

# "invoices: sync summary: 100000 records emitted" (tap) / "baseline: 100000 records written".
RECORDS_REPORTED = re.compile(
    r"(?:sync summary(?: of account \S+)?|baseline): (\d+) records (?:emitted|written)"
)

EMULATOR_START_TIMEOUT_S = 300.0
STARTUP_TIMEOUT_S = 30.0  # a tap that never connects (a broken checkout) fails the run
TARGET_LATENCY_MS, TARGET_LATENCY_RECORDS, TARGET_WALL_PER_LIMIT = 100, 10_000, 1.5
TARGET_RECORDS_PER_S = 20_000
TARGET_RSS_RATIO = 1.2


class BenchmarkError(RuntimeError):
    """A run did not do what it was measured for (wrong record count, failure)."""


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    """One measured run: the tap (or the baseline client) reading ``records`` at ``latency_ms``."""

    latency_ms: float
    records: int
    mode: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    requests: int
    limit_s: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.wall_s if self.wall_s else 0.0

    @property
    def wall_per_limit(self) -> float:
        return self.wall_s / self.limit_s if self.limit_s else math.inf


@dataclass
class ProcessUsage:
    """What ``os.wait4`` and the stdout reader saw of one child process."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    records_reported: int
    exit_code: int


def pages_for(records: int) -> int:
    return math.ceil(records / PAGE_SIZE)


def latency_limit_s(records: int, concurrency: int, latency_ms: float) -> float:
    """Time spent only waiting: rounds of ``concurrency`` pages, each one latency long."""
    return math.ceil(pages_for(records) / concurrency) * latency_ms / 1000


# --------------------------------------------------------------------------- emulator process


class EmulatorProcess:
    """``python -m tap_maesn_qonto.emulator`` in its own process, all records in ``invoices``.

    ``counts`` (records per resource, as the emulator names them) splits them otherwise.
    """

    def __init__(
        self, records: int, workdir: Path, counts: Mapping[str, int] | None = None
    ) -> None:
        self.counts = dict(counts or {"invoices": records, "bills": 0, "bookingProposals": 0})
        self.records = sum(self.counts.values())
        self._url_file = workdir / f"emulator-{records}.url"
        self._log_path = workdir / f"emulator-{records}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> EmulatorProcess:
        self._url_file.unlink(missing_ok=True)
        argv = [
            *(sys.executable, "-m", "tap_maesn_qonto.emulator", "--port", "0"),
            *("--url-file", str(self._url_file), "--invoices", str(self.counts["invoices"])),
            *("--bills", str(self.counts["bills"])),
            *("--booking-proposals", str(self.counts["bookingProposals"]), "--latency-ms", "0"),
        ]
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log
            )
        self.url = self._wait_for_url()
        self._warm_up()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _wait_for_url(self) -> str:
        assert self._process is not None
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT_S
        while not self._url_file.exists():
            if self._process.poll() is not None:
                raise BenchmarkError(f"the emulator exited: {self._log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise BenchmarkError("the emulator did not start in time")
            time.sleep(0.05)
        return self._url_file.read_text().strip()

    def _warm_up(self) -> None:
        # The first list request builds and caches the emulator's sorted view of the data;
        # that one-off cost must not land in whichever run comes first.
        response = requests.get(
            f"{self.url}/accounting/invoices",
            params=list_params(page=1),
            headers=api_headers(),
            timeout=60,
        )
        response.raise_for_status()

    def _admin(self, name: str, payload: dict | None = None) -> dict[str, Any]:
        url = f"{self.url}/_emulator/{name}"
        if payload is None:
            response = requests.get(url, timeout=60)
        else:
            response = requests.post(url, json=payload, timeout=60)
        response.raise_for_status()
        return response.json()

    def set_latency(self, latency_ms: float) -> None:
        self._admin("configure", {"latency_ms": latency_ms})

    def request_count(self) -> int:
        return int(self._admin("stats")["requests"])


def list_params(page: int) -> dict[str, str | int]:
    """The query the tap sends on a first run, so the baseline asks the emulator the same."""
    return {
        "page": page,
        "limit": PAGE_SIZE,
        "lastModifiedAt": START_DATE,
        "orderField": "createdDate",
        "orderDir": "ASC",
    }


def api_headers() -> dict[str, str]:
    return {"X-API-KEY": API_KEY, "X-ACCOUNT-KEY": ACCOUNT_KEY, "Accept": "application/json"}


# --------------------------------------------------------------------------- measured processes


def run_measured(
    argv: Sequence[str],
    stderr: IO[bytes],
    stdout: IO[bytes] | int = subprocess.DEVNULL,
    cwd: Path = REPO_ROOT,
) -> ProcessUsage:
    """Run ``argv`` (stdout to /dev/null unless given); CPU and peak RSS of that process only."""
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, stdout=stdout, stderr=stderr)
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return ProcessUsage(
        wall_s=wall_s,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        records_reported=0,  # filled in from stderr by the caller
        exit_code=process.returncode,
    )


def records_reported(stderr_text: str) -> int:
    """Records the process says it wrote: the tap's summary lines, or the baseline's line."""
    return sum(int(n) for n in RECORDS_REPORTED.findall(stderr_text))


def measured_row(
    argv: Sequence[str],
    emulator: EmulatorProcess,
    workdir: Path,
    *,
    latency_ms: float,
    mode: str,
    limit_s: float | None,
    cwd: Path = REPO_ROOT,
) -> Row:
    """Run one process against ``emulator``, check it emitted every record, make its row."""
    stderr_path = workdir / "stderr.log"
    before = emulator.request_count()
    with stderr_path.open("wb") as stderr:
        usage = run_measured(argv, stderr, cwd=cwd)
    usage.records_reported = records_reported(stderr_path.read_text(errors="replace"))
    requests_made = emulator.request_count() - before
    if usage.exit_code != 0 or usage.records_reported != emulator.records:
        raise BenchmarkError(
            f"{mode} at {latency_ms} ms: exit code {usage.exit_code}, "
            f"{usage.records_reported} of {emulator.records} records; stderr ends with:\n"
            f"{stderr_path.read_text(errors='replace')[-3000:]}"
        )
    return Row(
        latency_ms=latency_ms,
        records=emulator.records,
        mode=mode,
        wall_s=usage.wall_s,
        cpu_s=usage.cpu_s,
        peak_rss_mb=usage.peak_rss_mb,
        requests=requests_made,
        limit_s=usage.wall_s if limit_s is None else limit_s,  # the baseline is its own limit
    )


def tap_config(url: str, concurrency: int) -> dict[str, Any]:
    return {
        "api_key": API_KEY,
        "account_key": ACCOUNT_KEY,
        "api_url": url,
        "start_date": START_DATE,
        "page_size": PAGE_SIZE,
        "max_concurrency": concurrency,
    }


def run_tap(
    emulator: EmulatorProcess,
    workdir: Path,
    latency_ms: float,
    mode: str,
    zero_latency_limit: float,
    *,
    checkout: Path = REPO_ROOT,
) -> Row:
    """The tap of ``checkout`` (this one, or an earlier version's) in one mode."""
    concurrency = MODES[mode]
    config_path = workdir / f"config-{concurrency}.json"
    config_path.write_text(json.dumps(tap_config(emulator.url, concurrency)))
    argv = [sys.executable, "-m", "tap_maesn_qonto", "--config", str(config_path)]
    limit_s = (
        latency_limit_s(emulator.records, concurrency, latency_ms)
        if latency_ms
        else zero_latency_limit
    )
    label = mode if checkout == REPO_ROOT else f"{mode} (previous)"
    return measured_row(
        argv, emulator, workdir, latency_ms=latency_ms, mode=label, limit_s=limit_s, cwd=checkout
    )


def run_reconcile(emulator: EmulatorProcess, workdir: Path, latency_ms: float) -> Row:
    """A reconcile run (reconcile.py): the state of a first sync, then every record read
    whole again with ACTIVATE_VERSION; its limit is a full sync's at the same latency."""
    concurrency = MODES["concurrent"]
    config = tap_config(emulator.url, concurrency)
    first_path, state_path = workdir / "config-first.json", workdir / "state.json"
    first_path.write_text(json.dumps(config))
    emulator.set_latency(0)
    messages_path = workdir / "first-run.jsonl"
    # To a file, not into this process: a child forked from a big parent counts the
    # parent's memory in its peak RSS until it execs.
    with messages_path.open("wb") as messages:
        subprocess.run(
            [sys.executable, "-m", "tap_maesn_qonto", "--config", str(first_path)],
            cwd=REPO_ROOT,
            stdout=messages,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    with messages_path.open(encoding="utf-8") as lines:
        last_state = [line for line in lines if line.startswith('{"type":"STATE"')][-1]
    state_path.write_text(json.dumps(json.loads(last_state)["value"]))
    emulator.set_latency(latency_ms)
    config_path = workdir / "config-reconcile.json"
    config_path.write_text(json.dumps({**config, "reconcile_interval_days": 0}))
    argv = [
        *(sys.executable, "-m", "tap_maesn_qonto"),
        *("--config", str(config_path), "--state", str(state_path)),
    ]
    limit_s = latency_limit_s(emulator.records, concurrency, latency_ms)
    return measured_row(
        argv, emulator, workdir, latency_ms=latency_ms, mode="reconcile", limit_s=limit_s
    )


def run_baseline(emulator: EmulatorProcess, workdir: Path) -> Row:
    """The bare read+write client, in its own process like the tap (see ``baseline_main``)."""
    argv = [
        *(sys.executable, str(Path(__file__).resolve())),
        *("--baseline-client", emulator.url, str(pages_for(emulator.records))),
    ]
    return measured_row(argv, emulator, workdir, latency_ms=0, mode=BASELINE_MODE, limit_s=None)


def run_benchmark(
    sizes: Sequence[int], latencies_ms: Sequence[float], previous: Path | None = None
) -> list[Row]:
    """Measure every (size, latency, mode); one emulator per size, reused across latencies."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tap-benchmark-") as tmp:
        workdir = Path(tmp)
        for records in sizes:
            print(f"... starting an emulator with {records} invoices", file=sys.stderr)
            with EmulatorProcess(records, workdir) as emulator:
                zero_latency_limit = math.nan
                for latency_ms in latencies_ms:
                    emulator.set_latency(latency_ms)
                    if latency_ms == 0:
                        baseline = run_baseline(emulator, workdir)
                        rows.append(baseline)
                        zero_latency_limit = baseline.wall_s
                    for mode in MODES:
                        print(f"... {records} records, {latency_ms} ms, {mode}", file=sys.stderr)
                        rows.append(
                            run_tap(emulator, workdir, latency_ms, mode, zero_latency_limit)
                        )
                    if previous is not None:  # the same emulator, right after: side by side
                        print(f"... {records} records, {latency_ms} ms, previous", file=sys.stderr)
                        rows.append(
                            run_tap(
                                emulator,
                                workdir,
                                latency_ms,
                                "concurrent",
                                zero_latency_limit,
                                checkout=previous,
                            )
                        )
    return rows


# --------------------------------------------------------------------------- baseline client


def baseline_main(url: str, pages: int) -> None:
    """GET every page in order over one session, decode with Decimals, write RECORD lines.

    Nothing of the tap is imported by this script at module level, so this process pays only
    for what it measures.
    """
    # Same framing as the tap's messages, so the benchmark counts both the same way.
    encode = msgspec.json.Encoder(decimal_format="number").encode
    out = sys.stdout.buffer
    written = 0
    with requests.Session() as session:
        session.headers.update(api_headers())
        for page in range(1, pages + 1):
            response = session.get(
                f"{url}/accounting/invoices",
                params=list_params(page),
                timeout=60,
            )
            response.raise_for_status()
            for record in json.loads(response.content, parse_float=Decimal)["data"]:
                out.write(encode({"type": "RECORD", "stream": "invoices", "record": record}))
                out.write(b"\n")
                written += 1
    out.flush()
    print(f"baseline: {written} records written", file=sys.stderr)


# --------------------------------------------------------------------------- report


COLUMNS = (
    "latency ms",
    "records",
    "mode",
    "wall s",
    "CPU s",
    "peak RSS MB",
    "requests",
    "records/s",
    "limit s",
    "wall/limit",
)


def format_table(rows: Sequence[Row]) -> str:
    cells = [
        [
            f"{row.latency_ms:g}",
            f"{row.records}",
            row.mode,
            f"{row.wall_s:.2f}",
            f"{row.cpu_s:.2f}",
            f"{row.peak_rss_mb:.1f}",
            f"{row.requests}",
            f"{row.records_per_s:,.0f}",
            f"{row.limit_s:.2f}",
            f"{row.wall_per_limit:.2f}",
        ]
        for row in rows
    ]
    return render_table(COLUMNS, cells)


def render_table(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A Markdown table, every cell right-aligned to its column's widest text."""
    widths = [max(len(text) for text in column) for column in zip(columns, *cells, strict=True)]

    def line(texts: Sequence[str]) -> str:
        return "| " + " | ".join(t.rjust(w) for t, w in zip(texts, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(columns), separator, *(line(c) for c in cells)])


def find_row(rows: Sequence[Row], latency_ms: float, records: int, mode: str) -> Row | None:
    return next(
        (r for r in rows if (r.latency_ms, r.records, r.mode) == (latency_ms, records, mode)),
        None,
    )


def format_summary(rows: Sequence[Row]) -> str:
    sizes = sorted({r.records for r in rows})
    latencies = sorted({r.latency_ms for r in rows})
    lines = ["Concurrency gain (sequential wall / concurrent wall):"]
    for latency_ms in latencies:
        for records in sizes:
            sequential = find_row(rows, latency_ms, records, "sequential")
            concurrent = find_row(rows, latency_ms, records, "concurrent")
            if sequential and concurrent:
                gain = sequential.wall_s / concurrent.wall_s
                lines.append(f"  {latency_ms:g} ms, {records} records: {gain:.2f}x")
    smallest, largest = sizes[0], sizes[-1]
    if largest != smallest:
        lines.append(f"Peak RSS {largest}/{smallest} records, concurrent:")
        for latency_ms in latencies:
            ratio = rss_ratio(rows, latency_ms, smallest, largest)
            if ratio is not None:
                lines.append(f"  {latency_ms:g} ms: {ratio:.2f}")
    return "\n".join(lines)


def rss_ratio(rows: Sequence[Row], latency_ms: float, small: int, large: int) -> float | None:
    small_row = find_row(rows, latency_ms, small, "concurrent")
    large_row = find_row(rows, latency_ms, large, "concurrent")
    if small_row is None or large_row is None:
        return None
    return large_row.peak_rss_mb / small_row.peak_rss_mb


def format_targets(rows: Sequence[Row]) -> str:
    """The team's targets beside what this run measured; reported, never enforced."""

    def verdict(met: bool | None) -> str:
        return "not measured in this run" if met is None else ("met" if met else "NOT MET")

    lines = ["Targets:"]
    row = find_row(rows, TARGET_LATENCY_MS, TARGET_LATENCY_RECORDS, "concurrent")
    measured = f"{row.wall_per_limit:.2f}x" if row else "-"
    lines.append(
        f"  {TARGET_LATENCY_MS} ms, {TARGET_LATENCY_RECORDS} records, concurrent wall <= "
        f"{TARGET_WALL_PER_LIMIT}x limit: {measured} -> "
        f"{verdict(row.wall_per_limit <= TARGET_WALL_PER_LIMIT if row else None)}"
    )
    zero_latency = [r for r in rows if r.latency_ms == 0 and r.mode == "concurrent"]
    row = max(zero_latency, key=lambda r: r.records, default=None)
    measured = f"{row.records_per_s:,.0f} records/s ({row.records} records)" if row else "-"
    lines.append(
        f"  0 ms, concurrent, largest size, >= {TARGET_RECORDS_PER_S:,} records/s: {measured} -> "
        f"{verdict(row.records_per_s >= TARGET_RECORDS_PER_S if row else None)}"
    )
    ratios = [
        ratio
        for latency_ms in sorted({r.latency_ms for r in rows})
        if (ratio := rss_ratio(rows, latency_ms, 10_000, 100_000)) is not None
    ]
    measured = f"{max(ratios):.2f} (worst over latencies)" if ratios else "-"
    lines.append(
        f"  peak RSS 100 000 / 10 000 records <= {TARGET_RSS_RATIO}: {measured} -> "
        f"{verdict(max(ratios) <= TARGET_RSS_RATIO if ratios else None)}"
    )
    return "\n".join(lines)


def print_report(rows: Sequence[Row]) -> None:
    print(format_table(rows))
    print()
    print(format_summary(rows))
    print()
    print(format_targets(rows))


# --------------------------------------------------------------------------- profile


@contextlib.contextmanager
def profile_all_threads() -> Iterator[list[cProfile.Profile]]:
    """Profile this thread (first in the list) and, apart, every thread started meanwhile.

    cProfile sees only the thread that enables it. Its default wall clock is kept: a CPU clock
    costs a system call per event and inflates call-heavy code several times over.
    """
    profiles = [cProfile.Profile()]
    lock = threading.Lock()

    def profile_new_thread(*_: object) -> None:
        sys.setprofile(None)  # hand over from this one-shot hook to the thread's own profiler
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()

    threading.setprofile(profile_new_thread)
    profiles[0].enable()
    try:
        yield profiles
    finally:
        profiles[0].disable()
        threading.setprofile(None)


@contextlib.contextmanager
def stdout_to_devnull_and_stderr_to(path: Path) -> Iterator[None]:
    """Redirect at the descriptor level: the tap writes to ``sys.stdout.buffer`` directly."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "wb") as devnull, path.open("wb") as log:
        os.dup2(devnull.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def short_location(function: tuple[str, int, str]) -> str:
    """``file:line(name)`` with the venv and checkout prefixes cut, so origins stay readable."""
    filename, line, name = function
    for marker in ("site-packages/", f"{REPO_ROOT}/", "lib/python3."):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})" if line else name


def format_profile(stats: pstats.Stats, sort_key: str, records: int) -> str:
    stats.sort_stats(sort_key)
    header = f"{'ncalls':>10} {'tottime':>8} {'cumtime':>8} {'tot µs/rec':>10} {'cum µs/rec':>10}  function"
    lines = [header]
    for function in stats.fcn_list[:PROFILE_TOP]:  # type: ignore[attr-defined]
        primitive_calls, calls, tottime, cumtime, _ = stats.stats[function]  # type: ignore[attr-defined]
        ncalls = f"{calls}" if calls == primitive_calls else f"{calls}/{primitive_calls}"
        lines.append(
            f"{ncalls:>10} {tottime:8.3f} {cumtime:8.3f} {tottime / records * 1e6:10.2f} "
            f"{cumtime / records * 1e6:10.2f}  {short_location(function)}"
        )
    return "\n".join(lines)


@dataclass
class SyncTimes:
    """One in-process sync: wall, CPU of the whole process and of the thread that ran it."""

    wall_s: float
    process_cpu_s: float
    main_thread_cpu_s: float


def timed_sync(config: dict[str, Any], log_path: Path) -> SyncTimes:
    # Imported here only: the baseline client runs this script and must not pay for the SDK.
    from tap_maesn_qonto.tap import TapMaesnQonto  # noqa: PLC0415

    tap = TapMaesnQonto(config=config)
    wall, process_cpu, thread_cpu = time.monotonic(), time.process_time(), time.thread_time()
    with stdout_to_devnull_and_stderr_to(log_path):
        tap.sync_all()
    return SyncTimes(
        wall_s=time.monotonic() - wall,
        process_cpu_s=time.process_time() - process_cpu,
        main_thread_cpu_s=time.thread_time() - thread_cpu,
    )


def run_profile(records: int = PROFILE_RECORDS) -> None:
    """Time one in-process sync, then profile another, and print where the time goes."""
    with tempfile.TemporaryDirectory(prefix="tap-profile-") as tmp:
        workdir = Path(tmp)
        with EmulatorProcess(records, workdir) as emulator:
            config = tap_config(emulator.url, DEFAULT_CONCURRENCY)
            # Unprofiled first: real CPU figures, and every import is done before profiling.
            plain = timed_sync(config, workdir / "tap-plain.log")
            before = emulator.request_count()
            with profile_all_threads() as profiles:
                profiled = timed_sync(config, workdir / "tap-profiled.log")
            requests_made = emulator.request_count() - before
    main_thread = pstats.Stats(profiles[0])
    fetch_threads = pstats.Stats(*profiles[1:]) if len(profiles) > 1 else None
    print_profile(
        records,
        plain=plain,
        profiled=profiled,
        requests_made=requests_made,
        main_thread=main_thread,
        fetch_threads=fetch_threads,
    )


def print_profile(
    records: int,
    *,
    plain: SyncTimes,
    profiled: SyncTimes,
    requests_made: int,
    main_thread: pstats.Stats,
    fetch_threads: pstats.Stats | None,
) -> None:
    def per_record(seconds: float) -> str:
        return f"{seconds / records * 1e6:.0f} µs/record"

    fetch_cpu = plain.process_cpu_s - plain.main_thread_cpu_s
    print(
        f"Profile: {records} records at 0 ms, max_concurrency {DEFAULT_CONCURRENCY}, in-process, "
        f"{requests_made} requests.\n"
        f"Without profiler: wall {plain.wall_s:.2f} s ({records / plain.wall_s:,.0f} records/s), "
        f"CPU {plain.process_cpu_s:.2f} s = {per_record(plain.process_cpu_s)}: main thread "
        f"(records) {per_record(plain.main_thread_cpu_s)}, page-fetch threads "
        f"{per_record(fetch_cpu)}.\n"
        f"Under the profiler: wall {profiled.wall_s:.2f} s, main thread CPU "
        f"{per_record(profiled.main_thread_cpu_s)}.\n"
        "Times below are the profiler's wall clock per thread. The threads share one GIL: the "
        "main thread's wall minus its CPU is time spent waiting for it, mostly inside "
        "FileIO.write (the one call per record that releases the GIL)."
    )
    print(f"\nMain thread (records), top {PROFILE_TOP} by tottime (own time):")
    print(format_profile(main_thread, "tottime", records))
    print(f"\nMain thread (records), top {PROFILE_TOP} by cumulative time:")
    print(format_profile(main_thread, "cumulative", records))
    if fetch_threads is not None:
        print(
            f"\nPage-fetch threads merged, top {PROFILE_TOP} by tottime (includes waiting for "
            "the emulator, for work and for the GIL):"
        )
        print(format_profile(fetch_threads, "tottime", records))


# --------------------------------------------------------------------------- command line


def reconcile_main(sizes: Sequence[int], latencies_ms: Sequence[float]) -> int:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tap-benchmark-") as tmp:
        workdir = Path(tmp)
        for records in sizes:
            with EmulatorProcess(records, workdir) as emulator:
                for latency_ms in latencies_ms:
                    print(f"... reconcile of {records} records at {latency_ms} ms", file=sys.stderr)
                    rows.append(run_reconcile(emulator, workdir, latency_ms))
    print(format_table(rows))
    for row in rows:
        verdict = "met" if row.wall_per_limit <= 1.5 else "NOT MET"
        print(
            f"reconcile of {row.records} records at {row.latency_ms:g} ms: "
            f"{row.wall_per_limit:.2f}x a full sync's limit (target <= 1.5x: {verdict})"
        )
    return 0


# --------------------------------------------------------------------------- startup


def first_request_s(listener: socket.socket, argv: list[str], cwd: Path) -> float:
    """From starting ``argv`` to its first connection reaching ``listener`` (then it is killed)."""
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    try:
        connection, _ = listener.accept()
        elapsed = time.monotonic() - started
        connection.close()
    finally:
        process.kill()
        process.wait()
    listener.settimeout(0.05)  # the killed tap's other connections, if any
    with contextlib.suppress(OSError):
        while True:
            listener.accept()[0].close()
    listener.settimeout(STARTUP_TIMEOUT_S)
    return elapsed


def checkouts(previous: Path | None) -> dict[str, Path]:
    """The checkouts whose taps run in turn, by label: this one, and ``--previous`` if given."""
    labelled = {"this checkout": REPO_ROOT}
    if previous is not None:
        labelled[f"previous ({previous})"] = previous.resolve()
    return labelled


def startup_main(runs: int, previous: Path | None) -> int:
    """``--startup``: the tap's start as a user pays it, interpreter and imports included.

    A listening socket stands in for Maesn; the time is taken when the tap's first
    connection arrives. With ``--previous``, that checkout's tap runs alternately.
    """
    times: dict[str, list[float]] = {label: [] for label in checkouts(previous)}
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        tempfile.TemporaryDirectory(prefix="tap-startup-") as tmp,
    ):
        listener.settimeout(STARTUP_TIMEOUT_S)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(tap_config(url, DEFAULT_CONCURRENCY)))
        argv = [sys.executable, "-m", "tap_maesn_qonto", "--config", str(config_path)]
        for _ in range(runs):
            for label, checkout in checkouts(previous).items():
                times[label].append(first_request_s(listener, argv, checkout))
    print(f"From the command to the tap's first request, {runs} runs each (seconds):")
    for label, measured in times.items():
        print(
            f"  {label}: median {statistics.median(measured):.3f}, "
            f"min {min(measured):.3f}, max {max(measured):.3f}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--profile", action="store_true", help="cProfile one in-process sync")
    parser.add_argument("--records", type=int, nargs="+", help="data sizes (default: the full set)")
    parser.add_argument("--latencies", type=float, nargs="+", help="latencies in ms")
    parser.add_argument(
        "--previous",
        type=Path,
        help="a checkout of an earlier version (git worktree add DIR REV): its tap runs "
        "concurrent beside this one, on the same emulator (also for --startup and --alternate)",
    )
    parser.add_argument(
        "--reconcile",
        action="store_true",
        help="a reconcile run (every record read whole, ACTIVATE_VERSION) against a full "
        "sync's limit (default: 20 000 records at 100 ms)",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="beside tap-rest-api-msdk (installed into .bench/peer-venv on first use), records "
        "split over the three streams (default: 28 000 records at 0 and 100 ms)",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="the --peer data, tap only, in process at 100 ms: wall without the interpreter's "
        "start, and requests in flight per 50 ms",
    )
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="the --peer data at 100 ms (--latencies), tap only: this checkout and --previous "
        "DIR's in turn, --runs times each",
    )
    parser.add_argument(
        "--startup",
        action="store_true",
        help="from the command to the tap's first request, --runs times; with --previous, "
        "alternated with that checkout",
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="runs each for --alternate and --startup"
    )
    # Internal: the bare client whose wall time is the 0 ms limit (run as its own process).
    parser.add_argument(
        "--baseline-client", nargs=2, metavar=("URL", "PAGES"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.alternate and args.previous is None:
        parser.error("--alternate needs --previous DIR, the checkout to run in turn with")
    if args.baseline_client:
        url, pages = args.baseline_client
        baseline_main(url, int(pages))
        return 0
    if args.profile:
        run_profile()
        return 0
    return run_mode(args)


def run_mode(args: argparse.Namespace) -> int:
    """The mode ``args`` ask for; its exit code (1: a run was incomplete)."""
    if args.startup:
        return startup_main(args.runs, args.previous)
    if args.peer or args.timeline or args.alternate:
        import peer_benchmark  # noqa: PLC0415  (scripts/ is on sys.path: this script's folder)

        if args.peer:
            return peer_benchmark.main(args.records, args.latencies)
        records = (args.records or peer_benchmark.DEFAULT_RECORDS)[0]
        latency_ms = (args.latencies or [100.0])[0]
        if args.alternate:
            return peer_benchmark.alternate_main(args.previous, args.runs, records, latency_ms)
        return peer_benchmark.timeline_main(records, latency_ms)
    if args.reconcile:
        return reconcile_main(args.records or [20_000], args.latencies or [100.0])
    sizes, latencies = (
        (QUICK_SIZES, QUICK_LATENCIES_MS) if args.quick else (FULL_SIZES, FULL_LATENCIES_MS)
    )
    sizes, latencies = args.records or sizes, args.latencies or latencies
    started = time.monotonic()
    rows = run_benchmark(sizes, latencies, args.previous)
    print_report(rows)
    print(f"\n(benchmark took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
