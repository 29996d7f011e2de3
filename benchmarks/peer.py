"""The tap on three streams: beside a generic peer, in process, or two checkouts in turn.

    uv run python -m benchmarks.peer                  # beside tap-rest-api-msdk: 28 000 at 0, 100 ms
    uv run python -m benchmarks.peer --records 3000 --latencies 0 50
    uv run python -m benchmarks.peer --timeline       # tap only, in process, 100 ms: requests in flight
    uv run python -m benchmarks.peer --alternate --previous DIR --runs 5   # two checkouts in turn

The data are the emulator's default records (addresses, line items), split evenly over
invoices, bills and booking proposals; pages of 100. Every client's stdout goes through a
pipe into this process, which counts the RECORD messages per stream; a run whose counts
differ from the emulator's is reported INCOMPLETE, and no speed is given for it. The
whole-run limit is ``ceil(pages / max_concurrency) * latency`` over all three streams.

The peer, tap-rest-api-msdk, is installed on first use into its own virtualenv,
``.bench/peer-venv`` (git-ignored), with ``uv venv`` and ``uv pip install`` at the pinned
version below, and configured for Maesn as a user would (:func:`peer_config`): both key
headers, ``limit=100``, ``$.data[*]`` records, ``id`` key, ``updatedDate`` replication key
sent as ``lastModifiedAt``, and page-number paging that reads Maesn's ``meta.pagination``
(pages left = ``totalPages - currentPage``). It infers each stream's schema from one
request at start, as it does when no schema is given.

``--alternate`` runs this checkout's tap and ``--previous DIR``'s (its own ``.venv``) in
turn on one emulator, so a machine whose speed drifts moves both alike; medians compared.
``--timeline`` runs this checkout's tap in this process (no interpreter start in its wall)
and prints how many requests were in flight at the middle of each 50 ms.

Timings are for reading, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import requests

from benchmarks import measure
from benchmarks.measure import Checkout, CountedRun, EmulatorProcess, Report

PEER_PACKAGE = "tap-rest-api-msdk"
PEER_VERSION = "1.4.2"
# singer-sdk 0.40 (the peer's) imports ``fs``, which imports pkg_resources: a venv made by
# ``uv venv`` has no setuptools (``python -m venv`` would), so the peer does not start without it.
PEER_EXTRAS = ("setuptools==80.10.2",)
PEER_VENV = measure.REPO_ROOT / ".bench" / "peer-venv"

DEFAULT_RECORDS = 28_000
DEFAULT_LATENCIES_MS = (0.0, 100.0)
# stream name (the tap's, and the peer's as configured here) -> the emulator's resource name
STREAMS = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}
TARGET_LATENCY_MS, TARGET_PEER_RATIO, TARGET_WALL_PER_LIMIT = 100, 5.0, 1.2
TIMELINE_STEP_S = 0.05


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
            raise measure.BenchmarkError("uv is not on PATH: source scripts/bootstrap.sh first")
        measure.note(f"installing {PEER_PACKAGE}=={PEER_VERSION} into {PEER_VENV}")
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
        "headers": measure.api_headers(),
        "params": {"limit": measure.PAGE_SIZE},
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
        "start_date": measure.START_DATE,
        "streams": [
            {"name": stream, "path": f"/accounting/{resource}"}
            for stream, resource in STREAMS.items()
        ],
    }


# --------------------------------------------------------------------------- measured runs


@dataclass
class Run:
    """One client's read of every stream: what ``os.wait4`` and the record counter saw."""

    client: str
    counted: CountedRun
    requests: int
    expected: dict[str, int]

    @property
    def usage(self) -> measure.ProcessUsage:
        return self.counted.usage

    @property
    def counts(self) -> dict[str, int]:
        return self.counted.counts

    @property
    def first_record_s(self) -> float | None:
        return self.counted.first_record_s

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
    client: str, argv: Sequence[str], emulator: EmulatorProcess, workdir: Path, cwd: Path
) -> Run:
    before = emulator.request_count()
    counted = measure.run_counted(argv, workdir / f"{client}-stderr.log", cwd=cwd)
    return Run(
        client=client,
        counted=counted,
        requests=emulator.request_count() - before,
        expected={stream: emulator.counts[resource] for stream, resource in STREAMS.items()},
    )


