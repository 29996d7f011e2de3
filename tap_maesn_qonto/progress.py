"""What an operator sees of a run: a progress line every few seconds, and the totals.

A run over hundreds of accounts reads one (stream, account) partition after another.
Per-partition lines would be thousands; instead one line every ``every_seconds`` says
how far the run is (reads done of all, records, requests, retries, time, and an
estimate of what is left), each failed read gets one line of its own, and the run ends
with one summary line. A run of one account keeps its per-stream summaries (read.py).

Counters are shared by every thread (requests and retries happen on page, detail and
fetch-ahead threads), so they are kept under one lock.
"""

from __future__ import annotations

import collections
import threading
import time
import typing as t

if t.TYPE_CHECKING:
    import logging

#: Seconds between two progress lines.
PROGRESS_EVERY_SECONDS = 10.0


class Progress:
    """Counters of one run, and its progress lines."""

    def __init__(self, every_seconds: float | None = None) -> None:
        self.every_seconds = PROGRESS_EVERY_SECONDS if every_seconds is None else every_seconds
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._last_line = self.started
        self.requests = 0
        self.records = 0
        self.pages = 0
        self.reads_total = 0
        self.reads_done = 0
        self._retries: collections.Counter[tuple[str, str]] = collections.Counter()

    # --- from any thread --------------------------------------------------------------

    def sent(self) -> None:
        """One HTTP request went out (any thread)."""
        with self._lock:
            self.requests += 1

    def retried(self, stream: str, label: str) -> None:
        """A request of ``stream`` for account ``label`` is sent again (any thread)."""
        with self._lock:
            self._retries[stream, label] += 1

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def retries(self) -> int:
        with self._lock:
            return sum(self._retries.values())

    def retries_of(self, stream: str, label: str) -> int:
        with self._lock:
            return self._retries[stream, label]

    # --- from the main thread ---------------------------------------------------------

    def planned(self, reads: int) -> None:
        """The run will read ``reads`` (stream, account) partitions."""
        self.reads_total = reads

    def took(self, records: int) -> None:
        """A page of ``records`` new records was taken by a read."""
        self.pages += 1
        self.records += records

    def read_done(self) -> None:
        self.reads_done += 1

    def due(self) -> bool:
        """Whether a progress line is due (then the caller logs :meth:`line`)."""
        now = time.monotonic()
        if now - self._last_line < self.every_seconds:
            return False
        self._last_line = now
        return True

    def line(self, where: str) -> str:
        """How far the run is, ``where`` it reads now, and an estimate of what is left."""
        elapsed = time.monotonic() - self.started
        done, total = self.reads_done, self.reads_total
        left = ""
        if 0 < done < total:
            left = f", about {elapsed * (total - done) / done:.0f} s left"
        return (
            f"progress: {done} of {total} reads done, now {where}; {self.records} records, "
            f"{self.requests} requests, {self.retries} retries, {elapsed:.0f} s{left}"
        )

    def log_if_due(self, logger: logging.Logger | logging.LoggerAdapter, where: str) -> None:
        if self.due():
            logger.info("%s", self.line(where))
