"""Line items get their own streams, and deletions leave the target through reconciles.

Each test runs real syncs over loopback HTTP against the emulator and compares the
messages with the emulator's truth. The same, through target-postgres on a real
PostgreSQL (soft and hard deletes): scripts/deletions_e2e.py, run by .ci/run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tests.support.configs import STREAM_RESOURCES, tap_config
from tests.support.tap import SyncResult, sync

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
        (tmp_path / "config.json").write_text(json.dumps(config))
        argv = [sys.executable, "-m", "tap_maesn_qonto", "--config", str(tmp_path / "config.json")]
        first: list[dict] = []
        parents = 0
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as tap:
            assert tap.stdout is not None
            for line in tap.stdout:
                message = json.loads(line)
                first.append(message)
                parents += message["type"] == "RECORD" and message["stream"] == "invoices"
                if parents == 1500:
                    tap.send_signal(kill)
                    break
            rest = tap.stdout.read().splitlines()
        if kill == signal.SIGKILL and rest:
            try:
                json.loads(rest[-1])
            except json.JSONDecodeError:
                rest.pop()  # killed in the middle of a write: only SIGTERM lets the tap finish
        first.extend(json.loads(line) for line in rest)
        assert tap.returncode != 0, "the tap was not stopped"
        states = [m["value"] for m in first if m["type"] == "STATE"]
        second = sync(config, state=states[-1] if states else None)
        expected = _expected_lines(emulator, "invoices")
    got = _lines(SyncResult(first), "invoices") + _lines(second, "invoices")
    assert set(got) == set(expected), "lines lost across the interruption"
