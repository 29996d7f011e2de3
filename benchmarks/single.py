"""Benchmark one account's read against the emulator: wall, CPU, peak RSS and requests per run.

    uv run python -m benchmarks.single            # 10 000 and 100 000 records at 0, 50, 100 ms
    uv run python -m benchmarks.single --quick    # 2 000 and 5 000 records at 0 and 20 ms
    uv run python -m benchmarks.single --records 10000 100000 --latencies 0 \\
        --modes concurrent --previous DIR --runs 3    # two checkouts in turn, medians
    uv run python -m benchmarks.single --startup  # from the command to the tap's first request
    uv run python -m benchmarks.single --reconcile  # a reconcile run against a full sync's limit
    uv run python -m benchmarks.single --profile  # cProfile of one in-process sync (30 000 records)
    uv run python -m benchmarks.single --cpu --previous DIR --runs 7  # CPU per record, in turn

Every run is the tap as a user runs it, ``python -m tap_maesn_qonto --config cfg.json``, in its
own process, so its CPU time and peak RSS come from ``os.wait4`` and nothing else is counted. The
emulator runs in another process, one per data size, its latency changed between runs. All
records are invoices (the other streams are empty) and pages hold 100 records.

Each (size, latency) runs the tap ``sequential`` (max_concurrency 1) and ``concurrent`` (the
default, 8) unless ``--modes`` says otherwise; with ``--previous DIR`` that checkout's tap
(its own ``.venv``) runs each mode right after this one's, ``--runs`` rounds in turn, on
the same emulator, and medians are compared. "limit" is the best any client could do:

* latency > 0: ``ceil(pages / max_concurrency) * latency``, the time spent waiting alone;
* latency 0: the wall time of a bare client (benchmarks/baseline.py, measured in the same
  round) that reads every page in order and writes every record, and nothing else.

Both write their output to /dev/null; completeness is checked from the record counts each
prints on stderr (the tap's per-stream summary line, read.py ``PartitionRead.summary``).
Timings are for reading, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import math
import pstats
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import measure
from benchmarks.measure import Checkout, EmulatorProcess, Report

FULL_SIZES = (10_000, 100_000)
FULL_LATENCIES_MS = (0.0, 50.0, 100.0)
QUICK_SIZES = (2_000, 5_000)
QUICK_LATENCIES_MS = (0.0, 20.0)
PROFILE_RECORDS = 30_000
PROFILE_TOP = 25

MODES = {"sequential": 1, "concurrent": measure.DEFAULT_CONCURRENCY}
BASELINE_MODE = "baseline read+write"

TARGET_LATENCY_MS, TARGET_LATENCY_RECORDS, TARGET_WALL_PER_LIMIT = 100, 10_000, 1.5
TARGET_RECORDS_PER_S = 20_000
TARGET_RSS_RATIO = 1.2
TARGET_RECONCILE_PER_LIMIT = 1.5


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    """One measured run: a tap (or the baseline client) reading ``records`` at ``latency_ms``."""

    latency_ms: float
    records: int
    mode: str
    checkout: str
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


def measured_row(
    argv: Sequence[str],
    emulator: EmulatorProcess,
    workdir: Path,
    *,
    latency_ms: float,
    mode: str,
    checkout: Checkout,
    limit_s: float | None,
) -> Row:
    """Run one process against ``emulator``, check it emitted every record, make its row."""
    stderr_path = workdir / "stderr.log"
    before = emulator.request_count()
    with stderr_path.open("wb") as stderr:
        usage = measure.run_measured(argv, stderr, cwd=checkout.root)
    stderr_text = stderr_path.read_text(errors="replace")
    reported = measure.records_reported(stderr_text)
    requests_made = emulator.request_count() - before
    if usage.exit_code != 0 or reported != emulator.records:
        raise measure.BenchmarkError(
            f"{mode} ({checkout.label}) at {latency_ms} ms: exit code {usage.exit_code}, "
            f"{reported} of {emulator.records} records; stderr ends with:\n{stderr_text[-3000:]}"
        )
    return Row(
        latency_ms=latency_ms,
        records=emulator.records,
        mode=mode,
        checkout=checkout.label,
        wall_s=usage.wall_s,
        cpu_s=usage.cpu_s,
        peak_rss_mb=usage.peak_rss_mb,
        requests=requests_made,
        limit_s=usage.wall_s if limit_s is None else limit_s,  # the baseline is its own limit
    )


def run_tap(
    emulator: EmulatorProcess,
    workdir: Path,
    latency_ms: float,
    mode: str,
    *,
    zero_latency_limit: float,
    checkout: Checkout,
) -> Row:
    """``checkout``'s tap in one mode."""
    concurrency = MODES[mode]
    config_path = workdir / f"config-{concurrency}.json"
    config_path.write_text(json.dumps(measure.tap_config(emulator.url, concurrency)))
    limit_s = (
        measure.latency_limit_s(emulator.records, concurrency, latency_ms)
        if latency_ms
        else zero_latency_limit
    )
    return measured_row(
        checkout.tap_argv(config_path),
        emulator,
        workdir,
        latency_ms=latency_ms,
        mode=mode,
        checkout=checkout,
        limit_s=limit_s,
    )


