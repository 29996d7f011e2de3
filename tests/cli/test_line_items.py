"""A run killed mid-read (SIGKILL or SIGTERM) and resumed from its last STATE loses no
line item. The line-item streams in process: tests/sync/test_line_items.py."""

from __future__ import annotations

import signal
import typing as t
from collections import Counter
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tests.support.configs import STREAM_RESOURCES, tap_config
from tests.support.tap import SyncResult, TapProcess, sync

LINE_STREAMS = {
    "invoices": ("invoice_line_items", "invoice_id"),
    "bills": ("bill_line_items", "bill_id"),
    "booking_proposals": ("booking_proposal_line_items", "booking_proposal_id"),
}


def _expected_lines(emulator: Emulator, stream: str) -> Counter[tuple[str, int]]:
    truth = emulator.truth(STREAM_RESOURCES[stream])
    return Counter(
        (record_id, position)
        for record_id, record in truth.items()
        for position in range(1, len(record.get("lineItems") or []) + 1)
    )


def _lines(result: SyncResult, stream: str) -> Counter[tuple[str, int]]:
    name, key = LINE_STREAMS[stream]
    return Counter((row[key], row["position"]) for row in result.records(name))


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
        expected = _expected_lines(emulator, "invoices")
    got = _lines(SyncResult(first), "invoices") + _lines(second, "invoices")
    assert set(got) == set(expected), "lines lost across the interruption"
