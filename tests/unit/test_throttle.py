"""The request gate: Retry-After holds every worker, and the rate cap spaces sends.

A fake clock makes these exact: no test here waits in real time.
"""

from __future__ import annotations

import threading
import time

import pytest

from tap_maesn_qonto import throttle as throttle_module
from tap_maesn_qonto.retries import retry_after_seconds
from tap_maesn_qonto.throttle import AdaptiveLimit, RequestThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(throttle_module.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(throttle_module.time, "sleep", fake.sleep)
    return fake


def test_without_a_cap_requests_go_at_once(clock: FakeClock) -> None:
    gate = RequestThrottle()
    assert [gate.wait() for _ in range(5)] == [0, 0, 0, 0, 0]


def test_a_rate_cap_spaces_requests_evenly(clock: FakeClock) -> None:
    gate = RequestThrottle(max_requests_per_second=4)
    waits = [gate.wait() for _ in range(5)]
    assert waits == pytest.approx([0, 0.25, 0.25, 0.25, 0.25])


def test_retry_after_seen_by_one_worker_holds_every_worker(clock: FakeClock) -> None:
    gate = RequestThrottle()
    gate.pause(3)  # one worker got a 429 with Retry-After: 3
    assert gate.wait() == pytest.approx(3)  # the next sender, whoever it is, waits
    assert gate.wait() == 0  # the pause is over for everyone after that


def test_a_shorter_pause_never_shortens_a_longer_one(clock: FakeClock) -> None:
    gate = RequestThrottle()
    gate.pause(5)
    gate.pause(1)
    assert gate.wait() == pytest.approx(5)


class _Response:
    def __init__(self, value: str | None) -> None:
        self.headers = {} if value is None else {"Retry-After": value}
        self.status_code = 200


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(_Response(header)) == seconds  # type: ignore[arg-type]


def _answer(status: int, retry_after: str | None = None) -> _Response:
    answer = _Response(retry_after)
    answer.status_code = status
    return answer


OK, REFUSED = _answer(200), _answer(429)


def _one_request(limit: AdaptiveLimit, answer: _Response) -> None:
    limit.release(limit.acquire(), answer)  # type: ignore[arg-type]


def test_a_429_halves_the_in_flight_limit_for_everyone_and_successes_widen_it_again(
    clock: FakeClock,
) -> None:
    limit = AdaptiveLimit(8)
    for _ in range(3):
        _one_request(limit, REFUSED)
    assert limit.limit == 1  # 8 -> 4 -> 2 -> 1: each refused request was sent after a decrease
    widened = []
    for _ in range(40):
        clock.now += 1.0  # a second per answer: the hold after each change has passed
        _one_request(limit, OK)
        widened.append(limit.limit)
    # +1 after each run of `limit` answers without a 429: 1, 2, 3 ... up to the maximum.
    assert widened[0] == 2
    assert widened[-1] == 8
    assert widened == sorted(widened)


def test_a_burst_of_refusals_of_one_moment_halves_the_limit_once() -> None:
    limit = AdaptiveLimit(8)
    tokens = [limit.acquire() for _ in range(8)]  # 8 requests in flight, all refused
    for token in tokens:
        limit.release(token, REFUSED)  # type: ignore[arg-type]
    assert limit.limit == 4


def test_the_limit_widens_no_faster_than_the_retry_after_the_server_named(
    clock: FakeClock,
) -> None:
    limit = AdaptiveLimit(8)
    _one_request(limit, _answer(429, "10"))
    assert limit.limit == 4
    for _ in range(20):
        clock.now += 0.1
        _one_request(limit, OK)
    assert limit.limit == 4  # 2 s of clean answers: less than the 10 s the server asked for
    clock.now += 8.0
    for _ in range(4):
        _one_request(limit, OK)
    assert limit.limit == 5  # 10 s on: one step, then another 10 s before the next
    for _ in range(20):
        clock.now += 0.1
        _one_request(limit, OK)
    assert limit.limit == 5


def test_the_limit_holds_back_workers_beyond_it() -> None:
    limit = AdaptiveLimit(2)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        token = limit.acquire()
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.02)
        with lock:
            inside -= 1
        limit.release(token, OK)  # type: ignore[arg-type]

    threads = [threading.Thread(target=work) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2


def test_slots_go_to_waiters_in_the_order_they_asked() -> None:
    # A read's next page asks before the pages after it: it must not wait behind them
    # because their threads happened to wake first.
    limit = AdaptiveLimit(1)
    held = limit.acquire()
    order: list[int] = []

    def work(number: int) -> None:
        token = limit.acquire()
        order.append(number)
        limit.release(token, OK)  # type: ignore[arg-type]

    threads = []
    for number in range(6):
        thread = threading.Thread(target=work, args=(number,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while len(limit._waiting) <= number and time.monotonic() < deadline:
            time.sleep(0.001)
    limit.release(held, OK)  # type: ignore[arg-type]
    for thread in threads:
        thread.join(5)
    assert order == list(range(6))


def test_a_stop_lets_every_waiter_go_at_once() -> None:
    limit = AdaptiveLimit(1)
    limit.acquire()
    stop = threading.Event()
    passed: list[int] = []
    threads = [
        threading.Thread(target=lambda: passed.append(limit.acquire(stop))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    stop.set()
    for thread in threads:
        thread.join(5)
    assert len(passed) == 3
