"""Many connected companies in one run, in this process: shards, and states that move
from one account to a list of accounts.

The emulator serves 200 accounts, each with its own data (the ``many_accounts_emulator``
fixture). Failures isolated and named, and the accounts file: tests/cli/test_accounts.py.
"""

from __future__ import annotations

import typing as t

import pytest

from tap_maesn_qonto.accounts import shard_of
from tap_maesn_qonto.emulator import Emulator, many_accounts
from tests.support.configs import (
    API_KEY,
    MANY_ACCOUNTS,
    STREAM_RESOURCES,
    accounts_config,
    tap_config,
)
from tests.support.tap import sync

if t.TYPE_CHECKING:
    pass


def _partitions(state: dict, stream: str) -> dict[str, dict]:
    return {p["context"]["account_label"]: p for p in state["bookmarks"][stream]["partitions"]}


def test_two_shards_are_disjoint_and_together_complete(many_accounts_emulator: Emulator) -> None:
    shards = [
        sync(accounts_config(many_accounts_emulator, shard_count=2, shard_index=i))
        for i in range(2)
    ]
    labels = [{r["account_label"] for r in s.records("invoices")} for s in shards]
    assert labels[0].isdisjoint(labels[1])
    assert labels[0] | labels[1] == {f"company-{i:04d}" for i in range(MANY_ACCOUNTS)}
    assert all(shard_of(label, 2) == i for i, group in enumerate(labels) for label in group)
    for shard, group in zip(shards, labels, strict=True):
        assert set(_partitions(shard.final_state, "bills")) == group


def test_a_single_account_state_keeps_working_as_a_list_of_one(
    many_accounts_emulator: Emulator,
) -> None:
    key = sorted(many_accounts_emulator.settings.accounts)[3]
    single = {
        "api_key": API_KEY,
        "account_key": key,
        "account_label": "company-0003",
        "api_url": many_accounts_emulator.url,
        "start_date": "2020-01-01T00:00:00Z",
    }
    first = sync(single)
    listed = {
        **accounts_config(many_accounts_emulator),
        "accounts": [{"label": "company-0003", "account_key": key}],
    }
    second = sync(listed, state=first.final_state)
    # Incremental from the single-account bookmark: only the lookback's re-reads.
    assert len(second.records("invoices")) <= len(first.records("invoices"))
    for stream in STREAM_RESOURCES:
        assert set(_partitions(second.final_state, stream)) == {"company-0003"}
        before = _partitions(first.final_state, stream)["company-0003"]["replication_key_value"]
        after = _partitions(second.final_state, stream)["company-0003"]["replication_key_value"]
        assert after >= before


@pytest.mark.e2e  # slow: 250 accounts
def test_with_many_accounts_a_state_comes_every_ten_records_an_account_at_most() -> None:
    # A STATE holds every account's partition, so with many accounts one every 1 000
    # records would write (and the SDK deep-copy) a large state over and over. Each
    # STATE in the middle of a stream follows at least 10 records per account.
    accounts = 250
    keys = many_accounts(accounts)
    invoices_only = {"invoices": 12, "bills": 0, "bookingProposals": 0}
    with Emulator(
        accounts=keys, account_counts=dict.fromkeys(keys, invoices_only), counts=invoices_only
    ) as emulator:
        result = sync(accounts_config(emulator))
        truth = {i for key in keys for i in emulator.truth("invoices", account=key)}
    assert set(result.ids("invoices")) == truth
    since_state, gaps = 0, []
    for message in result.messages:
        if message["type"] == "RECORD" and message["stream"] == "invoices":
            since_state += 1
        elif message["type"] == "STATE" and 0 < since_state < len(truth):
            gaps.append(since_state)
            since_state = 0
    mid_stream = gaps[:-1]  # the last is the stream's end
    assert mid_stream, "no STATE within the stream: the test proves nothing"
    assert all(gap >= 10 * accounts for gap in mid_stream), gaps


def test_a_shard_that_holds_no_account_reads_nothing_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    labels = [f"acct-{n}" for n in range(3)]
    empty = next(i for i in range(8) if all(shard_of(label, 8) != i for label in labels))
    with Emulator(counts={"invoices": 3, "bills": 0, "bookingProposals": 0}) as emulator:
        config = tap_config(emulator, shard_count=8, shard_index=empty)
        del config["account_key"]
        config["accounts"] = [
            {"label": label, "account_key": "emulator-account-qonto"} for label in labels
        ]
        result = sync(config)
    assert result.records("invoices") == []
    assert "holds no account" in caplog.text
