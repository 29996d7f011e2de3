"""Where a partition's read starts, and how: a window over ``updatedDate`` or the whole list.

Decided from values only (the partition's state, the settings, a reconcile), before
the read begins, so that prefetch.py can send its first requests ahead of its turn and
the read asks for exactly those. The one decision that needs answers (a first run from
an early ``start_date``: is the window so long that reading the whole list
concurrently is quicker?) is :func:`whole_list_wins`, used by both.
"""

from __future__ import annotations

import math
import time
import typing as t
from dataclasses import dataclass

from tap_maesn_qonto import window
from tap_maesn_qonto.fullread import whole_list_request
from tap_maesn_qonto.pager import most_lent, opening_requests, pages_for
from tap_maesn_qonto.pages import PageRequest
from tap_maesn_qonto.prefetch import spare
from tap_maesn_qonto.timestamps import minus, parse_timestamp

if t.TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping

    from tap_maesn_qonto.envelope import Page
    from tap_maesn_qonto.prefetch import Key, RequestsAhead

#: The partition state's key of the version its rows carry (reconcile.py).
TABLE_VERSION = "table_version"


@dataclass(frozen=True)
class ReadPlan:
    """How one partition is read this run."""

    #: The bookmark the read starts from (what earlier runs proved read); None: none.
    previous: str | None
    #: Where a window read starts; None: the whole list is read.
    start: dt.datetime | None
    #: What a whole-list read keeps (records updated at or after it); None: all.
    since: dt.datetime | None
    #: Whether this partition was read before (a bookmark or a table version): its
    #: endpoints exist for it, so a 404 there is not "not available".
    read_before: bool
    #: Whether the read moves a bookmark at all (False: FULL_TABLE).
    incremental: bool


def bookmark_of(state: Mapping[str, t.Any], replication_key: str) -> str | None:
    """The partition's bookmark, if it is one of ``replication_key``."""
    value = state.get("replication_key_value")
    if value and state.get("replication_key") == replication_key:
        return str(value)
    return None


def plan_read(
    state: Mapping[str, t.Any],
    *,
    replication_key: str | None,
    reconciling: bool,
    lookback: dt.timedelta,
    start_date: dt.datetime | None,
) -> ReadPlan:
    """The read of a partition whose state is ``state`` (no replication key: FULL_TABLE)."""
    incremental = replication_key is not None
    previous = bookmark_of(state, replication_key) if replication_key else None
    read_before = previous is not None or TABLE_VERSION in state
    if not incremental:
        return ReadPlan(None, None, None, read_before, incremental=False)
    if reconciling:
        return ReadPlan(previous, None, start_date, read_before, incremental=True)
    starts = [minus(parse_timestamp(previous), lookback)] if previous else []
    if start_date is not None:
        starts.append(start_date)
    start = max(starts) if starts else None
    return ReadPlan(previous, start, None, read_before, incremental=True)


def first_request(plan: ReadPlan, page_size: int) -> PageRequest:
    """The read's first request: page 1 of its window, or the whole list's newest page."""
    if plan.start is not None:
        return window.first_request(plan.start, page_size)
    return whole_list_request(page_size)


def worth_probing(window_first: Page, max_concurrency: int) -> bool:
    """Whether a window is long enough that the whole list, read concurrently, may be quicker."""
    pages = window_first.total_pages
    return max_concurrency > 1 and pages is not None and pages >= 2 * max_concurrency


def whole_list_wins(window_first: Page, probe: Page, page_size: int, max_concurrency: int) -> bool:
    """Whether the whole list takes fewer rounds, ``max_concurrency`` pages at a time,
    than the window, one page at a time."""
    whole_pages = pages_for(probe.total, page_size)
    if whole_pages is None or window_first.total_pages is None:
        return False
    return math.ceil(whole_pages / max_concurrency) < window_first.total_pages


class Planner:
    """Plans a partition's first requests on prefetch.py, in the order the SDK syncs them.

    ``fetch(label, request, retries)`` sends one request for an account (fetch.py).
    Each answer plans what follows from it, exactly as the read will ask: the whole
    list's opening pages after its newest page, the whole list's probe after a long
    window's first page, and that list's pages if it wins.
    """

    def __init__(
        self,
        ahead: RequestsAhead[Page],
        fetch: Callable[[str, PageRequest, bool], Page],
        *,
        stream: str,
        page_size: int,
        max_concurrency: int,
    ) -> None:
        self.ahead = ahead
        self.fetch = fetch
        self.stream = stream
        self.page_size = page_size
        self.max_concurrency = max_concurrency
        self._first_sent: dict[str, float] = {}

    def first_sent(self, label: str) -> float | None:
        """When ``label``'s first request left, if it was fetched ahead (then forgotten)."""
        return self._first_sent.pop(label, None)

    def key(self, label: str, request: PageRequest) -> Key:
        return (self.stream, label, request)

    def plan(self, label: str, plan: ReadPlan, order: int) -> None:
        """Plan ``label``'s first request; ``order`` is its place in the sync."""
        request = first_request(plan, self.page_size)
        probe = whole_list_request(self.page_size)
        # A first run's window may be long: the whole list's probe is guessed at once,
        # into a slot nothing else would use (only in the first round: later partitions
        # find no idle slot).
        guessed = (
            plan.start is not None
            and plan.previous is None
            and self.max_concurrency > 1
            and order < self.max_concurrency
        )

        def first() -> Page:
            # A whole-list read's bookmark subtracts the time since its first request.
            self._first_sent[label] = time.monotonic()
            return self.fetch(label, request, True)

        def then(page: Page) -> None:
            if plan.start is None:
                self._plan_pages(label, order, page)
            elif worth_probing(page, self.max_concurrency):
                self._plan_probe(label, order, page)
            elif guessed:
                self.ahead.forget(self.key(label, probe))

        self.ahead.plan(self.key(label, request), first, (order, 0), then)
        if guessed:
            self.ahead.plan(
                self.key(label, probe),
                lambda: self.fetch(label, probe, False),
                spare((order, 1)),
            )

    def _plan_probe(self, label: str, order: int, window_first: Page) -> None:
        def then(probe: Page) -> None:
            if whole_list_wins(window_first, probe, self.page_size, self.max_concurrency):
                self._plan_pages(label, order, probe)

        self._plan(label, whole_list_request(self.page_size), (order, 1), then)

    def _plan_pages(self, label: str, order: int, probe: Page) -> None:
        """The opening pages of the whole list's first pass, as fullread.py asks for them."""
        if probe.total is not None and probe.total <= self.page_size:
            return  # the probe was the whole list
        expected = pages_for(probe.total, self.page_size)
        # As many as the lookahead holds, plus what a reader at its end lends it.
        count = self.ahead.lookahead + most_lent(self.max_concurrency)
        query = PageRequest(page=1, limit=self.page_size)
        for step, request in enumerate(opening_requests(query, expected, count), start=2):
            self._plan(label, request, (order, step))

    def _plan(
        self,
        label: str,
        request: PageRequest,
        order: tuple[int, int],
        then: Callable[[Page], None] | None = None,
    ) -> None:
        self.ahead.plan(
            self.key(label, request), lambda: self.fetch(label, request, True), order, then
        )
