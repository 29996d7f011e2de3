"""One partition's read: one (stream, account), with everything it knows in its own object.

A :class:`PartitionRead` is made for each partition when its turn comes (client.py)
and owns that read's state: the reader (a window over ``updatedDate``, or the whole
list), the bookmark it started from, what it proved, and how it ended. It is handed
values and three small collaborators (a page source, the record keys, a report) and
never calls back into the stream: records come up, nothing else.

Its bookmark is the partition's at every moment (:attr:`PartitionRead.resumable`): a
window read's newest emitted value, a whole-list read's previous bookmark until the
list is proven read, and never later than the server's clock (the newest ``Date``
header it answered with, plus :data:`CLOCK_TOLERANCE`). So a STATE written at any time,
by the SDK or on a stop, is safe to resume from, and what one account's read does
never touches another's.

A read that fails ends in :attr:`Outcome.FAILED` with its reason, and the run goes on
with the other partitions (an error that is the whole run's, such as a wrong
``api_url`` or a stop, passes through).
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import time
import typing as t

from tap_maesn_qonto.errors import (
    ClientError,
    EndpointMissingError,
    MaesnAPIError,
    SyncInterruptedError,
    WrongApiUrlError,
)
from tap_maesn_qonto.fullread import FullRead, whole_list_request
from tap_maesn_qonto.plan import first_request, whole_list_wins, worth_probing
from tap_maesn_qonto.timestamps import format_timestamp, minus, parse_timestamp, utc_now
from tap_maesn_qonto.window import WholeListInsteadError, WindowNotHonouredError, WindowRead

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator

    from tap_maesn_qonto.details import Details
    from tap_maesn_qonto.envelope import Page
    from tap_maesn_qonto.pages import Fetch, PageRequest, RecordKeys
    from tap_maesn_qonto.plan import ReadPlan
    from tap_maesn_qonto.progress import Progress

#: How far ahead of the server's clock a bookmark may be (clocks of Maesn and Qonto differ).
CLOCK_TOLERANCE = dt.timedelta(minutes=1)


class Outcome(enum.Enum):
    """How a partition's read ended."""

    READING = "reading"
    #: Every record read; a whole-list read proven by the server's totals.
    COMPLETE = "complete"
    #: Everything seen was emitted, but the read could not be proven whole (exit 3).
    INCOMPLETE = "incomplete"
    #: An error ended it (exit 1); :attr:`PartitionRead.reason` says which.
    FAILED = "failed"
    #: Never read: its account had already failed in this run.
    SKIPPED = "skipped"


