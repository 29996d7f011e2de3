"""RECORD messages without the SDK's per-record work where that work would change nothing.

For every record the SDK pops deselected properties, conforms types, runs each stream
map and flattens. When no stream map and no flattening are configured and every
property is selected, none of that changes a record this tap has already shaped to
its schema (shaping.py; ``TYPE_CONFORMANCE_LEVEL`` is NONE), so the RECORD message is
built directly: about a third of the tap's CPU per record at 0 ms latency
(``scripts/benchmark.py --profile``). Anything configured takes the SDK's own path.

The tap's own writer (output.py) then encodes the message without building a
``RecordMessage`` (about a microsecond a record); any other writer gets one. A writer
that does not encode with msgspec gets its numbers as Decimals: only msgspec writes
numbers kept as text verbatim (numbers.py).

The SDK also moves the bookmark on every record. A read that sets its bookmark
itself when it ends (a whole-list read: client.py) says so with
``records_move_the_bookmark``, and that update is skipped: it would be overwritten.

This overrides the SDK's private ``Stream._write_record_message`` and
``Stream._increment_stream_state``; it is the one place the tap does, and
tests/test_sdk_contract.py fails if the SDK changes the methods or what they skip, and
checks that both paths write the same bytes and the same states.
"""

from __future__ import annotations

import typing as t
from functools import cached_property, partial

from singer_sdk import Stream
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.mapper import SameRecordTransform

from tap_maesn_qonto import numbers
from tap_maesn_qonto.output import BufferedSingerWriter, write_record_message

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from singer_sdk import Tap


class PlainRecordMessages(Stream):
    """A stream whose RECORD messages skip the SDK's no-op per-record work."""

    #: The version RECORD messages carry (reconcile.py).
    table_version: int | None = None

    def __init__(self, tap: Tap, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(tap, *args, **kwargs)
        self._writing_tap = tap

    @cached_property
    def records_need_the_sdk(self) -> bool:
        """A stream map, flattening or a deselected property is configured."""
        maps = self.stream_maps
        return not (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and maps[0].stream_alias == self.name
            and all(self.mask.values())
        )

    @property
    def records_move_the_bookmark(self) -> bool:
        """Whether the SDK's per-record bookmark update counts (False: the read sets it)."""
        return True

    def _increment_stream_state(self, latest_record: dict, *, context: t.Any = None) -> None:
        if self.records_move_the_bookmark:
            super()._increment_stream_state(latest_record, context=context)

    def _write_record_message(self, record: dict) -> None:
        if self.records_need_the_sdk:
            super()._write_record_message(record)
            return
        self._write_record(self.name, record, self.table_version)
        self.state_manager.is_flushed = False  # as in the SDK's method: a STATE is due

    @cached_property
    def _write_record(self) -> Callable[[str, dict, int | None], None]:
        """The tap's own writer's RECORD path, or any other writer's through a message."""
        writer = self._writing_tap.message_writer  # read late: it may not exist at __init__
        if isinstance(writer, BufferedSingerWriter):
            return writer.write_record
        if isinstance(writer, MsgSpecWriter):  # writes numbers kept as text verbatim
            return partial(write_record_message, writer)
        return lambda stream, record, version: write_record_message(
            writer, stream, numbers.with_decimals(record), version
        )
