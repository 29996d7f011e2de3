"""A window read (window.py) over scripted pages: what it asks, what it emits, when it stops.

Each test feeds a :class:`WindowRead` the pages of a small list held here (:class:`Listing`):
``lastModifiedAt`` and ``updatedDate`` ordering as a server would apply them, or as a
faulty one does (the filter read as ``>`` at second precision, no filter, no order), records
without updatedDate sorted first or last, and every request kept.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, field

import pytest

from tap_maesn_qonto import window
from tap_maesn_qonto.envelope import Page
from tap_maesn_qonto.pages import PageRequest, Position, record_keys
from tap_maesn_qonto.timestamps import format_timestamp, parse_timestamp
from tap_maesn_qonto.window import (
    WholeListInsteadError,
    WindowNotHonouredError,
    WindowRead,
    filter_value,
    first_request,
)

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> str:
    """The instant ``seconds`` after START, in the tap's one UTC form."""
    return format_timestamp(START + dt.timedelta(seconds=seconds))


def record(record_id: str, seconds: float | None) -> dict[str, t.Any]:
    return {"id": record_id, "updatedDate": None if seconds is None else at(seconds)}


@dataclass
class Listing:
    """A list served page by page, as the query of each :class:`PageRequest` asks.

    ``filter``: "gte" (what Maesn documents), "gt_seconds" (``updatedDate > W``, both cut
    to the second) or "none" (ignored). ``ordered``: whether orderField/orderDir are
    honoured. Records without updatedDate always pass the filter and sort ``nulls`` first
    or last.
    """

    records: list[dict[str, t.Any]]
    filter: str = "gte"
    ordered: bool = True
    nulls: str = "last"
    requests: list[PageRequest] = field(default_factory=list)

    def _passes(self, item: dict[str, t.Any], since: dt.datetime | None) -> bool:
        updated = item["updatedDate"]
        if since is None or updated is None or self.filter == "none":
            return True
        moment = parse_timestamp(updated)
        if self.filter == "gt_seconds":
            return moment.replace(microsecond=0) > since.replace(microsecond=0)
        return moment >= since

    def fetch(self, request: PageRequest) -> Page:
        self.requests.append(request)
        matching = [r for r in self.records if self._passes(r, request.since)]
        if self.ordered:
            dated = sorted(
                (r for r in matching if r["updatedDate"] is not None),
                key=lambda r: (r["updatedDate"], r["id"]),
                reverse=request.descending,
            )
            undated = [r for r in matching if r["updatedDate"] is None]
            matching = undated + dated if self.nulls == "first" else dated + undated
        start = (request.page - 1) * request.limit
        pages = -(-len(matching) // request.limit)
        return Page(
            request.page,
            matching[start : start + request.limit],
            len(matching),
            pages,
            request.limit,
            (),
        )


@dataclass
class Notes:
    """A reader's report: the pages it took and its warnings."""

    pages: list[Page] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def page(self, page: Page) -> None:
        self.pages.append(page)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def read(listing: Listing, *, page_size: int = 3, start: dt.datetime = START) -> WindowRead:
    return WindowRead(
        fetch=listing.fetch,
        keys=record_keys("/accounting/invoices"),
        report=Notes(),
        start=start,
        page_size=page_size,
    )


def emitted(reader: WindowRead) -> list[str]:
    return [r["id"] for batch in reader.batches() for r in batch]


def ascending_queries(listing: Listing) -> list[PageRequest]:
    return [r for r in listing.requests if not r.descending]


# --------------------------------------------------------------------------- the requests


def test_the_first_request_is_page_1_of_updated_date_asc_from_one_second_before_the_start() -> None:
    start = START + dt.timedelta(seconds=5, microseconds=750_000)
    request = first_request(start, 20)
    assert request == PageRequest(
        page=1,
        limit=20,
        since=START + dt.timedelta(seconds=4),
        order_field="updatedDate",
        position=Position.FIRST,
    )


def test_w_is_floored_to_the_second_and_sent_one_second_early() -> None:
    moment = START + dt.timedelta(seconds=10, microseconds=999_999)
    assert filter_value(moment) == START + dt.timedelta(seconds=9)
    assert filter_value(START) == START - dt.timedelta(seconds=1)


def test_every_query_is_page_1_and_w_moves_to_the_newest_value_read_less_one_second() -> None:
    listing = Listing([record(f"r{n}", n * 10.5) for n in range(7)])  # 0, 10.5, ... 63 s
    reader = read(listing)
    assert emitted(reader) == [f"r{n}" for n in range(7)]
    pages = ascending_queries(listing)
    assert [r.page for r in pages] == [1, 1, 1]
    assert [r.since for r in pages] == [
        filter_value(START),
        filter_value(parse_timestamp(at(21))),  # page 1 ended with r2 at 21 s
        filter_value(parse_timestamp(at(42))),  # page 2 (r2 again, r3, r4) with r4 at 42 s
    ]
    assert reader.bookmark == at(63)


def test_the_records_of_the_overlap_are_emitted_once() -> None:
    # Page 1 ends with r2 at 3.1 s: W = 2 s, so query 2 holds r2 again (and r3, 3.6 s, in
    # the same second); it is emitted once.
    items = [record("r0", 1), record("r1", 1.5), record("r2", 3.1), record("r3", 3.6)]
    listing = Listing([*items, record("r4", 9), record("r5", 12)])
    assert emitted(read(listing, page_size=3)) == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert sum(r.since == filter_value(parse_timestamp(at(3.1))) for r in listing.requests) == 1


# --------------------------------------------------------------------------- the one-second overlap


def _at_w() -> Listing:
    """Page 1 (3 records) ends at 3.2 s; r3 shares that second, on no page of query 1."""
    items = [record("r0", 1), record("r1", 2), record("r2", 3.2), record("r3", 3.7)]
    return Listing([*items, record("r4", 7), record("r5", 8)], filter="gt_seconds")


def test_a_server_reading_the_filter_as_greater_at_second_precision_loses_nothing_at_w() -> None:
    assert emitted(read(_at_w())) == ["r0", "r1", "r2", "r3", "r4", "r5"]


def test_without_the_overlap_that_server_would_lose_the_record_at_w(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(window, "_OVERLAP", dt.timedelta(0))
    assert "r3" not in emitted(read(_at_w()))


# --------------------------------------------------------------------------- the server checked


def test_updated_date_going_back_within_a_page_means_the_order_is_ignored() -> None:
    listing = Listing([record("r0", 5), record("r1", 2), record("r2", 9)], ordered=False)
    with pytest.raises(WindowNotHonouredError, match="ignores ordering by updatedDate"):
        emitted(read(listing))


def test_a_record_older_than_the_filter_means_the_filter_is_ignored() -> None:
    listing = Listing([record("old", -3600), record("r1", 2)], filter="none")
    with pytest.raises(WindowNotHonouredError, match="ignores the filter"):
        emitted(read(listing))


def test_newest_records_probed_oldest_first_mean_order_dir_is_ignored() -> None:
    class AscendingOnly(Listing):
        def fetch(self, request: PageRequest) -> Page:
            return super().fetch(PageRequest(**{**request.__dict__, "descending": False}))

    listing = AscendingOnly([record(f"r{n}", n) for n in range(7)])
    with pytest.raises(WindowNotHonouredError, match="ignores orderDir"):
        emitted(read(listing))


# --------------------------------------------------------------------------- where W cannot move


def test_a_group_sharing_one_second_that_fills_a_page_hands_over_to_the_whole_list() -> None:
    group = [record(f"g{n}", 5 + n / 10) for n in range(4)]  # 5.0 .. 5.3 s: one second
    listing = Listing([*group, record("r9", 9)])
    reader = read(listing, page_size=3)
    with pytest.raises(WholeListInsteadError, match="more than 3 records share updatedDate"):
        emitted(reader)
    assert reader.emitted_ids == {"g0", "g1", "g2"}  # the whole list does not emit them again


def test_undated_records_that_fill_a_page_cannot_be_passed() -> None:
    listing = Listing([record(f"u{n}", None) for n in range(4)] + [record("r1", 1)], nulls="first")
    with pytest.raises(WindowNotHonouredError, match="records without updatedDate fill"):
        emitted(read(listing, page_size=3))


# --------------------------------------------------------------------------- the early stop


def _after_two_pages(reader: WindowRead) -> t.Iterator[list[dict[str, t.Any]]]:
    """The read's batches, once it has probed the newest updatedDate and read two pages."""
    batches = reader.batches()
    next(batches)
    next(batches)
    return batches


def test_the_read_stops_past_the_newest_updated_date_that_existed_when_it_began() -> None:
    listing = Listing([record(f"r{n}", n) for n in range(5)])
    reader = read(listing, page_size=3)
    batches = _after_two_pages(reader)
    # Users edit records all the time from now on: every query has newer ones.
    listing.records += [record(f"new{n}", 100 + n) for n in range(10)]
    rest = [r["id"] for batch in batches for r in batch]
    assert rest == ["r4", "new0"]  # the page that passed r4 (the newest probed) is the last
    assert all(r.since and r.since < START + dt.timedelta(seconds=100) for r in listing.requests)
    assert reader.bookmark == at(100)


def test_undated_records_sorted_last_are_read_from_the_last_page_before_stopping() -> None:
    listing = Listing([record(f"r{n}", n) for n in range(5)] + [record("u0", None)])
    reader = read(listing, page_size=3)
    batches = _after_two_pages(reader)
    listing.records += [record("new0", 100), record("new1", 101)]
    assert [r["id"] for batch in batches for r in batch] == ["r4", "new0", "u0"]
    last = listing.requests[-1]
    assert (last.page, last.descending) == (2, False)  # the last page of the last query


def test_more_undated_records_sorted_last_than_a_page_holds_hand_over_to_the_whole_list() -> None:
    undated = [record(f"u{n}", None) for n in range(4)]
    listing = Listing([record(f"r{n}", n) for n in range(5)] + undated)
    reader = read(listing, page_size=3)
    batches = _after_two_pages(reader)
    listing.records += [record("new0", 100), record("new1", 101)]
    with pytest.raises(WholeListInsteadError, match="more records without updatedDate"):
        list(batches)


def test_undated_records_sorted_first_are_emitted_once_and_no_last_page_is_asked_for() -> None:
    undated = [record("u0", None), record("u1", None)]
    listing = Listing([*undated, *(record(f"r{n}", 5 * n) for n in range(5))], nulls="first")
    reader = read(listing, page_size=4)
    batches = reader.batches()
    assert [r["id"] for r in next(batches)] == ["u0", "u1", "r0", "r1"]
    assert [r["id"] for r in next(batches)] == ["r2"]  # u0 and u1 again, not emitted again
    listing.records += [record("new0", 100), record("new1", 101)]
    assert [r["id"] for batch in batches for r in batch] == ["r3", "r4", "new0"]
    # Stopped early, but the list's last page holds no record without updatedDate.
    assert all(request.page == 1 for request in listing.requests)
