"""When a pass over the pages can be trusted, and when it must be read again (fullread.py).

Two probes bracket a pass: the list's total before any page was asked for, and after
every page was answered, with the records created in between. ``start + created - end``
records left the list while it paged; any such departure may have shifted an unread
record onto a page already read. Records created at the very instant of the opening
probe's newest count as created unless that probe listed them.
"""

from __future__ import annotations

import threading
import typing as t

import pytest

from tap_maesn_qonto.envelope import Page
from tap_maesn_qonto.fullread import Anchor, FullRead, PassCheck, _ClosingProbe, probe_request
from tap_maesn_qonto.pager import most_lent
from tap_maesn_qonto.pages import PageRequest, RecordKeys


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        (PassCheck(start_total=100, end_total=100, created_between=0, received=100), None),
        # New records appended while paging: nothing shifted.
        (PassCheck(start_total=100, end_total=103, created_between=3, received=103), None),
        # A deletion balanced by a creation: the totals alone would not show it.
        (
            PassCheck(start_total=100, end_total=100, created_between=1, received=100),
            "about 1 record(s) left the list",
        ),
        (PassCheck(start_total=100, end_total=98, created_between=0, received=98), "about 2"),
        # Fewer records arrived than the server said it had.
        (
            PassCheck(start_total=100, end_total=100, created_between=0, received=99),
            "99 records arrived but Maesn reported 100",
        ),
        # An id listed twice is counted as the server counts it: received, not distinct.
        (
            PassCheck(start_total=100, end_total=100, created_between=0, received=100, distinct=99),
            None,
        ),
        # More creations than one closing probe shows: not countable.
        (
            PassCheck(start_total=100, end_total=200, created_between=None),
            "more records were created",
        ),
        # Read by updatedDate (createdDate refused): any change may have shifted a record.
        (
            PassCheck(start_total=100, end_total=100, created_between=1, changes_shift=True),
            "changed while paging by updatedDate",
        ),
        # No totals at all: nothing to prove the pass with.
        (PassCheck(received=42), "no totals"),
    ],
)
def test_a_pass_is_sound_only_if_no_record_left_it(check: PassCheck, reason: str | None) -> None:
    verdict = check.drift()
    if reason is None:
        assert verdict is None
    else:
        assert verdict is not None
        assert reason in verdict


def test_a_record_created_in_the_probes_instant_counts_unless_the_probe_listed_it() -> None:
    anchor = Anchor(total=10, newest="2026-01-01T00:00:05Z", ids_at_newest=frozenset({"a"}))
    closing = [
        ("2026-01-01T00:00:06Z", "later"),  # created after: counts
        ("2026-01-01T00:00:05Z", "a"),  # the probe's own newest: not new
        ("2026-01-01T00:00:05Z", "same-instant"),  # same instant, not listed then: new
        ("2026-01-01T00:00:04Z", "older"),
    ]
    assert anchor.created_since(closing) == 2


def test_without_an_anchor_every_record_of_the_closing_probe_counts_as_created() -> None:
    assert Anchor(total=0, newest=None).created_since([("2026-01-01T00:00:00Z", "x")]) == 1


