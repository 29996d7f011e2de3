"""table.TableSync: one stream's table in one run, each partition's state its own.

The reads here are stand-ins that say what a :class:`~read.PartitionRead` would (its
bookmark, its outcome); read.py's own behaviour is specified by the sync and property
tests. What this module adds is how a read is opened (with details only where line items are
wanted) and where its values go: into the partition's own state, held back while its
line rows wait, and, at the end, what the reconcile may retire.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from tap_maesn_qonto import reconcile
from tap_maesn_qonto.accounts import Account
from tap_maesn_qonto.errors import AuthError
from tap_maesn_qonto.lineitems import LineBuffer
from tap_maesn_qonto.pages import record_keys
from tap_maesn_qonto.plan import ReadPlan
from tap_maesn_qonto.read import Outcome
from tap_maesn_qonto.runtime import RunContext
from tap_maesn_qonto.table import Readers, TableSync

if t.TYPE_CHECKING:
    from tap_maesn_qonto.fetch import Fetcher
    from tap_maesn_qonto.plan import Planner
    from tap_maesn_qonto.read import PartitionRead

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
INCREMENTAL = ReadPlan(None, None, None, read_before=False, incremental=True)


@dataclass
class Read:
    """What the table asks of a partition's read."""

    label: str
    resumable: str | None = None
    outcome: Outcome = Outcome.COMPLETE
    proven_whole: bool = True
    lines_unknown: int = 0
    reason: str | None = None
    error: Exception | None = None
    details: t.Any = None
    plan: ReadPlan = INCREMENTAL
    #: Records the read emitted so far (one: no STATE is due).
    report: t.Any = field(default_factory=lambda: SimpleNamespace(records=1))

    def written(self, record: dict) -> bool:
        self.resumable = record["updatedDate"]
        return True

    def summary(self, retries: int) -> str:
        return f"{self.label}: {self.outcome.value}, {retries} retries"


class WaitingLines:
    """A line stream whose rows wait for the SDK (a stream map is configured)."""

    records_need_the_sdk = True

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.synced: list[list[dict]] = []

    def rows_of(self, record: dict) -> list[dict]:
        return [{"id": record["id"], "position": 1}]

    def sync(self) -> None:
        self.synced.append(self.rows)
        self.rows = []


def sync_of(
    states: dict[str, dict[str, t.Any]],
    *,
    accounts: tuple[str, ...] = ("a", "b"),
    reconciling: bool = False,
    lines: list[t.Any] | None = None,
) -> TableSync:
    run = RunContext(
        api_url="http://127.0.0.1:1",
        max_concurrency=1,
        accounts={label: Account(label, key=f"key-{label}-0000") for label in accounts},
    )
    plan = reconcile.TablePlan(version=7, reconciling=reconciling)
    return TableSync(
        name="invoices",
        run=run,
        table=reconcile.TableRun(plan, states, NOW),
        readers=t.cast(Readers, None),  # these tests hand the table their own reads
        lines=LineBuffer(lines or []),
        replication_key="updatedDate",
        lookback=dt.timedelta(seconds=60),
        start_date=None,
        logger=logging.getLogger("test_table"),
        state_every=2,
    )


def opened(sync: TableSync, label: str, **fields: t.Any) -> Read:
    """A read of ``label`` handed to the table, as client.py hands its PartitionRead."""
    read = Read(label, **fields)
    sync.begin(t.cast("PartitionRead", read))
    return read


def ended(sync: TableSync, label: str, *, last: bool, **fields: t.Any) -> Read:
    read = opened(sync, label, **fields)
    sync.end(t.cast("PartitionRead", read), last=last)
    return read


def test_each_partition_is_planned_once_from_its_own_state() -> None:
    bookmark = {"replication_key": "updatedDate", "replication_key_value": "2026-11-01T00:00:00Z"}
    states: dict[str, dict[str, t.Any]] = {"a": bookmark, "b": {}}
    sync = sync_of(states)
    a, b = sync.plan("a"), sync.plan("b")
    assert a.start == dt.datetime(2026, 10, 31, 23, 59, tzinfo=dt.UTC)  # minus the lookback
    assert b.start is None  # never read: the whole list
    states["a"]["replication_key_value"] = "2026-11-30T00:00:00Z"
    assert sync.plan("a") is a  # decided once: prefetch and the read follow one plan


def test_a_bookmark_goes_into_its_own_partition_only() -> None:
    states: dict[str, dict[str, t.Any]] = {"a": {}, "b": {"replication_key_value": "2025-06-01"}}
    sync = sync_of(states)
    opened(sync, "a")
    sync.written("a", {"updatedDate": "2026-10-30T00:00:00Z"})
    assert states["a"]["replication_key_value"] == "2026-10-30T00:00:00Z"
    assert states["b"] == {"replication_key_value": "2025-06-01"}


