"""The benchmarks' measuring library: the emulator, the tap as a process, timing, reports.

* :class:`EmulatorProcess`: ``python -m tap_maesn_qonto.emulator`` of this checkout in
  its own process (its CPU is not the tap's), latency changed between runs through
  ``POST /_emulator/configure``, requests counted by ``GET /_emulator/stats``.
* :class:`Checkout`: whose tap runs. This checkout's runs with this interpreter; another
  (``--previous DIR``, e.g. ``git worktree add DIR REV``) with ``DIR/.venv/bin/python``,
  its own dependencies, from ``DIR`` (``python -m tap_maesn_qonto`` there).
* :func:`run_measured` / :func:`run_counted`: one process, its wall time, CPU time and
  peak RSS from ``os.wait4`` (nothing else is counted); :func:`run_counted` also counts
  its RECORD lines per stream through a pipe.
* Limits (:func:`latency_limit_s`), the Markdown table (:func:`render_table`), and the
  dated report (:class:`Report`): when, at which commits, on which machine, the command,
  then the figures, printed and written to ``docs/reports/``.

Nothing of the tap is imported here: the bare baseline client (baseline.py) imports this
module and must pay only for what it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
REPORTS_DIR = REPO_ROOT / "docs" / "reports"

API_KEY = "emulator-api-key"
ACCOUNT_KEY = "emulator-account-qonto"
START_DATE = "2020-01-01T00:00:00Z"
PAGE_SIZE = 100
#: The tap's default ``max_concurrency`` (settings.py; a test keeps the two equal).
DEFAULT_CONCURRENCY = 8

EMULATOR_START_TIMEOUT_S = 300.0
#: A tap that never connects (a broken checkout) fails the run.
STARTUP_TIMEOUT_S = 30.0

#: "invoices: sync summary: 30 records emitted, 1 pages, ..." (read.py
#: ``PartitionRead.summary``; with several accounts "invoices of account X: sync
#: summary: ..."; before 518a9aa "invoices: sync summary of account X: 30 records
#: emitted ...") and the baseline client's "baseline: 100000 records written".
RECORDS_REPORTED = re.compile(
    r"(?:sync summary(?: of account \S+)?|baseline): (\d+) records (?:emitted|written)"
)


class BenchmarkError(RuntimeError):
    """A run did not do what it was measured for (wrong record count, failure)."""


# --------------------------------------------------------------------------- checkouts


def commit_of(root: Path) -> str:
    """The short commit of the checkout at ``root``, and whether its tap (the package) or
    anything else has uncommitted changes."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "?"
    tap = git("status", "--porcelain", "--untracked-files=no", "--", "tap_maesn_qonto")
    other = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!tap_maesn_qonto")
    if tap:
        commit += " + uncommitted changes to tap_maesn_qonto/"
    if other:
        commit += " + uncommitted changes outside tap_maesn_qonto/"
    return commit


@dataclass(frozen=True)
class Checkout:
    """A checkout whose tap runs, as a user runs it: ``python -m tap_maesn_qonto``."""

    root: Path
    python: str
    label: str

    @classmethod
    def this(cls) -> Checkout:
        return cls(REPO_ROOT, sys.executable, "this checkout")

    @classmethod
    def other(cls, root: Path) -> Checkout:
        """Another checkout, with its own virtualenv (``uv sync --locked`` there)."""
        root = root.resolve()
        python = root / ".venv" / "bin" / "python"
        if not (root / "tap_maesn_qonto").is_dir():
            raise BenchmarkError(f"{root} is not a checkout of this tap")
        if not python.exists():
            raise BenchmarkError(
                f"{python} does not exist: run `uv sync --locked` in {root} first, so its tap "
                "runs with its own dependencies"
            )
        return cls(root, str(python), f"previous {commit_of(root).split()[0]}")

    @property
    def commit(self) -> str:
        return commit_of(self.root)

    def tap_argv(self, config: Path, state: Path | None = None) -> list[str]:
        argv = [self.python, "-m", "tap_maesn_qonto", "--config", str(config)]
        return argv if state is None else [*argv, "--state", str(state)]


def checkouts(previous: Path | None) -> list[Checkout]:
    """The checkouts whose taps run in turn: this one, and ``previous`` if given."""
    return [Checkout.this()] + ([] if previous is None else [Checkout.other(previous)])


# --------------------------------------------------------------------------- emulator process


def list_params(page: int) -> dict[str, str | int]:
    """The whole list's query (page-number paging by createdDate) from ``START_DATE``."""
    return {
        "page": page,
        "limit": PAGE_SIZE,
        "lastModifiedAt": START_DATE,
        "orderField": "createdDate",
        "orderDir": "ASC",
    }


def api_headers(account_key: str = ACCOUNT_KEY) -> dict[str, str]:
    return {"X-API-KEY": API_KEY, "X-ACCOUNT-KEY": account_key, "Accept": "application/json"}