def run_baseline(emulator: EmulatorProcess, workdir: Path) -> Row:
    """The bare read+write client (baseline.py), in its own process like the tap."""
    argv = [
        *(sys.executable, "-m", "benchmarks.baseline"),
        *(emulator.url, str(measure.pages_for(emulator.records))),
    ]
    return measured_row(
        argv,
        emulator,
        workdir,
        latency_ms=0,
        mode=BASELINE_MODE,
        checkout=Checkout.this(),
        limit_s=None,
    )


def run_benchmark(
    sizes: Sequence[int],
    latencies_ms: Sequence[float],
    checkouts: Sequence[Checkout] | None = None,
    *,
    runs: int = 1,
    modes: Sequence[str] = tuple(MODES),
) -> list[Row]:
    """Every (size, latency, round, mode, checkout); one emulator per size, reused."""
    checkouts = list(checkouts or [Checkout.this()])
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tap-benchmark-") as tmp:
        workdir = Path(tmp)
        for records in sizes:
            measure.note(f"starting an emulator with {records} invoices")
            with EmulatorProcess(workdir, records=records) as emulator:
                for latency_ms in latencies_ms:
                    emulator.set_latency(latency_ms)
                    for round_ in range(1, runs + 1):
                        zero_latency_limit = math.nan
                        if latency_ms == 0:
                            baseline = run_baseline(emulator, workdir)
                            rows.append(baseline)
                            zero_latency_limit = baseline.wall_s
                        for mode in modes:
                            for checkout in checkouts:
                                measure.note(
                                    f"{records} records, {latency_ms:g} ms, {mode}, "
                                    f"{checkout.label}, round {round_} of {runs}"
                                )
                                rows.append(
                                    run_tap(
                                        emulator,
                                        workdir,
                                        latency_ms,
                                        mode,
                                        zero_latency_limit=zero_latency_limit,
                                        checkout=checkout,
                                    )
                                )
    return rows


# --------------------------------------------------------------------------- report


