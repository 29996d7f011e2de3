"""One gate every request passes through, shared by all streams and threads.

It holds a single "earliest next send" time. A 429's ``Retry-After`` pushes that
time out for every worker, not only the one that was refused (otherwise the other
workers keep hammering a server that asked for a pause), and an optional
requests-per-second cap spaces sends by ``1 / rate``. Both are the same mechanism,
so one small lock-protected clock serves both; pyrate-limiter covers the cap but
not server-driven pauses.
"""

from __future__ import annotations

import threading
import time


class RequestThrottle:
    """Blocks callers until they may send their next request."""

    def __init__(self, max_requests_per_second: float | None = None) -> None:
        self._interval = 1.0 / max_requests_per_second if max_requests_per_second else 0.0
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

    A 429 halves the limit for everyone at once (multiplicative decrease); then each
    run of ``limit`` answers without one widens it by one again, up to the
    configured ``max_concurrency`` (additive increase): the tap settles just below
    whatever rate Maesn and Qonto accept, instead of hammering or crawling.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = maximum
        self._in_flight = 0
        self._since_decrease = 0
        self._condition = threading.Condition()

    def acquire(self, stop: threading.Event | None = None) -> None:
        """Wait for a free slot (or ``stop``)."""
        with self._condition:
            while self._in_flight >= self.limit and not (stop is not None and stop.is_set()):
                self._condition.wait(0.1)
            self._in_flight += 1

    def release(self, *, throttled: bool) -> None:
        """Give the slot back; ``throttled`` when the answer was a 429."""
        with self._condition:
            self._in_flight -= 1
            if throttled:
                self.limit = max(1, self.limit // 2)
                self._since_decrease = 0
            else:
                self._since_decrease += 1
                if self._since_decrease >= self.limit and self.limit < self.maximum:
                    self.limit += 1
                    self._since_decrease = 0
            self._condition.notify_all()