class EmulatorProcess:
    """This checkout's emulator in its own process.

    ``counts``: records per resource, as the emulator names them (default: ``records``
    invoices, no bills nor booking proposals). ``accounts``: that many accounts
    (``--many-accounts``), each holding ``counts``, their keys those of
    ``tap_maesn_qonto.emulator.many_accounts``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        records: int = 0,
        counts: Mapping[str, int] | None = None,
        accounts: int | None = None,
    ) -> None:
        self.counts = dict(counts or {"invoices": records, "bills": 0, "bookingProposals": 0})
        self.accounts = accounts
        self.records = sum(self.counts.values()) * (accounts or 1)
        name = f"emulator-{self.records}-{accounts or 1}"
        self._url_file = workdir / f"{name}.url"
        self._log_path = workdir / f"{name}.log"
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
        if self.accounts is not None:
            argv += ["--many-accounts", str(self.accounts)]
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log
            )
        try:
            self.url = self._wait_for_url()
            if self.accounts is None:
                self._warm_up()
        except BaseException:
            self.__exit__()
            raise
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
        self._process = None

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
        self.get("invoices", list_params(page=1))

    def get(
        self, resource: str, params: Mapping[str, str | int], account_key: str = ACCOUNT_KEY
    ) -> dict[str, Any]:
        """One list request to the emulator (warm-ups, the peer's record sizes)."""
        response = requests.get(
            f"{self.url}/accounting/{resource}",
            params=dict(params),
            headers=api_headers(account_key),
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def admin(self, name: str, payload: dict | None = None) -> dict[str, Any]:
        url = f"{self.url}/_emulator/{name}"
        if payload is None:
            response = requests.get(url, timeout=60)
        else:
            response = requests.post(url, json=payload, timeout=60)
        response.raise_for_status()
        return response.json()

    def set_latency(self, latency_ms: float) -> None:
        self.admin("configure", {"latency_ms": latency_ms})

    def request_count(self) -> int:
        return int(self.admin("stats")["requests"])


def tap_config(
    url: str,
    concurrency: int = DEFAULT_CONCURRENCY,
    *,
    start_date: str | None = START_DATE,
    account_keys: Sequence[str] = (),
) -> dict[str, Any]:
    """The tap's config for the emulator: its one account, or ``account_keys``."""
    config: dict[str, Any] = {
        "api_key": API_KEY,
        "api_url": url,
        "page_size": PAGE_SIZE,
        "max_concurrency": concurrency,
    }
    if account_keys:
        config["accounts"] = [
            {"label": f"company-{i:04d}", "account_key": key} for i, key in enumerate(account_keys)
        ]
    else:
        config["account_key"] = ACCOUNT_KEY
    if start_date is not None:
        config["start_date"] = start_date
    return config


# --------------------------------------------------------------------------- measured processes


@dataclass
class ProcessUsage:
    """What ``os.wait4`` saw of one child process."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    exit_code: int


def run_measured(
    argv: Sequence[str],
    stderr: IO[bytes] | int,
    stdout: IO[bytes] | int = subprocess.DEVNULL,
    cwd: Path = REPO_ROOT,
) -> ProcessUsage:
    """Run ``argv`` (stdout to /dev/null unless given); CPU and peak RSS of that process only.

    A child forked from a big parent counts the parent's memory in its peak RSS until it
    execs: keep big things out of the measuring process.
    """
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, stdout=stdout, stderr=stderr)
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return ProcessUsage(
        wall_s=wall_s,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        exit_code=process.returncode,
    )


def records_reported(stderr_text: str) -> int:
    """Records the process says it wrote: the tap's summary lines, or the baseline's line."""
    return sum(int(n) for n in RECORDS_REPORTED.findall(stderr_text))


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
class CountedRun:
    """A process whose stdout was counted: its usage, RECORD lines per stream, stderr."""

    usage: ProcessUsage
    counts: dict[str, int]
    #: Seconds from the process's start to its first RECORD line (start-up and first pages).
    first_record_s: float | None
    stderr_path: Path
    stderr_lines: int = field(init=False)

    def __post_init__(self) -> None:
        with self.stderr_path.open("rb") as stderr:
            self.stderr_lines = sum(1 for _ in stderr)

    def stderr_tail(self, chars: int = 3000) -> str:
        return self.stderr_path.read_text(errors="replace")[-chars:]


def run_counted(argv: Sequence[str], stderr_path: Path, cwd: Path = REPO_ROOT) -> CountedRun:
    """Run ``argv`` with its stdout counted by a thread of this process, measured like the tap."""
    read_fd, write_fd = os.pipe()
    counts: Counter[str] = Counter()
    first_record_at: list[float] = []
    reader = threading.Thread(target=count_records, args=(read_fd, counts, first_record_at))
    reader.start()
    started = time.monotonic()
    try:
        with stderr_path.open("wb") as stderr:
            usage = run_measured(argv, stderr, stdout=write_fd, cwd=cwd)
    finally:
        os.close(write_fd)  # the child's copy is closed: the reader sees EOF
        reader.join()
    return CountedRun(
        usage=usage,
        counts=dict(counts),
        first_record_s=first_record_at[0] - started if first_record_at else None,
        stderr_path=stderr_path,
    )


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


# --------------------------------------------------------------------------- limits


def pages_for(records: int, page_size: int = PAGE_SIZE) -> int:
    return math.ceil(records / page_size)


def latency_limit_s(records: int, concurrency: int, latency_ms: float) -> float:
    """Time spent only waiting: rounds of ``concurrency`` pages, each one latency long."""
    return math.ceil(pages_for(records) / concurrency) * latency_ms / 1000


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


# --------------------------------------------------------------------------- formatting


def render_table(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A Markdown table, every cell right-aligned to its column's widest text."""
    widths = [max(len(text) for text in column) for column in zip(columns, *cells, strict=True)]

    def line(texts: Sequence[str]) -> str:
        return "| " + " | ".join(t.rjust(w) for t, w in zip(texts, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(columns), separator, *(line(c) for c in cells)])


def ratio(new: float, old: float) -> str:
    """``new / old`` as a signed percentage change ("+3.1 %"), or "-" without both."""
    if not old or math.isnan(old) or math.isnan(new):
        return "-"
    return f"{(new / old - 1) * 100:+.1f} %"


# --------------------------------------------------------------------------- reports


def machine() -> str:
    """Where: host, CPU model, cores, RAM, Python."""
    cpu = platform.processor() or platform.machine()
    memory = "?"
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), cpu
        )
    with contextlib.suppress(OSError):
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        memory = next(
            (
                f"{int(ln.split()[1]) / 1024**2:.1f} GiB"
                for ln in meminfo
                if ln.startswith("MemTotal:")
            ),
            memory,
        )
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {memory} RAM; "
        f"Python {platform.python_version()}"
    )


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reports-dir",
        type=Path,
        default=REPORTS_DIR,
        help=f"where the dated report is written (default: {REPORTS_DIR.relative_to(REPO_ROOT)})",
    )
    parser.add_argument("--no-report", action="store_true", help="print the report, write no file")
    parser.add_argument(
        "--tag",
        default="",
        help="a word added to the report's name (benchmark-<mode>-<tag>-<date>.md) for a run "
        "that is not the mode's reference, such as an experiment",
    )
    parser.add_argument(
        "--note",
        default="",
        help="a sentence under the report's header: what the run is for (an experiment's patch)",
    )