COLUMNS = (
    "latency ms",
    "records",
    "mode",
    "checkout",
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
            "-" if row.mode == BASELINE_MODE else row.checkout,
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
    return measure.render_table(COLUMNS, cells)


@dataclass
class Medians:
    """The medians of the runs of one (latency, records, mode, checkout)."""

    runs: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    requests: float
    records_per_s: float
    wall_per_limit: float


def medians(
    rows: Sequence[Row], latency_ms: float, records: int, mode: str, checkout: str | None = None
) -> Medians | None:
    """Medians of the matching rows (``checkout`` None: the first checkout's)."""
    candidates = [
        r for r in rows if (r.latency_ms, r.records, r.mode) == (latency_ms, records, mode)
    ]
    if checkout is None and candidates:
        checkout = candidates[0].checkout
    chosen = [r for r in candidates if r.checkout == checkout]
    if not chosen:
        return None
    return Medians(
        runs=len(chosen),
        wall_s=measure.median([r.wall_s for r in chosen]),
        cpu_s=measure.median([r.cpu_s for r in chosen]),
        peak_rss_mb=measure.median([r.peak_rss_mb for r in chosen]),
        requests=measure.median([r.requests for r in chosen]),
        records_per_s=measure.median([r.records_per_s for r in chosen]),
        wall_per_limit=measure.median([r.wall_per_limit for r in chosen]),
    )


SIDE_BY_SIDE_COLUMNS = (
    "latency ms",
    "records",
    "mode",
    "checkout",
    "runs",
    "wall s",
    "CPU s",
    "peak RSS MB",
    "requests",
    "records/s",
    "wall/limit",
    "records/s vs first",
    "RSS vs first",
)


def format_side_by_side(rows: Sequence[Row]) -> str:
    """Medians per (latency, records, mode), each checkout beside the first one."""
    labels = list(dict.fromkeys(r.checkout for r in rows if r.mode != BASELINE_MODE))
    keys = dict.fromkeys((r.latency_ms, r.records, r.mode) for r in rows)
    cells = []
    for latency_ms, records, mode in keys:
        first = medians(rows, latency_ms, records, mode, labels[0])
        for label in labels if mode != BASELINE_MODE else [labels[0]]:
            m = medians(rows, latency_ms, records, mode, label)
            if m is None or first is None:
                continue
            compared = mode != BASELINE_MODE and label != labels[0]
            cells.append(
                [
                    f"{latency_ms:g}",
                    f"{records}",
                    mode,
                    "-" if mode == BASELINE_MODE else label,
                    f"{m.runs}",
                    f"{m.wall_s:.2f}",
                    f"{m.cpu_s:.2f}",
                    f"{m.peak_rss_mb:.1f}",
                    f"{m.requests:g}",
                    f"{m.records_per_s:,.0f}",
                    f"{m.wall_per_limit:.2f}",
                    measure.ratio(m.records_per_s, first.records_per_s) if compared else "",
                    measure.ratio(m.peak_rss_mb, first.peak_rss_mb) if compared else "",
                ]
            )
    return measure.render_table(SIDE_BY_SIDE_COLUMNS, cells)


def rss_ratio(
    rows: Sequence[Row], latency_ms: float, small: int, large: int, checkout: str | None = None
) -> float | None:
    small_m = medians(rows, latency_ms, small, "concurrent", checkout)
    large_m = medians(rows, latency_ms, large, "concurrent", checkout)
    if small_m is None or large_m is None:
        return None
    return large_m.peak_rss_mb / small_m.peak_rss_mb


def format_summary(rows: Sequence[Row]) -> str:
    sizes = sorted({r.records for r in rows})
    latencies = sorted({r.latency_ms for r in rows})
    labels = list(dict.fromkeys(r.checkout for r in rows if r.mode != BASELINE_MODE))
    lines = ["Concurrency gain (sequential wall / concurrent wall, medians):"]
    for label in labels:
        for latency_ms in latencies:
            for records in sizes:
                sequential = medians(rows, latency_ms, records, "sequential", label)
                concurrent = medians(rows, latency_ms, records, "concurrent", label)
                if sequential and concurrent:
                    gain = sequential.wall_s / concurrent.wall_s
                    lines.append(f"  {label}, {latency_ms:g} ms, {records} records: {gain:.2f}x")
    if len(lines) == 1:
        lines.append("  not measured (one mode only)")
    smallest, largest = sizes[0], sizes[-1]
    if largest != smallest:
        lines.append(f"Peak RSS {largest}/{smallest} records, concurrent (medians):")
        for label in labels:
            for latency_ms in latencies:
                ratio = rss_ratio(rows, latency_ms, smallest, largest, label)
                if ratio is not None:
                    lines.append(f"  {label}, {latency_ms:g} ms: {ratio:.2f}")
    return "\n".join(lines)


def format_targets(rows: Sequence[Row]) -> str:
    """The team's targets beside what this run measured (this checkout); never enforced."""

    def verdict(met: bool | None) -> str:
        return "not measured in this run" if met is None else ("met" if met else "NOT MET")

    this = Checkout.this().label
    lines = ["Targets (this checkout, medians):"]
    m = medians(rows, TARGET_LATENCY_MS, TARGET_LATENCY_RECORDS, "concurrent", this)
    measured = f"{m.wall_per_limit:.2f}x" if m else "-"
    lines.append(
        f"  {TARGET_LATENCY_MS} ms, {TARGET_LATENCY_RECORDS} records, concurrent wall <= "
        f"{TARGET_WALL_PER_LIMIT}x limit: {measured} -> "
        f"{verdict(m.wall_per_limit <= TARGET_WALL_PER_LIMIT if m else None)}"
    )
    largest = max((r.records for r in rows if r.latency_ms == 0), default=None)
    m = medians(rows, 0, largest, "concurrent", this) if largest else None
    measured = f"{m.records_per_s:,.0f} records/s ({largest} records)" if m else "-"
    lines.append(
        f"  0 ms, concurrent, largest size, >= {TARGET_RECORDS_PER_S:,} records/s: {measured} -> "
        f"{verdict(m.records_per_s >= TARGET_RECORDS_PER_S if m else None)}"
    )
    ratios = [
        ratio
        for latency_ms in sorted({r.latency_ms for r in rows})
        if (ratio := rss_ratio(rows, latency_ms, 10_000, 100_000, this)) is not None
    ]
    measured = f"{max(ratios):.2f} (worst over latencies)" if ratios else "-"
    lines.append(
        f"  peak RSS 100 000 / 10 000 records <= {TARGET_RSS_RATIO}: {measured} -> "
        f"{verdict(max(ratios) <= TARGET_RSS_RATIO if ratios else None)}"
    )
    return "\n".join(lines)


def format_report(rows: Sequence[Row]) -> str:
    parts = [
        "Every run (the tap as a process, stdout to /dev/null; limit: the baseline's wall at "
        "0 ms, ceil(pages / max_concurrency) x latency otherwise):",
        format_table(rows),
        "Medians per checkout:",
        format_side_by_side(rows),
        format_summary(rows),
        format_targets(rows),
    ]
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- reconcile


def run_reconcile(emulator: EmulatorProcess, workdir: Path, latency_ms: float) -> Row:
    """A reconcile run (reconcile.py): the state of a first sync, then every record read
    whole again with ACTIVATE_VERSION; its limit is a full sync's at the same latency."""
    this = Checkout.this()
    config = measure.tap_config(emulator.url)
    first_path, state_path = workdir / "config-first.json", workdir / "state.json"
    first_path.write_text(json.dumps(config))
    emulator.set_latency(0)
    messages_path = workdir / "first-run.jsonl"
    # To a file, not into this process: see measure.run_measured.
    with messages_path.open("wb") as messages:
        subprocess.run(
            this.tap_argv(first_path),
            cwd=this.root,
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
    limit_s = measure.latency_limit_s(emulator.records, measure.DEFAULT_CONCURRENCY, latency_ms)
    return measured_row(
        this.tap_argv(config_path, state_path),
        emulator,
        workdir,
        latency_ms=latency_ms,
        mode="reconcile",
        checkout=this,
        limit_s=limit_s,
    )


def reconcile_body(sizes: Sequence[int], latencies_ms: Sequence[float]) -> str:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tap-benchmark-") as tmp:
        workdir = Path(tmp)
        for records in sizes:
            with EmulatorProcess(workdir, records=records) as emulator:
                for latency_ms in latencies_ms:
                    measure.note(f"reconcile of {records} records at {latency_ms:g} ms")
                    rows.append(run_reconcile(emulator, workdir, latency_ms))
    lines = [format_table(rows), ""]
    for row in rows:
        met = "met" if row.wall_per_limit <= TARGET_RECONCILE_PER_LIMIT else "NOT MET"
        lines.append(
            f"reconcile of {row.records} records at {row.latency_ms:g} ms: "
            f"{row.wall_per_limit:.2f}x a full sync's limit (target <= "
            f"{TARGET_RECONCILE_PER_LIMIT}x: {met})"
        )
    return "\n".join(lines)


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
    listener.settimeout(measure.STARTUP_TIMEOUT_S)
    return elapsed


def startup_times(runs: int, checkouts: Sequence[Checkout]) -> dict[str, list[float]]:
    """Each checkout's time from the command to its first request, ``runs`` times, in turn.

    A listening socket stands in for Maesn; the time is taken when the tap's first
    connection arrives. The interpreter's start and every import are in it.
    """
    times: dict[str, list[float]] = {checkout.label: [] for checkout in checkouts}
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        tempfile.TemporaryDirectory(prefix="tap-startup-") as tmp,
    ):
        listener.settimeout(measure.STARTUP_TIMEOUT_S)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(measure.tap_config(url)))
        for _ in range(runs):
            for checkout in checkouts:
                argv = checkout.tap_argv(config_path)
                times[checkout.label].append(first_request_s(listener, argv, checkout.root))
    return times


