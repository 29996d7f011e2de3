"""Reading a whole list: concurrent page-number reads, each pass proven by the server's totals.

Used for a first run without a start, for ``FULL_TABLE``, for every read of a
reconcile, and as the fallback when a target system does not filter or order by
``updatedDate``. Under ``createdDate ASC`` and no filter, an update moves nothing and a
creation lands on the last page; only a record leaving the list (a deletion) shifts
unread records onto pages already read, where they would be missed.

Every pass is bracketed by two probes, a page of the newest records by the order field
(descending): one answered before any page of the pass is asked for, one sent after
every page is answered. The second tells how many records were created since the
first, so ``start total + created - end total > 0`` means a record that existed when
the pass began left the list while it paged: an exact count, whatever order the pages
were answered in. A record created in the same instant as the opening probe's newest
counts as created unless that probe listed its id. Fewer records received than the
server's last total mean the same. Such a pass is read again (at most
``MAX_PASSES``), emitting only ids not yet emitted.

The first probe is the read's first request. A list that fits on it (its total within
one page, every record on it) is read whole by that one request: one answer is one
moment, nothing can shift. Checked, not trusted:

* the probes must come back in the direction asked; a target system that ignores
  ``orderDir`` is probed by the last page of the ascending list instead;
* a target system that refuses ``orderField=createdDate`` is read by ``updatedDate``,
  where an edit moves a record too, so a pass is sound only if nothing changed;
* without totals (``pagination`` null) no pass can be proven: everything is read and
  emitted, and :attr:`FullRead.complete` stays false (the run ends with exit 3 and
  keeps the previous bookmark);
* an id listed twice is emitted once and counted as the server counted it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import threading
import typing as t
from dataclasses import dataclass, field

from tap_maesn_qonto.errors import ClientError
from tap_maesn_qonto.pager import most_lent, pages_for, pages_in_order
from tap_maesn_qonto.pages import PageRequest, Position

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_maesn_qonto.envelope import Page
    from tap_maesn_qonto.pages import Fetch, RecordKeys, Report

MAX_PASSES = 3
#: The order fields a whole list can be read by, best first (see the module docstring).
ORDER_FIELDS = ("createdDate", "updatedDate")


@dataclass
class Anchor:
    """The newest records when a pass began: its total and where "created since" starts."""

    total: int | None
    newest: str | None
    #: Ids at exactly ``newest``: a record later found there but not here is new.
    ids_at_newest: frozenset[str] = frozenset()

    def created_since(self, values: list[tuple[str, str]]) -> int:
        """How many of ``(value, id)`` were created after this anchor."""
        newest, known = self.newest, self.ids_at_newest
        return sum(
            1
            for value, record_id in values
            if newest is None or value > newest or (value == newest and record_id not in known)
        )


@dataclass
class PassCheck:
    """What one walk over all pages saw, to decide whether it can be trusted."""

    #: The list's total before any page was asked for, and after every page was answered.
    start_total: int | None = None
    end_total: int | None = None
    #: Records created (or, by updatedDate, changed) between the two; None: more than
    #: the closing probe could show.
    created_between: int | None = None
    #: Records received, repeats included (a server may list an id twice), and the
    #: distinct ids among them.
    received: int = 0
    distinct: int = 0
    #: Read by updatedDate: any change shifts records, so only a quiet pass is sound.
    changes_shift: bool = False
    seen: set[str] = field(default_factory=set)

    def drift(self) -> str | None:
        """Why this pass may have missed records, or None if it is sound."""
        if self.start_total is None or self.end_total is None:
            return "Maesn reported no totals, so no pass can be checked"
        if self.created_between is None:
            return "more records were created while paging than one probe can count"
        if self.changes_shift and self.created_between:
            return f"{self.created_between} record(s) changed while paging by updatedDate"
        left = self.start_total + self.created_between - self.end_total
        if left > 0:
            return (
                f"about {left} record(s) left the list while paging (total "
                f"{self.start_total} -> {self.end_total} with {self.created_between} created)"
            )
        if self.received < self.end_total - self.created_between:
            return f"{self.received} records arrived but Maesn reported {self.end_total}"
        return None


class _ClosingProbe:
    """A pass's closing probe, sent the moment every page it will read is answered.

    Its total is the end of the pass's bracket only if it was *sent* after every page
    read was *answered*: computed after all of them, whatever order the server answered
    in. Sent from the worker that receives the last page, it overlaps with the work on
    the last pages instead of adding a round trip after it; if the pass reads a page
    that was not answered yet when it went out (the list grew), it is sent again.
    """

    def __init__(self, fetch: Callable[[], Page], limit: int, thread_name: str) -> None:
        self._fetch = fetch
        self._limit = limit
        self._lock = threading.Lock()
        self._answered: set[int] = set()
        self._sent_after: frozenset[int] | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, f"{thread_name}-closing")
        self._future: concurrent.futures.Future[Page] | None = None

    def wrap(self, fetch: Fetch) -> Fetch:
        """``fetch`` for the pass's pages, sending the probe once every page is answered."""

        def page_of_the_pass(request: PageRequest) -> Page:
            page = fetch(request)
            with self._lock:
                self._answered.add(request.page)
                pages = pages_for(page.total, self._limit)
                if (
                    self._future is None
                    and pages is not None
                    and self._answered.issuperset(range(1, pages + 1))
                ):
                    self._sent_after = frozenset(self._answered)
                    self._future = self._pool.submit(self._fetch)
            return page

        return page_of_the_pass

    def answer(self, read: set[int]) -> Page:
        """The probe's answer, sent after every page in ``read`` was answered."""
        with self._lock:
            future, sent_after = self._future, self._sent_after
        if future is not None and sent_after is not None and sent_after.issuperset(read):
            with contextlib.suppress(Exception):  # sent again below, where errors surface
                return future.result()
        return self._fetch()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def probe_request(
    position: Position = Position.KNOWN, limit: int = 100, order_field: str = "createdDate"
) -> PageRequest:
    """The newest records by ``order_field``: a pass's anchor and its list's total."""
    return PageRequest(
        page=1, limit=limit, order_field=order_field, descending=True, position=position
    )


