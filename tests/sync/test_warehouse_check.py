"""The warehouse check reads its truth from a running emulator over HTTP, as the quick
start runs it (tests/support/warehouse_check.py)."""

from __future__ import annotations

from pathlib import Path

from tap_maesn_qonto.emulator import Emulator
from tests.support import warehouse_check as check_warehouse

ROOT = Path(__file__).resolve().parents[2]


def test_truth_is_read_from_a_running_emulator_over_http() -> None:
    with Emulator(counts={"invoices": 120, "bills": 7, "bookingProposals": 3}) as emulator:
        emulator.mutate("invoices", update=3, create=2, delete=4)
        truths = check_warehouse.fetch_truth(emulator.url)
        assert truths["invoices"].records == emulator.truth("invoices")
        assert truths["invoices"].deleted == emulator.deleted_ids("invoices")
        assert len(truths["bills"].records) == 7
