"""The tap, run for real against the emulator: in this process, or as its CLI.

* :func:`sync`: ``TapMaesnQonto(...).sync_all()`` in this process, every message kept
  exactly as a target would decode it (:class:`SyncResult`);
* :func:`run_cli`: ``python -m tap_maesn_qonto`` to the end, as a user runs it, config
  (and state) in files; :func:`run_tap` is the same with the questions the exit-code
  tests ask of a run (:class:`CliRun`);
* :class:`TapProcess`: the CLI while it runs, its messages and log lines as they come,
  for the tests that signal it at a chosen moment or time how it ends.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import signal as signals
import subprocess
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pytest
from singer_sdk.contrib.msgspec import MsgSpecWriter, decoder

from tap_maesn_qonto import retries
from tap_maesn_qonto.tap import TapMaesnQonto
from tests.support.configs import STREAM_RESOURCES

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

REPO_ROOT = Path(__file__).resolve().parents[2]
TAP_LOGGER = "tap-maesn-qonto"
#: An ERROR (or CRITICAL) line of the tap's log, and a WARNING line.
ERROR_LINE = re.compile(r"\| (ERROR|CRITICAL) +\|")
WARNING_LINE = re.compile(r"\| WARNING +\|")
#: The SDK's own notice that a stream's sync failed; it names no cause, so it is not counted.
SDK_NOTICE = "An unhandled error occurred while syncing"
#: A backoff step of milliseconds instead of half a second (``fast_retries``).
FAST_RETRY_BASE_SECONDS = 0.01


# --------------------------------------------------------------------------- in process


def fast_retries() -> contextlib.AbstractContextManager[t.Any]:
    """Backoff steps of milliseconds instead of half a second: the same retries, quicker.

    For runs in this process whose retries are the scenario, not what is measured. A
    Retry-After the server names is still waited for.
    """
    return mock.patch.object(retries, "RETRY_BASE_SECONDS", FAST_RETRY_BASE_SECONDS)


class CollectingWriter(MsgSpecWriter):
    """Keeps every message the tap writes, decoded exactly as a target would read it."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, t.Any]] = []

    def write_message(self, message: t.Any) -> None:
        self.messages.append(decoder.decode(bytes(self.format_message(message))))


@dataclass
class SyncResult:
    """The Singer messages of one run, with the questions tests ask of them."""

    messages: list[dict[str, t.Any]]
    #: The exception the run ended with, when the test allowed or expected one.
    error: BaseException | None = None
    #: The tap's INFO (and above) log messages, when the test asked for them.
    log: list[str] = field(default_factory=list)

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def ids(self, stream: str) -> list[str]:
        return [r["id"] for r in self.records(stream)]

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, t.Any]:
        return self.states[-1]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def sync(
    config: dict[str, t.Any],
    state: dict | None = None,
    catalog: dict | None = None,
    *,
    expect: type[BaseException] | None = None,
    allow: type[BaseException] | tuple[type[BaseException], ...] = (),
    log: bool = False,
) -> SyncResult:
    """Run a sync in this process and return every message written.

    With ``expect``, the run must end with that exception (checked here); with
    ``allow``, it may. Either way the messages written until then are returned, and the
    exception as :attr:`SyncResult.error`. With ``log``, the tap's logger is set to INFO
    for the run and its messages are kept in :attr:`SyncResult.log`.
    """
    writer = CollectingWriter()
    collect = _Collect()
    logger = logging.getLogger(TAP_LOGGER)
    level = logger.level
    if log:
        logger.addHandler(collect)
        logger.setLevel(logging.INFO)
    tap = TapMaesnQonto(config=config, state=state, catalog=catalog, message_writer=writer)
    try:
        tap.sync_all()
    except BaseException as exc:
        if not isinstance(exc, allow) and (expect is None or not isinstance(exc, expect)):
            raise
        return SyncResult(writer.messages, exc, collect.lines)
    finally:
        if log:
            logger.setLevel(level)
            logger.removeHandler(collect)
    assert expect is None, f"the run ended without {expect.__name__}"
    return SyncResult(writer.messages, None, collect.lines)


