"""reconcile.plan: what version a stream's records carry, and whether the run reconciles.

Records carry a version even when reconciles are off (shards), so that a separate unsharded
reconcile run over every account (orchestration/dagster) can retire shard rows too: the
SDK's SQL targets never retire a row whose version is NULL. End to end, with target-postgres:
scripts/orchestration_e2e.py.
"""

from __future__ import annotations

import datetime as dt

from tap_maesn_qonto import reconcile
from tap_maesn_qonto.emulator import Emulator, many_accounts
from tests.support.configs import tap_config
from tests.support.tap import sync

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)
DAY_MS = 86_400_000


def _state(version: int, days_ago: int = 0) -> dict[str, object]:
    moment = NOW - dt.timedelta(days=days_ago)
    return {"table_version": version, "reconciled_at": moment.isoformat()}


def test_reconciles_off_and_no_version_yet_give_a_fresh_one() -> None:
    table = reconcile.plan([{}, {}], every_days=None, now=NOW)
    assert table == reconcile.TablePlan(version=NOW_MS, reconciling=False)


def test_reconciles_off_keep_the_version_in_the_state() -> None:
    states = [_state(NOW_MS - 5 * DAY_MS), _state(NOW_MS - DAY_MS), {}]
    table = reconcile.plan(states, every_days=None, now=NOW)
    assert table == reconcile.TablePlan(version=NOW_MS - DAY_MS, reconciling=False)


def test_reconciles_off_keep_a_version_ahead_of_the_clock() -> None:
    table = reconcile.plan([_state(NOW_MS + DAY_MS)], every_days=None, now=NOW)
    assert table == reconcile.TablePlan(version=NOW_MS + DAY_MS, reconciling=False)


def test_a_fresh_version_with_reconciles_off_is_stored_and_then_kept() -> None:
    partition: dict[str, object] = {}
    first = reconcile.plan([partition], every_days=None, now=NOW)
    reconcile.TableRun(first, {}, NOW).record_done(partition, activated=False, every_days=None)
    assert partition["table_version"] == NOW_MS
    later = NOW + dt.timedelta(days=30)
    assert reconcile.plan([partition], every_days=None, now=later) == first


def test_a_reconcile_after_shard_runs_activates_a_newer_version() -> None:
    # A reconcile run keeps its own state: its version is its start, above every shard's.
    shard = reconcile.plan([{}], every_days=None, now=NOW - dt.timedelta(hours=1))
    table = reconcile.plan([{}], every_days=0, now=NOW)
    assert table.reconciling
    assert table.version is not None
    assert shard.version is not None
    assert table.version > shard.version


def test_reconciles_on_are_unchanged() -> None:
    active = NOW_MS - DAY_MS
    assert reconcile.plan([_state(active)], every_days=0, now=NOW) == reconcile.TablePlan(
        version=NOW_MS, reconciling=True
    )
    not_due = reconcile.plan([_state(active, days_ago=1)], every_days=7, now=NOW)
    assert not_due == reconcile.TablePlan(version=active, reconciling=False)
    due = reconcile.plan([_state(active, days_ago=7)], every_days=7, now=NOW)
    assert due == reconcile.TablePlan(version=NOW_MS, reconciling=True)
    assert reconcile.plan([{}], every_days=7, now=NOW) == reconcile.TablePlan(NOW_MS, False)


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
