"""Regression tests for the rebuilt read path (issue 9), the tap in this process.

Every test runs the real tap (``tests.support.tap.sync``) against the emulator over
loopback HTTP and compares what was emitted with the emulator's truth: distinct primary
keys, and record versions (id + normalized updatedDate). The items whose guarantee is a
one-line failure or an exit code run the command line: tests/cli/test_read_path.py and
tests/cli/test_exit_codes.py. FullRead over scripted pages: tests/unit/test_fullread.py.
"""

from __future__ import annotations

import itertools
import logging
import typing as t

import pytest

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.errors import IncompleteSyncError
from tap_maesn_qonto.tap import TapMaesnQonto
from tests.support.checks import (
    bookmark_value,
    counts,
    invoices,
    utc,
    whole_list,
)
from tests.support.configs import STREAM_RESOURCES, tap_config
from tests.support.tap import (
    CollectingWriter,
    SyncResult,
    bookmark,
    state_at,
    sync,
)


def _versions(emulator: Emulator, resource: str) -> set[tuple[str, str | None]]:
    """(id, normalized updatedDate) of every record the emulator holds now."""
    return {(i, utc(r["updatedDate"])) for i, r in emulator.truth(resource).items()}


def _emitted_versions(*runs: SyncResult, stream: str) -> set[tuple[str, str | None]]:
    return {(r["id"], r["updatedDate"]) for run in runs for r in run.records(stream)}


# --- item 1: 404/405 after the first request -----------------------------------------


def test_a_transient_404_mid_stream_is_retried_and_every_record_arrives() -> None:
    # issue 9, item 1
    with Emulator(counts=invoices(203)) as emulator:
        emulator.fail_next("404", count=1, resource="invoices", page=3)
        result = sync(whole_list(tap_config(emulator, page_size=20)))
        truth = set(emulator.truth("invoices"))
        faults = emulator.stats()["faults"]
    assert faults == {"404": 1}, "the scripted 404 was never served"
    ids = result.ids("invoices")
    assert set(ids) == truth
    assert len(ids) == len(truth)


def test_without_page_counts_a_single_422_after_a_full_page_is_asked_again() -> None:
    # issue 9, item 2
    # No totals: only a repeated 422 ends the data (past_last_page="422" answers it
    # for page 11 of 50 records in pages of 5), and every record is read; without
    # totals the read cannot be proven, so the run ends with exit 3.
    with Emulator(counts=invoices(50), pagination_meta="null", past_last_page="422") as emulator:
        emulator.fail_next("422", count=1, resource="invoices", page=3)
        result = sync(
            whole_list(tap_config(emulator, page_size=5, max_concurrency=1)),
            expect=IncompleteSyncError,
        )
        truth = set(emulator.truth("invoices"))
        faults = emulator.stats()["faults"]
    assert faults == {"422": 1}
    ids = result.ids("invoices")
    assert set(ids) == truth
    assert len(ids) == 50


# --- items 3 and 6: every current version reaches the target over two runs --------------


def _sync_allowing_incomplete(
    config: dict[str, t.Any], state: dict[str, t.Any] | None = None
) -> SyncResult:
    """A run that may end with exit code 3 (records may be missing, the bookmark held).

    That verdict is honest under heavy changes; what counts is what the next run reads.
    """
    writer = CollectingWriter()
    tap = TapMaesnQonto(config=config, state=state, message_writer=writer)
    try:
        tap.sync_all()
    except Exception as exc:
        if getattr(exc, "exit_code", None) != 3:
            raise
    return SyncResult(writer.messages)


def _two_runs_with_changes_during_the_first(
    emulator: Emulator, config: dict[str, t.Any], batch: dict[str, int], every: int
) -> tuple[SyncResult, SyncResult]:
    emulator.configure(mutate_every_requests=every, mutations_per_batch=batch)
    first = _sync_allowing_incomplete(config)
    emulator.configure(mutate_every_requests=0)
    assert sum(emulator.stats()["mutations"].values()), "nothing changed during run 1"
    second = sync(config, state=first.final_state)
    return first, second