class Report:
    """A benchmark run's report: begun before the first measurement, finished with the figures.

    Written to ``<reports_dir>/benchmark-<mode>-<YYYY-MM-DD>.md`` (``-2``, ``-3``... when
    that day's file exists) and printed.
    """

    def __init__(
        self,
        mode: str,
        command: Sequence[str],
        checkouts: Sequence[Checkout],
        reports_dir: Path | None,
        note: str = "",
    ) -> None:
        self.mode = mode
        self.note = note
        self.command = list(command)
        self.checkouts = list(checkouts)
        self.reports_dir = reports_dir
        self.started = dt.datetime.now(dt.UTC)
        self.load_before = load_average()
        self._clock = time.monotonic()
        self.path: Path | None = None

    @classmethod
    def from_args(
        cls,
        args: argparse.Namespace,
        mode: str,
        module: str,
        argv: Sequence[str] | None,
        checkouts: Sequence[Checkout],
    ) -> Report:
        given = list(sys.argv[1:] if argv is None else argv)
        command = ["uv", "run", "python", "-m", module, *given]
        reports_dir = None if args.no_report else args.reports_dir
        tagged = f"{mode}-{args.tag}" if args.tag else mode
        return cls(tagged, command, checkouts, reports_dir, args.note)

    def header(self) -> str:
        took = time.monotonic() - self._clock
        lines = [
            f"# Benchmark `{self.mode}`, {self.started:%Y-%m-%d}",
            "",
            f"- When: {self.started:%Y-%m-%d %H:%M} UTC, {took:.0f} s",
        ]
        for checkout in self.checkouts:
            lines.append(
                f"- Checkout `{checkout.label}`: commit {checkout.commit}, {checkout.root}"
            )
        lines += [
            f"- Machine: {machine()}",
            f"- Load average (1, 5, 15 min): {self.load_before} before, {load_average()} after",
            f"- Command: `{shlex.join(self.command)}`",
        ]
        if self.note:
            lines += ["", f"Note: {self.note}"]
        return "\n".join(lines)

    def finish(self, body: str) -> str:
        """Print the report and write it (unless no directory); returns its text."""
        text = f"{self.header()}\n\n{body.rstrip()}\n"
        print(text)
        if self.reports_dir is not None:
            self.path = self._new_path()
            self.path.write_text(text, encoding="utf-8")
            print(f"(report written to {self.path})")
        return text

    def _new_path(self) -> Path:
        assert self.reports_dir is not None
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        stem = f"benchmark-{self.mode}-{self.started:%Y-%m-%d}"
        path = self.reports_dir / f"{stem}.md"
        number = 1
        while path.exists():
            number += 1
            path = self.reports_dir / f"{stem}-{number}.md"
        return path


def note(message: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(f"... {message}", file=sys.stderr, flush=True)
