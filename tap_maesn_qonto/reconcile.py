"""Reconcile runs: deleted records leave the target through Singer ``ACTIVATE_VERSION``.

Maesn has no feed of deleted records; they just stop being listed. A reconcile reads
every account of the run whole, its records carry a new table version, and, only if
it proved every row gone that it would retire, the tap sends ``ACTIVATE_VERSION`` with
it: the target retires each row of an older version (soft delete with
``_sdc_deleted_at``, or hard delete, as the target is set up).

Retiring rows is the most dangerous thing a tap does, so it is opt-in and guarded:

* **Opt-in.** ``reconcile_interval_days`` unset means never: the tap cannot see other
  pipelines loading the same tables (prod and sandbox, accounts split by region), and
  each one's reconcile would retire the others' rows. Set, the run says once that it
  owns its tables. With ``shard_count`` > 1 it is refused (settings.py): a shard sees
  only its own accounts; shards reconcile through one unsharded run (orchestration/).
* **Only what was proven gone.** ``ACTIVATE_VERSION`` goes out only when every partition
  the table holds in the state (every account this pipeline ever loaded into it) was
  read whole in this run, each read proven by the server's totals (fullread.py), none
  failed, skipped or incomplete. Otherwise nothing is retired, one warning says why,
  and the next run tries again. A line-item table is retired with its parent only
  when every parent's lines were known (details.py).

Between reconciles, records still carry a version (the newest in the state, or a
fresh one the first time), so that a row a later reconcile does not see again is
older than that reconcile's version. A new version is above every version the state
knows (the run's start in milliseconds, or one more than the newest).

The state partition keeps ``table_version`` (what its rows carry) and
``reconciled_at`` (when the last reconcile ran; for a table the tap had not versioned
before, when its first version was given, so the first reconcile follows an interval
later and a first run stays an ordinary one).
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, field

from tap_maesn_qonto.plan import TABLE_VERSION
from tap_maesn_qonto.read import Outcome

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from tap_maesn_qonto.plan import ReadPlan
    from tap_maesn_qonto.read import PartitionRead

RECONCILED_AT = "reconciled_at"


@dataclass(frozen=True)
class TablePlan:
    """What one stream's records carry this run, and whether it reconciles."""

    #: The version RECORD messages carry.
    version: int
    #: Every account is read whole, and ``version`` is activated at the end if proven.
    reconciling: bool


def interval_days(config: Mapping[str, t.Any]) -> int | None:
    """Days between reconciles, 0 = every run; None = never (unset, or -1)."""
    value = config.get("reconcile_interval_days")
    if value is None:
        return None
    return None if int(value) < 0 else int(value)


def plan(
    partitions: Iterable[Mapping[str, t.Any]], *, every_days: int | None, now: dt.datetime
) -> TablePlan:
    """Decide from the stream's partition states, read before any of them is synced."""
    states = list(partitions)
    versions = [v for s in states if isinstance(v := s.get(TABLE_VERSION), int)]
    active = max(versions, default=None)
    fresh = max(int(now.timestamp() * 1000), (active or 0) + 1)
    if every_days is None:
        return TablePlan(version=active or fresh, reconciling=False)
    if every_days > 0 and active is None:
        # A table this tap has not versioned yet: the first interval starts now.
        return TablePlan(version=fresh, reconciling=False)
    reconciled = [moment for s in states if (moment := _moment(s.get(RECONCILED_AT)))]
    due = (
        every_days == 0 or not reconciled or min(reconciled) + dt.timedelta(days=every_days) <= now
    )
    return TablePlan(version=fresh, reconciling=True) if due else TablePlan(active or fresh, False)


@dataclass
class TableRun:
    """One stream's table in one run: the version its rows carry, and what it may retire.

    ``states`` are the stream's partition states by account label (every account this
    pipeline loaded into the table, configured now or not); this run's are the live
    dicts its STATE messages are written from.
    """

    plan: TablePlan
    states: Mapping[str, dict[str, t.Any]]
    started: dt.datetime
    #: How each partition is read (plan.py), decided once, before any is.
    plans: dict[str, ReadPlan] = field(default_factory=dict)
    #: This run's reads, by account label.
    reads: dict[str, PartitionRead] = field(default_factory=dict)
    #: A reconcile that could not retire: what it left ("no row was retired") and why.
    retired_nothing: tuple[str, str] | None = None
    #: Whether this run's reconcile activated the table's version (rows retired).
    activated: bool = False

    @property
    def version(self) -> int:
        return self.plan.version

    @property
    def reconciling(self) -> bool:
        return self.plan.reconciling

    def why_not_retire(self, *, lines: bool = False) -> str | None:
        """Why this run may not retire rows of the table (None: it may).

        ``lines``: for the table's line items, which also need every parent's lines known.
        """
        if not self.reconciling:
            return "not a reconcile run"
        missing = sorted(
            label
            for label, state in self.states.items()
            if label not in self.reads
            and (TABLE_VERSION in state or state.get("replication_key_value"))
        )
        if missing:
            return (
                f"the state holds rows of account(s) {', '.join(missing)} that this run "
                "does not read (not in its accounts), so their rows cannot be proven gone. "
                "If they are gone for good, drop their partitions from the state"
            )
        unproven = sorted(
            f"{label} ({read.reason or read.outcome.value})"
            for label, read in self.reads.items()
            if read.outcome is not Outcome.COMPLETE or not read.proven_whole
        )
        if unproven:
            return f"account(s) {', '.join(unproven)} were not read whole and proven"
        if lines and (unknown := sum(read.lines_unknown for read in self.reads.values())):
            return f"the lines of {unknown} record(s) are unknown (lineItems null, no detail)"
        return None

    def finish(self, *, with_lines: bool) -> tuple[bool, bool]:
        """After the table's last partition: whether to activate its version, and its line
        streams'; what was left undone is kept in :attr:`retired_nothing`."""
        if not self.reconciling:
            return False, False
        parent_why = self.why_not_retire()
        lines_why = parent_why or self.why_not_retire(lines=True)
        if parent_why or (with_lines and lines_why):
            what = "no row was retired" if parent_why else "no line row was retired"
            self.retired_nothing = (what, str(parent_why or lines_why))
        self.activated = parent_why is None
        return parent_why is None, lines_why is None

    def record_done(
        self, state: dict[str, t.Any], *, activated: bool, every_days: int | None
    ) -> None:
        """Note in a read partition's state the version its rows carry now, and, with
        reconciles on, when its interval began (the last reconcile, or when the table got
        its first version)."""
        state[TABLE_VERSION] = self.version
        if every_days is None:
            return
        if activated or (not self.reconciling and RECONCILED_AT not in state):
            state[RECONCILED_AT] = (
                self.started.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            )


def _moment(value: t.Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