def test_old_records_edited_and_others_deleted_during_a_filtered_sync_lose_nothing() -> None:
    # issue 9, item 3
    # This passes on e927d5f as well: with the emulator's data an edited old record was
    # created before nearly every record of the filtered set, so under createdDate ASC it
    # lands on page 1, shifts records forward (seen as ids on two pages), and the edits
    # running all run long make the old code hold its bookmark at the start instead.
    start = "2025-07-14T00:00:00Z"
    with Emulator(counts=counts(100)) as emulator:
        config = tap_config(emulator, start_date=start, page_size=10, max_concurrency=2)
        first, second = _two_runs_with_changes_during_the_first(
            emulator, config, {"update": 10, "delete": 5}, every=2
        )
        live = {s: _versions(emulator, r) for s, r in STREAM_RESOURCES.items()}
    for stream in STREAM_RESOURCES:
        expected = {v for v in live[stream] if v[1] is None or v[1] >= utc(start)}
        missing = expected - _emitted_versions(first, second, stream=stream)
        assert not missing, f"{stream}: {len(missing)} current versions never emitted"


def test_updates_are_not_lost_when_the_server_clock_lags_behind_this_machine() -> None:
    # issue 9, item 6
    with Emulator(counts=counts(100), updated_lag_seconds=3 * 3600) as emulator:
        config = tap_config(emulator, page_size=10, max_concurrency=2)
        first, second = _two_runs_with_changes_during_the_first(
            emulator, config, {"update": 4, "create": 1, "delete": 1}, every=2
        )
        live = {s: _versions(emulator, r) for s, r in STREAM_RESOURCES.items()}
    for stream in STREAM_RESOURCES:
        missing = live[stream] - _emitted_versions(first, second, stream=stream)
        assert not missing, f"{stream}: {len(missing)} current versions never emitted"


# --- items 4 and 5: the bookmark moves, and never backwards ------------------------------


def test_continuous_edits_during_a_filtered_backfill_still_move_the_bookmark() -> None:
    # issue 9, item 4
    start = "2025-07-14T00:00:00Z"
    with Emulator(counts=invoices(100)) as emulator:
        newest_before = max(
            utc(r["updatedDate"]) or "" for r in emulator.truth("invoices").values()
        )
        emulator.configure(mutate_every_requests=1, mutations_per_batch={"update": 2})
        result = sync(tap_config(emulator, start_date=start, page_size=10, max_concurrency=2))
        emulator.configure(mutate_every_requests=0)
    mark = bookmark(result.final_state, "invoices")["replication_key_value"]
    assert mark > utc(start)
    # At least as far as a quiet run would have gone: the newest record before the edits.
    assert mark >= newest_before


def _delete_the_newest(emulator: Emulator, resource: str) -> None:
    """Delete records (at random, through the public API) until the newest one is gone."""
    truth = emulator.truth(resource)
    newest = max(truth, key=lambda i: utc(truth[i]["updatedDate"]) or "")
    while newest in emulator.truth(resource):
        emulator.mutate(resource, delete=1)


def test_the_bookmark_never_moves_backwards_across_runs() -> None:
    # issue 9, item 5
    # A lookback of 200 days makes every run re-read a window of several pages.
    with Emulator(counts=invoices(150)) as emulator:
        config = tap_config(emulator, page_size=10, lookback_window=200 * 24 * 3600)
        marks: list[str] = []
        state = None
        for run in ("quiet", "quiet", "quiet", "edits", "quiet", "newest deleted"):
            if run == "edits":
                emulator.configure(mutate_every_requests=1, mutations_per_batch={"update": 2})
            if run == "newest deleted":
                _delete_the_newest(emulator, "invoices")
            result = sync(config, state=state)
            emulator.configure(mutate_every_requests=0)
            state = result.final_state
            marks.append(bookmark(state, "invoices")["replication_key_value"])
    for before, after in itertools.pairwise(marks):
        assert after >= before, marks