def run_tap(emulator: EmulatorProcess, workdir: Path, checkout: Checkout) -> Run:
    """``checkout``'s tap with default settings."""
    config_path = workdir / "tap-config.json"
    config_path.write_text(json.dumps(measure.tap_config(emulator.url)))
    return run_counted("tap", checkout.tap_argv(config_path), emulator, workdir, checkout.root)


def run_peer(emulator: EmulatorProcess, workdir: Path) -> Run:
    config_path = workdir / "peer-config.json"
    config_path.write_text(json.dumps(peer_config(emulator.url), indent=2))
    argv = [str(PEER_VENV / "bin" / "tap-rest-api-msdk"), "--config", str(config_path)]
    return run_counted("peer", argv, emulator, workdir, measure.REPO_ROOT)


# --------------------------------------------------------------------------- data


def split_counts(records: int) -> dict[str, int]:
    """``records`` over the three resources, as evenly as can be (the first ones get the rest)."""
    share, rest = divmod(records, len(STREAMS))
    return {resource: share + (i < rest) for i, resource in enumerate(STREAMS.values())}


def total_pages(counts: dict[str, int]) -> int:
    return sum(measure.pages_for(n) for n in counts.values())


def whole_run_limit_s(counts: dict[str, int], latency_ms: float) -> float:
    """Waiting alone: rounds of ``max_concurrency`` pages over all streams, a latency each."""
    return math.ceil(total_pages(counts) / measure.DEFAULT_CONCURRENCY) * latency_ms / 1000


def warm_up(emulator: EmulatorProcess) -> float:
    """Build every view either client asks for; returns the mean JSON bytes of a record.

    The mean is over the first page of each stream, each record encoded compactly.
    """
    peer_query: dict[str, str | int] = {
        "limit": measure.PAGE_SIZE,
        "lastModifiedAt": measure.START_DATE,
    }
    sizes: list[int] = []
    for name in STREAMS.values():
        for params in (measure.list_params(page=1), peer_query):
            body = emulator.get(name, params)
        sizes += [len(msgspec.json.encode(record)) for record in body["data"]]
    return sum(sizes) / len(sizes)


def data_line(counts: dict[str, int], bytes_per_record: float | None = None) -> str:
    split = " + ".join(f"{n} {name}" for name, n in counts.items())
    size = (
        f"; {bytes_per_record:,.0f} JSON bytes per record on average (first page of each stream)"
        if bytes_per_record
        else ""
    )
    return (
        f"Data: {sum(counts.values())} records = {split}, {total_pages(counts)} pages of "
        f"{measure.PAGE_SIZE}{size}."
    )


# --------------------------------------------------------------------------- beside the peer


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
    return measure.render_table(COLUMNS, cells)


def format_peer_target(pairs: Sequence[Pair]) -> str:
    """The issue's targets beside what this run measured; reported, never enforced."""
    lines = ["Targets:"]
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


def format_peer_report(pairs: Sequence[Pair], peer: str) -> str:
    lines = [
        f"Tap: this checkout, default settings (max_concurrency {measure.DEFAULT_CONCURRENCY}, "
        f"page_size {measure.PAGE_SIZE}). Peer: {peer}, {PEER_VENV}."
    ]
    for records in dict.fromkeys(pair.records for pair in pairs):
        pair = next(p for p in pairs if p.records == records)
        lines.append(data_line(pair.counts, pair.bytes_per_record))
    lines += ["", format_pairs(pairs), "", format_peer_target(pairs)]
    for pair in pairs:
        for run in (pair.tap, pair.peer):
            if run.other_records:
                lines.append(
                    f"\n{run.client} at {pair.latency_ms:g} ms also emitted, beyond the "
                    f"{pair.records} records counted: {run.other_records}"
                )
            if not run.complete:
                lines.append(
                    f"\n{run.client} at {pair.latency_ms:g} ms, {pair.records} records: "
                    f"{run.problem()}, counts {run.counts} (expected {run.expected}); "
                    f"stderr ends with:\n```\n{run.counted.stderr_tail()}\n```"
                )
    return "\n".join(lines)


