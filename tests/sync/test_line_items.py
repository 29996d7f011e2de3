"""Line items get their own streams, and deletions leave the target through reconciles.

Each test runs real syncs over loopback HTTP against the emulator and compares the
messages with the emulator's truth. A run killed and resumed: tests/cli/test_line_items.py.
The same, through target-postgres on a real PostgreSQL (soft and hard deletes):
tests/e2e/test_deletions.py.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest

from tap_maesn_qonto.details import AUTO_GIVES_UP_AFTER
from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.tap import TapMaesnQonto
from tap_maesn_qonto.timestamps import normalize_timestamp
from tests.support.checks import LINE_STREAMS, expected_lines, lines_written
from tests.support.configs import STREAM_RESOURCES, tap_config
from tests.support.tap import SyncResult, sync

COUNTS = {"invoices": 230, "bills": 140, "bookingProposals": 90}


def _seconds_before(moment: str, seconds: int) -> str:
    return (dt.datetime.fromisoformat(moment) - dt.timedelta(seconds=seconds)).isoformat()


def _catalog_selecting(config: dict[str, t.Any], selected: set[str]) -> dict[str, t.Any]:
    catalog = TapMaesnQonto(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in selected
    return catalog


@pytest.mark.parametrize("stream", list(LINE_STREAMS))
def test_each_line_of_each_parent_is_one_row_pointing_at_its_parent(stream: str) -> None:
    with Emulator(counts=COUNTS) as emulator:
        result = sync(tap_config(emulator, page_size=20))
        expected = expected_lines(emulator, stream)
        truth = emulator.truth(STREAM_RESOURCES[stream])
    name, key = LINE_STREAMS[stream]
    assert expected, "the emulator serves no line items: the test would prove nothing"
    assert lines_written(result, stream) == expected  # every line once, none invented
    parents = {r["id"] for r in result.records(stream)}
    for row in result.records(name):
        assert row[key] in parents
        parent = truth[row[key]]
        assert row["parent_line_count"] == len(parent["lineItems"])
        assert row["parent_updated_date"] == normalize_timestamp(parent["updatedDate"])
        assert row["account_label"] == "default"
        assert row["target_system"] == "qonto"


def test_line_items_alone_are_read_from_their_parents_and_keep_the_parents_bookmark() -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = tap_config(emulator, page_size=20)
        result = sync(config, catalog=_catalog_selecting(config, {"invoice_line_items"}))
        expected = expected_lines(emulator, "invoices")
        newest = max(
            normalize_timestamp(r["updatedDate"]) for r in emulator.truth("invoices").values()
        )
    assert not result.records("invoices"), "the parent was not selected"
    assert lines_written(result, "invoices") == expected
    partitions = result.final_state["bookmarks"]["invoices"]["partitions"]
    mark = partitions[0]["replication_key_value"]  # a whole-list read's: minus its duration
    assert normalize_timestamp(_seconds_before(newest, 5)) <= mark <= newest


def test_no_state_carries_a_bookmark_past_a_line_not_yet_written() -> None:
    # 2 500 invoices: STATE messages come every 1 000 records, mid-read.
    with Emulator(counts={"invoices": 2500, "bills": 0, "bookingProposals": 0}) as emulator:
        result = sync(tap_config(emulator, max_concurrency=1))
        truth = emulator.truth("invoices")
    lines_written: set[str] = set()
    checked = 0
    for message in result.messages:
        if message["type"] == "RECORD" and message["stream"] == "invoice_line_items":
            lines_written.add(message["record"]["invoice_id"])
        if message["type"] == "STATE":
            partitions = message["value"]["bookmarks"].get("invoices", {}).get("partitions")
            mark = partitions and partitions[0].get("replication_key_value")
            if not mark:
                continue
            covered = {
                i
                for i, r in truth.items()
                if r.get("lineItems") and normalize_timestamp(r["updatedDate"]) < mark
            }
            assert covered <= lines_written, f"STATE at {mark} before their lines"
            checked += 1
    assert checked >= 3, "too few STATE messages to prove anything"


@pytest.mark.parametrize(("mode", "complete"), [("auto", True), ("always", True), ("never", False)])
def test_a_list_that_omits_line_items_is_completed_from_the_details(
    mode: str, *, complete: bool
) -> None:
    with Emulator(counts=COUNTS, list_omits_line_items=0.5) as emulator:
        result = sync(tap_config(emulator, page_size=20, fetch_details=mode))
        expected = expected_lines(emulator, "invoices")
        details = emulator.stats()["detail_requests"]
    got = lines_written(result, "invoices")
    assert not got - expected, "a line that does not exist"
    if complete:
        assert got == expected
        assert details.get("invoices", 0) > 0
    else:
        assert got != expected, "the knob no longer omits anything: the test proves nothing"
        assert not details


def test_a_list_whose_nulls_mean_no_lines_stops_asking_for_details() -> None:
    # Bills without line items at all: a detail shows none either, so auto gives up.
    with Emulator(counts={"invoices": 0, "bills": 300, "bookingProposals": 0}) as emulator:
        sync(tap_config(emulator, page_size=20))
        truth = emulator.truth("bills")
        details = emulator.stats()["detail_requests"].get("bills", 0)
    without = sum(1 for r in truth.values() if r.get("lineItems") is None)
    assert without > 10, "the emulator serves too few records without lines"
    assert details == AUTO_GIVES_UP_AFTER  # not the rest of the first page's nulls


# --- reconciles ------------------------------------------------------------------------


def _activations(result: SyncResult) -> dict[str, int]:
    return {m["stream"]: m["version"] for m in result.messages if m["type"] == "ACTIVATE_VERSION"}


@pytest.mark.parametrize("reconcile_interval_days", [None, 7])
def test_a_first_run_carries_a_version_and_retires_nothing(
    reconcile_interval_days: int | None,
) -> None:
    # Versions always (a later reconcile retires only rows older than its own); with
    # reconciles on, the first interval starts now.
    with Emulator(counts=COUNTS) as emulator:
        config = tap_config(emulator)
        if reconcile_interval_days is not None:
            config["reconcile_interval_days"] = reconcile_interval_days
        result = sync(config)
    assert not _activations(result)
    versions = {m["stream"]: m.get("version") for m in result.messages if m["type"] == "RECORD"}
    assert set(versions) == set(LINE_STREAMS) | {name for name, _ in LINE_STREAMS.values()}
    assert all(isinstance(v, int) for v in versions.values())
    for stream in LINE_STREAMS:
        partition = result.final_state["bookmarks"][stream]["partitions"][0]
        assert partition["table_version"] == versions[stream]
        assert ("reconciled_at" in partition) is (reconcile_interval_days is not None)


def test_a_reconcile_reads_everything_then_activates_a_newer_version_after_the_rows() -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = tap_config(emulator)
        first = sync(config)
        emulator.configure(mutate_every_requests=1, mutations_per_batch={"delete": 1})
        sync(config, state=first.final_state, expect=None)  # deletions happen
        emulator.configure(mutate_every_requests=0)
        config["reconcile_interval_days"] = 0
        reconcile = sync(config, state=first.final_state)
        live = {stream: set(emulator.truth(STREAM_RESOURCES[stream])) for stream in LINE_STREAMS}
    activated = _activations(reconcile)
    for stream, (line_stream, _) in LINE_STREAMS.items():
        old = first.final_state["bookmarks"][stream]["partitions"][0]["table_version"]
        assert activated[stream] > old
        assert activated[line_stream] == activated[stream]
        # every live record is sent again with the new version, before the activation
        position = next(
            i
            for i, m in enumerate(reconcile.messages)
            if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream
        )
        sent = {
            m["record"]["id"]
            for m in reconcile.messages[:position]
            if m["type"] == "RECORD" and m["stream"] == stream
        }
        assert sent == live[stream]
        assert {
            m["version"] for m in reconcile.messages if m.get("stream") == stream and "version" in m
        } == {activated[stream]}


@pytest.mark.e2e  # slow: faults include 5 s answers
def test_a_reconcile_that_an_account_fails_retires_nothing() -> None:
    with Emulator(counts=COUNTS, fault_rate=1.0) as emulator:
        config = tap_config(
            emulator,
            reconcile_interval_days=0,
            max_retries=0,
            accounts=[
                {"label": "a", "account_key": "emulator-account-qonto"},
                {"label": "b", "account_key": "wrong-key"},
            ],
        )
        del config["account_key"]
        result = sync(config, expect=Exception)
    assert not _activations(result)


def test_between_reconciles_the_newest_parent_updated_date_tells_the_current_lines() -> None:
    # An invoice cut from 3 lines to 1: its old rows 2 and 3 stay in a target merging on
    # (invoice_id, position) until a reconcile; the README's rule sets them apart.
    with Emulator(counts=COUNTS) as emulator:
        config = tap_config(emulator)
        first = sync(config)
        shrunk = emulator.shrink_line_items("invoices", before=3, after=1)
        second = sync(config, state=first.final_state)
        expected = expected_lines(emulator, "invoices")
    table: dict[tuple[str, int], dict] = {}  # what an upserting target holds
    for result in (first, second):
        for row in result.records("invoice_line_items"):
            table[row["invoice_id"], row["position"]] = row
    assert {(shrunk, 2), (shrunk, 3)} <= set(table), "the stale rows are expected to stay"
    newest: dict[str, str] = {}
    for (invoice, _), row in table.items():
        newest[invoice] = max(newest.get(invoice, ""), row["parent_updated_date"])
    current = {key for key, row in table.items() if row["parent_updated_date"] == newest[key[0]]}
    assert current == set(expected)
    assert table[shrunk, 1]["parent_line_count"] == 1