def format_startup(times: dict[str, list[float]]) -> str:
    runs = max(len(measured) for measured in times.values())
    lines = [f"From the command to the tap's first request, {runs} runs each, in turn (seconds):"]
    first = measure.median(next(iter(times.values())))
    for index, (label, measured) in enumerate(times.items()):
        middle = measure.median(measured)
        versus = f", {measure.ratio(middle, first)} vs first" if index else ""
        lines.append(
            f"  {label}: median {middle:.3f}, min {min(measured):.3f}, max {max(measured):.3f}"
            f"{versus}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- CPU per record

#: One in-process sync of the checkout the process runs in (``python -c`` from its root,
#: which Python imports first): stdout and stderr to /dev/null, then its times as JSON.
IN_PROCESS_SYNC = """
import json, os, sys, time
try:
    from tap_maesn_qonto.cli import tune_interpreter
except ImportError:  # before the command line's module had it
    from tap_maesn_qonto.tap import tune_interpreter
from tap_maesn_qonto.tap import TapMaesnQonto
tune_interpreter()
tap = TapMaesnQonto(config=json.loads(sys.argv[1]))
saved = os.dup(1), os.dup(2)
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 1)
os.dup2(devnull, 2)
wall, cpu, main = time.monotonic(), time.process_time(), time.thread_time()
tap.sync_all()
times = [time.monotonic() - wall, time.process_time() - cpu, time.thread_time() - main]
sys.stdout.flush()
os.dup2(saved[0], 1)
os.dup2(saved[1], 2)
print(json.dumps(times))
"""


@dataclass
class CpuRun:
    """One in-process sync: wall, CPU of the process and of its main thread (records)."""

    checkout: str
    records: int
    wall_s: float
    cpu_s: float
    main_thread_s: float

    def per_record_us(self, seconds: float) -> float:
        return seconds / self.records * 1e6


def cpu_runs(records: int, checkouts: Sequence[Checkout], runs: int) -> list[CpuRun]:
    """Each checkout's tap in its own process but without the command line, in turn.

    No interpreter start and no imports in the times: what a record costs. Records and
    the emulator as in the main mode (invoices, 0 ms).
    """
    measured: list[CpuRun] = []
    with (
        tempfile.TemporaryDirectory(prefix="tap-cpu-") as tmp,
        EmulatorProcess(Path(tmp), records=records) as emulator,
    ):
        config = json.dumps(measure.tap_config(emulator.url))
        for round_ in range(1, runs + 1):
            for checkout in checkouts:
                measure.note(f"{records} records in process, {checkout.label}, round {round_}")
                answer = subprocess.run(
                    [checkout.python, "-c", IN_PROCESS_SYNC, config],
                    cwd=checkout.root,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                wall, cpu, main = json.loads(answer.stdout.strip().splitlines()[-1])
                measured.append(CpuRun(checkout.label, records, wall, cpu, main))
    return measured


def format_cpu(measured: Sequence[CpuRun]) -> str:
    labels = list(dict.fromkeys(run.checkout for run in measured))
    columns = (
        "checkout",
        "runs",
        "main thread µs/record",
        "vs first",
        "process CPU µs/record",
        "vs first",
        "wall s",
        "every main thread µs/record",
    )

    def medians_of(label: str) -> tuple[float, float, float]:
        taken = [run for run in measured if run.checkout == label]
        return (
            measure.median([run.per_record_us(run.main_thread_s) for run in taken]),
            measure.median([run.per_record_us(run.cpu_s) for run in taken]),
            measure.median([run.wall_s for run in taken]),
        )

    first_main, first_cpu, _ = medians_of(labels[0])
    cells = []
    for index, label in enumerate(labels):
        main, cpu, wall = medians_of(label)
        taken = [run for run in measured if run.checkout == label]
        cells.append(
            [
                label,
                f"{len(taken)}",
                f"{main:.1f}",
                measure.ratio(main, first_main) if index else "",
                f"{cpu:.1f}",
                measure.ratio(cpu, first_cpu) if index else "",
                f"{wall:.2f}",
                ", ".join(f"{run.per_record_us(run.main_thread_s):.1f}" for run in taken),
            ]
        )
    records = measured[0].records if measured else 0
    return "\n".join(
        [
            f"{records} invoices at 0 ms, max_concurrency {measure.DEFAULT_CONCURRENCY}, each "
            "checkout's tap synced in its own process without the command line (no "
            "interpreter start, no imports), in turn; medians. The main thread does the "
            "records; the page-fetch threads are the rest of the process CPU.",
            "",
            measure.render_table(columns, cells),
        ]
    )


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


def short_location(function: tuple[str, int, str]) -> str:
    """``file:line(name)`` with the venv and checkout prefixes cut, so origins stay readable."""
    filename, line, name = function
    for marker in ("site-packages/", f"{measure.REPO_ROOT}/", "lib/python3."):
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
    from tap_maesn_qonto.tap import TapMaesnQonto  # noqa: PLC0415 - only this mode needs it

    tap = TapMaesnQonto(config=config)
    wall, process_cpu, thread_cpu = time.monotonic(), time.process_time(), time.thread_time()
    with measure.stdout_to_devnull_and_stderr_to(log_path):
        tap.sync_all()
    return SyncTimes(
        wall_s=time.monotonic() - wall,
        process_cpu_s=time.process_time() - process_cpu,
        main_thread_cpu_s=time.thread_time() - thread_cpu,
    )


def profile_body(records: int = PROFILE_RECORDS) -> str:
    """Time one in-process sync, then profile another: where the time goes."""
    with tempfile.TemporaryDirectory(prefix="tap-profile-") as tmp:
        workdir = Path(tmp)
        with EmulatorProcess(workdir, records=records) as emulator:
            config = measure.tap_config(emulator.url)
            # Unprofiled first: real CPU figures, and every import is done before profiling.
            plain = timed_sync(config, workdir / "tap-plain.log")
            before = emulator.request_count()
            with profile_all_threads() as profiles:
                profiled = timed_sync(config, workdir / "tap-profiled.log")
            requests_made = emulator.request_count() - before
    main_thread = pstats.Stats(profiles[0])
    fetch_threads = pstats.Stats(*profiles[1:]) if len(profiles) > 1 else None

    def per_record(seconds: float) -> str:
        return f"{seconds / records * 1e6:.0f} µs/record"

    fetch_cpu = plain.process_cpu_s - plain.main_thread_cpu_s
    parts = [
        f"Profile: {records} records at 0 ms, max_concurrency {measure.DEFAULT_CONCURRENCY}, "
        f"in-process, {requests_made} requests.\n"
        f"Without profiler: wall {plain.wall_s:.2f} s ({records / plain.wall_s:,.0f} records/s), "
        f"CPU {plain.process_cpu_s:.2f} s = {per_record(plain.process_cpu_s)}: main thread "
        f"(records) {per_record(plain.main_thread_cpu_s)}, page-fetch threads "
        f"{per_record(fetch_cpu)}.\n"
        f"Under the profiler: wall {profiled.wall_s:.2f} s, main thread CPU "
        f"{per_record(profiled.main_thread_cpu_s)}.\n"
        "Times below are the profiler's wall clock per thread. The threads share one GIL: the "
        "main thread's wall minus its CPU is time spent waiting for it, mostly inside "
        "FileIO.write (the one call per record that releases the GIL).",
        f"Main thread (records), top {PROFILE_TOP} by tottime (own time):\n\n```\n"
        f"{format_profile(main_thread, 'tottime', records)}\n```",
        f"Main thread (records), top {PROFILE_TOP} by cumulative time:\n\n```\n"
        f"{format_profile(main_thread, 'cumulative', records)}\n```",
    ]
    if fetch_threads is not None:
        parts.append(
            f"Page-fetch threads merged, top {PROFILE_TOP} by tottime (includes waiting for "
            f"the emulator, for work and for the GIL):\n\n```\n"
            f"{format_profile(fetch_threads, 'tottime', records)}\n```"
        )
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.single", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--records", type=int, nargs="+", help="data sizes (default: the full set)")
    parser.add_argument("--latencies", type=float, nargs="+", help="latencies in ms")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=tuple(MODES),
        default=list(MODES),
        help="max_concurrency 1 (sequential) and/or the default (concurrent)",
    )
    parser.add_argument(
        "--previous",
        type=Path,
        help="another checkout (git worktree add DIR REV; uv sync --locked in DIR): its tap "
        "runs in turn with this one on the same emulator (also for --startup)",
    )
    parser.add_argument(
        "--runs", type=int, help="rounds of every run (default 1; --startup: 5), medians compared"
    )
    parser.add_argument("--startup", action="store_true", help="the command to its first request")
    parser.add_argument(
        "--reconcile",
        action="store_true",
        help="a reconcile run against a full sync's limit (default: 20 000 records at 100 ms)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one in-process sync")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="CPU per record of an in-process sync (default 50 000 records, 5 runs), "
        "with --previous in turn",
    )
    measure.add_report_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        mode, checkouts = "single-profile", [Checkout.this()]
    elif args.reconcile:
        mode, checkouts = "single-reconcile", [Checkout.this()]
    elif args.cpu:
        mode, checkouts = "single-cpu", measure.checkouts(args.previous)
    else:
        mode = "single-startup" if args.startup else "single"
        checkouts = measure.checkouts(args.previous)
    report = Report.from_args(args, mode, "benchmarks.single", argv, checkouts)
    if args.profile:
        body = profile_body()
    elif args.reconcile:
        body = reconcile_body(args.records or [20_000], args.latencies or [100.0])
    elif args.cpu:
        body = format_cpu(cpu_runs((args.records or [50_000])[0], checkouts, args.runs or 5))
    elif args.startup:
        body = format_startup(startup_times(args.runs or 5, checkouts))
    else:
        sizes, latencies = (
            (QUICK_SIZES, QUICK_LATENCIES_MS) if args.quick else (FULL_SIZES, FULL_LATENCIES_MS)
        )
        rows = run_benchmark(
            args.records or sizes,
            args.latencies or latencies,
            checkouts,
            runs=args.runs or 1,
            modes=args.modes,
        )
        body = format_report(rows)
    report.finish(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
