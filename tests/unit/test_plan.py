"""Where a partition's read starts, and how (plan.py), decided from values only.

``plan_read`` turns a partition's state and the settings into a :class:`ReadPlan`;
``first_request`` is the request that read sends first (which prefetch.py sends ahead);
``worth_probing`` and ``whole_list_wins`` decide, from a first run's window page and the
whole list's probe, whether reading the whole list concurrently is quicker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pytest

from tap_maesn_qonto.envelope import Page
from tap_maesn_qonto.pages import PageRequest, Position
from tap_maesn_qonto.plan import (
    TABLE_VERSION,
    ReadPlan,
    bookmark_of,
    first_request,
    plan_read,
    whole_list_wins,
    worth_probing,
)

KEY = "updatedDate"
BOOKMARK = "2026-03-01T12:00:00.000000Z"
AT_BOOKMARK = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
START_DATE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
LOOKBACK = dt.timedelta(minutes=10)


def bookmarked(value: str = BOOKMARK, **more: object) -> dict[str, object]:
    return {"replication_key": KEY, "replication_key_value": value, **more}


def plan(
    state: Mapping[str, object],
    *,
    replication_key: str | None = KEY,
    reconciling: bool = False,
    lookback: dt.timedelta = LOOKBACK,
    start_date: dt.datetime | None = START_DATE,
) -> ReadPlan:
    return plan_read(
        state,
        replication_key=replication_key,
        reconciling=reconciling,
        lookback=lookback,
        start_date=start_date,
    )


def page(*, total: int | None, total_pages: int | None) -> Page:
    return Page(1, [], total, total_pages, None, ())


# --------------------------------------------------------------------------- plan_read


def test_a_bookmark_is_resumed_from_the_lookback_before_it() -> None:
    assert plan(bookmarked()) == ReadPlan(
        previous=BOOKMARK,
        start=AT_BOOKMARK - LOOKBACK,
        since=None,
        read_before=True,
        incremental=True,
    )


def test_start_date_wins_over_an_older_bookmark() -> None:
    old = "2024-06-01T00:00:00.000000Z"
    assert plan(bookmarked(old)).start == START_DATE


def test_a_first_run_starts_at_start_date_and_without_one_reads_the_whole_list() -> None:
    first = plan({})
    assert (first.previous, first.start, first.read_before) == (None, START_DATE, False)
    whole = plan({}, start_date=None)
    assert (whole.start, whole.since, whole.incremental) == (None, None, True)


def test_a_lookback_past_the_earliest_instant_saturates() -> None:
    assert plan(bookmarked("0001-01-01T00:00:30.000000Z"), start_date=None).start == dt.datetime(
        1, 1, 1, tzinfo=dt.UTC
    )


def test_a_reconcile_reads_the_whole_list_keeping_what_start_date_keeps() -> None:
    reconcile = plan(bookmarked(table_version=7), reconciling=True)
    assert reconcile == ReadPlan(
        previous=BOOKMARK, start=None, since=START_DATE, read_before=True, incremental=True
    )


def test_full_table_moves_no_bookmark_and_ignores_one() -> None:
    full = plan(bookmarked(), replication_key=None)
    assert full == ReadPlan(None, None, None, read_before=False, incremental=False)


def test_a_table_version_alone_means_the_partition_was_read_before() -> None:
    assert plan({TABLE_VERSION: 1_700_000_000_000}).read_before
    assert plan({TABLE_VERSION: 1}, replication_key=None).read_before


def test_a_bookmark_of_another_replication_key_is_not_this_reads() -> None:
    other = {"replication_key": "createdDate", "replication_key_value": BOOKMARK}
    assert bookmark_of(other, KEY) is None
    assert plan(other).start == START_DATE
    assert bookmark_of({"replication_key": KEY, "replication_key_value": ""}, KEY) is None


# --------------------------------------------------------------------------- first_request


def test_a_window_reads_page_1_of_updated_date_asc_from_one_second_before_its_start() -> None:
    request = first_request(plan(bookmarked()), 50)
    assert request == PageRequest(
        page=1,
        limit=50,
        since=(AT_BOOKMARK - LOOKBACK) - dt.timedelta(seconds=1),
        order_field="updatedDate",
        descending=False,
        position=Position.FIRST,
    )


@pytest.mark.parametrize("reconciling", [False, True])
def test_a_whole_list_read_first_asks_for_the_newest_page(reconciling: bool) -> None:
    request = first_request(plan({}, start_date=None, reconciling=reconciling), 20)
    assert request == PageRequest(
        page=1, limit=20, order_field="createdDate", descending=True, position=Position.FIRST
    )


# --------------------------------------------------------------------------- whole list or window


@pytest.mark.parametrize(
    ("pages", "concurrency", "worth"),
    [
        (8, 4, True),  # at least two rounds of max_concurrency pages
        (7, 4, False),
        (2, 1, False),  # one page at a time either way
        (None, 4, False),  # no page count: nothing to compare
    ],
)
def test_a_window_is_worth_probing_when_it_is_two_rounds_long(
    pages: int | None, concurrency: int, worth: bool
) -> None:
    assert worth_probing(page(total=None, total_pages=pages), concurrency) is worth


@pytest.mark.parametrize(
    ("window_pages", "whole_total", "wins"),
    [
        (10, 800, True),  # 8 pages of 100, 4 at a time: 2 rounds against 10
        (2, 800, False),  # 2 rounds against 2: the window, which moves a bookmark as it goes
        (3, 1200, False),  # 12 pages: 3 rounds against 3
        (10, None, False),  # the whole list's size unknown
    ],
)
def test_the_whole_list_wins_when_it_takes_fewer_rounds(
    window_pages: int, whole_total: int | None, wins: bool
) -> None:
    window_first = page(total=None, total_pages=window_pages)
    probe = page(total=whole_total, total_pages=None)
    assert whole_list_wins(window_first, probe, page_size=100, max_concurrency=4) is wins


def test_without_a_window_page_count_the_window_is_kept() -> None:
    window_first = page(total=500, total_pages=None)
    assert not whole_list_wins(window_first, page(total=800, total_pages=8), 100, 4)
