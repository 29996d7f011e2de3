"""Requests fetched ahead of their turn: in sync order, bounded, and never read twice.

prefetch.py runs what a partition will ask for before its turn, so a stream's pages
are on their way while the stream before it is still being emitted. These tests pin
what makes that safe, over scripted requests: the sync order, the bound on what is held,
that a request taken by its reader before it started is never sent, how a guess and a
loan of the lookahead work. End to end (the overlap costs no request and changes no
record): tests/sync/test_prefetch.py.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import typing as t

from tap_maesn_qonto.envelope import Page
from tap_maesn_qonto.pager import pages_in_order
from tap_maesn_qonto.pages import PageRequest
from tap_maesn_qonto.prefetch import RequestsAhead, spare


def _recording(
    ran: list[str], name: str, gate: threading.Event | None = None
) -> t.Callable[[], str]:
    """A fetch that records its run and answers ``name`` (RequestsAhead holds any answer)."""

    def fetch() -> str:
        if gate is not None:
            gate.wait(5)
        ran.append(name)
        return name

    return fetch


def test_planned_requests_run_in_sync_order_whatever_order_they_were_planned_in() -> None:
    ahead = RequestsAhead[str](max_workers=1, lookahead=1)
    ran: list[str] = []
    gate = threading.Event()
    ahead.plan(("s", "blocker"), _recording(ran, "blocker", gate), (0, 0))
    ahead.plan(("s", "late"), _recording(ran, "late"), (5, 0))
    ahead.plan(("s", "early"), _recording(ran, "early"), (1, 3))
    ahead.plan(("s", "earliest"), _recording(ran, "earliest"), (1, 0))
    gate.set()
    # One at a time: each take lets the next in sync order start.
    for key in ("blocker", "earliest", "early", "late"):
        future = ahead.take(("s", key))
        assert future is not None, key
        assert future.result(5) == key
    assert ran == ["blocker", "earliest", "early", "late"]
    ahead.close()


def test_no_more_than_the_lookahead_is_started_and_not_yet_taken() -> None:
    ahead = RequestsAhead[str](max_workers=4, lookahead=2)
    ran: list[str] = []
    for number in range(5):
        ahead.plan(("s", number), _recording(ran, f"page {number}"), (0, number))
    first = ahead.take(("s", 0))
    assert first is not None
    assert first.result(5) == "page 0"
    # 0 and 1 started; taking 0 let 2 start, taking 1 lets 3 start; 4 waits for its turn.
    second = ahead.take(("s", 1))
    assert second is not None
    second.result(5)
    deadline = time.monotonic() + 5
    while len(ran) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(ran) == ["page 0", "page 1", "page 2", "page 3"]
    time.sleep(0.1)
    assert "page 4" not in ran  # two answers held, none taken: the lookahead is full
    assert ahead.take(("s", 2)) is not None
    ahead.close()


def test_a_request_taken_before_it_started_is_left_to_its_reader_and_never_sent() -> None:
    ahead = RequestsAhead[str](max_workers=1, lookahead=1)
    ran: list[str] = []
    gate = threading.Event()
    ahead.plan(("s", "busy"), _recording(ran, "busy", gate), (0, 0))
    ahead.plan(("s", "next"), _recording(ran, "next"), (0, 1))
    assert ahead.take(("s", "next")) is None  # not started: the reader sends it itself
    gate.set()
    busy = ahead.take(("s", "busy"))
    assert busy is not None
    busy.result(5)
    ahead.close()
    assert ran == ["busy"]


def test_discarding_a_partition_frees_the_lookahead_for_the_next() -> None:
    ahead = RequestsAhead[str](max_workers=2, lookahead=2)
    ran: list[str] = []
    ahead.plan(("invoices", "a", 1), _recording(ran, "a1"), (0, 0))
    ahead.plan(("invoices", "a", 2), _recording(ran, "a2"), (0, 1))
    ahead.plan(("invoices", "b", 1), _recording(ran, "b1"), (1, 0))
    ahead.discard(("invoices", "a"))  # partition a ended without reading them
    future = ahead.take(("invoices", "b", 1))
    assert future is not None
    assert future.result(5) == "b1"
    assert ahead.take(("invoices", "a", 1)) is None
    ahead.close()


def test_a_reader_at_its_last_pages_lends_its_unused_budget_until_its_partition_ends() -> None:
    ahead = RequestsAhead[str](max_workers=4, lookahead=1)
    ran: list[str] = []
    for number in range(4):
        ahead.plan(("bills", "a", number), _recording(ran, f"bills {number}"), (1, number))
    assert ahead.take(("bills", "a", 1)) is None  # only the lookahead's one has started
    ahead.lend(2)  # the stream before bills asked for its last pages: two slots unused
    for number in (0, 2, 3):
        future = ahead.take(("bills", "a", number))
        assert future is not None, number
        future.result(5)
    ahead.discard(("bills", "a"))  # the lending reader's partition ended: the loan with it
    ahead.plan(("bills", "b", 0), _recording(ran, "b0"), (2, 0))
    ahead.plan(("bills", "b", 1), _recording(ran, "b1"), (2, 1))
    assert ahead.take(("bills", "b", 1)) is None  # the lookahead alone again: b0 only
    ahead.close()


def test_nothing_is_planned_for_a_partition_whose_read_has_ended() -> None:
    # A probe still in flight when its partition's read ended (the reader fell back to
    # something else) must not plan pages that nobody will take: they would hold the
    # lookahead for good.
    ahead = RequestsAhead[str](max_workers=1, lookahead=1)
    ran: list[str] = []
    ahead.discard(("bills", "a"))
    ahead.plan(("bills", "a", 1), _recording(ran, "a1"), (0, 2))
    ahead.plan(("bills", "b", 0), _recording(ran, "b0"), (1, 0))
    future = ahead.take(("bills", "b", 0))
    assert future is not None  # the lookahead's one slot went to the next partition
    assert future.result(5) == "b0"
    assert ahead.take(("bills", "a", 1)) is None
    ahead.close()
    assert ran == ["b0"]


def test_a_guess_runs_only_in_a_slot_nothing_planned_would_use() -> None:
    ahead = RequestsAhead[str](max_workers=1, lookahead=1)
    ran: list[str] = []
    gate = threading.Event()
    ahead.plan(("s", "a", "first"), _recording(ran, "first", gate), (0, 0))
    ahead.plan(("s", "a", "guess"), _recording(ran, "guess"), spare((0, 1)))
    ahead.plan(("s", "b", "first"), _recording(ran, "b first"), (1, 0))
    gate.set()
    for key in (("s", "a", "first"), ("s", "b", "first"), ("s", "a", "guess")):
        future = ahead.take(key)
        assert future is not None, key
        future.result(5)
    assert ran == ["first", "b first", "guess"]  # after the next partition's first request
    ahead.close()


def test_a_guess_found_needed_moves_up_and_leads_on_and_one_found_not_needed_is_dropped() -> None:
    ahead = RequestsAhead[str](max_workers=1, lookahead=1)
    ran: list[str] = []
    gate = threading.Event()
    followed: list[str] = []
    ahead.plan(("s", "a", "busy"), _recording(ran, "busy", gate), (0, 0))
    ahead.plan(("s", "a", "probe"), _recording(ran, "probe"), spare((0, 1)))
    ahead.plan(("s", "a", "unneeded"), _recording(ran, "unneeded"), spare((0, 2)))
    ahead.plan(("s", "b", "first"), _recording(ran, "b first"), (1, 0))
    # The answer it waited for says: the probe is needed now, with what follows from it.
    ahead.plan(("s", "a", "probe"), _recording(ran, "probe"), (0, 1), then=followed.append)
    ahead.forget(("s", "a", "unneeded"))
    gate.set()
    for key in (("s", "a", "busy"), ("s", "a", "probe"), ("s", "b", "first")):
        future = ahead.take(key)
        assert future is not None, key
        future.result(5)
    assert ran == ["busy", "probe", "b first"]
    assert followed == ["probe"]
    assert ahead.take(("s", "a", "unneeded")) is None
    ahead.close()
    assert "unneeded" not in ran


def test_a_needed_guess_already_answered_still_leads_on() -> None:
    ahead = RequestsAhead[str](max_workers=1, lookahead=2)
    ran: list[str] = []
    followed: list[str] = []
    ahead.plan(("s", "a", "probe"), _recording(ran, "probe"), spare((0, 1)))
    deadline = time.monotonic() + 5
    while ran != ["probe"] and time.monotonic() < deadline:
        time.sleep(0.01)
    ahead.plan(("s", "a", "probe"), _recording(ran, "probe"), (0, 1), then=followed.append)
    future = ahead.take(("s", "a", "probe"))
    assert future is not None
    future.result(5)
    assert followed == ["probe"]  # followed by the time its answer is out, and not sent again
    assert ran == ["probe"]
    ahead.close()


def test_a_read_keeps_its_own_requests_going_while_it_works_through_pages_fetched_ahead() -> None:
    # Pages 1-5 were fetched before the read's turn; the read must not wait until it has
    # worked through them to send 6, 7 and 8 (its window of 3): the network would idle.
    gate = threading.Event()
    sent: list[int] = []

    def fetch(request: PageRequest) -> Page:
        if request.page > 5:
            sent.append(request.page)
            assert gate.wait(5)
        return Page(request.page, [{"id": request.page}], 10, 10, 1, ())

    pages = pages_in_order(
        fetch,
        None,
        PageRequest(page=1, limit=1),
        max_concurrency=2,
        thread_name="test-page",
        expected_pages=10,
        fetched_ahead=lambda request: request.page <= 5,
    )
    first = next(pages)
    deadline = time.monotonic() + 5
    while len(sent) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.number == 1
    assert sorted(sent) == [6, 7, 8]  # all three out before page 2 was even asked for
    gate.set()
    assert [page.number for page in pages] == list(range(2, 11))
    assert sorted(sent) == list(range(6, 11))  # and each page once


def test_answers_that_arrive_together_are_followed_by_the_next_round_at_once() -> None:
    # A round of answers arrives together while the caller is busy: the next round must
    # go out when the caller next asks for a page, not one page at a time as it works
    # through the answers (each would wait on the caller's work on the pages before it).
    gate = threading.Event()
    sent: list[int] = []
    answered: list[int] = []

    def fetch(request: PageRequest) -> Page:
        sent.append(request.page)
        if request.page > 3:
            assert gate.wait(5)
        else:
            time.sleep(0.5)  # slow to fetch, quick to consume: the window stays wide
        answered.append(request.page)
        return Page(request.page, [{"id": request.page}], 12, 12, 1, ())

    pages = pages_in_order(
        fetch,
        None,
        PageRequest(page=1, limit=1),
        max_concurrency=2,  # three pages coming
        thread_name="test-page",
        expected_pages=12,
    )
    assert next(pages).number == 1
    deadline = time.monotonic() + 5
    while len(answered) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # pages 2 and 3 answered: none of this read's requests is out
    assert next(pages).number == 2
    deadline = time.monotonic() + 5
    while len(sent) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(sent) == [1, 2, 3, 4, 5, 6]  # three out again, page 3 not yet taken
    gate.set()
    assert [page.number for page in pages] == list(range(3, 13))
    assert sorted(sent) == list(range(1, 13))  # and each page once


def test_a_page_held_up_does_not_hold_up_the_pages_after_it() -> None:
    # Page 2 is late (a retry, a slot another read took first) while the pages after it
    # are answered: their slots must go to the next pages at once, not when page 2 arrives.
    release = threading.Event()
    sent: list[int] = []

    def fetch(request: PageRequest) -> Page:
        sent.append(request.page)
        if request.page == 2:
            assert release.wait(5)
        else:
            time.sleep(0.05)  # slow to fetch, quick to consume: the window stays wide
        return Page(request.page, [{"id": request.page}], 12, 12, 1, ())

    pages = pages_in_order(
        fetch,
        None,
        PageRequest(page=1, limit=1),
        max_concurrency=2,  # three pages coming, at most six held
        thread_name="test-page",
        expected_pages=12,
    )
    assert next(pages).number == 1
    with concurrent.futures.ThreadPoolExecutor(1) as waiter:
        page_two = waiter.submit(next, pages)  # waits on page 2
        deadline = time.monotonic() + 5
        while len(sent) < 7 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # nothing more may go out: six pages are held
        assert sorted(sent) == [1, 2, 3, 4, 5, 6, 7]
        assert not page_two.done()
        release.set()
        assert page_two.result(5).number == 2
    assert [page.number for page in pages] == list(range(3, 13))
    assert sorted(sent) == list(range(1, 13))  # and each page once


def test_what_follows_from_an_answer_is_planned_before_a_reader_has_the_answer() -> None:
    # Else the reader would send the next requests itself, and the plans made a moment
    # later would send them a second time.
    ahead = RequestsAhead[str](max_workers=2, lookahead=2)
    ran: list[str] = []

    def plan_next(answer: object) -> None:
        del answer
        ahead.plan(("s", "a", "next"), _recording(ran, "next"), (0, 2))

    ahead.plan(("s", "a", "first"), _recording(ran, "first"), (0, 0), then=plan_next)
    for _ in range(20):
        first = ahead.take(("s", "a", "first"))
        if first is not None:
            break
        time.sleep(0.01)
    assert first is not None
    first.result(5)
    following = ahead.take(("s", "a", "next"))
    assert following is not None  # planned and started by the time "first" was answered
    assert following.result(5) == "next"
    ahead.close()


def test_a_guess_that_fails_is_tried_once_and_answers_none_for_its_reader_to_send_again() -> None:
    ahead = RequestsAhead[str](max_workers=1, lookahead=1)
    tries: list[str] = []
    followed: list[str] = []

    def failing() -> str:
        tries.append("guess")
        raise ConnectionError("reset")

    ahead.plan(("s", "a", "probe"), failing, spare((0, 1)))
    deadline = time.monotonic() + 5
    while not tries and time.monotonic() < deadline:
        time.sleep(0.01)
    ahead.plan(("s", "a", "probe"), failing, (0, 1), then=followed.append)
    future = ahead.take(("s", "a", "probe"))
    assert future is not None
    assert future.result(5) is None  # not an error: the reader sends it itself
    assert tries == ["guess"]
    assert followed == []
    ahead.close()
