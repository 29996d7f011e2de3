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