def test_a_held_bookmark_never_falls_below_the_previous_one() -> None:
    # issue 9, item 5
    # A bulk import left 40 records on one updatedDate second (2024-11-20 with seed 6); a
    # lookback of two years puts that group in the window of every incremental run, so
    # each reads the whole list, and deletions all run long keep shifting it: the run
    # holds its bookmark (exit code 3).
    with Emulator(counts=invoices(120), tie_group_size=40, seed=6) as emulator:
        config = tap_config(
            emulator, page_size=10, max_concurrency=1, lookback_window=730 * 24 * 3600
        )
        first = sync(config)
        emulator.configure(mutate_every_requests=1, mutations_per_batch={"update": 6, "delete": 2})
        second = _sync_allowing_incomplete(config, state=first.final_state)
        emulator.configure(mutate_every_requests=0)
    before = bookmark(first.final_state, "invoices")["replication_key_value"]
    after = bookmark_value(second.final_state, "invoices")
    assert after is not None
    assert after >= before


# --- item 7: FULL_TABLE --------------------------------------------------------------------


def test_full_table_in_the_catalog_reads_every_record_whatever_the_bookmark() -> None:
    # issue 9, item 7
    with Emulator(counts=counts(40)) as emulator:
        config = tap_config(emulator, start_date="2026-10-01T00:00:00Z", page_size=10)
        catalog = TapMaesnQonto(config=config).catalog_dict
        for entry in catalog["streams"]:
            if entry["tap_stream_id"] == "invoices":
                # singer-sdk 0.54 (Stream.apply_catalog) takes the entry's own
                # replication_method first, the stream metadata's only when it is unset:
                # a discovered catalog carries INCREMENTAL there, so both are set.
                entry["replication_method"] = "FULL_TABLE"
                for metadata in entry["metadata"]:
                    if metadata["breadcrumb"] == []:
                        metadata["metadata"]["forced-replication-method"] = "FULL_TABLE"
        newest = max(utc(r["updatedDate"]) or "" for r in emulator.truth("invoices").values())
        state = state_at(newest, ["invoices"])
        result = sync(config, state=state, catalog=catalog)
        truth = set(emulator.truth("invoices"))
    ids = result.ids("invoices")
    assert set(ids) == truth
    assert len(ids) == len(truth)


# --- item 8: a 200 carrying errors ------------------------------------------------------


def test_a_200_carrying_errors_is_retried_not_read_as_an_empty_page() -> None:
    # issue 9, item 8
    # Without page counts, an empty page would mean "no more records" (and without
    # them the read cannot be proven: exit 3, every record read all the same).
    with Emulator(counts=invoices(40), pagination_meta="null") as emulator:
        emulator.fail_next("errors_200", count=1, resource="invoices", page=3)
        result = sync(
            whole_list(tap_config(emulator, page_size=5, max_concurrency=1)),
            expect=IncompleteSyncError,
        )
        truth = set(emulator.truth("invoices"))
        faults = emulator.stats()["faults"]
    assert faults == {"errors_200": 1}
    assert set(result.ids("invoices")) == truth
    assert len(result.ids("invoices")) == 40


# --- item 15: the connection pool follows max_concurrency ------------------------------------


def test_the_connection_pool_holds_every_concurrent_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # issue 9, item 15
    caplog.set_level(logging.WARNING, logger="urllib3")
    with Emulator(counts=invoices(200), latency_ms=30) as emulator:
        config = whole_list(tap_config(emulator, page_size=5, max_concurrency=16))
        result = sync(config)
        truth = set(emulator.truth("invoices"))
    assert "Connection pool is full" not in caplog.text
    ids = result.ids("invoices")
    assert set(ids) == truth
    assert len(ids) == len(truth)
