"""Every exit code of the README's table, and a signal's: the command line as a user runs it.

0 every record read; 1 failed (a key Maesn rejects); 2 a wrong command line; 3 records may
be missing (deletions never stop during a whole-list read); 130 and 143, SIGINT and SIGTERM
(issue 9, item 12): the tap stops at once, with a resumable state, and a signal that lands
while the target lags leaves only whole messages.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tests.support.checks import (
    assert_a_clean_run_read_every_id,
    assert_no_key_leaked,
    assert_one_clear_error,
    bookmark_value,
    counts,
    invoices,
    whole_list,
)
from tests.support.configs import STREAM_RESOURCES, tap_config
from tests.support.tap import SyncResult, TapProcess, parse_messages, run_cli

# --- item 12 (and exit codes 130, 143): stopped by a signal --------------------------------


def _run_until_signalled(
    config: dict[str, t.Any], tmp_path: Path, signum: signal.Signals
) -> tuple[int, float, str, str]:
    """Start the CLI, signal it after a page of records; return code, seconds, stdout, stderr."""
    records = 0

    def a_page_of_records(message: dict[str, t.Any]) -> bool:
        nonlocal records
        records += message["type"] == "RECORD"
        return records >= 10  # about a page (the tap buffers records, 64 KiB)

    with TapProcess(config, tmp_path) as tap:
        assert tap.wait_for_message(a_page_of_records, 30), "no page of records within 30 s"
        assert tap.running(), tap.stderr
        time.sleep(0.5)  # the fetch-ahead workers are in their Retry-After wait by now
        tap.signal(signum)
        try:
            code = tap.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the tap did not stop within 20 s of {signum.name}")
    assert tap.stop_seconds is not None
    return code, tap.stop_seconds, tap.stdout, tap.stderr


def _assert_resuming_reads_the_rest(
    first: SyncResult, config: dict[str, t.Any], tmp_path: Path, emulator: Emulator
) -> None:
    """A run resumed from ``first``'s last STATE reads every invoice ``first`` did not."""
    assert first.states, "no STATE was emitted"
    resumed = run_cli(config=config, tmp_path=tmp_path, state=first.final_state)
    assert resumed.returncode == 0, resumed.stderr
    second = parse_messages(resumed.stdout)
    truth = set(emulator.truth("invoices"))
    assert set(first.ids("invoices")) | set(second.ids("invoices")) == truth


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_a_signal_stops_the_tap_at_once_with_its_exit_code_and_a_resumable_state(
    tmp_path: Path, signum: signal.Signals, exit_code: int
) -> None:
    # issue 9, item 12 (and the exit codes 130 and 143 of the README table)
    with Emulator(counts=invoices(120), retry_after=60) as emulator:
        # Page 6, the last: the opening pages 1-5 may be fetched ahead, in any order, but
        # the last is asked for only once page 1 confirmed the count, so records are out.
        emulator.fail_next("429", count=1, resource="invoices", page=6)
        config = whole_list(
            tap_config(emulator, page_size=20, max_concurrency=4, max_retry_seconds=300)
        )
        code, seconds, stdout, stderr = _run_until_signalled(config, tmp_path, signum)
        first = parse_messages(stdout)
        assert code == exit_code, stderr
        assert seconds < 10, f"{seconds:.1f} s from {signum.name} to exit"
        assert_one_clear_error(stderr, signum.name)
        assert_no_key_leaked(stdout, stderr)
        _assert_resuming_reads_the_rest(first, config, tmp_path, emulator)


@pytest.mark.e2e  # slow: the target lags 3 s, by design
def test_a_signal_while_the_target_lags_leaves_only_whole_messages(tmp_path: Path) -> None:
    """A signal that lands while stdout is full (a slow target) never cuts a message.

    The tap is then inside a write to the full pipe: the write stops part-way through a
    line, and the rest of what it held must still reach the target, whole, before the
    resumable STATE and the exit. Found by the reliability report's SIGTERM scenario.
    """
    with Emulator(counts=invoices(3000)) as emulator:
        config = whole_list(tap_config(emulator, page_size=100, max_concurrency=4))
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        with (
            (tmp_path / "stderr.log").open("wb") as stderr,
            subprocess.Popen(
                [sys.executable, "-m", "tap_maesn_qonto", "--config", str(config_path)],
                stdout=subprocess.PIPE,
                stderr=stderr,
            ) as process,
        ):
            time.sleep(3)  # nobody reads: the pipe (64 KiB) and the tap's buffer are full
            assert process.poll() is None, (tmp_path / "stderr.log").read_text()
            process.send_signal(signal.SIGTERM)
            assert process.stdout is not None
            stdout = process.stdout.read()
            code = process.wait(timeout=30)
        assert code == 143, (tmp_path / "stderr.log").read_text()
        assert stdout.endswith(b"\n"), stdout[-200:]
        first = parse_messages(stdout.decode())  # fails on any torn line
        _assert_resuming_reads_the_rest(first, config, tmp_path, emulator)


# --- the exit codes of the README table ----------------------------------------------------


def test_exit_code_0_when_every_record_was_read(tmp_path: Path) -> None:
    with Emulator(counts=counts(15)) as emulator:
        result = run_cli(config=tap_config(emulator, page_size=5), tmp_path=tmp_path)
        truth = {s: set(emulator.truth(r)) for s, r in STREAM_RESOURCES.items()}
    assert_a_clean_run_read_every_id(result, truth)


def test_exit_code_1_for_a_key_maesn_rejects(tmp_path: Path) -> None:
    with Emulator(counts=counts(5)) as emulator:
        config = tap_config(emulator, account_key="emulator-account-unknown")
        result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1, result.stderr
    assert_one_clear_error(result.stderr, "401 Unauthorized", "account_key")
    assert_no_key_leaked(result.stdout, result.stderr)
    assert "emulator-account-unknown" not in result.stdout + result.stderr


def test_exit_code_2_for_a_wrong_command_line(tmp_path: Path) -> None:
    result = run_cli("--no-such-option", tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "--no-such-option" in result.stderr


def test_exit_code_3_when_deletions_never_stop_during_a_whole_list_read(tmp_path: Path) -> None:
    with Emulator(counts=counts(30)) as emulator:
        emulator.configure(mutate_every_requests=1, mutations_per_batch={"delete": 1})
        config = whole_list(tap_config(emulator, page_size=5, max_concurrency=1))
        result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 3, result.stderr
    assert_one_clear_error(result.stderr, "Records may be missing")
    assert_no_key_leaked(result.stdout, result.stderr)
    messages = parse_messages(result.stdout)
    assert messages.states
    for stream in STREAM_RESOURCES:
        assert bookmark_value(messages.final_state, stream) is None