def run_peer_benchmark(sizes: Sequence[int], latencies_ms: Sequence[float]) -> list[Pair]:
    """Every (size, latency): the tap, then the peer; one emulator per size."""
    pairs: list[Pair] = []
    this = Checkout.this()
    with tempfile.TemporaryDirectory(prefix="tap-peer-benchmark-") as tmp:
        workdir = Path(tmp)
        for records in sizes:
            counts = split_counts(records)
            measure.note(f"starting an emulator with {counts}")
            with EmulatorProcess(workdir, counts=counts) as emulator:
                bytes_per_record = warm_up(emulator)
                for latency_ms in latencies_ms:
                    emulator.set_latency(latency_ms)
                    measure.note(f"{records} records, {latency_ms:g} ms, tap")
                    tap = run_tap(emulator, workdir, this)
                    measure.note(f"{records} records, {latency_ms:g} ms, peer")
                    peer = run_peer(emulator, workdir)
                    pairs.append(Pair(latency_ms, counts, tap, peer, bytes_per_record))
    return pairs


# --------------------------------------------------------------------------- timeline


def in_flight(sent: Sequence[tuple[float, float]], started: float, wall: float) -> list[int]:
    """Requests out at the middle of each ``TIMELINE_STEP_S`` from ``started``."""
    steps = math.ceil(wall / TIMELINE_STEP_S)
    moments = [started + (index + 0.5) * TIMELINE_STEP_S for index in range(steps)]
    return [sum(begin <= moment < end for begin, end in sent) for moment in moments]


def timeline_body(records: int, latency_ms: float) -> str:
    """This checkout's tap in process, every request's time on the wire.

    In process, so its wall time has no interpreter start in it; the line of in-flight counts
    (requests out at the middle of each 50 ms) shows where the network idled.
    """
    from tap_maesn_qonto.cli import tune_interpreter  # noqa: PLC0415 - only this mode
    from tap_maesn_qonto.tap import TapMaesnQonto  # noqa: PLC0415

    tune_interpreter()  # as the command line does

    counts = split_counts(records)
    sent: list[tuple[float, float]] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="tap-timeline-") as tmp:
        workdir = Path(tmp)
        with EmulatorProcess(workdir, counts=counts) as emulator:
            warm_up(emulator)
            emulator.set_latency(latency_ms)
            tap = TapMaesnQonto(config=measure.tap_config(emulator.url))
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
            with measure.stdout_to_devnull_and_stderr_to(workdir / "tap.log"):
                started = time.monotonic()
                tap.sync_all()
                wall = time.monotonic() - started
    limit = whole_run_limit_s(counts, latency_ms)
    busy = in_flight(sent, started, wall)
    on_wire_ms = sorted((end - begin) * 1000 for begin, end in sent)
    return "\n".join(
        [
            data_line(counts),
            f"At {latency_ms:g} ms, in process: wall {wall:.2f} s, limit {limit:.2f} s "
            f"({wall / limit:.3f}x), {len(sent)} requests for {total_pages(counts)} pages; "
            f"max_concurrency {measure.DEFAULT_CONCURRENCY}.",
            f"Each request on the wire (sent to answer read): median "
            f"{statistics.median(on_wire_ms):.1f} ms, mean {statistics.mean(on_wire_ms):.1f} ms.",
            f"Slots of {TIMELINE_STEP_S * 1000:.0f} ms with fewer than "
            f"{measure.DEFAULT_CONCURRENCY} requests in flight: "
            f"{sum(n < measure.DEFAULT_CONCURRENCY for n in busy)} of {len(busy)}.",
            f"Requests in flight at the middle of each {TIMELINE_STEP_S * 1000:.0f} ms:",
            "",
            "```",
            " ".join(str(count) for count in busy),
            "```",
        ]
    )


# --------------------------------------------------------------------------- alternate


