"""This tap beside a generic peer, tap-rest-api-msdk, on the same emulator data, one after the other.

    uv run python scripts/benchmark.py --peer                                # 28 000 at 0, 100 ms
    uv run python scripts/benchmark.py --peer --records 3000 --latencies 0 50

The peer is installed on first use into its own virtualenv, ``.bench/peer-venv`` (git-ignored),
with ``uv venv`` and ``uv pip install`` at the pinned version below, and configured for Maesn as
a user would (``peer_config``): both key headers, ``limit=100``, ``$.data[*]`` records, ``id``
key, ``updatedDate`` replication key sent as ``lastModifiedAt``, and page-number paging that
reads Maesn's ``meta.pagination`` (pages left = ``totalPages - currentPage``). It infers each
stream's schema from one request at start, as it does when no schema is given.

The records are the emulator's default ones (addresses, line items), split evenly over
invoices, bills and booking proposals. Both clients run as their own process, measured by
``benchmark.run_measured`` (wall, CPU and peak RSS from ``os.wait4``); the stdout of both goes
through the same pipe into this process, which counts the RECORD messages per stream. A run
whose counts differ from the emulator's is reported INCOMPLETE, and no speed is given for it.

Timings are for reading, never asserted.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchmark as bench
import msgspec
import requests

PEER_PACKAGE = "tap-rest-api-msdk"
PEER_VERSION = "1.4.2"
# singer-sdk 0.40 (the peer's) imports ``fs``, which imports pkg_resources: a venv made by
# ``uv venv`` has no setuptools (``python -m venv`` would), so the peer does not start without it.
PEER_EXTRAS = ("setuptools==80.10.2",)
PEER_VENV = bench.REPO_ROOT / ".bench" / "peer-venv"

DEFAULT_RECORDS = (28_000,)
DEFAULT_LATENCIES_MS = (0.0, 100.0)
# stream name (the tap's, and the peer's as configured here) -> the emulator's resource name
STREAMS = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}
TARGET_LATENCY_MS, TARGET_PEER_RATIO, TARGET_WALL_PER_LIMIT = 100, 5.0, 1.2


# --------------------------------------------------------------------------- the peer


def peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def installed_version(distribution: str) -> str | None:
    if not peer_python().exists():
        return None
    probe = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    result = subprocess.run(
        [str(peer_python()), "-c", probe], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_peer() -> str:
    """The peer's virtualenv, made once (again if the pin changed); returns its versions."""
    if installed_version(PEER_PACKAGE) != PEER_VERSION:
        uv = shutil.which("uv")
        if uv is None:
            raise bench.BenchmarkError("uv is not on PATH: source scripts/bootstrap.sh first")
        print(f"... installing {PEER_PACKAGE}=={PEER_VERSION} into {PEER_VENV}", file=sys.stderr)
        subprocess.run(
            [uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(PEER_VENV)],
            check=True,
        )
        packages = [f"{PEER_PACKAGE}=={PEER_VERSION}", *PEER_EXTRAS]
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(peer_python()), *packages],
            check=True,
        )
    return f"{PEER_PACKAGE} {PEER_VERSION} (singer-sdk {installed_version('singer-sdk')})"


def peer_config(url: str) -> dict[str, Any]:
    """tap-rest-api-msdk set up for Maesn from its README, nothing tuned for speed."""
    return {
        "api_url": url,
        "headers": {
            "X-API-KEY": bench.API_KEY,
            "X-ACCOUNT-KEY": bench.ACCOUNT_KEY,
            "Accept": "application/json",
        },
        "params": {"limit": bench.PAGE_SIZE},
        "pagination_request_style": "page_number_paginator",
        "pagination_response_style": "page",
        "pagination_initial_offset": 1,
        # has_more is this value: pages left after the current one, 0 (falsy) on the last page
        "next_page_token_path": "$.meta.pagination.totalPages - $.meta.pagination.currentPage",
        "records_path": "$.data[*]",
        "primary_keys": ["id"],
        "replication_key": "updatedDate",
        "source_search_field": "lastModifiedAt",
        "source_search_query": "$last_run_date",
        "start_date": bench.START_DATE,
        "streams": [
            {"name": stream, "path": f"/accounting/{resource}"}
            for stream, resource in STREAMS.items()
        ],
    }


