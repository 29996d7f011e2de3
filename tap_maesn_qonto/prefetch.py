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

A request that may not be needed at all (a first run's probe of the whole list,
sent beside the window's first page instead of after it) is planned as ``spare``:
it runs only in a slot that nothing planned in sync order would use, so a wrong
guess costs a small request but never time.

Every HTTP request of the run, from here or elsewhere, also passes the run's
in-flight limit (``RunContext.slots``), so ``max_concurrency`` stays the budget
across accounts and streams.
"""

from __future__ import annotations

import collections
import concurrent.futures
import heapq
import itertools
import math
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable


#: A planned request's key: (stream name, account label, the request itself); its first
#: two parts name the partition.
Key = tuple[t.Hashable, ...]


def spare(order: tuple[int, ...]) -> tuple[float, ...]:
    """The place of a guess, a request that may not be needed: after everything in sync order.

    It is sent only into a slot nothing else would use, so a wrong guess costs no time.
    A guess is tried once: if it fails, its answer is None and a reader that wants it
    sends the request itself, with the usual retries.
    """
    return (math.inf, *order)


#: What a fetch answers (a page; this module never looks inside).
Answer = t.TypeVar("Answer")


class RequestsAhead(t.Generic[Answer]):
    """Runs planned fetches in sync order, ahead of their turn, and hands out their results."""

    def __init__(self, max_workers: int, lookahead: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="ahead"
        )
        self.lookahead = lookahead
        self._lock = threading.Lock()
        self._queue: list[tuple[tuple[float, ...], int, Key]] = []  # heap by sync order
        self._planned: dict[Key, Callable[[], Answer]] = {}
        self._started: dict[Key, concurrent.futures.Future[Answer | None]] = {}
        self._then: dict[Key, Callable[[Answer], None]] = {}  # what a planned answer leads to
        self._answers: dict[Key, Answer] = {}  # started and answered, not yet taken
        self._of_partition: dict[Key, set[Key]] = {}  # planned or started, by partition
        self._tie = itertools.count()
        self._closed = False
        self._lent = 0  # in-flight pages the current reader no longer uses (lend)
        self._ended: set[Key] = set()  # partitions discarded: nothing more is planned for them
        #: Requests answered from here, by the first part of their key (the stream).
        self.served: collections.Counter[t.Hashable] = collections.Counter()

    def plan(
        self,
        key: Key,
        fetch: Callable[[], Answer],
        order: tuple[float, ...],
        then: Callable[[Answer], None] | None = None,
    ) -> None:
        """Queue ``fetch`` under ``key``; it starts when it is next in ``order`` and a slot is free.

        ``then`` gets the answer when it is in (on a worker thread), to plan what follows
        from it. Planning a key again with a ``then`` (a ``spare`` guess found needed)
        moves it to ``order`` if it has not started, or follows its answer if it has.
        """
        answered = None
        with self._lock:
            if self._closed or key[:2] in self._ended:  # ended: its read is over
                return
            if key in self._started:
                answered = self._answers.get(key)
                if answered is None and then is not None:
                    self._then[key] = then  # called by the worker, before the answer is out
            elif key not in self._planned or then is not None:
                self._planned[key] = fetch
                if then is not None:
                    self._then[key] = then
                self._of_partition.setdefault(key[:2], set()).add(key)
                heapq.heappush(self._queue, (order, next(self._tie), key))
        if answered is not None and then is not None:
            then(answered)  # outside the lock: it plans more
        self._top_up()

    def holds(self, key: Key) -> bool:
        """Whether ``key`` was sent (or answered) and waits for its reader to take it."""
        with self._lock:
            return key in self._started

    def forget(self, key: Key) -> None:
        """Drop a guess that turned out not to be needed (sent already: wasted, not used)."""
        with self._lock:
            self._drop(key)
        self._top_up()

    def take(self, key: Key) -> concurrent.futures.Future[Answer | None] | None:
        """The started fetch of ``key`` (then forgotten), or None: the caller fetches it.

        The fetch's answer is None for a guess that failed: the caller fetches it too.
        """
        with self._lock:
            future = self._started.pop(key, None)
            if future is None:
                self._drop(key)  # not sent: the reader sends it, nothing follows
            else:
                self._answers.pop(key, None)
                self._of_partition.get(key[:2], set()).discard(key)
                self.served[key[0]] += 1  # its worker still calls its ``then``
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
            for key in list(self._of_partition.get(partition, ())):
                self._drop(key)
            self._of_partition.pop(partition, None)
        self._top_up()

    def _drop(self, key: Key) -> None:
        self._planned.pop(key, None)
        self._then.pop(key, None)
        self._answers.pop(key, None)
        self._of_partition.get(key[:2], set()).discard(key)
        future = self._started.pop(key, None)
        if future is not None:
            future.cancel()

    def close(self) -> None:
        """Cancel whatever has not run; do not wait for requests under way."""
        with self._lock:
            self._closed = True
            self._planned.clear()
            self._then.clear()
            self._answers.clear()
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
                order, _, key = heapq.heappop(self._queue)
                fetch = self._planned.pop(key, None)
                if fetch is not None:  # else taken, discarded or moved since it was planned
                    guess = order[0] == math.inf
                    self._started[key] = self._pool.submit(self._run, key, fetch, guess)

    def _run(self, key: Key, fetch: Callable[[], Answer], guess: bool) -> Answer | None:
        """Fetch, then plan what follows from the answer before any reader can have it.

        A reader that got the answer first would send those next requests itself, and
        the plans made after it would send them a second time.
        """
        try:
            page = fetch()
        except Exception:
            if not guess:
                raise
            with self._lock:
                self._then.pop(key, None)  # nothing follows from no answer
            return None  # a failed guess: whoever wants it sends it again
        with self._lock:
            then = self._then.pop(key, None)
            if key in self._started:
                self._answers[key] = page  # for a ``then`` planned from now on
        if then is not None:
            then(page)
        return page