def test_a_stop_stores_every_read_as_it_stands() -> None:
    states: dict[str, dict[str, t.Any]] = {"a": {}, "b": {"replication_key_value": "2025-06-01"}}
    sync = sync_of(states)
    opened(sync, "a", resumable="2026-10-30T00:00:00Z")
    opened(sync, "b", resumable="2025-06-01")  # b's read kept its previous bookmark
    sync.store_all()
    assert states["a"]["replication_key_value"] == "2026-10-30T00:00:00Z"
    assert states["b"]["replication_key_value"] == "2025-06-01"


def test_no_bookmark_drops_the_old_one_and_full_table_keeps_none() -> None:
    states: dict[str, dict[str, t.Any]] = {"a": {"replication_key_value": "x"}, "b": {}}
    sync = sync_of(states)
    ended(sync, "a", resumable=None, last=False)
    full = ReadPlan(None, None, None, read_before=False, incremental=False)
    ended(sync, "b", resumable="2026-01-01", plan=full, last=True)
    assert states == {"a": {}, "b": {}}


def test_the_bookmark_waits_before_a_parent_whose_line_rows_wait() -> None:
    lines = WaitingLines()
    states: dict[str, dict[str, t.Any]] = {"a": {"replication_key_value": "2026-01-01"}}
    sync = sync_of(states, accounts=("a",), lines=[lines])
    opened(sync, "a", resumable="2026-01-01")
    sync.add_lines({"id": "i1"}, "a")  # its rows wait
    sync.written("a", {"updatedDate": "2026-02-01"})
    assert states["a"]["replication_key_value"] == "2026-01-01"  # not past i1
    sync.write_lines()  # the rows go out: the bookmark moves on
    assert lines.synced[-1] == [{"id": "i1", "position": 1}]
    assert states["a"]["replication_key_value"] == "2026-02-01"


def test_a_rejected_account_key_fails_that_account_only() -> None:
    sync = sync_of({"a": {}, "b": {}})
    ended(
        sync, "a", last=False, outcome=Outcome.FAILED, reason="key rejected", error=AuthError("401")
    )
    assert sync.run.failed == {"a": "key rejected"}


def test_a_reconcile_with_one_read_unproven_retires_nothing_but_notes_versions() -> None:
    states: dict[str, dict[str, t.Any]] = {"a": {}, "b": {}}
    sync = sync_of(states, reconciling=True)
    opened(sync, "a")
    opened(sync, "b", outcome=Outcome.INCOMPLETE, proven_whole=False)
    assert sync.finish(with_lines=False, every_days=7) == (False, False)
    assert sync.table.retired_nothing is not None
    assert "b (incomplete)" in sync.table.retired_nothing[1]
    assert states["a"]["table_version"] == states["b"]["table_version"] == 7
    assert "reconciled_at" not in states["a"]  # not reconciled: the interval did not restart


def test_a_reconcile_with_every_read_proven_retires_and_restarts_the_interval() -> None:
    states: dict[str, dict[str, t.Any]] = {"a": {}, "b": {}}
    sync = sync_of(states, reconciling=True)
    opened(sync, "a")
    opened(sync, "b")
    assert sync.finish(with_lines=True, every_days=7) == (True, True)
    assert states["a"]["reconciled_at"] == "2026-12-01T00:00:00Z"


def test_a_skipped_read_leaves_its_partition_as_it_was() -> None:
    states: dict[str, dict[str, t.Any]] = {"a": {}, "b": {"table_version": 3}}
    sync = sync_of(states)
    opened(sync, "a")
    opened(sync, "b", outcome=Outcome.SKIPPED)
    sync.finish(with_lines=False, every_days=None)
    assert states == {"a": {"table_version": 7}, "b": {"table_version": 3}}


class NoPlanner:
    """A planner that fetched nothing ahead."""

    def first_sent(self, label: str) -> None:
        del label

    def plan(self, label: str, plan: ReadPlan, order: int) -> None:
        raise AssertionError("not asked here")


@pytest.mark.parametrize(
    ("mode", "records_keep_lines", "line_streams", "details"),
    [
        ("auto", True, False, True),  # the records' own lineItems
        ("auto", False, True, True),  # a selected line-item stream
        ("auto", False, False, False),  # nobody wants lines: no detail request
        ("always", False, False, True),
        ("never", True, True, False),
    ],
)
def test_a_read_asks_for_details_only_where_line_items_are_wanted(
    mode: str, records_keep_lines: bool, line_streams: bool, details: bool
) -> None:
    sync = sync_of({"a": {}}, accounts=("a",), lines=[WaitingLines()] if line_streams else [])
    sync.readers = Readers(
        fetcher=t.cast("Fetcher", object()),  # no request is made by opening a read
        planner=t.cast("Planner", NoPlanner()),
        keys=record_keys("/accounting/invoices", ()),
        page_size=100,
        details=mode,
        records_keep_lines=records_keep_lines,
    )
    read = sync.open("a")
    assert (read.details is not None) is details
    assert sync.reads == {"a": read}
