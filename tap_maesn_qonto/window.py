"""Incremental reads as a sliding window over the server's own ``updatedDate`` values.

Every request asks for page 1 of a fresh query, ``lastModifiedAt >= W`` ordered by
``updatedDate ASC``; after each page, W moves to the newest ``updatedDate`` read.
Nothing can shift under a page-1 read, a record changed mid-sync comes back later
in the same sync with its new value, and no clock is compared with another: W is
always a value the server sent. The bookmark (the newest value emitted) is safe
to resume from after every record.

Details that keep it exact:

* W is sent floored to the second and one second early, so a server that reads
  the filter as ``>`` or at second precision still returns every record at W.
  The overlap is de-duplicated on (id, updatedDate) and pruned as W moves.
* When a whole page shares one second (a bulk edit), W cannot move, and paging
  such a group by number is not safe: an edit or deletion inside it shifts unread
  records onto pages already read. So the window stops there and the caller reads
  the whole list instead (fullread.py), where the server's totals prove each pass.
* The read stops once past the newest ``updatedDate`` that existed when it began,
  so an account edited all the time still finishes (the edits are the next run's);
  records without ``updatedDate`` that the server sorts last are read before it does.
* The server is checked, not trusted. Every page: ``updatedDate`` non-decreasing and
  never older than the filter. The probe of the newest records: in the order asked.
  Each move of W: the next query holds every record of the previous one that was not
  on its page (``total(W') >= total(W) - records read below W'``); fewer means the
  target system sorted only the page it served, or records left the window while it
  moved. Any of these raises :class:`WindowNotHonouredError` or
  :class:`WholeListInsteadError`, and the caller reads the whole list instead.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import typing as t
from dataclasses import dataclass, field, replace

from tap_maesn_qonto.pager import is_full
from tap_maesn_qonto.pages import PageRequest, Position
from tap_maesn_qonto.timestamps import format_timestamp, minus, parse_timestamp

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_maesn_qonto.envelope import Page
    from tap_maesn_qonto.pages import Fetch, RecordKeys, Report

_OVERLAP = dt.timedelta(seconds=1)


class WindowNotHonouredError(Exception):
    """The target system does not filter or order by updatedDate as asked."""


class WholeListInsteadError(Exception):
    """The window stops; the caller reads the whole list (the message says why)."""


def filter_value(moment: dt.datetime) -> dt.datetime:
    """The ``lastModifiedAt`` to send for "everything at or after ``moment``"."""
    return minus(moment.replace(microsecond=0), _OVERLAP)


def first_request(start: dt.datetime, page_size: int) -> PageRequest:
    """A window read's first request, known before it starts (prefetch.py)."""
    return PageRequest(
        page=1,
        limit=page_size,
        since=filter_value(start),
        order_field="updatedDate",
        position=Position.FIRST,
    )


def newest(records: list[dict], key: t.Callable[[dict], str | None]) -> str | None:
    """The newest value of ``key`` on a page (None: no record has one)."""
    return max((value for record in records if (value := key(record))), default=None)