# --------------------------------------------------------------------------- measured runs


class _Message(msgspec.Struct):
    type: str
    stream: str = ""


def count_records(read_fd: int, counts: Counter[str], first_record_at: list[float]) -> None:
    """Count RECORD messages per stream on ``read_fd`` until EOF (other lines are skipped).

    ``first_record_at`` gets the monotonic time the first RECORD line arrived.
    """
    decode = msgspec.json.Decoder(_Message).decode
    with os.fdopen(read_fd, "rb", buffering=1 << 20) as pipe:
        for line in pipe:
            try:
                message = decode(line)
            except msgspec.DecodeError:
                counts["(not a message)"] += 1
                continue
            if message.type == "RECORD":
                if not first_record_at:
                    first_record_at.append(time.monotonic())
                counts[message.stream] += 1


@dataclass
class Run:
    """One client's read of every stream: what ``os.wait4`` and the record counter saw."""

    client: str
    usage: bench.ProcessUsage
    requests: int
    counts: dict[str, int]
    expected: dict[str, int]
    #: Seconds from the process's start to its first RECORD line (start-up and first pages).
    first_record_s: float | None = None
    stderr_tail: str = ""

    @property
    def complete(self) -> bool:
        read = {stream: self.counts.get(stream, 0) for stream in self.expected}
        return self.usage.exit_code == 0 and read == self.expected

    @property
    def other_records(self) -> dict[str, int]:
        """Records of streams other than the three (the tap's line-item child streams)."""
        return {s: n for s, n in self.counts.items() if s not in self.expected}

    @property
    def records_per_s(self) -> float:
        return sum(self.expected.values()) / self.usage.wall_s

    def problem(self) -> str:
        if self.usage.exit_code != 0:
            return f"FAILED (exit {self.usage.exit_code})"
        read = sum(self.counts.get(stream, 0) for stream in self.expected)
        expected = sum(self.expected.values())
        return f"INCOMPLETE ({read} of {expected})"


def run_counted(
    client: str,
    argv: Sequence[str],
    emulator: bench.EmulatorProcess,
    workdir: Path,
    cwd: Path = bench.REPO_ROOT,
) -> Run:
    """Run ``argv`` with its stdout counted by a thread of this process, measured like the tap."""
    read_fd, write_fd = os.pipe()
    counts: Counter[str] = Counter()
    first_record_at: list[float] = []
    reader = threading.Thread(target=count_records, args=(read_fd, counts, first_record_at))
    reader.start()
    stderr_path = workdir / f"{client}-stderr.log"
    before = emulator.request_count()
    started = time.monotonic()
    try:
        with stderr_path.open("wb") as stderr:
            usage = bench.run_measured(argv, stderr, stdout=write_fd, cwd=cwd)
    finally:
        os.close(write_fd)  # the child's copy is closed: the reader sees EOF
        reader.join()
    run = Run(
        client=client,
        usage=usage,
        requests=emulator.request_count() - before,
        counts=dict(counts),
        expected={stream: emulator.counts[resource] for stream, resource in STREAMS.items()},
        first_record_s=first_record_at[0] - started if first_record_at else None,
    )
    if not run.complete:
        run.stderr_tail = stderr_path.read_text(errors="replace")[-3000:]
    return run


def run_tap(
    emulator: bench.EmulatorProcess, workdir: Path, checkout: Path = bench.REPO_ROOT
) -> Run:
    """The tap of ``checkout`` (``python -m`` from there runs that checkout's package)."""
    config_path = workdir / "tap-config.json"
    config_path.write_text(json.dumps(bench.tap_config(emulator.url, bench.DEFAULT_CONCURRENCY)))
    argv = [sys.executable, "-m", "tap_maesn_qonto", "--config", str(config_path)]
    return run_counted("tap", argv, emulator, workdir, cwd=checkout)


def run_peer(emulator: bench.EmulatorProcess, workdir: Path) -> Run:
    config_path = workdir / "peer-config.json"
    config_path.write_text(json.dumps(peer_config(emulator.url), indent=2))
    argv = [str(PEER_VENV / "bin" / "tap-rest-api-msdk"), "--config", str(config_path)]
    return run_counted("peer", argv, emulator, workdir)


# --------------------------------------------------------------------------- data


