"""Concurrent fetch-ahead of the pages of one query, handed out in page order.

Page 1 tells how many pages there are; the following pages are fetched by worker
threads while the caller consumes them in order. One page more than
``max_concurrency`` is kept coming, so that while one is being decoded the others
keep the network busy; the run's in-flight limit (runtime.py) still holds the HTTP
requests to ``max_concurrency``. A page answered but not yet consumed does not count
as coming: each time the caller returns for a page, the requests still out are topped
up, so a round of answers that arrived together is followed by the next round at
once, not page by page as the caller works through them (about a tenth of each
round at 100 ms). At most twice the window is held, besides the pages fetched ahead
of the read (prefetch.py, bounded there), so memory does not grow with the stream.

The number of pages in flight adapts to keep the caller fed and no more: (time
to fetch a page) / (time to consume one), rounded up and capped at
``max_concurrency``. Against a slow API that is the cap; against a fast one it
is one, because fetches far ahead only fight the record path for the GIL.

When the caller stops early (an error, a signal), pending fetches are cancelled
and the workers are not waited for: they notice the run's stop event at their
next retry wait.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import time
import typing as t
from concurrent.futures import FIRST_COMPLETED

from tap_maesn_qonto.errors import EndOfDataError
from tap_maesn_qonto.pages import PageRequest, Position

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_maesn_qonto.envelope import Page

Fetch = t.Callable[[PageRequest], "Page"]


class FetchPace:
    """How many pages to keep in flight: fetch time over consume time, rounded up.

    Both times are smoothed (exponential moving averages) so a single slow page
    does not swing the window.
    """

    SMOOTHING = 0.2

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.window = max_in_flight  # start wide: the first pages tell the real pace
        self._fetch_seconds: float | None = None
        self._consume_seconds: float | None = None

    def _smooth(self, average: float | None, sample: float) -> float:
        return sample if average is None else average + self.SMOOTHING * (sample - average)

    def timed(self, fetch: Fetch, request: PageRequest) -> Page:
        """Run one fetch (on a worker thread) and record how long it took."""
        started = time.monotonic()
        try:
            return fetch(request)
        finally:
            self._fetch_seconds = self._smooth(self._fetch_seconds, time.monotonic() - started)

    @contextlib.contextmanager
    def consuming(self) -> Iterator[None]:
        """Time the caller's work on one page, then resize the window."""
        started = time.monotonic()
        yield
        self._consume_seconds = self._smooth(self._consume_seconds, time.monotonic() - started)
        if self._fetch_seconds is not None:
            needed = math.ceil(self._fetch_seconds / max(self._consume_seconds, 1e-6))
            self.window = max(1, min(self.max_in_flight, needed))


def is_full(page: Page, page_size: int) -> bool:
    """The page holds as many records as were asked for."""
    return len(page.records) >= (page.per_page or page_size)


def is_last(page: Page, page_size: int) -> bool:
    """No page follows this one: the reported count is reached, or it is short or empty."""
    if page.total_pages is not None:
        return page.number >= page.total_pages
    return not is_full(page, page_size)


def position_of(number: int, reported_pages: int | None) -> Position:
    """Within the reported pages, data exists; past a full page without a count, maybe not."""
    if reported_pages is not None and number <= reported_pages:
        return Position.KNOWN
    return Position.UNKNOWN


def pages_in_flight(max_concurrency: int) -> int:
    """Pages a query keeps coming: one decoding while the others wait on the network."""
    return max_concurrency + 1


def most_lent(max_concurrency: int) -> int:
    """The most in-flight pages a read lends to the reads after it (prefetch.py ``lend``).

    Its window once every page is asked for, and a round more while a whole-list pass
    waits for its closing probe (fullread.py), when nothing is taken for a round trip.
    """
    return 2 * pages_in_flight(max_concurrency)


def pages_for(total: int | None, page_size: int) -> int | None:
    """How many pages ``total`` records fill (None: no total reported)."""
    return None if total is None else math.ceil(total / page_size)


def known_before_page_one(expected_pages: int | None) -> int | None:
    """The pages certainly there before page 1 answers: all but the last of a probe's count.

    The last may have been emptied by a deletion since the count was taken.
    """
    return expected_pages - 1 if expected_pages and expected_pages > 1 else None


def opening_requests(
    query: PageRequest, expected_pages: int | None, count: int
) -> list[PageRequest]:
    """The first ``count`` requests :func:`pages_in_order` sends for ``query`` without a first page."""
    reported = known_before_page_one(expected_pages)
    last = min(count, reported if reported is not None else 1)
    return [query.at(number, position_of(number, reported)) for number in range(1, last + 1)]