@dataclass
class WindowRead:
    """One partition's incremental read; iterate :meth:`batches`, then read the outcome."""

    fetch: Fetch
    keys: RecordKeys
    report: Report
    start: dt.datetime  # records updated at or after this are read
    page_size: int
    #: The first page, if the caller already has it (the answer to :func:`first_request`).
    first_page: Page | None = None
    # outcome
    max_key: str | None = None
    _since: dt.datetime = field(init=False)
    _start_text: str = field(init=False)
    _emitted: dict[str, str] = field(default_factory=dict)  # id -> updatedDate, pruned
    _emitted_undated: set[str] = field(default_factory=set)  # ids without updatedDate
    _emitted_ever: set[str] = field(default_factory=set)  # every dated id (not pruned)
    _newest: str | None = None  # the newest updatedDate when the read began (probed)
    _undated_first: bool = False  # the server sorts records without updatedDate first

    def __post_init__(self) -> None:
        self._since = filter_value(self.start)
        self._start_text = format_timestamp(self.start)

    @property
    def emitted_ids(self) -> set[str]:
        """Ids emitted so far (for a fallback read not to emit them twice)."""
        return self._emitted_ever | self._emitted_undated

    @property
    def bookmark(self) -> str | None:
        """The newest value emitted: every older record of its query was on its page."""
        return self.max_key

    def batches(self) -> Iterator[list[dict]]:
        """Every record updated at or after ``start``, in updatedDate order (a list per page).

        The read ends once it has passed the newest ``updatedDate`` that existed
        after its first page (one probe request): records changed later carry newer
        values and are the next run's, so a busy account cannot keep the window
        chasing them.
        """
        page = self._take(self.first_page, position=Position.FIRST)
        self.first_page = None  # read: not kept for the rest of the run
        while True:
            yield self._new_records(page)
            if not self._more(page):
                return
            if self._newest is None:  # only a read of more than one page needs it
                self._newest = self._probe_newest(page)
            if self._passed_newest(page):
                yield from self._undated_after(page)
                return
            since_before = self._since
            self._advance(page)
            following = self._take(None, position=Position.KNOWN)
            self._check_moved(page, following, since_before)
            page = following

    # --- one step ---------------------------------------------------------------------

    def _query(self, position: Position, *, descending: bool = False) -> PageRequest:
        return PageRequest(
            page=1,
            limit=self.page_size,
            since=self._since,
            order_field="updatedDate",
            descending=descending,
            position=position,
        )

    def _take(self, answered: Page | None, *, position: Position) -> Page:
        """Page 1 of the current query, checked; W moved past the previous page first."""
        page = answered or self.fetch(self._query(position))
        self.report.page(page)
        self._check_order(page)
        return page

    def _more(self, page: Page) -> bool:
        if page.total_pages is not None:
            return page.number < page.total_pages
        return is_full(page, self.page_size)

    def _check_moved(self, before: Page, after: Page, since_before: dt.datetime) -> None:
        """The query after W moved holds every record of the one before not read below W.

        Fewer mean records left the window while it moved (deletions: harmless, each
        query is read from its page 1) or the target system sorts only the page it
        serves: then the previous query's page 2 holds records older than its page 1's
        newest, which a sorted list never does.
        """
        if before.total is None or after.total is None:
            return
        floor = format_timestamp(self._since)
        below = sum(1 for r in before.records if (k := self.keys.updated(r)) and k < floor)
        if after.total >= before.total - below:
            return
        page_newest = newest(before.records, self.keys.updated)
        second = self.fetch(
            PageRequest(
                page=2,
                limit=self.page_size,
                since=since_before,
                order_field="updatedDate",
                position=Position.KNOWN,
            )
        )
        older = [
            k
            for r in second.records
            if (k := self.keys.updated(r)) and page_newest and k < page_newest
        ]
        if older:
            msg = (
                f"page 2 of a window query holds updatedDate {min(older)}, older than page 1's "
                f"newest ({page_newest}): the target system sorts only the page it serves"
            )
            raise WindowNotHonouredError(msg)

    def _probe_newest(self, page: Page) -> str | None:
        """The newest updatedDate now (None if the target system shows none), checked."""
        probe = self.fetch(self._query(Position.KNOWN, descending=True))
        values = [key for r in probe.records if (key := self.keys.updated(r))]
        if any(a < b for a, b in itertools.pairwise(values)):
            msg = "the newest records came back oldest first: the target system ignores orderDir"
            raise WindowNotHonouredError(msg)
        newest_now = values[0] if values else None
        page_newest = newest(page.records, self.keys.updated)
        oldest_here = min((k for r in page.records if (k := self.keys.updated(r))), default=None)
        if (
            newest_now is not None
            and page.total is not None
            and page.total > len(page.records)
            and page_newest is not None
            and oldest_here is not None
            and page_newest >= newest_now > oldest_here
        ):
            msg = (
                "page 1 of an ascending read already holds the newest updatedDate while more "
                "pages follow: the target system sorts only the page it serves"
            )
            raise WindowNotHonouredError(msg)
        return newest_now

    def _passed_newest(self, page: Page) -> bool:
        """Every record as new as the newest at the start has been read."""
        newest_here = newest(page.records, self.keys.updated)
        return self._newest is not None and newest_here is not None and newest_here > self._newest

    def _undated_after(self, page: Page) -> Iterator[list[dict]]:
        """Before stopping early: records without updatedDate that the server sorts last.

        What the stop leaves unread is what changed during the read (the next run's)
        and, where the server sorts them last, records without updatedDate, which no
        bookmark covers. The query's last page tells: it ends with one if any are there.
        If they all fit on it, they are read from it; else the caller reads the whole list.
        """
        if self._undated_first or page.total is None or page.total <= len(page.records):
            return
        number = math.ceil(page.total / self.page_size)
        last = self.fetch(self._query(Position.KNOWN).at(number, Position.KNOWN))
        self.report.page(last)
        if not last.records or self.keys.updated(last.records[-1]) is not None:
            return  # the list ends with a dated record: none without updatedDate follows
        if self.keys.updated(last.records[0]) is None:
            msg = "more records without updatedDate than a page holds follow the window"
            raise WholeListInsteadError(msg)
        yield self._new_records(
            replace(last, records=[r for r in last.records if self.keys.updated(r) is None])
        )

    def _advance(self, page: Page) -> None:
        """Move W to the newest value on ``page``; raise if it cannot move."""
        newest_here = newest(page.records, self.keys.updated)
        candidate = filter_value(parse_timestamp(newest_here)) if newest_here else None
        if candidate is not None and candidate > self._since:
            self._since = candidate
            floor = format_timestamp(candidate)
            self._emitted = {i: k for i, k in self._emitted.items() if k >= floor}
            return
        if page.records and newest_here is None:
            msg = (
                "records without updatedDate fill whole pages of every incremental "
                "query, so the window cannot move past them"
            )
            raise WindowNotHonouredError(msg)
        if not page.records:
            msg = "page 1 of a window query came back empty while Maesn reported more pages"
            raise WholeListInsteadError(msg)
        msg = (
            f"more than {self.page_size} records share updatedDate {newest_here[:19]} (to the "  # type: ignore[index]
            "second), more than a page holds"
        )
        raise WholeListInsteadError(msg)

    def _check_order(self, page: Page) -> None:
        floor = format_timestamp(self._since)
        last = None
        for record in page.records:
            key = self.keys.updated(record)
            if key is None:
                if last is None:
                    self._undated_first = True
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

    def _new_records(self, page: Page) -> list[dict]:
        new = []
        identify, updated = self.keys.identify, self.keys.updated
        for record in page.records:
            record_id = identify(record)
            key = updated(record)
            if key is None:
                if record_id not in self._emitted_undated:
                    self._emitted_undated.add(record_id)
                    new.append(record)
                continue
            if key < self._start_text or self._emitted.get(record_id) == key:
                continue
            self._emitted[record_id] = key
            self._emitted_ever.add(record_id)
            if self.max_key is None or key > self.max_key:
                self.max_key = key
            new.append(record)
        return new