def split_counts(records: int) -> dict[str, int]:
    """``records`` over the three resources, as evenly as can be (the first ones get the rest)."""
    share, rest = divmod(records, len(STREAMS))
    return {resource: share + (i < rest) for i, resource in enumerate(STREAMS.values())}


def total_pages(counts: dict[str, int]) -> int:
    return sum(math.ceil(n / bench.PAGE_SIZE) for n in counts.values())


def whole_run_limit_s(counts: dict[str, int], latency_ms: float) -> float:
    """Waiting alone: rounds of ``max_concurrency`` pages over all streams, a latency each."""
    return math.ceil(total_pages(counts) / bench.DEFAULT_CONCURRENCY) * latency_ms / 1000


def warm_up(emulator: bench.EmulatorProcess) -> float:
    """Build every view either client asks for; returns the mean JSON bytes of a record.

    The mean is over the first page of each stream, each record encoded compactly.
    """
    peer_query: dict[str, str | int] = {
        "limit": bench.PAGE_SIZE,
        "lastModifiedAt": bench.START_DATE,
    }
    sizes: list[int] = []
    for name in STREAMS.values():
        for params in (bench.list_params(page=1), peer_query):
            response = requests.get(
                f"{emulator.url}/accounting/{name}",
                params=params,
                headers=bench.api_headers(),
                timeout=60,
            )
            response.raise_for_status()
        sizes += [len(msgspec.json.encode(record)) for record in response.json()["data"]]
    return sum(sizes) / len(sizes)


# --------------------------------------------------------------------------- report


@dataclass
class Pair:
    """The tap and the peer at one (records, latency)."""

    latency_ms: float
    counts: dict[str, int]
    tap: Run
    peer: Run
    bytes_per_record: float

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    @property
    def limit_s(self) -> float:
        return whole_run_limit_s(self.counts, self.latency_ms)

    @property
    def peer_per_tap(self) -> float | None:
        if not (self.tap.complete and self.peer.complete):
            return None
        return self.peer.usage.wall_s / self.tap.usage.wall_s


COLUMNS = (
    "latency ms",
    "records",
    "tap wall s",
    "tap CPU s",
    "tap RSS MB",
    "tap requests",
    "tap records/s",
    "tap first record s",
    "peer wall s",
    "peer CPU s",
    "peer RSS MB",
    "peer requests",
    "peer records/s",
    "peer wall/tap wall",
    "limit s",
    "tap wall/limit",
)


def run_cells(run: Run) -> list[str]:
    if not run.complete:
        return [run.problem(), "-", "-", f"{run.requests}", "-"]
    return [
        f"{run.usage.wall_s:.2f}",
        f"{run.usage.cpu_s:.2f}",
        f"{run.usage.peak_rss_mb:.1f}",
        f"{run.requests}",
        f"{run.records_per_s:,.0f}",
    ]


def first_record_cell(run: Run) -> str:
    return "-" if run.first_record_s is None else f"{run.first_record_s:.2f}"


def format_pairs(pairs: Sequence[Pair]) -> str:
    cells = []
    for pair in pairs:
        ratio = pair.peer_per_tap
        limit = pair.limit_s
        tap_per_limit = pair.tap.usage.wall_s / limit if limit and pair.tap.complete else None
        cells.append(
            [
                f"{pair.latency_ms:g}",
                f"{pair.records}",
                *run_cells(pair.tap),
                first_record_cell(pair.tap),
                *run_cells(pair.peer),
                "-" if ratio is None else f"{ratio:.2f}",
                f"{limit:.2f}" if limit else "-",
                "-" if tap_per_limit is None else f"{tap_per_limit:.2f}",
            ]
        )
    return bench.render_table(COLUMNS, cells)


