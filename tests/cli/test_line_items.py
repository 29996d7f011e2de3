"""A run killed mid-read (SIGKILL or SIGTERM) and resumed from its last STATE loses no
line item. The line-item streams in process: tests/sync/test_line_items.py."""

from __future__ import annotations

import signal
import typing as t
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tests.support.checks import expected_lines, lines_written
from tests.support.configs import tap_config
from tests.support.tap import SyncResult, TapProcess, sync


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM])
def test_a_run_killed_mid_read_resumes_without_losing_a_line(
    tmp_path: Path, kill: signal.Signals
) -> None:
    # 3 000 invoices read one page at a time; the tap is killed after 1 500 invoices and
    # resumed from the last STATE it wrote: between the two runs every line arrives.
    with Emulator(counts={"invoices": 3000, "bills": 0, "bookingProposals": 0}) as emulator:
        config = tap_config(emulator, max_concurrency=1, page_size=50)
        parents = 0

        def halfway(message: dict[str, t.Any], _: int) -> bool:
            nonlocal parents
            parents += message["type"] == "RECORD" and message["stream"] == "invoices"
            return parents == 1500

        # Only SIGTERM lets the tap finish its last write: after SIGKILL a last line cut
        # short is left out (TapProcess.torn).
        with TapProcess(config, tmp_path, signal_when=halfway, signum=kill) as tap:
            code = tap.wait(timeout=60)
        first = tap.messages
        assert code != 0, "the tap was not stopped"
        states = [m["value"] for m in first if m["type"] == "STATE"]
        second = sync(config, state=states[-1] if states else None)
        expected = expected_lines(emulator, "invoices")
    got = lines_written(SyncResult(first), "invoices") + lines_written(second, "invoices")
    assert set(got) == set(expected), "lines lost across the interruption"
