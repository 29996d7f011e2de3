"""reconcile.plan: what version a stream's records carry, and whether the run reconciles.

Records carry a version even when reconciles are off (shards), so that a separate unsharded
reconcile run over every account (orchestration/dagster) can retire shard rows too: the
SDK's SQL targets never retire a row whose version is NULL. End to end, with target-postgres:
scripts/orchestration_e2e.py.
"""

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
