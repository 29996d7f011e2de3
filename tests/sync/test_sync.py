"""Every record that exists reaches the target, once, in the tap's one shape.

Each test runs a real sync over loopback HTTP against the emulator and compares
what the tap emitted with the emulator's truth (distinct primary keys, values).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import overload

import jsonschema
import pytest

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.errors import IncompleteSyncError
from tap_maesn_qonto.timestamps import (
    format_timestamp,
    normalize_timestamp,
    parse_timestamp,
)
from tests.support.configs import SANDBOX_ACCOUNT_KEY, STREAM_RESOURCES, tap_config
from tests.support.tap import SyncResult, bookmark, state_at, sync

UTC_FORM = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def _counts(n: int) -> dict[str, int]:
    return dict.fromkeys(STREAM_RESOURCES.values(), n)


@pytest.mark.parametrize(
    ("page_size", "count"),
    [(5, 50), (5, 53), (100, 300), (100, 237), (100, 0)],
    ids=["5x10-pages", "5-short-last-page", "100x3-pages", "100-short-last-page", "empty"],
)
@pytest.mark.parametrize("max_concurrency", [1, 4])
def test_every_record_arrives_exactly_once(
    page_size: int, count: int, max_concurrency: int
) -> None:
    with Emulator(counts=_counts(count)) as emulator:
        result = sync(tap_config(emulator, page_size=page_size, max_concurrency=max_concurrency))
        for stream, resource in STREAM_RESOURCES.items():
            ids = result.ids(stream)
            assert len(ids) == len(set(ids)), f"{stream}: duplicate records"
            assert set(ids) == set(emulator.truth(resource)), f"{stream}: records lost or invented"


def test_records_keep_page_order_with_concurrency() -> None:
    with Emulator(counts=_counts(230)) as emulator:
        # A whole-list read (no start): the one that fetches pages concurrently.
        config = tap_config(emulator, page_size=5)
        del config["start_date"]
        sequential = sync({**config, "max_concurrency": 1})
        concurrent = sync({**config, "max_concurrency": 8})
    for stream in STREAM_RESOURCES:
        assert concurrent.ids(stream) == sequential.ids(stream)


def test_records_match_their_schema_and_use_one_utc_form() -> None:
    with Emulator(counts=_counts(120)) as emulator:
        result = sync(tap_config(emulator))
    schemas = {m["stream"]: m["schema"] for m in result.messages if m["type"] == "SCHEMA"}
    for stream in STREAM_RESOURCES:
        validator = jsonschema.Draft7Validator(
            schemas[stream], format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
        )
        for record in result.records(stream):
            validator.validate(record)
            assert record.keys() == schemas[stream]["properties"].keys()
            for name in ("createdDate", "updatedDate"):
                assert record[name] is None or UTC_FORM.match(record[name]), record[name]


def test_money_is_exact_to_the_last_digit() -> None:
    with Emulator(counts=_counts(300)) as emulator:
        result = sync(tap_config(emulator))
        truth = emulator.truth("invoices")
    for record in result.records("invoices"):
        source = truth[record["id"]]
        # Both sides decoded as Decimal: no float rounding anywhere on the way.
        assert decimal.Decimal(str(record["totalAmount"])) == decimal.Decimal(
            str(source["totalAmount"])
        )
    assert any(
        isinstance(r["totalAmount"], decimal.Decimal)
        and abs(r["totalAmount"].as_tuple().exponent) > 15  # type: ignore[arg-type]
        for r in result.records("invoices")
    ), "the emulator's many-decimal amounts reached the output unrounded"


def test_invoices_carry_both_id_and_invoice_id() -> None:
    with Emulator(counts=_counts(20)) as emulator:
        result = sync(tap_config(emulator))
    for record in result.records("invoices"):
        assert record["id"] == record["invoiceId"]


def test_every_record_names_its_target_system_and_account() -> None:
    with Emulator(counts=_counts(10)) as emulator:
        production = sync(tap_config(emulator, account_label="acme"))
        sandbox = sync(
            tap_config(
                emulator, account_key=SANDBOX_ACCOUNT_KEY, sandbox=True, account_label="acme-test"
            )
        )
    for stream in STREAM_RESOURCES:
        assert {(r["target_system"], r["account_label"]) for r in production.records(stream)} == {
            ("qonto", "acme")
        }
        assert {(r["target_system"], r["account_label"]) for r in sandbox.records(stream)} == {
            ("qonto-sandbox", "acme-test")
        }


def test_state_has_one_partition_per_account_label_and_no_progress_markers() -> None:
    with Emulator(counts=_counts(30)) as emulator:
        result = sync(tap_config(emulator, account_label="acme"))
    for stream in STREAM_RESOURCES:
        stream_state = result.final_state["bookmarks"][stream]
        assert [p["context"] for p in stream_state["partitions"]] == [{"account_label": "acme"}]
        partition = stream_state["partitions"][0]
        assert partition["replication_key"] == "updatedDate"
        assert UTC_FORM.match(partition["replication_key_value"])
        assert "progress_markers" not in str(stream_state), "a nested progress marker survived"
        assert "replication_key_signpost" not in str(stream_state)


def test_second_run_emits_what_changed_since_and_close_to_nothing_else() -> None:
    with Emulator(counts=_counts(200)) as emulator:
        config = tap_config(emulator, lookback_window=600)
        first = sync(config)
        changed = {}
        for resource in STREAM_RESOURCES.values():
            before = set(emulator.truth(resource))
            emulator.mutate(resource, update=4, create=3)
            after = emulator.truth(resource)
            changed[resource] = {
                i
                for i, r in after.items()
                if i not in before or _utc(r["updatedDate"]) != first_updated(first, i)
            }
        second = sync(config, state=first.final_state)
    for stream, resource in STREAM_RESOURCES.items():
        emitted = set(second.ids(stream))
        assert changed[resource] <= emitted, f"{stream}: a change was missed"
        # Besides the changes, only records inside the lookback window may come again.
        mark = parse_timestamp(bookmark(first.final_state, stream)["replication_key_value"])
        window_start = format_timestamp(mark - dt.timedelta(seconds=600))
        again = [r for r in second.records(stream) if r["id"] not in changed[resource]]
        assert all(r["updatedDate"] >= window_start for r in again), f"{stream}: re-read too much"
        assert len(again) < 10


def first_updated(result: SyncResult, record_id: str) -> str | None:
    for message in result.messages:
        if (
            message["type"] == "RECORD"
            and message["stream"] in STREAM_RESOURCES  # not a line row: they have no id
            and message["record"]["id"] == record_id
        ):
            return message["record"]["updatedDate"]
    return None


def test_every_version_older_than_the_bookmark_was_emitted_while_records_change() -> None:
    # The bookmark is the newest updatedDate emitted. Resuming from it is safe only
    # if every record version older than it reached the target, even with users
    # editing records (old ones included) while the tap pages.
    with Emulator(counts=_counts(80)) as emulator:
        emulator.configure(mutate_every_requests=1, mutations_per_batch={"update": 2})
        result = sync(tap_config(emulator, page_size=5))
        emulator.configure(mutate_every_requests=0)
        truth = {s: emulator.truth(r) for s, r in STREAM_RESOURCES.items()}
    for stream in STREAM_RESOURCES:
        mark = bookmark(result.final_state, stream)["replication_key_value"]
        emitted = {(r["id"], r["updatedDate"]) for r in result.records(stream)}
        older = {
            (i, _utc(r["updatedDate"]))
            for i, r in truth[stream].items()
            if r["updatedDate"] is not None and _utc(r["updatedDate"]) < mark
        }
        assert older, f"{stream}: nothing older than the bookmark"
        assert older <= emitted, (stream, mark, sorted(older - emitted)[:3])


def test_records_older_than_the_start_are_dropped_when_the_server_ignores_the_filter() -> None:
    with Emulator(counts=_counts(200), honor_filters=False) as emulator:
        start = "2025-06-01T00:00:00Z"
        result = sync(tap_config(emulator, start_date=start))
        for stream, resource in STREAM_RESOURCES.items():
            expected = {
                i
                for i, r in emulator.truth(resource).items()
                if r["updatedDate"] is None
                or _utc(r["updatedDate"]) >= "2025-06-01T00:00:00.000000Z"
            }
            assert set(result.ids(stream)) == expected


@overload
def _utc(value: str) -> str: ...


@overload
def _utc(value: None) -> None: ...


def _utc(value: str | None) -> str | None:
    return None if value is None else normalize_timestamp(value)


def test_records_without_updated_date_are_still_emitted() -> None:
    with Emulator(counts=_counts(100), null_updated_date_fraction=0.1) as emulator:
        result = sync(tap_config(emulator))
        for stream, resource in STREAM_RESOURCES.items():
            truth = emulator.truth(resource)
            missing = {i for i, r in truth.items() if r["updatedDate"] is None}
            assert missing, "the emulator should have produced records without updatedDate"
            assert missing <= set(result.ids(stream))


def test_an_unknown_new_field_does_not_break_the_run(caplog: pytest.LogCaptureFixture) -> None:
    with Emulator(counts=_counts(25), extra_fields=True) as emulator:
        result = sync(tap_config(emulator))
        for stream, resource in STREAM_RESOURCES.items():
            assert set(result.ids(stream)) == set(emulator.truth(resource))
    schemas = {m["stream"]: m["schema"] for m in result.messages if m["type"] == "SCHEMA"}
    for stream in STREAM_RESOURCES:
        for record in result.records(stream):
            assert record.keys() <= schemas[stream]["properties"].keys()
    assert "fields not in the tap's schema were dropped" in caplog.text


def test_a_server_without_pagination_meta_is_paged_until_a_short_page() -> None:
    with Emulator(counts=_counts(45), pagination_meta="null") as emulator:
        result = sync(tap_config(emulator, page_size=5))
        for stream, resource in STREAM_RESOURCES.items():
            assert set(result.ids(stream)) == set(emulator.truth(resource))


def test_a_422_past_the_last_page_ends_the_stream_cleanly() -> None:
    # 50 records in pages of 5 and no page count: the tap must probe page 11.
    with Emulator(counts=_counts(50), pagination_meta="null", past_last_page="422") as emulator:
        result = sync(tap_config(emulator, page_size=5, max_concurrency=1))
        for stream, resource in STREAM_RESOURCES.items():
            assert set(result.ids(stream)) == set(emulator.truth(resource))
            assert len(result.ids(stream)) == 50


def test_each_stream_logs_progress_and_one_summary_line(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tap_maesn_qonto.progress.PROGRESS_EVERY_SECONDS", 0.0)  # every page
    with Emulator(counts=_counts(30)) as emulator:
        sync(tap_config(emulator, page_size=10))
        newest = {
            s: max(_utc(r["updatedDate"]) for r in emulator.truth(res).values())
            for s, res in STREAM_RESOURCES.items()
        }
    for stream in STREAM_RESOURCES:
        summaries = [
            r.getMessage()
            for r in caplog.records
            if r.getMessage().startswith(f"{stream}: sync summary")
        ]
        assert len(summaries) == 1, summaries
        assert re.fullmatch(
            rf"{stream}: sync summary: 30 records emitted, \d+ pages, 0 retries, [\d.]+ s "
            r"\(incremental from 2020-01-01T00:00:00.000000Z\)",
            summaries[0],
        ), summaries[0]
        progress = [
            r.getMessage()
            for r in caplog.records
            if r.getMessage().startswith("progress: ") and f"now {stream}: " in r.getMessage()
        ]
        assert progress, f"{stream}: no progress line"
        marks = [re.search(r"updated up to (\S+);", line) for line in progress[1:]]
        assert all(marks), progress
        values = [m.group(1) for m in marks if m]
        assert values == sorted(values)
        assert all(value <= newest[stream] for value in values)


def test_deletions_during_an_incremental_read_neither_lose_records_nor_hold_the_bookmark() -> None:
    # Each window request is page 1 of a fresh query: a deletion cannot shift a record
    # past the tap, so nothing needs re-reading and the bookmark moves.
    with Emulator(counts=_counts(60)) as emulator:
        emulator.configure(mutate_every_requests=1, mutations_per_batch={"delete": 1})
        result = sync(tap_config(emulator, page_size=5, max_concurrency=1))
        emulator.configure(mutate_every_requests=0)
        live = {s: set(emulator.truth(r)) for s, r in STREAM_RESOURCES.items()}
    for stream in STREAM_RESOURCES:
        assert live[stream] <= set(result.ids(stream))
        mark = bookmark(result.final_state, stream)["replication_key_value"]
        assert mark == max(r["updatedDate"] for r in result.records(stream) if r["updatedDate"])


@pytest.mark.parametrize("previous", [None, "2024-06-01T00:00:00.000000Z"])
def test_a_full_read_that_keeps_seeing_deletions_keeps_the_previous_bookmark(
    previous: str | None,
) -> None:
    # Without a bookmark the first run reads the whole list; with one, a target system
    # that ignores ordering by updatedDate makes the tap read the whole list too.
    with Emulator(counts=_counts(60), honor_ordering=previous is None) as emulator:
        # Deletions all run long: every pass of the whole list sees records leave.
        emulator.configure(mutate_every_requests=1, mutations_per_batch={"delete": 1})
        config = tap_config(emulator, page_size=5, max_concurrency=1)
        config.pop("start_date")
        state = None
        if previous is not None:
            state = state_at(previous)
        result = sync(config, state=state, expect=IncompleteSyncError)
    for stream in STREAM_RESOURCES:
        assert bookmark(result.final_state, stream).get("replication_key_value") == previous
