"""One stream's table in one run: its partitions' reads, their bookmarks and line rows.

The stream (client.py) opens a :class:`TableSync` before its first partition and hands
it each :class:`~read.PartitionRead` as its turn comes. The sync keeps what the table
knows in this run, and writes it where it belongs:

* how each partition is read, decided once, before any is (plan.py), and its read,
  opened with values and small collaborators (:class:`Readers`);
* each partition's bookmark, into that partition's own state, as its read says
  (read.py), never past a parent whose line rows still wait (lineitems.py);
* the line rows, written at the moments a STATE may follow;
* at the end, what the reconcile proved gone (reconcile.py) and the version each
  partition's rows now carry.

It is given values (the partitions' live state dicts, the run, a logger) and never
calls back into the stream; the stream sends the ``ACTIVATE_VERSION`` messages that
:meth:`TableSync.finish` allows.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from dataclasses import dataclass, field

from tap_maesn_qonto.details import AutoVerdict, Details
from tap_maesn_qonto.errors import AuthError
from tap_maesn_qonto.fetch import PageSource
from tap_maesn_qonto.lineitems import ROWS_WAITING_AT_MOST
from tap_maesn_qonto.plan import plan_read
from tap_maesn_qonto.read import Outcome, PartitionRead, ReadReport
from tap_maesn_qonto.sdk_compat import write_bookmark

if t.TYPE_CHECKING:
    from tap_maesn_qonto.fetch import Fetcher
    from tap_maesn_qonto.lineitems import LineBuffer
    from tap_maesn_qonto.pages import RecordKeys
    from tap_maesn_qonto.plan import Planner, ReadPlan
    from tap_maesn_qonto.reconcile import TableRun
    from tap_maesn_qonto.runtime import RunContext


@dataclass(frozen=True)
class Readers:
    """What every partition read of one stream is given (values and small collaborators)."""

    fetcher: Fetcher
    planner: Planner
    keys: RecordKeys
    page_size: int
    #: ``fetch_details``: auto, always or never.
    details: str
    #: Whether the stream's own records keep ``lineItems`` (selected, not deselected).
    records_keep_lines: bool


@dataclass
class TableSync:
    """One stream's table in one run (module docstring)."""

    name: str
    run: RunContext
    table: TableRun
    readers: Readers
    lines: LineBuffer
    #: The key bookmarks are written under (``updatedDate``); None: FULL_TABLE.
    replication_key: str | None
    #: How far before its bookmark a partition's next window starts (``lookback_window``).
    lookback: dt.timedelta
    start_date: dt.datetime | None
    logger: logging.Logger | logging.LoggerAdapter
    #: Parents between the moments the SDK may write a STATE (``STATE_MSG_FREQUENCY``).
    state_every: int
    #: What ``fetch_details: auto`` learnt of each target system's lists.
    verdicts: dict[str, AutoVerdict] = field(default_factory=dict)

    @property
    def reads(self) -> dict[str, PartitionRead]:
        return self.table.reads

    def plan(self, label: str) -> ReadPlan:
        """How ``label``'s partition is read this run: decided once (plan.py), before prefetch."""
        plans = self.table.plans
        if label not in plans:
            plans[label] = plan_read(
                self.table.states[label],
                replication_key=self.replication_key,
                reconciling=self.table.reconciling,
                lookback=self.lookback,
                start_date=self.start_date,
            )
        return plans[label]

    def verdict(self, system: str) -> AutoVerdict:
        """What auto knows of ``system``'s lists: learnt by earlier runs, shared by its accounts."""
        if system not in self.verdicts:
            accounts = self.run.accounts
            of_system = [
                state
                for label, state in self.table.states.items()
                if label in accounts and accounts[label].target_system == system
            ]
            self.verdicts[system] = AutoVerdict.learnt(of_system)
        return self.verdicts[system]

    def plan_ahead(self, label: str, order: int) -> None:
        """Have the partition's first requests fetched ahead of its turn (prefetch.py)."""
        if label not in self.run.failed:
            self.readers.planner.plan(label, self.plan(label), order)

    def open(self, label: str) -> PartitionRead:
        """The read of ``label``'s partition, now its turn has come."""
        readers, run = self.readers, self.run
        prefix = f"{self.name} of account {label}" if len(run.accounts) > 1 else self.name
        source = PageSource(readers.fetcher, run.ahead, label)
        read = PartitionRead(
            label=label,
            plan=self.plan(label),
            fetch=source,
            keys=readers.keys,
            report=ReadReport(self.logger, prefix, run.progress),
            page_size=readers.page_size,
            max_concurrency=run.max_concurrency,
            thread_name=f"{self.name}-page",
            details=self._details(label),
            lend=run.ahead.lend,
            fetched_ahead=source.fetched_ahead,
            started=readers.planner.first_sent(label),
        )
        return self.begin(read)

    def begin(self, read: PartitionRead) -> PartitionRead:
        """``read`` is the partition's read of this run from now on."""
        self.reads[read.label] = read
        if not self.lines.started:
            self.write_lines()  # the SCHEMA of line streams written directly
        return read

    def _details(self, label: str) -> Details | None:
        """How this partition's records get their line items from details, if they do."""
        mode, readers = self.readers.details, self.readers
        if mode == "never" or (
            mode == "auto" and not (self.lines.streams or readers.records_keep_lines)
        ):
            return None
        return Details(
            mode=mode,
            fetch_one=lambda record: readers.fetcher.detail(label, readers.keys.identify(record)),
            max_concurrency=self.run.max_concurrency,
            thread_name=f"{self.name}-detail",
            verdict=self.verdict(self.run.accounts[label].target_system),
        )

    def end(self, read: PartitionRead, *, last: bool) -> None:
        """Store the read's bookmark, say how it ended, write line rows that should not wait."""
        self.store_bookmark(read)
        if read.details is not None:
            read.details.verdict.note(self.table.states[read.label])
        self.run.progress.read_done()
        one_account = len(self.run.accounts) == 1  # many: the progress lines instead
        if read.outcome is Outcome.FAILED:
            if not one_account:  # one line per failed read; one account: the run's last line
                self.logger.error("%s: account %s failed: %s", self.name, read.label, read.reason)
            if isinstance(read.error, AuthError):  # its other streams would fail alike
                self.run.fail_account(read.label, str(read.reason))
        level = logging.INFO if one_account else logging.DEBUG
        self.logger.log(
            level, "%s", read.summary(self.run.progress.retries_of(self.name, read.label))
        )
        if self.lines.waiting and (last or self.lines.waiting >= ROWS_WAITING_AT_MOST):
            self.write_lines()

    def store_bookmark(self, read: PartitionRead) -> None:
        """The partition's bookmark as its read leaves it, held back while its rows wait."""
        if not read.plan.incremental:
            return
        value = self.lines.floor(read.label, read.resumable)
        write_bookmark(self.table.states[read.label], str(self.replication_key), value)

    def written(self, label: str, record: dict) -> None:
        """After the SDK wrote ``record``: its partition's bookmark, if the read moved it."""
        read = self.reads[label]
        if read.written(record):
            self.store_bookmark(read)

    def store_all(self) -> None:
        """Before a STATE on a stop: every partition read so far as its read leaves it."""
        for read in self.reads.values():
            self.store_bookmark(read)

    def add_lines(self, record: dict, label: str) -> None:
        """The parent ``record``'s line rows, written now or held until a STATE may follow."""
        read = self.reads[label]
        # Where the partition's bookmark stood before this record, if its rows may wait.
        before = self.lines.floor(label, read.resumable) if self.lines.buffered else None
        self.lines.add(record, label, before)
        if self.lines.waiting and read.report.records % self.state_every == 0:
            self.write_lines()

    def write_lines(self) -> None:
        """Write the waiting line rows; their partitions' bookmarks then move on."""
        waiting = list(self.lines.unwritten)
        self.lines.write()
        for label in waiting:
            if label in self.reads:
                self.store_bookmark(self.reads[label])

    def finish(self, *, with_lines: bool, every_days: int | None) -> tuple[bool, bool]:
        """After the last partition: whether to activate the table's version, and its line
        streams'; each read partition notes the version its rows carry now."""
        parent, lines = self.table.finish(with_lines=with_lines)
        for label, read in self.reads.items():
            if read.outcome is not Outcome.SKIPPED:
                self.table.record_done(
                    self.table.states[label], activated=parent, every_days=every_days
                )
        return parent, lines