def format_peer_target(pairs: Sequence[Pair]) -> str:
    """The issue's target beside what this run measured; reported, never enforced."""
    lines = ["Target:"]
    for pair in pairs:
        if pair.latency_ms != TARGET_LATENCY_MS:
            continue
        ratio = pair.peer_per_tap
        verdict = (
            "not measured (a run was incomplete)"
            if ratio is None
            else ("met" if ratio >= TARGET_PEER_RATIO else "NOT MET")
        )
        measured = "-" if ratio is None else f"{ratio:.2f}x"
        lines.append(
            f"  {TARGET_LATENCY_MS} ms, {pair.records} records, peer wall / tap wall >= "
            f"{TARGET_PEER_RATIO:g}: {measured} -> {verdict}"
        )
        per_limit = pair.tap.usage.wall_s / pair.limit_s if pair.tap.complete else None
        lines.append(
            f"  {TARGET_LATENCY_MS} ms, {pair.records} records, tap wall / limit <= "
            f"{TARGET_WALL_PER_LIMIT:g}: "
            + (
                "not measured (the run was incomplete)"
                if per_limit is None
                else f"{per_limit:.2f} -> {'met' if per_limit <= TARGET_WALL_PER_LIMIT else 'NOT MET'}"
            )
        )
    if len(lines) == 1:
        lines.append(f"  {TARGET_LATENCY_MS} ms: not measured in this run")
    return "\n".join(lines)


def print_peer_report(pairs: Sequence[Pair], peer: str) -> None:
    print(
        f"Tap: this checkout, default settings (max_concurrency {bench.DEFAULT_CONCURRENCY}, "
        f"page_size {bench.PAGE_SIZE}). Peer: {peer}, {PEER_VENV}."
    )
    for records in dict.fromkeys(pair.records for pair in pairs):
        pair = next(p for p in pairs if p.records == records)
        split = " + ".join(f"{n} {name}" for name, n in pair.counts.items())
        print(
            f"Data: {records} records = {split}, {total_pages(pair.counts)} pages of "
            f"{bench.PAGE_SIZE}; {pair.bytes_per_record:,.0f} JSON bytes per record on average "
            "(first page of each stream)."
        )
    print(
        "Both clients' stdout is read through a pipe by this script, which counts RECORD "
        "messages per stream; limit = ceil(pages / max_concurrency) * latency.\n"
    )
    print(format_pairs(pairs))
    print()
    print(format_peer_target(pairs))
    for pair in pairs:
        for run in (pair.tap, pair.peer):
            if run.other_records:
                print(
                    f"\n{run.client} at {pair.latency_ms:g} ms also emitted, beyond the "
                    f"{pair.records} records counted: {run.other_records}"
                )
            if not run.complete:
                print(
                    f"\n{run.client} at {pair.latency_ms:g} ms, {pair.records} records: "
                    f"{run.problem()}, counts {run.counts} (expected {run.expected}); "
                    f"stderr ends with:\n{run.stderr_tail}"
                )


# --------------------------------------------------------------------------- command line


def run_peer_benchmark(sizes: Sequence[int], latencies_ms: Sequence[float]) -> list[Pair]:
    """Every (size, latency): the tap, then the peer; one emulator per size."""
    pairs: list[Pair] = []
    with tempfile.TemporaryDirectory(prefix="tap-peer-benchmark-") as tmp:
        workdir = Path(tmp)
        for records in sizes:
            counts = split_counts(records)
            print(f"... starting an emulator with {counts}", file=sys.stderr)
            with bench.EmulatorProcess(records, workdir, counts) as emulator:
                bytes_per_record = warm_up(emulator)
                for latency_ms in latencies_ms:
                    emulator.set_latency(latency_ms)
                    print(f"... {records} records, {latency_ms:g} ms, tap", file=sys.stderr)
                    tap = run_tap(emulator, workdir)
                    print(f"... {records} records, {latency_ms:g} ms, peer", file=sys.stderr)
                    peer = run_peer(emulator, workdir)
                    pairs.append(Pair(latency_ms, counts, tap, peer, bytes_per_record))
    return pairs


# --------------------------------------------------------------------------- timeline