def catalog_selecting(config: dict[str, t.Any], streams: Iterable[str]) -> dict[str, t.Any]:
    """The tap's catalog with only ``streams`` selected (and their line items, if named)."""
    wanted = set(streams)
    catalog = TapMaesnQonto(config=config, validate_config=False).catalog.to_dict()
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in wanted
    return catalog


def state_at(
    value: str, streams: Iterable[str] = STREAM_RESOURCES, label: str = "default"
) -> dict[str, t.Any]:
    """A state with ``value`` as the bookmark of each of ``streams``, for account ``label``."""
    return {
        "bookmarks": {
            stream: {
                "partitions": [
                    {
                        "context": {"account_label": label},
                        "replication_key": "updatedDate",
                        "replication_key_value": value,
                    }
                ]
            }
            for stream in streams
        }
    }


def bookmark(state: dict[str, t.Any], stream: str) -> dict[str, t.Any]:
    """The single account partition's bookmark of ``stream``."""
    partitions = state["bookmarks"][stream]["partitions"]
    assert len(partitions) == 1, partitions
    return partitions[0]


def bookmark_of(state: dict[str, t.Any], stream: str, label: str = "default") -> str | None:
    """The replication key value of ``label``'s partition of ``stream`` (None: none)."""
    for entry in state.get("bookmarks", {}).get(stream, {}).get("partitions", []):
        if entry.get("context", {}).get("account_label") == label:
            return entry.get("replication_key_value")
    return None


# --------------------------------------------------------------------------- the CLI


#: The tap's command line with retries that wait milliseconds (``fast_retries``), run in a
#: process of its own: exit code, stdout and stderr as ``python -m tap_maesn_qonto``'s.
_QUICK_RETRIES_CLI = (
    "import sys; from tap_maesn_qonto import retries; "
    f"retries.RETRY_BASE_SECONDS = {FAST_RETRY_BASE_SECONDS}; "
    "sys.argv[0] = 'tap-maesn-qonto'; from tap_maesn_qonto.cli import main; main()"
)


def tap_argv(*args: str, quick_retries: bool = False) -> list[str]:
    """The command line of the tap's CLI, run by this interpreter.

    With ``quick_retries``, backoff steps are milliseconds: for a test whose retries are
    its scenario, not what it measures (a Retry-After the server names is still waited for).
    """
    if quick_retries:
        return [sys.executable, "-c", _QUICK_RETRIES_CLI, *args]
    return [sys.executable, "-m", "tap_maesn_qonto", *args]


_files = itertools.count()


