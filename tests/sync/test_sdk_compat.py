"""The places the tap leans on singer-sdk beyond its public hooks (sdk_compat.py); these
fail if the SDK changes what a seam relies on. This file imports, of the tap, only
sdk_compat.py and the tap itself.

* ``Stream._write_record_message`` is overridden: without stream maps, flattening or
  deselected properties, RECORD messages skip the SDK's no-op work, and must be exactly
  what the SDK's own path writes, through the tap's own writer as through any other.
* ``Stream._increment_stream_state`` is overridden: the read sets the partition's
  bookmark after each record, and every STATE it leaves is safe to resume from.
* ``Stream._stream_version`` is set (``carry_version``) so that RECORD messages carry
  the table version; the SDK has no public setter.
* ``StreamStateManager.get_context_state`` is replaced by an indexed lookup.
* ``PluginBase._setup_signal_handlers`` and ``PluginBase._validate_config`` are
  overridden: the tap's own signal handling and config checks, where the SDK's are.
* ``Tap.sync_all`` (final in the SDK) is wrapped: the wrapper calls the SDK's and
  adds the run's verdict, so an incomplete run must still end with exit code 3.
* ``STATE_MSG_FREQUENCY`` is set per stream instance: the SDK still reads it per record.

Here, the checks that sync against the emulator; those that need no server:
tests/unit/test_sdk_compat.py.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
import sys
import typing as t
from unittest import mock

from singer_sdk import Tap
from singer_sdk.contrib.msgspec import decoder
from singer_sdk.streams.core import Stream

from tap_maesn_qonto.emulator import Emulator, many_accounts
from tap_maesn_qonto.errors import IncompleteSyncError
from tap_maesn_qonto.sdk_compat import PlainRecordMessages
from tap_maesn_qonto.tap import TapMaesnQonto
from tap_maesn_qonto.timestamps import normalize_timestamp
from tests.support.configs import tap_config
from tests.support.tap import SyncResult, sync

if t.TYPE_CHECKING:
    from pathlib import Path

RECORDS = 2500  # past two STATE intervals of 1 000 records


def comparable(value: t.Any) -> t.Any:
    """A state without what differs between two runs (table version, reconcile time)."""
    if isinstance(value, dict):
        return {
            k: comparable(v)
            for k, v in value.items()
            if k not in {"table_version", "reconciled_at"}
        }
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def _bookmarks_between_records(messages: list[dict], stream: str) -> list[str | None]:
    """``stream``'s bookmark in each STATE written between its first and last record."""
    positions = [
        i for i, m in enumerate(messages) if m["type"] == "RECORD" and m["stream"] == stream
    ]
    first, last = positions[0], positions[-1]
    return [
        partitions[0].get("replication_key_value")
        for m in messages[first:last]
        if m["type"] == "STATE"
        and (partitions := m["value"]["bookmarks"].get(stream, {}).get("partitions"))
    ]


def test_an_incremental_read_writes_resumable_states_as_it_goes() -> None:
    with Emulator(counts={"invoices": RECORDS, "bills": 0, "bookingProposals": 0}) as emulator:
        result = sync(tap_config(emulator, max_concurrency=1))
        truth = emulator.truth("invoices")
    marks = [m for m in _bookmarks_between_records(result.messages, "invoices") if m]
    assert len(set(marks)) >= 2, "no resumable STATE while the window read went on"
    for mark in marks:  # each is safe: every record updated before it came before it
        position = next(
            i
            for i, m in enumerate(result.messages)
            if m["type"] == "STATE"
            and m["value"]["bookmarks"]["invoices"]["partitions"][0].get("replication_key_value")
            == mark
        )
        before = {
            m["record"]["id"]
            for m in result.messages[:position]
            if m["type"] == "RECORD" and m["stream"] == "invoices"
        }
        older = {i for i, r in truth.items() if normalize_timestamp(r["updatedDate"]) < mark}
        assert older <= before, f"STATE at {mark} before records it covers"


def test_a_whole_list_read_writes_no_state_until_it_is_done() -> None:
    with Emulator(counts={"invoices": RECORDS, "bills": 0, "bookingProposals": 0}) as emulator:
        config = tap_config(emulator)
        del config["start_date"]
        result = sync(config)
    assert len(result.ids("invoices")) == RECORDS
    # STATEs may come between records (line rows end their sync with one), never with
    # a bookmark from the unfinished whole-list read.
    assert set(_bookmarks_between_records(result.messages, "invoices")) <= {None}


def test_record_messages_still_take_their_version_from_stream_version() -> None:
    assert "version=self._stream_version" in inspect.getsource(Stream._generate_record_messages)
    with Emulator(counts={"invoices": 3, "bills": 0, "bookingProposals": 0}) as emulator:
        result = sync(tap_config(emulator))
    partition = result.final_state["bookmarks"]["invoices"]["partitions"][0]
    versions = {m.get("version") for m in result.messages if m["type"] == "RECORD"}
    assert versions == {partition["table_version"]}


