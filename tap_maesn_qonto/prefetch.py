"""Requests fetched before their turn, so streams and accounts overlap.

The SDK syncs streams one after another and, inside a stream, partitions (one per
account) one after another. Read that way, every partition starts with a wait for
its first page, and a stream's last round of pages leaves slots idle that the next
stream could use. But much of what a partition will request is known before its
turn: its first request depends only on its state, and once that answer is in,
the next ones often follow from it (tap client.py, ``plan_first_request``). Those
requests are planned here, with the partition's place in the sync order, and run
in that order, at most ``lookahead`` of them started and not yet taken (memory
stays flat however many accounts or pages there are).

When its turn comes, a reader asks for each request it sends whether it was
fetched ahead (``take``), by the request itself: a guess that turns out wrong is
never used, only wasted, so what a reader reads is exactly what it would have
read without this module. What a partition left untaken is discarded when its
read ends.

Every HTTP request of the run, from here or elsewhere, also passes the run's
in-flight limit (``RunContext.slots``), so ``max_concurrency`` stays the budget
across accounts and streams.
"""

from __future__ import annotations

import collections
import concurrent.futures
import heapq
import itertools
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_maesn_qonto.envelope import Page

#: A planned request's key: (stream name, account label, the request itself); its first
#: two parts name the partition.
Key = tuple[t.Hashable, ...]


class RequestsAhead:
    """Runs planned fetches in sync order, ahead of their turn, and hands out their results."""

    def __init__(self, max_workers: int, lookahead: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="ahead"
        )
        self.lookahead = lookahead
        self._lock = threading.Lock()
        self._queue: list[tuple[tuple[int, ...], int, Key]] = []  # heap by sync order
        self._planned: dict[Key, Callable[[], Page]] = {}
        self._started: dict[Key, concurrent.futures.Future[Page]] = {}
        self._of_partition: dict[Key, set[Key]] = {}  # planned or started, by partition
        self._tie = itertools.count()
        self._closed = False
        self._lent = 0  # in-flight pages the current reader no longer uses (lend)
        self._ended: set[Key] = set()  # partitions discarded: nothing more is planned for them
        #: Requests answered from here, by the first part of their key (the stream).
        self.served: collections.Counter[t.Hashable] = collections.Counter()

    def plan(self, key: Key, fetch: Callable[[], Page], order: tuple[int, ...]) -> None:
        """Queue ``fetch`` under ``key``; it starts when it is next in ``order`` and a slot is free."""
        with self._lock:
            if self._closed or key in self._planned or key in self._started:
                return
            if key[:2] in self._ended:  # a fetch that finished after its partition's read
                return
            self._planned[key] = fetch
            self._of_partition.setdefault(key[:2], set()).add(key)
            heapq.heappush(self._queue, (order, next(self._tie), key))
        self._top_up()

    def take(self, key: Key) -> concurrent.futures.Future[Page] | None:
        """The started fetch of ``key`` (then forgotten), or None: the caller fetches it."""
        with self._lock:
            future = self._started.pop(key, None)
            self._planned.pop(key, None)
            self._of_partition.get(key[:2], set()).discard(key)
            if future is not None:
                self.served[key[0]] += 1
        self._top_up()
        return future

    def lend(self, pages: int) -> None:
        """The reader at its last pages leaves ``pages`` unused: fetch as many more ahead.

        Without it, the network idles through every stream's last round while the next
        stream's opening pages wait within the lookahead. Memory stays bounded: the
        lookahead plus what the reader itself may hold.
        """
        with self._lock:
            self._lent = pages
        self._top_up()

    def discard(self, partition: Key) -> None:
        """Forget every request of ``partition`` (its read ended), and refuse any planned later."""
        with self._lock:
            self._ended.add(partition)
            self._lent = 0  # the loan was the ended reader's
            for key in self._of_partition.pop(partition, set()):
                self._planned.pop(key, None)
                future = self._started.pop(key, None)
                if future is not None:
                    future.cancel()
        self._top_up()

    def close(self) -> None:
        """Cancel whatever has not run; do not wait for requests under way."""
        with self._lock:
            self._closed = True
            self._planned.clear()
            self._queue.clear()
            for future in self._started.values():
                future.cancel()
            self._started.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _top_up(self) -> None:
        with self._lock:
            while (
                not self._closed
                and self._queue
                and len(self._started) < self.lookahead + self._lent
            ):
                _, _, key = heapq.heappop(self._queue)
                fetch = self._planned.pop(key, None)
                if fetch is not None:  # else taken or discarded since it was planned
                    self._started[key] = self._pool.submit(fetch)