def _write_json(tmp_path: Path, name: str, document: t.Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def run_cli(
    *args: str,
    config: dict[str, t.Any] | None = None,
    tmp_path: Path,
    state: dict[str, t.Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    merge_stderr: bool = False,
    quick_retries: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tap_maesn_qonto`` as a user would; config and state go to files.

    With ``merge_stderr``, stderr goes to stdout's pipe (as Meltano reads a plugin); with
    ``quick_retries``, retries wait milliseconds (:func:`tap_argv`).
    """
    argv = tap_argv(*args, quick_retries=quick_retries)
    if config is not None:
        argv += ["--config", _write_json(tmp_path, "config.json", config)]
    if state is not None:
        argv += ["--state", _write_json(tmp_path, f"state-{next(_files)}.json", state)]
    return subprocess.run(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


#: singer-sdk's structured (JSON) logging, as Meltano sets it up for a plugin.
STRUCTURED_LOGGING = """\
version: 1
formatters:
  structured:
    (): singer_sdk.logging.StructuredFormatter
handlers:
  console:
    class: logging.StreamHandler
    formatter: structured
    stream: ext://sys.stderr
root:
  level: INFO
  handlers: [console]
"""


def structured_logging(tmp_path: Path) -> dict[str, str]:
    """The environment of a run that logs as JSON lines (``SINGER_SDK_LOG_CONFIG``)."""
    log_config = tmp_path / "logging.yaml"
    log_config.write_text(STRUCTURED_LOGGING)
    return {"SINGER_SDK_LOG_CONFIG": str(log_config)}


def parse_messages(stdout: str) -> SyncResult:
    return SyncResult([json.loads(line) for line in stdout.splitlines() if line.strip()])


def error_lines(stderr: str) -> list[str]:
    """The tap's ERROR lines, the SDK's own cause-less notice left out."""
    return [
        line for line in stderr.splitlines() if ERROR_LINE.search(line) and SDK_NOTICE not in line
    ]


@dataclass
class CliRun:
    """One CLI run: its exit code, its messages, its stderr, how long it took."""

    code: int
    messages: SyncResult
    stdout: str
    stderr: str
    seconds: float

    def ids(self, stream: str, label: str | None = None) -> set[str]:
        return {
            record["id"]
            for record in self.messages.records(stream)
            if label is None or record.get("account_label") == label
        }

    @property
    def activated(self) -> set[str]:
        """The streams an ACTIVATE_VERSION was sent for."""
        return {m["stream"] for m in self.messages.messages if m["type"] == "ACTIVATE_VERSION"}

    @property
    def error_lines(self) -> list[str]:
        """ERROR lines, the SDK's own cause-less notice left out."""
        return error_lines(self.stderr)

    def warnings_naming(self, word: str) -> list[str]:
        return [
            line for line in self.stderr.splitlines() if WARNING_LINE.search(line) and word in line
        ]

    def assert_no_traceback(self) -> None:
        assert "Traceback" not in self.stderr, self.stderr[-3000:]

    def assert_one_line_error(self) -> None:
        self.assert_no_traceback()
        assert len(self.error_lines) == 1, self.stderr[-3000:]


def run_tap(
    config: dict[str, t.Any],
    tmp_path: Path,
    *,
    state: dict | None = None,
    timeout: float = 60,
    quick_retries: bool = False,
) -> CliRun:
    """``python -m tap_maesn_qonto --config ... [--state ...]``, as a user runs it."""
    started = time.monotonic()
    result = run_cli(
        config=config,
        tmp_path=tmp_path,
        state=state,
        timeout=timeout,
        quick_retries=quick_retries,
    )
    seconds = time.monotonic() - started
    try:
        messages = parse_messages(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not Singer messages:\n{result.stdout[-2000:]}\n{result.stderr}")
    return CliRun(result.returncode, messages, result.stdout, result.stderr, seconds)


# --------------------------------------------------------------------------- a live CLI


class TapProcess:
    """The tap's CLI while it runs: signal it when a message or a log line says so.

    ``with TapProcess(config, tmp_path) as tap:`` starts it; two threads read its stdout
    (each line parsed as a Singer message) and its stderr as they come. A test waits for
    a moment (:meth:`wait_for_message`), or lets a reader signal
    at once (``signal_when`` a message, ``signal_on_log`` a stderr line holding a text or
    matching a function of the line and its number), then :meth:`wait` s for the exit. On
    leaving the block, a process still running is killed.

    A last stdout line without its newline (a run killed with SIGKILL in the middle of a
    write) is kept apart as :attr:`torn`; every other line must be a JSON message, unless
    ``strict`` is off (a judge that reports bad output itself: such a line is kept in
    :attr:`lines`, and ``signal_when`` sees it as ``{}``). ``signal_when`` gets each
    message and the number of stdout lines so far.
    """

    def __init__(
        self,
        config: dict[str, t.Any],
        tmp_path: Path,
        *,
        state: dict[str, t.Any] | None = None,
        env: dict[str, str] | None = None,
        name: str = "tap",
        signal_when: Callable[[dict[str, t.Any], int], bool] | None = None,
        signal_on_log: str | Callable[[str, int], bool] | None = None,
        signum: signals.Signals = signals.SIGTERM,
        read_stdout: bool = True,
        strict: bool = True,
    ) -> None:
        self.argv = tap_argv("--config", _write_json(tmp_path, f"{name}-config.json", config))
        if state is not None:
            self.argv += ["--state", _write_json(tmp_path, f"{name}-state.json", state)]
        self.env = {**os.environ, **(env or {})}
        self.signal_when = signal_when
        self.signal_on_log = signal_on_log
        self.signum = signum
        self.read_stdout = read_stdout
        self.strict = strict
        self.lines: list[str] = []
        self.messages: list[dict[str, t.Any]] = []
        self.torn = ""
        self.stderr_lines: list[str] = []
        self.started = 0.0
        self.last_line_at: float | None = None
        self.signalled_at: float | None = None
        #: Whether the process was still running when the signal went out.
        self.signalled_running = False
        #: How many stdout lines had been read when the signal went out.
        self.lines_at_signal: int | None = None
        self.exited_at: float | None = None
        self._changed = threading.Condition()
        self._readers: list[threading.Thread] = []
        self._process: subprocess.Popen[bytes] | None = None

    # ---- the process

    def __enter__(self) -> TapProcess:
        self.started = time.monotonic()
        self._process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.read_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        targets = [self._read_stderr] + ([self._read_stdout] if self.read_stdout else [])
        self._readers = [threading.Thread(target=f, daemon=True) for f in targets]
        for reader in self._readers:
            reader.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        process = self.process
        if process.poll() is None:
            process.kill()
        process.wait()
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "not started"
        return self._process

    def running(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: signals.Signals | None = None) -> None:
        """Send ``signum`` (the one given at start by default), once: later calls do nothing."""
        with self._changed:
            if self.signalled_at is not None:
                return
            self.signalled_running = self.process.poll() is None
            self.lines_at_signal = len(self.lines)
            self.process.send_signal(signum or self.signum)
            self.signalled_at = time.monotonic()

    def wait(self, timeout: float) -> int:
        """The exit code, once the process has exited and its output is read."""
        code = self.process.wait(timeout=timeout)
        self.exited_at = time.monotonic()
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    # ---- what it wrote

    def _read_stdout(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        for raw in stream:
            line = raw.decode("utf-8", errors="replace")
            if not line.endswith("\n"):
                self.torn = line
                break
            try:
                message = json.loads(line)
            except ValueError:
                if self.strict:
                    raise
                message = {}
            with self._changed:
                self.lines.append(line)
                if message:
                    self.messages.append(message)
                self.last_line_at = time.monotonic()
                count = len(self.lines)
                self._changed.notify_all()
            if self.signal_when is not None and self.signal_when(message, count):
                self.signal()
        with self._changed:
            self._changed.notify_all()

    def _read_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        for raw in stream:
            line = raw.decode("utf-8", errors="replace")
            with self._changed:
                self.stderr_lines.append(line)
                count = len(self.stderr_lines)
                self._changed.notify_all()
            wanted = self.signal_on_log
            if (isinstance(wanted, str) and wanted in line) or (
                callable(wanted) and wanted(line, count)
            ):
                self.signal()
        with self._changed:
            self._changed.notify_all()

    def wait_for_message(self, seen: Callable[[dict[str, t.Any]], bool], timeout: float) -> bool:
        """Whether a message matching ``seen`` came within ``timeout`` s (False: the run
        ended or the time ran out first)."""
        deadline = time.monotonic() + timeout
        checked = 0
        with self._changed:
            while True:
                for message in self.messages[checked:]:
                    if seen(message):
                        return True
                checked = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0 or not self._stdout_open():
                    return False
                self._changed.wait(min(left, 0.1))

    def _stdout_open(self) -> bool:
        return len(self._readers) > 1 and self._readers[1].is_alive()

    @property
    def stdout(self) -> str:
        return "".join(self.lines)

    @property
    def raw_stdout(self) -> str:
        """Everything written to stdout, a last line cut short included."""
        return "".join(self.lines) + self.torn

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    @property
    def stop_seconds(self) -> float | None:
        """Seconds from the signal to the exit (None: never signalled, or not waited for)."""
        if self.signalled_at is None or self.exited_at is None:
            return None
        return self.exited_at - self.signalled_at