class ReadReport:
    """What one read tells the log: Maesn's warnings and its own (each once), and counts."""

    def __init__(
        self, logger: logging.Logger | logging.LoggerAdapter, prefix: str, progress: Progress
    ) -> None:
        self.logger = logger
        self.prefix = prefix
        self.progress = progress
        self.pages = 0
        self.records = 0
        #: The server's clock at its newest answer (its ``Date`` header).
        self.server_time: dt.datetime | None = None
        self._said: set[str] = set()

    def page(self, page: Page) -> None:
        self.pages += 1
        if page.server_time is not None and (
            self.server_time is None or page.server_time > self.server_time
        ):
            self.server_time = page.server_time
        for warning in page.warnings:
            self.warn(f"Maesn says: {warning}")

    def warn(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            self.logger.warning("%s: %s", self.prefix, message)

    def took(self, records: int, where: str) -> None:
        """A batch of ``records`` was read; ``where`` the read stands, for a progress line."""
        self.records += records
        self.progress.took(records)
        self.progress.log_if_due(self.logger, f"{self.prefix}: {where}")


class PartitionRead:
    """One (stream, account) read. Iterate :meth:`batches`, then read the outcome."""

    def __init__(
        self,
        *,
        label: str,
        plan: ReadPlan,
        fetch: Fetch,
        keys: RecordKeys,
        report: ReadReport,
        page_size: int,
        max_concurrency: int,
        thread_name: str,
        details: Details | None = None,
        lend: Callable[[int], None] | None = None,
        fetched_ahead: Callable[[PageRequest], bool] | None = None,
        started: float | None = None,
    ) -> None:
        self.label = label
        self.plan = plan
        self.fetch = fetch
        self.keys = keys
        self.report = report
        self.page_size = page_size
        self.max_concurrency = max_concurrency
        self.thread_name = thread_name
        self.details = details
        self.lend = lend
        self.fetched_ahead = fetched_ahead
        # outcome
        self.outcome = Outcome.READING
        self.reason: str | None = None
        self.error: Exception | None = None
        #: Whether every record of the list was read and proven (a reconcile may retire
        #: what it did not see).
        self.proven_whole = False
        #: Records emitted whose lines are unknown (null in the list, details never read).
        self.lines_unknown = 0
        self.how = "nothing read"
        self._window: WindowRead | None = None
        self._full: FullRead | None = None
        #: When its first request left (it may have been fetched ahead of its turn).
        self._started = started if started is not None else time.monotonic()
        self._final: str | None = None
        self._written_max: str | None = None  # the newest updatedDate written (window)
        self._ahead_of_clock: list[str] = []
        self._cap_clock: dt.datetime | None = None
        self._cap = ""

    # --- the read -----------------------------------------------------------------------

    def batches(self) -> Iterator[list[dict]]:
        """The partition's new records, a list per page; the outcome is set when it ends."""
        try:
            for listed in self._read():
                batch = listed
                if self.details is not None and listed:
                    batch = self.details.complete(listed)
                elif listed:
                    self.lines_unknown += sum(1 for r in listed if r.get("lineItems") is None)
                self._note_clock(batch)
                self.report.took(len(batch), self._where())
                yield batch
        except (WrongApiUrlError, SyncInterruptedError):
            raise  # the whole run's
        except EndpointMissingError as exc:
            reason = self._missing(exc)
            self._fail(EndpointMissingError(reason), reason)
        except (MaesnAPIError, ClientError) as exc:
            self._fail(exc, str(exc))
        else:
            self._finish()
        self._release()

    def _read(self) -> Iterator[list[dict]]:
        emitted: set[str] = set()
        probe: Page | None = None
        if self.plan.start is not None:
            first = self.fetch(first_request(self.plan, self.page_size))
            probe = self._probe_if_faster(first)
            if probe is None:
                self._window = WindowRead(
                    fetch=self.fetch,
                    keys=self.keys,
                    report=self.report,
                    start=self.plan.start,
                    page_size=self.page_size,
                    first_page=first,
                )
                self.how = f"incremental from {format_timestamp(self.plan.start)}"
                try:
                    yield from self._window.batches()
                except WholeListInsteadError as exc:
                    self.report.logger.info(
                        "%s: %s; reading the whole list instead, where paging is proven.",
                        self.report.prefix,
                        exc,
                    )
                except (WindowNotHonouredError, ClientError) as exc:
                    if isinstance(exc, ClientError) and exc.status != 400:
                        raise
                    self.report.warn(
                        f"the target system does not read incrementally as asked ({exc}); "
                        "reading the whole list this run and filtering it here instead."
                    )
                else:
                    return
                emitted = self._window.emitted_ids
                # Until the whole list is proven read, the bookmark stays where it began.
                self._written_max = None
        since = self.plan.since or (self.plan.start if self.plan.incremental else None)
        self._full = FullRead(
            fetch=self.fetch,
            keys=self.keys,
            page_size=self.page_size,
            max_concurrency=self.max_concurrency,
            thread_name=self.thread_name,
            report=self.report,
            since_text=format_timestamp(since) if since else None,
            emitted=emitted,
            lend=self.lend,
            fetched_ahead=self.fetched_ahead,
            first_probe=probe,
        )
        filtered = f", updated from {format_timestamp(since)}" if since else ""
        self.how = f"whole list{filtered}"
        yield from self._full.batches()

    def _probe_if_faster(self, window_first: Page) -> Page | None:
        """The whole list's first page, if reading it whole beats the window (plan.py)."""
        if not worth_probing(window_first, self.max_concurrency):
            return None
        try:
            probe = self.fetch(whole_list_request(self.page_size))
        except ClientError:
            return None  # the list cannot be read that way: the window it is
        if not whole_list_wins(window_first, probe, self.page_size, self.max_concurrency):
            return None
        return probe

    # --- how it ended -------------------------------------------------------------------

    def _finish(self) -> None:
        full = self._full
        if full is not None:
            self.how += f", {full.passes} pass{'es' if full.passes > 1 else ''}"
        if full is not None and not full.complete:
            self.outcome = Outcome.INCOMPLETE
            self.reason = "the whole list could not be proven read (see the warnings above)"
            self._final = self._capped(self.plan.previous) if self.plan.incremental else None
            return
        self.outcome = Outcome.COMPLETE
        self.proven_whole = full is not None
        self._final = self._computed_bookmark()
        if self._ahead_of_clock:
            shown = ", ".join(self._ahead_of_clock[:5])
            more = len(self._ahead_of_clock) - 5
            self.report.warn(
                f"{len(self._ahead_of_clock)} record(s) are stamped ahead of the server's clock "
                f"({shown}{f' and {more} more' if more > 0 else ''}): the bookmark is "
                "held at the server's clock, so edits after it are still read next run."
            )

    def _release(self) -> None:
        """Drop what only the reading needed (pages, ids): a run keeps every read it made."""
        self.passes = self._full.passes if self._full is not None else 0
        self._window = self._full = None

    def _fail(self, error: Exception, reason: str) -> None:
        self.outcome = Outcome.FAILED
        self.error = error
        self.reason = reason

    def _missing(self, exc: EndpointMissingError) -> str:
        if self.plan.read_before:
            return (
                f"{exc} This account was read from this endpoint before, so Maesn or Qonto "
                "failed: nothing was read or retired; run again later."
            )
        return (
            f"{exc} The endpoint is not available for this account: nothing was read. If "
            "its target system does not serve this stream, deselect the stream."
        )

    def _where(self) -> str:
        if self._full is None and self._window is not None:
            return f"updated up to {self._written_max or format_timestamp(self._window.start)}"
        return f"{self.report.records} records of the whole list"

    def skip(self, reason: str) -> None:
        """Not read at all (its account failed earlier in this run)."""
        self.outcome = Outcome.SKIPPED
        self.reason = reason

    def summary(self, retries: int) -> str:
        """The read in one line, for the log."""
        ended = "" if self.outcome is Outcome.COMPLETE else f"; {self.outcome.value}"
        return (
            f"{self.report.prefix}: sync summary: {self.report.records} records emitted, "
            f"{self.report.pages} pages, {retries} retries, {self.seconds:.2f} s "
            f"({self.how}){ended}"
        )

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._started

    # --- its bookmark -------------------------------------------------------------------

    @property
    def resumable(self) -> str | None:
        """The bookmark a STATE written now may carry for this partition."""
        if not self.plan.incremental:
            return None
        if self._final is not None:
            return self._final
        return self._capped(
            max(filter(None, (self.plan.previous, self._written_max)), default=None)
        )

    def written(self, record: dict) -> bool:
        """``record`` (as emitted, timestamps normalized) was written to the target; whether
        that moved :attr:`resumable`.

        Only a window read's records move the bookmark before the read ends: each is
        the newest of its query so far, every older record of it written before.
        """
        if self._full is not None or self._window is None:
            return False
        key = record.get("updatedDate")
        if isinstance(key, str) and (self._written_max is None or key > self._written_max):
            self._written_max = key
            return True
        return False

    def _computed_bookmark(self) -> str | None:
        """The bookmark a complete read leaves."""
        if not self.plan.incremental:
            return None
        if self._full is None:
            window = self._window.bookmark if self._window is not None else None
            return self._capped(max(filter(None, (self.plan.previous, window)), default=None))
        if self._full.max_key is None:
            return self.plan.previous
        # Any record updated while the list was read carries a newer updatedDate than
        # (newest seen - time the read took): the server's clock, only its rate assumed.
        elapsed = dt.timedelta(seconds=math.ceil(self.seconds))
        safe = format_timestamp(minus(parse_timestamp(self._full.max_key), elapsed))
        return self._capped(max(filter(None, (self.plan.previous, safe)), default=None))

    def _clock_cap(self) -> str:
        """The latest bookmark the server's clock allows (cached per clock reading)."""
        clock = self.report.server_time or utc_now()
        if clock != self._cap_clock:
            self._cap_clock, self._cap = clock, format_timestamp(clock + CLOCK_TOLERANCE)
        return self._cap

    def _capped(self, value: str | None) -> str | None:
        if value is None:
            return None
        return min(value, self._clock_cap())

    def _note_clock(self, batch: list[dict]) -> None:
        """Name the records stamped ahead of the server's clock (read only when there are)."""
        reader = self._full or self._window
        newest = reader.max_key if reader is not None else None
        cap = self._clock_cap()
        if newest is None or newest <= cap:
            return  # the reader's newest so far is not ahead: no record of the batch is
        updated, identify = self.keys.updated, self.keys.identify
        for record in batch:
            key = updated(record)
            if key is not None and key > cap:
                self._ahead_of_clock.append(identify(record))
