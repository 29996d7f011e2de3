"""Incremental reads as a sliding window over the server's own ``updatedDate`` values.

Every request asks for page 1 of a fresh query, ``lastModifiedAt >= W`` ordered by
``updatedDate ASC``; after each page, W moves to the newest ``updatedDate`` read.
Nothing can shift under a page-1 read, a record changed mid-sync comes back later
in the same sync with its new value, and no clock is compared with another: W is
always a value the server sent. The bookmark (the newest value emitted) is safe
to resume from after every record, so the stream is sorted for the SDK.

Details that keep it exact:

* W is sent floored to the second and one second early, so a server that reads
  the filter as ``>`` or at second precision still returns every record at W.
  The overlap is de-duplicated on (id, updatedDate) and pruned as W moves.
* When a whole page shares one second (a bulk edit), W cannot move, and paging
  such a group by number is not safe: an edit or deletion inside it shifts unread
  records onto pages already read, and no count the server returns tells those
  apart from records that entered the window. So the window stops there and the
  caller reads the whole list instead (fullread.py), where only a deletion shifts
  anything and the server's totals prove each pass sound.
* The read stops once past the newest ``updatedDate`` that existed when it began,
  so an account edited all the time still finishes (the edits are the next run's).
* Every page is checked: ``updatedDate`` non-decreasing and never older than the
  filter. A target system that ignores the order or the filter raises
  :class:`WindowNotHonouredError`, and the caller reads the whole list instead.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, field

from tap_maesn_qonto.pager import is_full
from tap_maesn_qonto.pages import PageRequest, Position
from tap_maesn_qonto.timestamps import format_timestamp, parse_timestamp

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_maesn_qonto.envelope import Page
    from tap_maesn_qonto.pager import Fetch

_OVERLAP = dt.timedelta(seconds=1)
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


class WindowNotHonouredError(Exception):
    """The target system does not filter or order by updatedDate as asked."""


class WholeListInsteadError(Exception):
    """The window stops; the caller reads the whole list (the message says why)."""


class WholeListIsFasterError(WholeListInsteadError):
    """So much changed that reading the whole list concurrently beats the window."""


class GroupFillsPagesError(WholeListInsteadError):
    """A whole page shares one updatedDate second, so the window cannot move past it."""


def filter_value(moment: dt.datetime) -> dt.datetime:
    """The ``lastModifiedAt`` to send for "everything at or after ``moment``"."""
    floored = moment.replace(microsecond=0)
    return floored - _OVERLAP if floored - _EARLIEST >= _OVERLAP else _EARLIEST


@dataclass
class WindowRead:
    """One partition's incremental read; iterate :meth:`records`, then read the outcome."""

    fetch: Fetch
    start: dt.datetime  # records updated at or after this are read
    page_size: int
    identify: Callable[[dict], str]
    key_of: Callable[[dict], str | None]
    warn: Callable[[str], None]
    on_page: Callable[[Page], None] | None = None
    #: Asked once, on the first page of a read of several pages: whether a concurrent
    #: whole-list read would be quicker (a backfill from an early start_date).
    prefer_whole_list: Callable[[Page], bool] | None = None
    # outcome
    max_key: str | None = None
    dropped_older: int = 0
    _since: dt.datetime = field(init=False)
    _start_text: str = field(init=False)
    _emitted: dict[str, str] = field(default_factory=dict)  # id -> updatedDate, pruned
    _emitted_undated: set[str] = field(default_factory=set)  # ids without updatedDate
    _emitted_ever: set[str] = field(default_factory=set)  # every dated id (not pruned)
    _first_request: bool = True
    _newest: str | None = None

    def __post_init__(self) -> None:
        self._since = filter_value(self.start)
        self._start_text = format_timestamp(self.start)

    @property
    def emitted_ids(self) -> set[str]:
        """Ids emitted so far (for a fallback read not to emit them twice)."""
        return self._emitted_ever | self._emitted_undated

    def records(self) -> Iterator[dict]:
        """Every record updated at or after ``start``, in updatedDate order.

        The read ends once it has passed the newest ``updatedDate`` that existed
        after its first page (one probe request): records changed later carry newer
        values and are the next run's, so a busy account cannot keep the window
        chasing them. The bookmark stays exact either way: it is the newest value
        emitted, and every older record of that query was on the same page.
        """
        while True:
            page = yield from self._read_page_one()
            if page is None:
                return
            self._advance(page)

    @property
    def bookmark(self) -> str | None:
        """The newest value emitted: every older record of its query was on its page."""
        return self.max_key

    def _probe_newest(self) -> str | None:
        """The newest updatedDate now (None if the target system shows none)."""
        probe = PageRequest(
            page=1,
            limit=self.page_size,
            since=self._since,
            order_field="updatedDate",
            descending=True,
        )
        page = self.fetch(probe)
        return max((key for r in page.records if (key := self.key_of(r))), default=None)

    def _passed_newest(self, page: Page) -> bool:
        """Every record as new as the newest at the start has been read."""
        newest_here = max((key for r in page.records if (key := self.key_of(r))), default=None)
        return self._newest is not None and newest_here is not None and newest_here > self._newest

    @staticmethod
    def first_request(start: dt.datetime, page_size: int) -> PageRequest:
        """The read's first request, known before it starts (prefetch.py)."""
        return PageRequest(
            page=1,
            limit=page_size,
            since=filter_value(start),
            order_field="updatedDate",
            position=Position.FIRST,
        )

    def _get(self) -> Page:
        """Page 1 of the current query, checked."""
        page = self.fetch(
            PageRequest(
                page=1,
                limit=self.page_size,
                since=self._since,
                order_field="updatedDate",
                position=Position.FIRST if self._first_request else Position.KNOWN,
            )
        )
        self._first_request = False
        if self.on_page is not None:
            self.on_page(page)
        self._check_order(page)
        return page

    def _read_page_one(self) -> t.Generator[dict, None, Page | None]:
        """Read page 1 of the current query; return it if W can move (None: all read)."""
        page = self._get()
        yield from self._new_records(page)
        if not self._more(page):
            return None
        if self._newest is None and self.prefer_whole_list and self.prefer_whole_list(page):
            raise WholeListIsFasterError
        if self._newest is None:  # only a read of more than one page needs it
            self._newest = self._probe_newest()
        if self._passed_newest(page):
            return None
        if self._progress(page) is not None:
            return page
        if page.records and all(self.key_of(r) is None for r in page.records):
            msg = (
                "records without updatedDate fill whole pages of every incremental "
                "query, so the window cannot move past them"
            )
            raise WindowNotHonouredError(msg)
        newest = max(key for r in page.records if (key := self.key_of(r)))
        msg = (
            f"more than {self.page_size} records share updatedDate {newest[:19]} (to the "
            "second), more than a page holds"
        )
        raise GroupFillsPagesError(msg)

    def _more(self, page: Page) -> bool:
        if page.total_pages is not None:
            return page.number < page.total_pages
        return is_full(page, self.page_size)

    def _progress(self, page: Page) -> dt.datetime | None:
        """The next filter value, if the page lets W move forward."""
        newest = max((key for r in page.records if (key := self.key_of(r))), default=None)
        if newest is None:
            return None
        candidate = filter_value(parse_timestamp(newest))
        return candidate if candidate > self._since else None

    def _advance(self, page: Page) -> None:
        progress = self._progress(page)
        assert progress is not None  # only called after _progress said so
        self._since = progress
        floor = format_timestamp(progress)
        self._emitted = {i: k for i, k in self._emitted.items() if k >= floor}

    def _check_order(self, page: Page) -> None:
        floor = format_timestamp(self._since)
        last = None
        for record in page.records:
            key = self.key_of(record)
            if key is None:
                continue
            if key < floor:
                msg = (
                    f"a record updated at {key} came back for lastModifiedAt >= {floor}: "
                    "the target system ignores the filter"
                )
                raise WindowNotHonouredError(msg)
            if last is not None and key < last:
                msg = (
                    f"updatedDate went back from {last} to {key} within one page: the "
                    "target system ignores ordering by updatedDate"
                )
                raise WindowNotHonouredError(msg)
            last = key

    def _new_records(self, page: Page) -> Iterator[dict]:
        for record in page.records:
            record_id = self.identify(record)
            key = self.key_of(record)
            if key is None:
                if record_id in self._emitted_undated:
                    continue
                self._emitted_undated.add(record_id)
                yield record
                continue
            if key < self._start_text:
                self.dropped_older += 1
                continue
            if self._emitted.get(record_id) == key:
                continue
            self._emitted[record_id] = key
            self._emitted_ever.add(record_id)
            if self.max_key is None or key > self.max_key:
                self.max_key = key
            yield record
