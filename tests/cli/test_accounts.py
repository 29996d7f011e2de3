"""Many connected companies, as the command line runs them: failures isolated and named,
the accounts file read and never logged, bad accounts refused before any request.

The emulator serves 200 accounts (the ``many_accounts_emulator`` fixture); one has a key
Maesn rejects and one answers 500 to every request.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import typing as t
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.timestamps import parse_timestamp
from tests.support.configs import API_KEY, STREAM_RESOURCES, accounts_config
from tests.support.tap import parse_messages, run_cli

if t.TYPE_CHECKING:
    pass


def _truth(emulator: Emulator, key: str) -> dict[str, set[str]]:
    return {s: set(emulator.truth(r, account=key)) for s, r in STREAM_RESOURCES.items()}


def _partitions(state: dict, stream: str) -> dict[str, dict]:
    return {p["context"]["account_label"]: p for p in state["bookmarks"][stream]["partitions"]}


@pytest.mark.e2e  # slow: two runs over 200 accounts
def test_every_healthy_account_is_complete_and_failures_are_isolated_and_named(
    many_accounts_emulator: Emulator, tmp_path: Path
) -> None:
    keys = sorted(many_accounts_emulator.settings.accounts)
    rejected, broken = keys[17], keys[123]
    labels = {key: f"company-{i:04d}" for i, key in enumerate(keys)}
    many_accounts_emulator.configure(failing_accounts={rejected: "401", broken: "500"})
    try:
        result = run_cli(
            config=accounts_config(many_accounts_emulator),
            tmp_path=tmp_path,
            env={"TAP_MAESN_QONTO_LOGLEVEL": "debug"},
            quick_retries=True,
        )
    finally:
        many_accounts_emulator.configure(failing_accounts={})
    assert result.returncode == 1
    messages = parse_messages(result.stdout)
    for key in keys:
        if key in (rejected, broken):
            continue
        for stream, ids in _truth(many_accounts_emulator, key).items():
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
    again = run_cli(
        "--state",
        str(state_path),
        config=accounts_config(many_accounts_emulator),
        tmp_path=tmp_path,
        quick_retries=True,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    second = parse_messages(again.stdout)
    for key in (rejected, broken):
        for stream, ids in _truth(many_accounts_emulator, key).items():
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


def test_accounts_file_is_read_and_never_logged(
    many_accounts_emulator: Emulator, tmp_path: Path
) -> None:
    config = accounts_config(many_accounts_emulator)
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
    for key in sorted(many_accounts_emulator.settings.accounts)[:5]:
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