@dataclass
class FullRead:
    """One partition's whole-list read; iterate :meth:`batches`, then read the outcome."""

    fetch: Fetch
    keys: RecordKeys
    page_size: int
    max_concurrency: int
    thread_name: str
    report: Report
    #: Emit only records updated at or after this (client-side filter); None = all.
    since_text: str | None = None
    #: Ids already emitted by this run (e.g. before a fallback from a window read).
    emitted: set[str] = field(default_factory=set)
    #: Told how many in-flight pages a pass no longer uses (prefetch.py ``lend``).
    lend: Callable[[int], None] | None = None
    #: Whether a request was already fetched ahead of this read (prefetch.py).
    fetched_ahead: Callable[[PageRequest], bool] | None = None
    #: The answer to the read's first request, if the caller has it already.
    first_probe: Page | None = None
    # outcome
    complete: bool = False
    passes: int = 0
    max_key: str | None = None
    _order_field: str | None = field(default=ORDER_FIELDS[0], init=False)
    _last_page_probes: bool = field(default=False, init=False)

    def batches(self) -> Iterator[list[dict]]:
        """Every record of the list once (a list per page), pass after pass until one is sound."""
        drift: str | None = None
        for number in range(1, MAX_PASSES + 1):
            self.passes = number
            if number > 1 and self.lend is not None:
                self.lend(0)  # the loan of the last probe's wait: this pass needs its slots
            opening = yield from self._open(first=number == 1)
            if opening is None:
                self.complete = True  # the list fitted on the probe: read whole, at once
                return
            check = PassCheck(
                start_total=opening.total,
                changes_shift=self._order_field != "createdDate",
                # A first pass with nothing emitted before sees exactly what it emits:
                # one set of ids, not two (memory stays flat at ~100 bytes a record).
                seen=self.emitted if number == 1 and not self.emitted else set(),
            )
            yield from self._pass(check, opening)
            drift = check.drift()
            if drift is None:
                self.complete = True
                return
            if check.start_total is None or check.end_total is None:
                break  # without totals another pass proves no more
            if number < MAX_PASSES:
                self.report.warn(
                    f"data changed while paging: {drift}. Reading all pages again to catch "
                    f"any record that slid past a page boundary (pass {number + 1} of at most "
                    f"{MAX_PASSES})."
                )
        self.report.warn(
            f"the whole list could not be proven read ({drift}). Everything seen was "
            "emitted; the bookmark stays where it was, so the next run reads it again, and "
            "the run ends with exit code 3."
        )

    # --- a pass -----------------------------------------------------------------------

    def _pass(self, check: PassCheck, opening: Anchor) -> Iterator[list[dict]]:
        query = PageRequest(page=1, limit=self.page_size, order_field=self._order_field)
        closing = _ClosingProbe(self._closing_fetch, self.page_size, self.thread_name)
        read: set[int] = set()
        proven = check.start_total is not None
        try:
            for page in pages_in_order(
                closing.wrap(self.fetch) if proven else self.fetch,
                None,
                query,
                max_concurrency=self.max_concurrency,
                thread_name=self.thread_name,
                on_page=self.report.page,
                expected_pages=pages_for(check.start_total, self.page_size),
                on_spare=self.lend,
                fetched_ahead=self.fetched_ahead,
            ):
                read.add(page.number)
                yield self._new_records(page, check)
            if proven:
                if self.lend is not None:
                    # Only the probe is out, and nothing is taken until it is in: the
                    # next reads may fill the pass's slots for that round trip too.
                    self.lend(most_lent(self.max_concurrency))
                self._close(check, opening, closing.answer(read))
        finally:
            closing.close()

    def _open(self, *, first: bool) -> t.Generator[list[dict], None, Anchor | None]:
        """Probe the newest records; None if the probe held the whole list (emitted here)."""
        page = self._probe(first=first)
        if self._whole(page):
            self.report.page(page)
            yield self._new_records(page, PassCheck())
            return None
        if self._order_field is None:
            return Anchor(None, None)  # the list's own order: no anchor, no proof
        if not self._descending(page):
            self._last_page_probes = True
            self.report.warn(
                "the target system ignores orderDir (the newest records came back oldest "
                "first); each pass is anchored by the last page of the list instead."
            )
            page = self._last_page(page.total)
        return self._anchor(page)

    def _probe(self, *, first: bool) -> Page:
        """The newest page by the order field; a refused order field is replaced (first only)."""
        if first and self.first_probe is not None:
            return self.first_probe
        position = Position.FIRST if first else Position.KNOWN
        while True:
            request = (
                probe_request(position, self.page_size, self._order_field)
                if self._order_field is not None
                else PageRequest(page=1, limit=self.page_size, order_field=None, position=position)
            )
            try:
                return self.fetch(request)
            except ClientError as exc:
                if exc.status != 400 or not first:
                    raise
                self._refused(exc)  # another order field, or none: asked again

    def _refused(self, exc: ClientError) -> None:
        """The target system refused the order field: the next one, or the list's own order."""
        if self._order_field is None:
            raise exc
        index = ORDER_FIELDS.index(self._order_field)
        self._order_field = ORDER_FIELDS[index + 1] if index + 1 < len(ORDER_FIELDS) else None
        how = (
            f"by {self._order_field}, where only a pass during which nothing changed is sound"
            if self._order_field
            else "in its own order, which no probe can check (the run ends with exit code 3)"
        )
        self.report.warn(
            f"the target system refused ordering the list ({exc.message}); reading it {how}."
        )

    def _whole(self, page: Page) -> bool:
        """The probe holds every record of the list (one answer: one moment)."""
        total = page.total
        return (
            total is not None
            and total <= self.page_size
            and len(page.records) == total
            and (page.total_pages is None or page.total_pages <= 1)
        )

    def _descending(self, page: Page) -> bool:
        values = [v for r in page.records if (v := self._key(r)) is not None]
        return all(a >= b for a, b in itertools.pairwise(values))

    def _key(self, record: dict) -> str | None:
        if self._order_field != "updatedDate":
            return self.keys.created(record)
        return self.keys.updated(record)

    def _anchor(self, page: Page) -> Anchor:
        values = [(v, self.keys.identify(r)) for r in page.records if (v := self._key(r))]
        newest = max((v for v, _ in values), default=None)
        at_newest = frozenset(i for v, i in values if v == newest)
        return Anchor(page.total, newest, at_newest)

    def _closing_fetch(self) -> Page:
        if self._last_page_probes or self._order_field is None:
            return self._last_page(None)
        return self.fetch(probe_request(Position.KNOWN, self.page_size, self._order_field))

    def _last_page(self, total: int | None) -> Page:
        """The last page of the ascending list: the newest records when orderDir is ignored."""
        query = PageRequest(page=1, limit=self.page_size, order_field=self._order_field)
        number = max(1, pages_for(total, self.page_size) or 1)
        while True:
            page = self.fetch(query.at(number, Position.KNOWN))
            last = pages_for(page.total, self.page_size)
            if last is None or last <= number or not page.records:
                return page
            number = last  # the list grew meanwhile: its new last page

    def _close(self, check: PassCheck, opening: Anchor, page: Page) -> None:
        """From the closing probe: the total once every page was answered, and what was
        created since the opening one (all of it, if less than a page)."""
        values = [(v, self.keys.identify(r)) for r in page.records if (v := self._key(r))]
        created = opening.created_since(values)
        check.end_total = page.total
        check.created_between = created if created < self.page_size else None

    def _new_records(self, page: Page, check: PassCheck) -> list[dict]:
        seen, emitted, since = check.seen, self.emitted, self.since_text
        identify, updated = self.keys.identify, self.keys.updated
        new = []
        for record in page.records:
            check.received += 1
            record_id = identify(record)
            if record_id in seen:
                continue  # listed twice: emitted once
            seen.add(record_id)
            check.distinct += 1
            key = updated(record)
            if key is not None and (self.max_key is None or key > self.max_key):
                self.max_key = key
            if record_id in emitted and seen is not emitted:
                continue
            if key is not None and since is not None and key < since:
                continue
            emitted.add(record_id)
            new.append(record)
        return new


def whole_list_request(page_size: int) -> PageRequest:
    """The first request of a whole-list read: the newest page, which may be all of it."""
    return probe_request(Position.FIRST, page_size)