class _Requests:
    """One read's page requests: which are out, which are answered, what may go next."""

    def __init__(
        self,
        fetch: Fetch,
        query: PageRequest,
        pool: concurrent.futures.ThreadPoolExecutor,
        pace: FetchPace,
        fetched_ahead: Callable[[PageRequest], bool] | None,
    ) -> None:
        self._fetch, self._query, self._pool, self._pace = fetch, query, pool, pace
        self._fetched_ahead = fetched_ahead
        self.pending: dict[int, concurrent.futures.Future[Page]] = {}
        self._sent_here: set[int] = set()  # pending pages this read requests itself
        self.next_to_submit = 1
        self.reported: int | None = None  # the page count, once known

    def top_up(self, number: int) -> int:
        """Send what the window allows; return how many requests of this read are out.

        ``number`` is the page the caller waits for next; without a page count, pages
        go one at a time past it (the last full one).
        """
        window = self._pace.window
        coming = self._coming()
        while (
            coming < window
            and len(self._sent_here) < 2 * window
            and (
                (self.reported is not None and self.next_to_submit <= self.reported)
                or (self.reported is None and self.next_to_submit == number)
            )
        ):
            coming += self._submit(self.next_to_submit)
            self.next_to_submit += 1
        return coming

    def answered(self, number: int) -> int:
        """Wait for page ``number``, topping up as the pages after it are answered.

        A page held up (a retry, a slot another read took first) must not idle the
        slots of the pages answered before it. Returns the requests still out.
        """
        wanted = self.pending[number]
        while not wanted.done():
            out = [self.pending[n] for n in self._sent_here if not self.pending[n].done()]
            concurrent.futures.wait([wanted, *out], return_when=FIRST_COMPLETED)
            self.top_up(number)
        self._sent_here.discard(number)
        return self._coming()

    def _coming(self) -> int:
        """Requests this read sent itself that are not answered yet."""
        return sum(1 for n in self._sent_here if not self.pending[n].done())

    def _submit(self, page_number: int) -> int:
        """Ask for a page; return 1 if this read sends it itself, 0 if fetched ahead."""
        request = self._query.at(page_number, position_of(page_number, self.reported))
        if self._fetched_ahead is not None and self._fetched_ahead(request):
            # Answered already: not a sample of the pace, nor part of the window.
            self.pending[page_number] = self._pool.submit(self._fetch, request)
            return 0
        self.pending[page_number] = self._pool.submit(self._pace.timed, self._fetch, request)
        self._sent_here.add(page_number)
        return 1


def pages_in_order(
    fetch: Fetch,
    first: Page | None,
    query: PageRequest,
    *,
    max_concurrency: int,
    thread_name: str,
    on_page: Callable[[Page], None] | None = None,
    expected_pages: int | None = None,
    on_spare: Callable[[int], None] | None = None,
    fetched_ahead: Callable[[PageRequest], bool] | None = None,
) -> Iterator[Page]:
    """Yield ``first``, then the query's following pages in order, fetched ahead.

    Without ``first``, page 1 is fetched here too: beside it, the pages that certainly
    exist by ``expected_pages`` (a count from just before, such as a probe's total),
    all but the last, which a deletion since may have emptied. Page 1's own count
    then takes over. Once every page is asked for, ``on_spare`` is told how many of
    its in-flight pages the query no longer uses (others may fetch ahead meanwhile).

    Pages ``fetched_ahead`` says are already on their way (prefetch.py) count neither
    in the window nor in its pace: the window is the requests this read sends itself,
    so the network stays busy while the caller works through pages fetched before
    its turn.
    """
    page_size = query.limit
    if first is not None:
        yield first
        if is_last(first, page_size) or not first.records:
            return
    in_flight = pages_in_flight(max_concurrency)
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=in_flight, thread_name_prefix=thread_name
    )
    pace = FetchPace(in_flight)
    requests = _Requests(fetch, query, pool, pace, fetched_ahead)
    if first is None:
        number = 1
        requests.reported = known_before_page_one(expected_pages)
    else:
        number = requests.next_to_submit = 2
        requests.reported = first.total_pages
    try:
        while True:
            requests.top_up(number)
            if number not in requests.pending:
                return  # the reported page count is reached
            coming = requests.answered(number)
            reported = requests.reported
            if on_spare is not None and reported is not None and requests.next_to_submit > reported:
                on_spare(in_flight - coming)
            try:
                page = requests.pending.pop(number).result()
            except EndOfDataError:
                return
            if on_page is not None:
                on_page(page)
            with pace.consuming():
                yield page
            if page.total_pages is not None:
                requests.reported = page.total_pages
            if is_last(page, page_size) or not page.records:
                return
            number += 1
    finally:
        pool.shutdown(wait=not requests.pending, cancel_futures=True)
