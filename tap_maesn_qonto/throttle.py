"""One gate every request passes through, shared by all streams and threads.

It holds a single "earliest next send" time. A 429's ``Retry-After`` pushes that
time out for every worker, not only the one that was refused (otherwise the other
workers keep hammering a server that asked for a pause), and an optional
requests-per-second cap spaces sends by ``1 / rate``. Both are the same mechanism,
so one small lock-protected clock serves both; pyrate-limiter covers the cap but
not server-driven pauses.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
import typing as t

from tap_maesn_qonto.transport import retry_after_seconds

if t.TYPE_CHECKING:
    import requests


class RequestThrottle:
    """Blocks callers until they may send their next request."""

    def __init__(self, max_requests_per_second: float | None = None) -> None:
        # float(): singer-sdk reads JSON numbers as Decimal, and 1.0 / Decimal fails.
        rate = float(max_requests_per_second or 0)
        self._interval = 1.0 / rate if rate else 0.0
        self._lock = threading.Lock()
        self._next_send = 0.0  # time.monotonic() value
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every sender for ``seconds`` from now (a server asked us to wait)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def wait(self, stop: threading.Event | None = None) -> float:
        """Block until a request may be sent (or ``stop`` is set); return the seconds waited."""
        with self._lock:
            now = time.monotonic()
            send_at = max(now, self._next_send, self._paused_until)
            self._next_send = send_at + self._interval
        delay = send_at - now
        if delay > 0:
            if stop is None:
                time.sleep(delay)
            else:
                stop.wait(delay)
        return delay


class AdaptiveLimit:
    """At most ``limit`` requests in flight across every worker, adapting to 429s.

    A 429 halves the limit for everyone at once (multiplicative decrease), once per
    congestion event: refusals of requests sent before the last decrease are the same
    event, so a burst of 8 refusals halves it once, not down to 1. It widens again by
    one after each run of ``limit`` answers without a 429 (additive increase), and
    slowly: no sooner than the last 429's ``Retry-After`` (at least a second) after its
    previous change, the pace at which the server said its budget frees. So the tap
    settles just below whatever Maesn and Qonto accept, instead of hammering or crawling.
    """

    MIN_HOLD_SECONDS = 1.0

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = maximum
        self._in_flight = 0
        self._since_change = 0
        self._epoch = 0  # decreases so far: which event a refusal belongs to
        self._hold = 0.0  # seconds between changes since the last 429 (0: none yet)
        self._changed_at = 0.0
        self._condition = threading.Condition()
        self._tickets = itertools.count()
        self._waiting: collections.deque[int] = collections.deque()  # tickets, in order

    def acquire(self, stop: threading.Event | None = None) -> int:
        """Wait for a free slot (or ``stop``); return the token to release it with.

        Slots go to waiters in the order they asked: requests leave in the order they
        were planned (a read's next page before the pages after it), never in the order
        the threads happen to wake.
        """
        with self._condition:
            ticket = next(self._tickets)
            self._waiting.append(ticket)
            try:
                while (self._waiting[0] != ticket or self._in_flight >= self.limit) and not (
                    stop is not None and stop.is_set()
                ):
                    self._condition.wait(0.1)
            finally:
                self._waiting.remove(ticket)
            self._in_flight += 1
            self._condition.notify_all()  # the next in line may fit too
            return self._epoch

    def release(self, token: int, response: requests.Response | None) -> None:
        """Give the slot back, with the answer it got (None: none came)."""
        throttled = response is not None and response.status_code == 429
        hold_seconds = retry_after_seconds(response) if throttled else None
        with self._condition:
            self._in_flight -= 1
            now = time.monotonic()
            if throttled:
                if token == self._epoch:  # sent since the last decrease: a new event
                    self.limit = max(1, self.limit // 2)
                    self._epoch += 1
                    self._since_change = 0
                    self._changed_at = now
                    self._hold = max(self.MIN_HOLD_SECONDS, hold_seconds or 0.0)
            else:
                self._since_change += 1
                if (
                    self._since_change >= self.limit
                    and self.limit < self.maximum
                    and now - self._changed_at >= self._hold
                ):
                    self.limit += 1
                    self._since_change = 0
                    self._changed_at = now
            self._condition.notify_all()
