"""What every stream of one run shares: the session, the throttle, the stop signal.

The tap builds one :class:`RunContext` and hands it to each stream it creates, so
streams never reach into the tap object. SIGINT and SIGTERM set :attr:`stop`:
worker threads see it at their next wait, and the main thread gets
:class:`SyncInterruptedError` at once (raised from the signal handler), so a
stopped run ends within moments with a state that is safe to resume from.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import typing as t
from dataclasses import dataclass, field
from functools import cached_property

from tap_maesn_qonto.accounts import Account
from tap_maesn_qonto.errors import ExitCode, SyncInterruptedError
from tap_maesn_qonto.prefetch import RequestsAhead
from tap_maesn_qonto.progress import Progress
from tap_maesn_qonto.throttle import AdaptiveLimit, RequestThrottle
from tap_maesn_qonto.transport import MaesnSession, build_session

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

    import requests

    from tap_maesn_qonto.envelope import Page

_EXIT_CODES = {
    signal.SIGINT: ExitCode.INTERRUPTED_SIGINT,
    signal.SIGTERM: ExitCode.INTERRUPTED_SIGTERM,
}


@dataclass
class RunContext:
    """Shared, thread-safe state of one tap run."""

    api_url: str
    max_concurrency: int
    max_requests_per_second: float | None = None
    #: The accounts this run reads, by label (this shard's; none when discovering).
    accounts: dict[str, Account] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    #: Every key of the run (tenant and accounts): masked wherever a text may quote one.
    secrets: tuple[str, ...] = ()
    #: Set once any response (of any status) came back: api_url answers.
    reached_api: bool = False
    #: Set once a data request was answered 2xx: the tenant key is good (keycheck.py).
    api_key_accepted: bool = False
    interrupted_by: signal.Signals | None = None
    #: Set once the sync begins: from then on a signal stops it with a resumable state.
    syncing: bool = False
    #: Accounts that failed (label -> the one line that says why); skipped from then on.
    failed: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    progress: Progress = field(default_factory=Progress)

    def fail_account(self, label: str, reason: str) -> None:
        """Record that an account failed; its other streams are skipped."""
        self.failed.setdefault(label, reason)

    @cached_property
    def slots(self) -> AdaptiveLimit:
        """Requests in flight across all streams and accounts: at most ``max_concurrency``."""
        return AdaptiveLimit(self.max_concurrency)

    @cached_property
    def ahead(self) -> RequestsAhead[Page]:
        """Requests fetched ahead of their partition's turn (see prefetch.py)."""
        return RequestsAhead(self.max_concurrency, lookahead=2 * self.max_concurrency)

    @cached_property
    def throttle(self) -> RequestThrottle:
        return RequestThrottle(self.max_requests_per_second)

    @cached_property
    def session(self) -> MaesnSession:
        # A few connections beyond the workers, for the main thread's own requests.
        return build_session(self.api_url, self.max_concurrency + 2)

    def send(self, send: Callable[[], requests.Response]) -> requests.Response:
        """Send one request within the run's limits, every request of the run alike.

        The in-flight slot first, then the throttle: a pause (a 429's Retry-After) that
        began while the request waited for a slot must still hold it back. The slot is
        given back with the answer, which tells the adaptive limit about a 429.
        """
        token = self.slots.acquire(self.stop)
        response = None
        try:
            self.throttle.wait(self.stop)
            self.raise_if_stopped()
            self.progress.sent()
            response = send()
            return response
        finally:
            self.slots.release(token, response)

    def raise_if_stopped(self) -> None:
        """Raise :class:`SyncInterruptedError` if a signal asked the run to stop."""
        if self.stop.is_set():
            raise self.interruption()

    def interruption(self) -> SyncInterruptedError:
        signum = self.interrupted_by or signal.SIGTERM
        return SyncInterruptedError(signum.name, _EXIT_CODES.get(signum, ExitCode.FAILED))

    def install_signal_handlers(self) -> None:
        """Stop on SIGINT/SIGTERM instead of the SDK's "exit 0" (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _EXIT_CODES:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if self.stop.is_set():
            return  # already unwinding; a second signal must not interrupt the cleanup
        self.interrupted_by = signal.Signals(signum)
        self.stop.set()
        if not self.syncing:  # nothing read, nothing to save: gone at once
            os._exit(_EXIT_CODES[self.interrupted_by])
        raise self.interruption()
