"""The request gate: Retry-After holds every worker, and the rate cap spaces sends.

A fake clock makes these exact: no test here waits in real time.
"""

from __future__ import annotations

import threading
import time

import pytest

from tap_maesn_qonto import throttle as throttle_module
from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.retries import retry_after_seconds
from tap_maesn_qonto.throttle import AdaptiveLimit, RequestThrottle
from tests.helpers import sync, tap_config


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


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(_Response(header)) == seconds  # type: ignore[arg-type]


def test_a_429_halves_the_in_flight_limit_for_everyone_and_successes_widen_it_again() -> None:
    limit = AdaptiveLimit(8)
    for _ in range(3):
        limit.acquire()
        limit.release(throttled=True)
    assert limit.limit == 1  # 8 -> 4 -> 2 -> 1
    widened = []
    for _ in range(40):
        limit.acquire()
        limit.release(throttled=False)
        widened.append(limit.limit)
    # +1 after each run of `limit` answers without a 429: 1, 2, 3 ... up to the maximum.
    assert widened[0] == 2
    assert widened[-1] == 8
    assert widened == sorted(widened)


def test_the_limit_holds_back_workers_beyond_it() -> None:
    limit = AdaptiveLimit(2)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        limit.acquire()
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.02)
        with lock:
            inside -= 1
        limit.release(throttled=False)

    threads = [threading.Thread(target=work) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2


@pytest.mark.parametrize("max_concurrency", [1, 2, 4])
def test_never_more_requests_in_flight_than_max_concurrency(max_concurrency: int) -> None:
    # The pager keeps one page more than max_concurrency coming (one is being decoded
    # while the others wait on the network); the in-flight limit still caps the requests.
    with Emulator(counts={"invoices": 600, "bills": 300, "bookingProposals": 0}) as emulator:
        emulator.configure(latency_ms=20)
        config = tap_config(emulator, page_size=20, max_concurrency=max_concurrency)
        del config["start_date"]  # whole-list reads: the concurrent path
        sync(config)
        most = emulator.stats()["most_in_flight"]
    assert most == max_concurrency
