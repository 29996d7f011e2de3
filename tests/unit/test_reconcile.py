"""reconcile.plan: what version a stream's records carry, and whether the run reconciles.

Records carry a version even when reconciles are off (shards), so that a separate unsharded
reconcile run over every account (orchestration/dagster) can retire shard rows too: the
SDK's SQL targets never retire a row whose version is NULL. End to end, with target-postgres:
tests/e2e/test_orchestration.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tap_maesn_qonto import reconcile
from tap_maesn_qonto.errors import InvalidConfigError
from tap_maesn_qonto.tap import TapMaesnQonto

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


# --- reconciles and shards ------------------------------------------------------------------------
def test_a_reconcile_interval_with_shards_is_refused_in_one_line() -> None:
    config = {
        "api_key": "k",
        "account_key": "a",
        "shard_count": 2,
        "shard_index": 0,
        "reconcile_interval_days": 7,
    }
    with pytest.raises(InvalidConfigError, match="reconcile_interval_days is 7 with shard_count"):
        TapMaesnQonto(config=config)
