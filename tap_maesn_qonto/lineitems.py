"""Line-item streams: one row per line of a parent's records, with no request of their own.

The parent stream (client.py) hands each record it has read to a :class:`LineBuffer`,
and the buffered rows are written by syncing the child streams (``Stream.sync``, the
SDK's own path: SCHEMA, RECORD, stream maps, selection) at two moments only:

* on every record where the SDK may write a STATE message (each
  ``STATE_MSG_FREQUENCY``-th); and
* when a partition ends, if its stream has no partition left or enough rows wait.

Between those, rows wait in memory (at most one STATE interval of parents), and the
partition's bookmark in every STATE stays where it was before the first parent whose
rows wait (:meth:`LineBuffer.floor`). So the children's progress is the parent's
bookmark: the two can never diverge.

A line stream with nothing configured that would change its rows (no stream map,
flattening or deselected property: ``records_need_the_sdk``) skips the buffer: each
parent's rows are written at once, just before the parent's RECORD, so none can be
behind a STATE either. The SDK's per-record pipeline would do nothing to them but cost
about 4 µs a row; its SCHEMA still comes from the stream's own sync, once, with no rows.

A line removed from an invoice leaves its old row behind until the next reconcile
retires it (reconcile.py). Until then every row says how many lines its parent had
(``parent_line_count``) and when (``parent_updated_date``), so the current lines are
the rows of a parent's newest ``parent_updated_date`` (README, "Line items").
"""

from __future__ import annotations

import typing as t

from singer_sdk import StreamSchema
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_maesn_qonto import numbers
from tap_maesn_qonto.schemas import SCHEMAS_DIR
from tap_maesn_qonto.sdk_compat import PlainRecordMessages

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

#: Rows that may wait past a partition's end before they are written.
ROWS_WAITING_AT_MOST = 5_000


class LineItemsStream(PlainRecordMessages):
    """The lines of one parent stream; each subclass names its parent and key column."""

    schema = StreamSchema(SCHEMAS_DIR)
    #: The column holding the parent's id.
    parent_key: t.ClassVar[str]
    replication_key = None
    # The rows are the parent's lines, already shaped to the same schema (shaping.py).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # No state of their own: the parent's bookmark covers the lines (module docstring).
        self.state_partitioning_keys = []
        self.primary_keys = (self.parent_key, "position")
        self.rows: list[dict] = []
        self.rows_written = 0  # by write_row, outside the SDK's sync

    @property
    def emit_activate_version_messages(self) -> bool:
        return False  # the parent sends it after a reconcile (reconcile.py)

    def get_records(self, context: Context | None) -> Iterable[dict]:
        del context
        rows, self.rows = self.rows, []
        yield from rows

    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Iterable[Context | None]:
        # No child streams: the SDK's default would copy every row to hand it to none.
        del record, context
        return ()

    def write_row(self, row: dict) -> None:
        """Write one row as a RECORD now (only where no stream map or selection applies)."""
        self.write_record(row)
        self.rows_written += 1

    def rows_of(self, record: dict) -> list[dict]:
        """A parent record's lines as rows (none if the record carries no lineItems)."""
        lines = record.get("lineItems")
        if not isinstance(lines, list):
            return []
        where = {
            self.parent_key: record["id"],
            "parent_line_count": len(lines),
            "parent_updated_date": record.get("updatedDate"),
            "account_label": record.get("account_label"),
            "target_system": record.get("target_system"),
        }
        return [
            {**(line if isinstance(line, dict) else {}), **where, "position": number}
            for number, line in enumerate(lines, start=1)
        ]


class LineBuffer:
    """The rows a parent stream has read, on their way to its selected line streams."""

    def __init__(self, streams: list[LineItemsStream]) -> None:
        self.streams = streams
        self.direct = [s for s in streams if not s.records_need_the_sdk]
        self.buffered = [s for s in streams if s.records_need_the_sdk]
        #: Whether the direct streams' SCHEMA went out (the first ``write``).
        self.started = not self.direct
        self.waiting = 0
        #: Partitions with rows waiting -> their bookmark before the first such parent.
        self.unwritten: dict[str, str | None] = {}

    def floor(self, label: str, bookmark: str | None) -> str | None:
        """The bookmark a STATE may carry for ``label``: ``bookmark``, or less while rows wait."""
        return self.unwritten.get(label, bookmark)

    def add(self, record: dict, label: str, bookmark_before: str | None) -> None:
        for stream in self.direct:
            for row in stream.rows_of(record):
                stream.write_row(row)
        for stream in self.buffered:
            rows = stream.rows_of(record)
            if rows:  # the SDK's path: numbers a stream map can compute with (numbers.py)
                stream.rows.extend(numbers.with_decimals(rows))
                self.waiting += len(rows)
                self.unwritten.setdefault(label, bookmark_before)

    def write(self) -> None:
        """Write every waiting row, through each child stream's own sync.

        The first call also syncs the direct streams, with no rows: their SCHEMA.
        """
        for stream in self.streams:
            if stream.rows or (not self.started and stream in self.direct):
                stream.sync()
        self.started = True
        self.waiting = 0
        self.unwritten.clear()
