"""A shard run (reconciles off) writes versioned records and keeps its version in the
state, so that an unsharded reconcile can retire shard rows later (reconcile.py). The
plan itself: tests/unit/test_reconcile.py."""

from __future__ import annotations

from tap_maesn_qonto.emulator import Emulator, many_accounts
from tests.support.configs import tap_config
from tests.support.tap import sync


def test_a_shard_run_writes_versioned_records_and_keeps_the_version() -> None:
    counts = {"invoices": 3, "bills": 2, "bookingProposals": 1}
    keys = many_accounts(6)
    with Emulator(accounts=keys, account_counts=dict.fromkeys(keys, counts), counts=counts) as em:
        config = tap_config(em, shard_count=2, shard_index=0)
        del config["account_key"]
        config["accounts"] = [{"label": f"c{i}", "account_key": k} for i, k in enumerate(keys)]
        first = sync(config)
        again = sync(config, state=first.final_state)
    for result in (first, again):
        assert not [m for m in result.messages if m["type"] == "ACTIVATE_VERSION"]
    records = [m for m in first.messages if m["type"] == "RECORD"]
    assert records
    lines = {"invoices": "invoice_line_items", "bills": "bill_line_items"}
    lines["booking_proposals"] = "booking_proposal_line_items"
    for stream, line_stream in lines.items():
        partitions = first.final_state["bookmarks"][stream]["partitions"]
        (version,) = {p["table_version"] for p in partitions}
        assert isinstance(version, int)
        for name in (stream, line_stream):
            assert {m.get("version") for m in records if m["stream"] == name} == {version}
        kept = again.final_state["bookmarks"][stream]["partitions"]
        assert {p["table_version"] for p in kept} == {version}
