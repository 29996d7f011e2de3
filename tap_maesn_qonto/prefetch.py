"""The first request of every partition to come, fetched before its turn.

The SDK syncs streams one after another and, inside a stream, partitions (one per
account) one after another. With hundreds of accounts that each changed a page
or none, nearly all the time would go to waiting for one first page after
another. The first request of a partition depends only on its state, so it is
known before the sync starts: this fetches those requests ahead, in sync order,
at most ``lookahead`` at a time, while earlier partitions are being emitted.
A partition whose turn comes takes its page (or the error it met) from here;
one whose page is not started yet just fetches it itself.

Every HTTP request of the run, from here or elsewhere, also passes the run's
in-flight limit (``RunContext.slots``), so ``max_concurrency`` stays the budget
across accounts and streams.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from tap_maesn_qonto.envelope import Page


class FirstRequests:
    """Runs planned fetches ahead, in plan order, and hands out their results."""

    def __init__(self, max_workers: int, lookahead: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="prefetch"
        )
        self._lookahead = lookahead
        self._lock = threading.Lock()
        self._planned: collections.OrderedDict[Hashable, Callable[[], Page]] = (
            collections.OrderedDict()
        )
        self._started: dict[Hashable, concurrent.futures.Future[Page]] = {}
        self._closed = False

    def plan(self, key: Hashable, fetch: Callable[[], Page]) -> None:
        """Queue ``fetch`` under ``key``; it starts when a lookahead slot is free."""
        with self._lock:
            self._planned[key] = fetch
        self._top_up()

    def take(self, key: Hashable) -> concurrent.futures.Future[Page] | None:
        """The started fetch of ``key`` (then forgotten), or None if it had not started."""
        with self._lock:
            future = self._started.pop(key, None)
            self._planned.pop(key, None)
        self._top_up()
        return future

    def close(self) -> None:
        """Cancel whatever has not run; do not wait for requests under way."""
        with self._lock:
            self._closed = True
            self._planned.clear()
            for future in self._started.values():
                future.cancel()
            self._started.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _top_up(self) -> None:
        with self._lock:
            while not self._closed and self._planned and len(self._started) < self._lookahead:
                key, fetch = self._planned.popitem(last=False)
                self._started[key] = self._pool.submit(fetch)
