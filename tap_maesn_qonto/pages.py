"""What one page request asks for, and where it stands in its stream.

A :class:`PageRequest` is the SDK page token of every Maesn stream: the page
number plus the query it belongs to (filter, order, size). Its
:class:`Position` decides what a 4xx means (the error table in ``client.py``):
only the first request of a stream may find the endpoint missing, and only a
request past the reported last page may find the end of the data.
"""

from __future__ import annotations

import datetime as dt
import enum
import typing as t
from dataclasses import dataclass, replace

from tap_maesn_qonto import numbers
from tap_maesn_qonto.errors import MaesnAPIError
from tap_maesn_qonto.timestamps import normalize_timestamp

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_maesn_qonto.envelope import Page


class Position(enum.Enum):
    """Where a request stands, for reading a 4xx answer."""

    #: The stream's first request in this run: 404/405 = not available for this target system.
    FIRST = "first"
    #: Data is known to exist here (within the reported pages, or a fresh window query).
    KNOWN = "known"
    #: Past a full page with no page count reported: a repeated 422 = end of data.
    UNKNOWN = "unknown"
    #: One listed record's detail: a 404 = deleted since it was listed.
    DETAIL = "detail"


@dataclass(frozen=True)
class PageRequest:
    """One list request: page ``page`` of the query described by the other fields."""

    page: int
    limit: int
    since: dt.datetime | None = None  # lastModifiedAt (inclusive on Maesn's side)
    order_field: str | None = "createdDate"
    descending: bool = False
    position: Position = Position.KNOWN

    def at(self, page: int, position: Position) -> PageRequest:
        """The same query at another page."""
        return replace(self, page=page, position=position)


#: Answers one page request: from what was fetched ahead, or sent now.
Fetch = t.Callable[[PageRequest], "Page"]


@dataclass(frozen=True)
class RecordKeys:
    """How a reader reads a record: its id and when it was updated and created.

    The timestamps come back in the tap's one UTC form (timestamps.py), or None where
    a record has none a reader can use.
    """

    identify: Callable[[dict], str]
    updated: Callable[[dict], str | None]
    created: Callable[[dict], str | None]


class Report(t.Protocol):
    """Where a reader says what it sees: each page it takes, and its warnings."""

    def page(self, page: Page) -> None:
        """A page was taken (answered and about to be read)."""

    def warn(self, message: str) -> None:
        """Something a person should know; said once per read for the same message."""


def timestamp_of(name: str) -> Callable[[dict], str | None]:
    """A record's ``name`` in the tap's one UTC form (None: absent or unreadable)."""

    def read(record: dict) -> str | None:
        value = record.get(name)
        if not isinstance(value, str):
            return None
        try:
            return normalize_timestamp(value)
        except ValueError:
            return None

    return read


def record_keys(path: str, id_aliases: tuple[str, ...] = ()) -> RecordKeys:
    """The keys of one endpoint's records: ``id`` (or an alias the API has used for it)."""

    def identify(record: dict) -> str:
        for name in ("id", *id_aliases):
            value = record.get(name)
            if value not in (None, ""):
                return value if type(value) is str else numbers.text_of(value)
        msg = (
            f"GET {path} returned a record without an 'id'"
            f"{' or ' + repr(id_aliases[0]) if id_aliases else ''}; it cannot be "
            "deduplicated or merged, so the tap stops rather than load it. Report the "
            "response to Maesn support."
        )
        raise MaesnAPIError(msg)

    return RecordKeys(identify, timestamp_of("updatedDate"), timestamp_of("createdDate"))
