"""Many connected companies in one run: every healthy account complete, failures isolated.

The emulator serves 200 accounts, each with its own data; one has a key Maesn
rejects and one answers 500 to every request.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import typing as t
from pathlib import Path

import pytest

from tap_maesn_qonto.accounts import shard_of
from tap_maesn_qonto.emulator import Emulator, many_accounts
from tap_maesn_qonto.timestamps import parse_timestamp
from tests.helpers import API_KEY, STREAM_RESOURCES, parse_messages, run_cli, sync, tap_config

if t.TYPE_CHECKING:
    from collections.abc import Iterator

ACCOUNTS = 200
PER_RESOURCE = {"invoices": 4, "bills": 3, "bookingProposals": 2}


def _accounts(keys: list[str]) -> list[dict[str, object]]:
    return [{"label": f"company-{i:04d}", "account_key": key} for i, key in enumerate(keys)]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    keys = many_accounts(ACCOUNTS)
    with Emulator(
        accounts=keys, account_counts=dict.fromkeys(keys, PER_RESOURCE), counts=PER_RESOURCE
    ) as running:
        yield running


def _config(emulator: Emulator, **overrides: object) -> dict[str, t.Any]:
    keys = sorted(emulator.settings.accounts)
    return {
        "api_key": API_KEY,
        "accounts": _accounts(keys),
        "api_url": emulator.url,
        "start_date": "2020-01-01T00:00:00Z",
        "max_retries": 1,
        "max_retry_seconds": 2,
        **overrides,
    }


def _truth(emulator: Emulator, key: str) -> dict[str, set[str]]:
    return {s: set(emulator.truth(r, account=key)) for s, r in STREAM_RESOURCES.items()}


def _partitions(state: dict, stream: str) -> dict[str, dict]:
    return {p["context"]["account_label"]: p for p in state["bookmarks"][stream]["partitions"]}


def test_every_healthy_account_is_complete_and_failures_are_isolated_and_named(
    emulator: Emulator, tmp_path: Path
) -> None:
    keys = sorted(emulator.settings.accounts)
    rejected, broken = keys[17], keys[123]
    labels = {key: f"company-{i:04d}" for i, key in enumerate(keys)}
    emulator.configure(failing_accounts={rejected: "401", broken: "500"})
    try:
        result = run_cli(
            config=_config(emulator),
            tmp_path=tmp_path,
            env={"TAP_MAESN_QONTO_LOGLEVEL": "debug"},
        )
    finally:
        emulator.configure(failing_accounts={})
    assert result.returncode == 1
    messages = parse_messages(result.stdout)
    for key in keys:
        if key in (rejected, broken):
            continue
        for stream, ids in _truth(emulator, key).items():
            got = {r["id"] for r in messages.records(stream) if r["account_label"] == labels[key]}
            assert got == ids, (labels[key], stream)
    final = messages.final_state
    for stream in STREAM_RESOURCES:
        partitions = _partitions(final, stream)
        healthy = set(labels.values()) - {labels[rejected], labels[broken]}
        assert healthy <= set(partitions)
        assert all("replication_key_value" in partitions[label] for label in healthy)
        for failed in (labels[rejected], labels[broken]):
            assert "replication_key_value" not in partitions.get(failed, {})
    errors = [line for line in result.stderr.splitlines() if "| ERROR" in line]
    assert any(f"account {labels[rejected]} failed" in line and "401" in line for line in errors)
    assert any(f"account {labels[broken]} failed" in line and "500" in line for line in errors)
    assert "2 of 200 accounts failed" in result.stderr
    assert "accounts: 198 read, 2 failed" in result.stderr  # (debug level shows tracebacks)
    for key in (*keys, API_KEY):  # debug level too: no key anywhere
        assert key not in result.stderr
        assert key not in result.stdout

    # The next run resumes the healthy accounts incrementally and retries the failed ones.
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps(final))
    again = run_cli("--state", str(state_path), config=_config(emulator), tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    second = parse_messages(again.stdout)
    for key in (rejected, broken):
        for stream, ids in _truth(emulator, key).items():
            got = {r["id"] for r in second.records(stream) if r["account_label"] == labels[key]}
            assert got == ids
    # The healthy ones were read incrementally: only records at or after their bookmark
    # minus the lookback (600 s) came again.
    marks = _partitions(final, "invoices")
    for record in second.records("invoices"):
        label = record["account_label"]
        if label in (labels[rejected], labels[broken]):
            continue
        since = parse_timestamp(marks[label]["replication_key_value"]) - dt.timedelta(seconds=600)
        assert parse_timestamp(record["updatedDate"]) >= since, record["id"]


def test_two_shards_are_disjoint_and_together_complete(emulator: Emulator) -> None:
    shards = [sync(_config(emulator, shard_count=2, shard_index=i)) for i in range(2)]
    labels = [{r["account_label"] for r in s.records("invoices")} for s in shards]
    assert labels[0].isdisjoint(labels[1])
    assert labels[0] | labels[1] == {f"company-{i:04d}" for i in range(ACCOUNTS)}
    assert all(shard_of(label, 2) == i for i, group in enumerate(labels) for label in group)
    for shard, group in zip(shards, labels, strict=True):
        assert set(_partitions(shard.final_state, "bills")) == group


def test_accounts_file_is_read_and_never_logged(emulator: Emulator, tmp_path: Path) -> None:
    config = _config(emulator)
    accounts_path = tmp_path / "accounts.json"
    accounts_path.write_text(json.dumps(config.pop("accounts")[:5]))
    os.chmod(accounts_path, 0o600)
    result = run_cli(
        config={**config, "accounts_file": str(accounts_path)},
        tmp_path=tmp_path,
        env={"TAP_MAESN_QONTO_LOGLEVEL": "debug"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    labels = {r["account_label"] for r in parse_messages(result.stdout).records("invoices")}
    assert labels == {f"company-{i:04d}" for i in range(5)}
    for key in sorted(emulator.settings.accounts)[:5]:
        assert key not in result.stderr


@pytest.mark.parametrize(
    ("accounts", "phrase"),
    [
        (
            [{"label": "a", "account_key": "k1"}, {"label": "a", "account_key": "k2"}],
            "the label 'a' is given to two accounts",
        ),
        ([{"label": "a b", "account_key": "k1"}], "needs a label of letters, digits"),
        ([{"label": "x", "account_key": ""}], "account 'x' has no account_key"),
        (
            [{"label": "k" * 40, "account_key": "secret-key-1"}],
            "the label of account #1 looks like a key",
        ),
    ],
)
def test_bad_accounts_stop_the_tap_before_any_request(
    tmp_path: Path, accounts: list[dict[str, object]], phrase: str
) -> None:
    config = {"api_key": "tenant-key", "accounts": accounts, "api_url": "http://127.0.0.1:9"}
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert phrase in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        ({"account_key": "k"}, "account_key and accounts are both set"),
        ({"shard_count": 2, "shard_index": 2}, "shard_index 2 is outside 0..1"),
    ],
)
def test_conflicting_account_settings_are_one_line(
    tmp_path: Path, extra: dict[str, object], phrase: str
) -> None:
    config = {
        "api_key": "tenant-key",
        "accounts": [{"label": "a", "account_key": "k1"}],
        "api_url": "http://127.0.0.1:9",
        **extra,
    }
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    assert phrase in result.stderr
    assert "Traceback" not in result.stderr


def test_a_single_account_state_keeps_working_as_a_list_of_one(emulator: Emulator) -> None:
    key = sorted(emulator.settings.accounts)[3]
    single = {
        "api_key": API_KEY,
        "account_key": key,
        "account_label": "company-0003",
        "api_url": emulator.url,
        "start_date": "2020-01-01T00:00:00Z",
    }
    first = sync(single)
    listed = {**_config(emulator), "accounts": [{"label": "company-0003", "account_key": key}]}
    second = sync(listed, state=first.final_state)
    # Incremental from the single-account bookmark: only the lookback's re-reads.
    assert len(second.records("invoices")) <= len(first.records("invoices"))
    for stream in STREAM_RESOURCES:
        assert set(_partitions(second.final_state, stream)) == {"company-0003"}
        before = _partitions(first.final_state, stream)["company-0003"]["replication_key_value"]
        after = _partitions(second.final_state, stream)["company-0003"]["replication_key_value"]
        assert after >= before


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
        result = sync(_config(emulator))
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