def alternate_body(
    checkouts: Sequence[Checkout], runs: int, records: int, latency_ms: float
) -> str:
    """The checkouts' taps in turn, ``runs`` times each, on one emulator; medians compared."""
    counts = split_counts(records)
    measured: dict[str, list[Run]] = {checkout.label: [] for checkout in checkouts}
    limit = whole_run_limit_s(counts, latency_ms)
    with tempfile.TemporaryDirectory(prefix="tap-alternate-") as tmp:
        workdir = Path(tmp)
        with EmulatorProcess(workdir, counts=counts) as emulator:
            warm_up(emulator)
            emulator.set_latency(latency_ms)
            for round_ in range(1, runs + 1):
                for checkout in checkouts:
                    measure.note(f"{checkout.label}, round {round_} of {runs}")
                    run = run_tap(emulator, workdir, checkout)
                    if not run.complete:
                        raise measure.BenchmarkError(
                            f"{checkout.label}: {run.problem()}\n{run.counted.stderr_tail()}"
                        )
                    measured[checkout.label].append(run)
    columns = (
        "checkout",
        "runs",
        "median wall s",
        "wall/limit",
        "vs first",
        "median CPU s",
        "median peak RSS MB",
        "requests",
        "first record s",
        "every wall s",
    )
    cells = []
    first = measure.median([r.usage.wall_s for r in next(iter(measured.values()))])
    for index, (label, taken) in enumerate(measured.items()):
        wall = measure.median([r.usage.wall_s for r in taken])
        firsts = [r.first_record_s for r in taken if r.first_record_s is not None]
        cells.append(
            [
                label,
                f"{len(taken)}",
                f"{wall:.2f}",
                f"{wall / limit:.3f}" if limit else "-",
                measure.ratio(wall, first) if index else "",
                f"{measure.median([r.usage.cpu_s for r in taken]):.2f}",
                f"{measure.median([r.usage.peak_rss_mb for r in taken]):.1f}",
                "/".join(str(n) for n in sorted({r.requests for r in taken})),
                f"{measure.median(firsts):.2f}" if firsts else "-",
                ", ".join(f"{r.usage.wall_s:.2f}" for r in taken),
            ]
        )
    return "\n".join(
        [
            data_line(counts),
            f"At {latency_ms:g} ms, default settings, {runs} runs each, in turn on one emulator; "
            f"whole-run limit {limit:.2f} s (ceil(pages / {measure.DEFAULT_CONCURRENCY}) x "
            "latency).",
            "",
            measure.render_table(columns, cells),
        ]
    )


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peer", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--records", type=int, nargs="+", help=f"data sizes (default {DEFAULT_RECORDS})"
    )
    parser.add_argument(
        "--latencies", type=float, nargs="+", help="latencies in ms (default 0 100; else 100)"
    )
    parser.add_argument(
        "--timeline", action="store_true", help="this tap in process: requests in flight"
    )
    parser.add_argument(
        "--alternate", action="store_true", help="this checkout's tap and --previous DIR's in turn"
    )
    parser.add_argument(
        "--previous",
        type=Path,
        help="another checkout (git worktree add DIR REV; uv sync --locked in DIR)",
    )
    parser.add_argument("--runs", type=int, default=5, help="runs each for --alternate")
    measure.add_report_arguments(parser)
    args = parser.parse_args(argv)
    if args.alternate and args.previous is None:
        parser.error("--alternate needs --previous DIR, the checkout to run in turn with")
    if args.previous is not None and not args.alternate:
        parser.error("--previous goes with --alternate")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """The mode ``argv`` asks for; 1 when a run beside the peer was incomplete."""
    args = parse_args(argv)
    if args.alternate or args.timeline:
        records = (args.records or [DEFAULT_RECORDS])[0]
        latency_ms = (args.latencies or [100.0])[0]
        if args.alternate:
            checkouts = measure.checkouts(args.previous)
            report = Report.from_args(args, "peer-alternate", "benchmarks.peer", argv, checkouts)
            report.finish(alternate_body(checkouts, args.runs, records, latency_ms))
        else:
            report = Report.from_args(
                args, "peer-timeline", "benchmarks.peer", argv, [Checkout.this()]
            )
            report.finish(timeline_body(records, latency_ms))
        return 0
    sizes = args.records or [DEFAULT_RECORDS]
    if min(sizes) < len(STREAMS):
        # The peer never stops on an empty stream: totalPages - currentPage is -1 there.
        raise measure.BenchmarkError(f"beside the peer needs at least {len(STREAMS)} records")
    report = Report.from_args(args, "peer", "benchmarks.peer", argv, [Checkout.this()])
    peer = ensure_peer()
    pairs = run_peer_benchmark(sizes, args.latencies or DEFAULT_LATENCIES_MS)
    report.finish(format_peer_report(pairs, peer))
    return 0 if all(p.tap.complete and p.peer.complete for p in pairs) else 1


if __name__ == "__main__":
    sys.exit(main())
