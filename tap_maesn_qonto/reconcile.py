"""Reconcile runs: deleted records leave the target through Singer ``ACTIVATE_VERSION``.

Maesn has no feed of deleted records; they just stop being listed. So every
``reconcile_interval_days`` a stream is read whole for every account of the run
(concurrently, filtered by ``start_date`` only), its records carry a new table
version, and once every account's read is complete the tap sends
``ACTIVATE_VERSION`` with it: the target retires each row not sent again (soft
delete with ``_sdc_deleted_at``, or hard delete, as the target is set up).

Between reconciles, records carry the version last activated, so the next reconcile
retires only what is really gone. A new version is always above every version sent
before (the run's start in milliseconds, or one more than the newest in the state).

The version is one per stream, not per account, because a target's table holds every
account's rows and retires all of them that carry an older version. Hence:

* one run must read every account writing to a table: with ``shard_count`` > 1
  reconciles are off unless asked for, and then refused (settings.py). Records still
  carry a version when reconciles are off (the state's, else a new one), so that a
  separate unsharded reconcile run over every account can retire the rows of shard
  runs too (orchestration/dagster/README.md, "Deletions");
* the ``ACTIVATE_VERSION`` is sent only after the stream's last account, and only if
  no account failed and no whole-list read was left incomplete; otherwise it is not
  sent, nothing is retired, and the next run reconciles again.

The state partition keeps ``table_version`` (what its rows carry) and
``reconciled_at`` (when the last reconcile ran; for a table the tap had not versioned
before, when its first version was given, so the first reconcile follows an interval
later and a first run stays an ordinary one).
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.singerlib import ActivateVersionMessage

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from singer_sdk import Stream
    from singer_sdk.singerlib import Message

    from tap_maesn_qonto.records import PlainRecordMessages

RECONCILED_AT = "reconciled_at"
TABLE_VERSION = "table_version"
DEFAULT_INTERVAL_DAYS = 7


@dataclass(frozen=True)
class TablePlan:
    """What one stream's records carry this run, and whether it reconciles."""

    #: The version RECORD messages carry: the state's, else a new one (also with
    #: reconciles off, so a later reconcile can retire these rows).
    version: int | None
    #: Every account is read whole, and ``version`` is activated at the end.
    reconciling: bool


def interval_days(config: Mapping[str, t.Any]) -> int | None:
    """Days between reconciles, 0 = every run; None = never (off)."""
    value = config.get("reconcile_interval_days")
    if value is None:
        return None if int(config.get("shard_count", 1)) > 1 else DEFAULT_INTERVAL_DAYS
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
        return TablePlan(version=fresh if active is None else active, reconciling=False)
    if every_days > 0 and active is None:
        # A table this tap has not versioned yet: the first interval starts now.
        return TablePlan(version=fresh, reconciling=False)
    reconciled = [moment for s in states if (moment := _moment(s.get(RECONCILED_AT)))]
    due = (
        every_days == 0 or not reconciled or min(reconciled) + dt.timedelta(days=every_days) <= now
    )
    return TablePlan(version=fresh, reconciling=True) if due else TablePlan(active, False)


def record_done(state: dict[str, t.Any], table: TablePlan, now: dt.datetime) -> None:
    """Note in a partition's state the version its rows now carry, and when its interval
    began (the last reconcile, or when the table got its first version)."""
    if table.version is None:
        return
    state[TABLE_VERSION] = table.version
    if table.reconciling or RECONCILED_AT not in state:
        state[RECONCILED_AT] = now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _moment(value: t.Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def carry_version(stream: PlainRecordMessages, version: int | None) -> None:
    """Have the RECORD messages of ``stream`` carry ``version``, on either path (records.py).

    The SDK sets ``_stream_version`` only for its own ACTIVATE_VERSION (sent before a
    FULL_TABLE sync, which would retire every row before it is sent again), and has no
    public setter: tests/test_sdk_contract.py fails if the SDK stops reading it.
    """
    stream.table_version = version
    stream._stream_version = version


def activate(stream: Stream, version: int, write: Callable[[Message], None]) -> None:
    """Send ACTIVATE_VERSION for ``stream`` under every name its stream maps give it."""
    for stream_map in stream.stream_maps:
        if not isinstance(stream_map, RemoveRecordTransform):
            write(ActivateVersionMessage(stream=stream_map.stream_alias, version=version))
