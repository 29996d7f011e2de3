"""RECORD messages without the SDK's per-record work where that work would change nothing.

For every record the SDK pops deselected properties, conforms types, runs each stream
map and flattens. When no stream map and no flattening are configured and every
property is selected, none of that changes a record this tap has already shaped to
its schema (shaping.py; ``TYPE_CONFORMANCE_LEVEL`` is NONE), so the RECORD message is
built directly: about a third of the tap's CPU per record at 0 ms latency
(``scripts/benchmark.py --profile``). Anything configured takes the SDK's own path.

This overrides the SDK's private ``Stream._generate_record_messages``; it is the one
place the tap does, and tests/test_sdk_contract.py fails if the SDK changes the
method, and checks that both paths write the same bytes.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from functools import cached_property

from singer_sdk import Stream
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage

if t.TYPE_CHECKING:
    from collections.abc import Generator


class PlainRecordMessages(Stream):
    """A stream whose RECORD messages skip the SDK's no-op per-record work."""

    #: The version RECORD messages carry (reconcile.py).
    table_version: int | None = None

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

    def _generate_record_messages(self, record: dict) -> Generator[RecordMessage, None, None]:
        if self.records_need_the_sdk:
            yield from super()._generate_record_messages(record)
            return
        yield RecordMessage(
            stream=self.name,
            record=record,
            version=self.table_version,
            time_extracted=dt.datetime.now(dt.UTC),
        )