def test_the_direct_record_path_writes_what_the_sdks_own_path_writes() -> None:
    source = inspect.getsource(Stream._generate_record_messages)
    assert "pop_deselected_record_properties" in source  # what records.py skips
    assert "stream_map.transform(record)" in source

    def records(result: SyncResult) -> dict[str, list[dict]]:
        """Each stream's RECORD messages in order, without their time and version.

        Per stream: the direct path writes line rows beside their parents, the SDK's
        path in batches, so only the order across streams differs.
        """
        versions = {(m["stream"], m["version"]) for m in result.messages if m["type"] == "RECORD"}
        assert len(versions) == 6, versions  # one table version per stream, on every record
        by_stream: dict[str, list[dict]] = {}
        for m in result.messages:
            if m["type"] == "RECORD":
                kept = {k: v for k, v in m.items() if k not in {"time_extracted", "version"}}
                by_stream.setdefault(m["stream"], []).append(kept)
        return by_stream

    with Emulator(counts={"invoices": 120, "bills": 60, "bookingProposals": 40}) as emulator:
        config = tap_config(emulator, start_date="2024-01-01T00:00:00Z")
        direct = sync(config)
        assert not _sdk_path_taken(config)
        with mock.patch.object(
            PlainRecordMessages, "records_need_the_sdk", property(lambda _: True)
        ):
            through_the_sdk = sync(config)
    assert len(records(direct)) == 6
    assert records(direct) == records(through_the_sdk)


def _record_lines(config: dict, out: Path) -> dict[bytes, list[bytes]]:
    """Each stream's RECORD lines the tap's own writer puts on stdout, in order, without
    their time (checked to be a time during the run) and version."""
    started = dt.datetime.now(dt.UTC)
    with out.open("w") as stdout, mock.patch.object(sys, "stdout", stdout):
        TapMaesnQonto(config=config).sync_all()
    ended = dt.datetime.now(dt.UTC)
    by_stream: dict[bytes, list[bytes]] = {}
    for line in out.read_bytes().splitlines():
        if line.startswith(b'{"type":"RECORD"'):
            extracted = dt.datetime.fromisoformat(decoder.decode(line)["time_extracted"])
            assert started - dt.timedelta(milliseconds=1) <= extracted <= ended
            stream = line.split(b'"stream":', 1)[1].split(b",", 1)[0]
            kept = re.sub(rb',"version":\d+|,"time_extracted":"[^"]*"', b"", line)
            by_stream.setdefault(stream, []).append(kept)
    return by_stream


def test_the_taps_own_writer_writes_the_bytes_of_the_sdks_path(tmp_path: Path) -> None:
    with Emulator(counts={"invoices": 120, "bills": 60, "bookingProposals": 40}) as emulator:
        emulator.configure(extra_fields=True)  # fields the schema does not know: dropped
        config = tap_config(emulator, start_date="2024-01-01T00:00:00Z")
        direct = _record_lines(config, tmp_path / "direct")
        with mock.patch.object(
            PlainRecordMessages, "records_need_the_sdk", property(lambda _: True)
        ):
            through_the_sdk = _record_lines(config, tmp_path / "sdk")
    assert len(direct) == 6
    assert sum(map(len, direct.values())) > 220  # parents and their line rows
    assert direct == through_the_sdk


def _sdk_path_taken(config: dict) -> bool:
    tap = TapMaesnQonto(config=config)
    return any(
        s.records_need_the_sdk for s in tap.streams.values() if isinstance(s, PlainRecordMessages)
    )


def test_sync_all_is_still_the_sdk_entry_point_the_wrapper_extends() -> None:
    assert list(inspect.signature(Tap.sync_all).parameters) == ["self"]
    # The wrapper's verdict: a whole-list read that keeps seeing deletions is incomplete.
    with Emulator(counts={"invoices": 60, "bills": 0, "bookingProposals": 0}) as emulator:
        emulator.configure(mutate_every_requests=1, mutations_per_batch={"delete": 1})
        config = tap_config(emulator, page_size=5, max_concurrency=1)
        del config["start_date"]
        result = sync(config, expect=IncompleteSyncError)
    assert result.states, "the SDK's own sync ran and wrote state"


def test_indexed_partition_lookups_leave_every_state_as_the_sdks_scan_would() -> None:
    keys = many_accounts(12)
    counts = {"invoices": 7, "bills": 5, "bookingProposals": 3}
    with Emulator(accounts=keys, counts=counts) as emulator:
        config = tap_config(emulator, page_size=5)
        del config["account_key"]
        config["accounts"] = [{"label": f"c{i:02d}", "account_key": k} for i, k in enumerate(keys)]
        indexed = sync(config)
        unindexed = mock.patch(
            "tap_maesn_qonto.sdk_compat.index_partition_lookups", return_value=None
        )
        with unindexed:
            scanned = sync(config)
        emulator.mutate("invoices", update=3, create=2)
        again_indexed = sync(config, state=indexed.final_state)
        with unindexed:
            again_scanned = sync(config, state=scanned.final_state)

    states = [r.states for r in (indexed, scanned, again_indexed, again_scanned)]
    assert all(states), "no STATE message"
    assert comparable(indexed.final_state) == comparable(scanned.final_state)
    assert comparable(again_indexed.final_state) == comparable(again_scanned.final_state)
    partitions = indexed.final_state["bookmarks"]["invoices"]["partitions"]
    assert len(partitions) == 12
    assert all(p.get("replication_key_value") for p in partitions)