def timeline_main(records: int, latency_ms: float) -> int:
    """``benchmark.py --timeline``: the tap alone, in process, every request's time on the wire.

    In process, so its wall time has no interpreter start in it; the line of in-flight counts
    (requests out at the middle of each 50 ms) shows where the network idled. Same data,
    settings and limit as ``--peer``.
    """
    from tap_maesn_qonto.cli import tune_interpreter  # noqa: PLC0415
    from tap_maesn_qonto.tap import TapMaesnQonto  # noqa: PLC0415

    tune_interpreter()  # as the command line does

    counts = split_counts(records)
    sent: list[tuple[float, float]] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="tap-timeline-") as tmp:
        workdir = Path(tmp)
        with bench.EmulatorProcess(records, workdir, counts) as emulator:
            warm_up(emulator)
            emulator.set_latency(latency_ms)
            config = bench.tap_config(emulator.url, bench.DEFAULT_CONCURRENCY)
            tap = TapMaesnQonto(config=config)
            session = tap.run.session
            send = session.send

            def timed_send(*args: Any, **kwargs: Any) -> requests.Response:
                started = time.monotonic()
                try:
                    return send(*args, **kwargs)
                finally:
                    with lock:
                        sent.append((started, time.monotonic()))

            session.send = timed_send  # type: ignore[method-assign]
            with bench.stdout_to_devnull_and_stderr_to(workdir / "tap.log"):
                started = time.monotonic()
                tap.sync_all()
                wall = time.monotonic() - started
    limit = whole_run_limit_s(counts, latency_ms)
    moments = [started + (index + 0.5) * 0.05 for index in range(math.ceil(wall / 0.05))]
    busy = [sum(begin <= moment < end for begin, end in sent) for moment in moments]
    print(
        f"{records} records over three streams at {latency_ms:g} ms, in process: wall "
        f"{wall:.2f} s, limit {limit:.2f} s ({wall / limit:.3f}x), {len(sent)} requests for "
        f"{total_pages(counts)} pages; max_concurrency {bench.DEFAULT_CONCURRENCY}."
    )
    on_wire_ms = sorted((end - begin) * 1000 for begin, end in sent)
    print(
        f"Each request on the wire (sent to answer read): median "
        f"{statistics.median(on_wire_ms):.1f} ms, mean {statistics.mean(on_wire_ms):.1f} ms."
    )
    print("Requests in flight at the middle of each 50 ms:")
    print(" ".join(str(count) for count in busy))
    return 0


def alternate_main(previous: Path, runs: int, records: int, latency_ms: float) -> int:
    """``benchmark.py --alternate --previous DIR``: this checkout's tap and DIR's, in turn.

    The --peer data, on one emulator, runs interleaved, so a machine whose speed drifts
    (this one does) moves both alike; medians are compared. 1 when a run was incomplete.
    """
    counts = split_counts(records)
    checkouts = bench.checkouts(previous)
    walls: dict[str, list[float]] = {label: [] for label in checkouts}
    limit = whole_run_limit_s(counts, latency_ms)
    with tempfile.TemporaryDirectory(prefix="tap-alternate-") as tmp:
        workdir = Path(tmp)
        with bench.EmulatorProcess(records, workdir, counts) as emulator:
            warm_up(emulator)
            emulator.set_latency(latency_ms)
            for _ in range(runs):
                for label, checkout in checkouts.items():
                    run = run_tap(emulator, workdir, checkout)
                    if not run.complete:
                        print(f"{label}: {run.problem()}\n{run.stderr_tail}")
                        return 1
                    walls[label].append(run.usage.wall_s)
    print(
        f"{records} records over three streams at {latency_ms:g} ms, {runs} runs each, "
        f"alternating; limit {limit:.2f} s:"
    )
    for label, measured in walls.items():
        median = statistics.median(measured)
        print(
            f"  {label}: median {median:.2f} s ({median / limit:.3f}x the limit), "
            f"runs {', '.join(f'{wall:.2f}' for wall in measured)}"
        )
    return 0


def main(sizes: Sequence[int] | None = None, latencies_ms: Sequence[float] | None = None) -> int:
    """``benchmark.py --peer``; 1 when a run was incomplete (the report says which)."""
    sizes = sizes or DEFAULT_RECORDS
    if min(sizes) < len(STREAMS):
        # The peer never stops on an empty stream: totalPages - currentPage is -1 there.
        raise bench.BenchmarkError(f"--peer needs at least {len(STREAMS)} records per size")
    started = time.monotonic()
    peer = ensure_peer()
    pairs = run_peer_benchmark(sizes, latencies_ms or DEFAULT_LATENCIES_MS)
    print_peer_report(pairs, peer)
    print(f"\n(benchmark took {time.monotonic() - started:.0f} s)")
    return 0 if all(p.tap.complete and p.peer.complete for p in pairs) else 1


if __name__ == "__main__":
    sys.exit(bench.main(["--peer", *sys.argv[1:]]))