# --- a whole-list read over scripted pages -------------------------------------------------
class _ListServer:
    """A list under ``createdDate ASC``, paged by number, computed when each request is
    answered; page 1 of the first pass waits until pages 2 and 3 are answered, and then a
    record on page 2 is deleted (the order a 429 on page 1 and its retry can give)."""

    def __init__(self, count: int) -> None:
        self.records = [
            {"id": f"r{n:02d}", "createdDate": f"2026-01-01T00:00:{n:02d}.000000Z"}
            for n in range(count)
        ]
        self.served: list[int] = []
        self.lock = threading.Lock()
        self.others_answered = threading.Event()
        self.first_page_one = True

    def fetch(self, request: PageRequest) -> Page:
        if request.descending:  # a probe: the newest records, and the total
            with self.lock:
                newest = sorted(self.records, key=lambda r: r["createdDate"], reverse=True)
                return Page(1, newest[: request.limit], len(self.records), None, None, ())
        if request.page == 1 and self.first_page_one:
            self.first_page_one = False
            assert self.others_answered.wait(5)
            with self.lock:
                del self.records[15]  # seen on page 2; every later record moves up one
        with self.lock:
            start = (request.page - 1) * request.limit
            records = self.records[start : start + request.limit]
            total = len(self.records)
            self.served.append(request.page)
            if {2, 3} <= set(self.served):
                self.others_answered.set()
        pages = -(-total // request.limit)
        return Page(request.page, records, total, pages, request.limit, ())


class _Notes:
    """A reader's report that keeps its warnings."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def page(self, page: Page) -> None:
        del page

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def _read_by_created_date(
    fetch: t.Callable[[PageRequest], Page], notes: _Notes, **options: t.Any
) -> FullRead:
    """A whole-list read of pages of 10 under createdDate ASC, four at a time."""
    return FullRead(
        fetch=fetch,
        keys=RecordKeys(
            identify=lambda record: record["id"],
            updated=lambda record: None,
            created=lambda record: record["createdDate"],
        ),
        page_size=10,
        max_concurrency=4,
        thread_name="test-page",
        report=notes,
        **options,
    )


def test_a_deletion_before_a_late_page_one_is_caught_whatever_order_pages_answer_in() -> None:
    # Pages 2 and 3 answer from the list of 35, page 1 and page 4 after a deletion on page 2:
    # page 1's and page 4's totals agree, yet the record at 30 moved onto page 3, already
    # read. Only totals that bracket the whole pass reveal it; the pass must be read again.
    server = _ListServer(35)
    notes = _Notes()
    read = _read_by_created_date(server.fetch, notes)
    emitted = [record["id"] for batch in read.batches() for record in batch]
    warnings = notes.warnings
    assert sorted(emitted) == sorted(set(emitted))  # each once
    assert {r["id"] for r in server.records} <= set(emitted)  # r30, moved onto page 3
    assert read.complete, warnings
    assert read.passes == 2, warnings
    assert "left the list while paging" in warnings[0]


def test_a_closing_probe_counts_only_if_sent_after_every_page_read_was_answered() -> None:
    sent: list[str] = []

    def fetch(request: PageRequest) -> Page:
        sent.append("probe" if request.descending else f"page {request.page}")
        return Page(request.page, [], 30, 3, 10, ())

    closing = _ClosingProbe(lambda: fetch(probe_request(limit=10)), 10, "test")
    page_of_the_pass = closing.wrap(fetch)
    for number in (2, 1, 3):  # answered out of order: sent once the third is in
        page_of_the_pass(PageRequest(page=number, limit=10))
    assert closing.answer({1, 2, 3}).total == 30
    assert sent.count("probe") == 1  # the early one, sent after page 3's answer
    closing.answer({1, 2, 3, 4})  # page 4 was read too (the list grew): sent again
    assert sent.count("probe") == 2
    closing.close()


def test_a_pass_waiting_for_its_closing_probe_lends_the_next_reads_a_round_more() -> None:
    # Nothing of the pass is taken until the probe answers: unless the reads after it may
    # fill the pass's slots for that round trip too (prefetch.py), the network idles. A
    # pass read again takes its slots back.
    records = [
        {"id": f"r{n:02d}", "createdDate": f"2026-01-01T00:00:{n:02d}.000000Z"} for n in range(25)
    ]
    lent: list[int] = []
    lent_at_pass_two: list[int] = []
    probes = 0

    def fetch(request: PageRequest) -> Page:
        nonlocal probes
        if request.descending:
            probes += 1
            # The first pass's closing probe counts one record fewer: one left, read again.
            total = len(records) - (probes == 2)
            return Page(1, records[::-1][: request.limit], total, None, None, ())
        if probes == 3 and not lent_at_pass_two:
            lent_at_pass_two.append(lent[-1])
        start = (request.page - 1) * request.limit
        return Page(request.page, records[start : start + request.limit], 25, 3, 10, ())

    read = _read_by_created_date(fetch, _Notes(), lend=lent.append)
    assert sum(len(batch) for batch in read.batches()) == 25
    assert read.complete
    assert read.passes == 2
    assert probes == 4
    assert lent_at_pass_two == [0]
    # The loan when each pass waited on its probe (sent early, by the worker that got the
    # last page, or after the pass: either way in place by the time the pass waits on it).
    assert lent.count(most_lent(4)) == 2
    assert lent[-1] == most_lent(4)
