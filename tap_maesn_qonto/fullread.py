"""Reading a whole list: concurrent page-number reads under ``createdDate ASC``.

Used for the first run without a start, for ``FULL_TABLE``, and as the fallback
when a target system does not filter or order by ``updatedDate``. Without a
filter and under ``createdDate ASC``, an update moves nothing and a creation lands
on the last page; only a record leaving the list (a deletion) shifts unread
records onto pages already read, where they would be missed.

Every pass is checked against values the server returns, never this machine's
clock. Two probes of the newest records by ``createdDate`` bracket it: one answered
before any page is asked for, one sent after every page is answered. The second
tells how many records were created since the first, so ``start total + created -
end total > 0`` means a record that existed when the pass began left the list while
it paged: an exact count, whatever order the pages were answered in. (Comparing the
first page's total with the last page's, as an earlier version did, missed a
deletion when page 1 was answered after the others: its retry after a 429, or a
slower answer, made it the later of the two.) An id seen twice, or fewer distinct
ids than the last total, mean the same. Such a pass is read again (at most
``MAX_PASSES``), emitting only ids not yet emitted; if the last pass still cannot
be trusted, :attr:`FullRead.complete` is false and the caller keeps the previous
bookmark.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
import typing as t
from dataclasses import dataclass, field, replace

from tap_maesn_qonto.errors import ClientError
from tap_maesn_qonto.pager import most_lent, pages_for, pages_in_order
from tap_maesn_qonto.pages import PageRequest, Position

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_maesn_qonto.envelope import Page
    from tap_maesn_qonto.pager import Fetch

MAX_PASSES = 3


@dataclass
class PassCheck:
    """What one walk over all pages saw, to decide whether it can be trusted."""

    first_total: int | None = None
    last_total: int | None = None
    created_during_pass: int = 0
    distinct: int = 0
    repeated_ids: int = 0
    seen: set[str] = field(default_factory=set)
    #: The list's total before any page was asked for, and after every page was answered.
    start_total: int | None = None
    end_total: int | None = None
    #: Records created between the two (None: more than the closing probe could show).
    created_between: int | None = None

    def drift(self) -> str | None:
        """Why this pass may have missed records, or None if it is sound."""
        if self.repeated_ids:
            return f"{self.repeated_ids} record(s) appeared on two pages (records shifted)"
        if self.start_total is not None and self.end_total is not None:
            if self.created_between is None:
                return "more records were created while paging than one probe can count"
            left = self.start_total + self.created_between - self.end_total
            if left > 0:
                return (
                    f"about {left} record(s) left the list while paging (total "
                    f"{self.start_total} -> {self.end_total} with {self.created_between} "
                    "created)"
                )
        elif self.first_total is not None and self.last_total is not None:
            left = self.first_total + self.created_during_pass - self.last_total
            if left > 0:
                return (
                    f"about {left} record(s) left the list while paging (total "
                    f"{self.first_total} -> {self.last_total} with "
                    f"{self.created_during_pass} created)"
                )
        if self.last_total is not None and self.distinct < self.last_total:
            return f"{self.distinct} distinct records arrived but Maesn reported {self.last_total}"
        return None


class _ClosingProbe:
    """A pass's closing probe, sent the moment every page it will read is answered.

    Its total is the end of the pass's bracket only if it was *sent* after every page
    read was *answered*: computed after all of them, whatever order the server answered
    in. Sent from the worker that receives the last page, it overlaps with the work on
    the last pages instead of adding a round trip after it; if the pass reads a page
    that was not answered yet when it went out (the list grew), it is sent again.
    """

    def __init__(self, fetch: Fetch, request: PageRequest, thread_name: str) -> None:
        self._fetch = fetch
        self._request = request
        self._lock = threading.Lock()
        self._answered: set[int] = set()
        self._sent_after: frozenset[int] | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, f"{thread_name}-closing")
        self._future: concurrent.futures.Future[Page] | None = None

    def fetch(self, request: PageRequest) -> Page:
        """A page of the pass; sends the probe once every page there is has been answered."""
        page = self._fetch(request)
        with self._lock:
            self._answered.add(request.page)
            pages = pages_for(page.total, request.limit)
            if (
                self._future is None
                and pages is not None
                and self._answered.issuperset(range(1, pages + 1))
            ):
                self._sent_after = frozenset(self._answered)
                self._future = self._pool.submit(self._fetch, self._request)
        return page

    def answer(self, read: set[int]) -> Page:
        """The probe's answer, sent after every page in ``read`` was answered."""
        with self._lock:
            future, sent_after = self._future, self._sent_after
        if future is not None and sent_after is not None and sent_after.issuperset(read):
            with contextlib.suppress(Exception):  # sent again below, where errors surface
                return future.result()
        return self._fetch(self._request)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class FullRead:
    """One partition's full read; iterate :meth:`records`, then read the outcome."""

    fetch: Fetch
    query: PageRequest  # page 1 of the list, ordered by createdDate ASC when supported
    identify: Callable[[dict], str]
    key_of: Callable[[dict], str | None]
    created_of: Callable[[dict], str | None]
    max_concurrency: int
    thread_name: str
    warn: Callable[[str], None]
    #: Emit only records updated at or after this (client-side filter); None = all.
    since_text: str | None = None
    #: Ids already emitted by this run (e.g. before a fallback from a window read).
    emitted: set[str] = field(default_factory=set)
    on_page: Callable[[Page], None] | None = None
    #: Told how many in-flight pages a pass no longer uses once all are asked for.
    on_spare: Callable[[int], None] | None = None
    #: Whether a request was already fetched ahead of this read (prefetch.py).
    fetched_ahead: Callable[[PageRequest], bool] | None = None
    #: The first pass's createdDate probe, if the caller already sent it (prefetch, or
    #: the backfill decision).
    first_probe: Page | None = None
    # outcome
    complete: bool = False
    passes: int = 0
    dropped_older: int = 0
    max_key: str | None = None
    seconds: float = 0.0
    _probed_pages: int | None = field(default=None, init=False)
    _probed_total: int | None = field(default=None, init=False)

    def records(self) -> Iterator[dict]:
        """Every record of the list once, pass after pass until a pass is sound."""
        started = time.monotonic()
        drift: str | None = None
        for number in range(1, MAX_PASSES + 1):
            self.passes = number
            if number > 1 and self.on_spare is not None:
                self.on_spare(0)  # the loan of the last probe's wait: this pass needs its slots
            # A first pass with nothing emitted before sees exactly what it emits: one set
            # of ids, not two (memory stays flat at ~100 bytes a record).
            check = (
                PassCheck(seen=self.emitted) if number == 1 and not self.emitted else PassCheck()
            )
            # Probed before page 1: every record created after the probe is counted as
            # created, so a creation can never hide a deletion (at worst one created in
            # between makes the pass look unsound, and it is read again).
            newest_created = self._newest_created(
                Position.FIRST if number == 1 else Position.KNOWN,
                self.first_probe if number == 1 else None,
            )
            check.start_total = self._probed_total
            closing = _ClosingProbe(self.fetch, self._closing_request(), self.thread_name)
            read: set[int] = set()
            try:
                # The probe's total tells the pages: page 1 goes out with the others.
                for page in pages_in_order(
                    closing.fetch if check.start_total is not None else self.fetch,
                    None,
                    self.query,
                    max_concurrency=self.max_concurrency,
                    thread_name=self.thread_name,
                    on_page=self.on_page,
                    expected_pages=self._probed_pages,
                    on_spare=self.on_spare,
                    fetched_ahead=self.fetched_ahead,
                ):
                    read.add(page.number)
                    yield from self._new_records(page, check, newest_created)
                if check.start_total is not None:
                    if self.on_spare is not None:
                        # Only the probe is out, and nothing is taken until it is in: the
                        # next reads may fill the pass's slots for that round trip too.
                        self.on_spare(most_lent(self.max_concurrency))
                    self._close_pass(check, newest_created, closing.answer(read))
            finally:
                closing.close()
            drift = check.drift()
            if drift is None:
                self.complete = True
                break
            if number < MAX_PASSES:
                self.warn(
                    f"data changed while paging: {drift}. Reading all pages again to catch "
                    f"any record that slid past a page boundary (pass {number + 1} of at most "
                    f"{MAX_PASSES})."
                )
        self.seconds = time.monotonic() - started
        if not self.complete:
            self.warn(
                f"data was still changing after {MAX_PASSES} passes ({drift}). Everything "
                "seen was emitted; the bookmark stays where it was, so the next run reads "
                "this window again, and the run ends with exit code 3."
            )

    @staticmethod
    def probe_request(position: Position = Position.KNOWN, limit: int = 5) -> PageRequest:
        """The newest records by createdDate: a pass's anchor, and its list's total."""
        return PageRequest(
            page=1, limit=limit, order_field="createdDate", descending=True, position=position
        )

    def _closing_request(self) -> PageRequest:
        return self.probe_request(Position.KNOWN, self.query.limit)

    def _close_pass(self, check: PassCheck, newest_created: str | None, page: Page) -> None:
        """From the closing probe: the list's total once every page was answered, and the
        records created since the pass's first probe (all of them, if fewer than a page)."""
        limit = self.query.limit
        created = [
            value
            for record in page.records
            if (value := self.created_of(record))
            and (newest_created is None or value > newest_created)
        ]
        check.end_total = page.total
        check.created_between = len(created) if len(created) < limit else None

    def _newest_created(self, position: Position, answered: Page | None) -> str | None:
        """The newest createdDate now: records created later are this pass's creations.

        The first probe is the read's first request: a target system that rejects
        ordering (400) is then read in its own order, with no probe.
        """
        self._probed_pages = self._probed_total = None
        if self.query.order_field is None:
            return None
        try:
            page = answered or self.fetch(self.probe_request(position))
        except ClientError as exc:
            if exc.status != 400 or position is not Position.FIRST:
                raise
            self.warn(
                f"the target system rejected ordering by createdDate ({exc.message}); "
                "reading the list in its own order."
            )
            self.query = replace(self.query, order_field=None)
            return None
        self._probed_pages = pages_for(page.total, self.query.limit)
        self._probed_total = page.total
        values = [value for record in page.records if (value := self.created_of(record))]
        return max(values, default=None)

    def _new_records(
        self, page: Page, check: PassCheck, newest_created: str | None
    ) -> Iterator[dict]:
        if page.total is not None:
            if check.first_total is None:
                check.first_total = page.total
            check.last_total = page.total
        seen, emitted, since = check.seen, self.emitted, self.since_text
        identify, created_of, key_of = self.identify, self.created_of, self.key_of
        for record in page.records:
            record_id = identify(record)
            if record_id in seen:
                check.repeated_ids += 1
                continue
            seen.add(record_id)
            check.distinct += 1
            created = created_of(record)
            if newest_created is not None and created is not None and created > newest_created:
                check.created_during_pass += 1
            key = key_of(record)
            if key is not None and (self.max_key is None or key > self.max_key):
                self.max_key = key
            if record_id in emitted and seen is not emitted:
                continue
            if key is not None and since is not None and key < since:
                self.dropped_older += 1
                continue
            emitted.add(record_id)
            yield record
