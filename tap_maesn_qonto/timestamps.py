"""One timestamp form for everything the tap emits or bookmarks.

Maesn passes Qonto's timestamps through in mixed forms (``Z``, ``+02:00`` offsets,
milliseconds, date-only). Singer state compares bookmark values as strings, and
``"…:00Z" > "…:00.500Z"`` although it is earlier, so mixed forms silently corrupt
bookmarks. Every date field is therefore rewritten to one fixed-width UTC form whose
string order equals time order: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
"""

from __future__ import annotations

import datetime as dt
import functools

UTC = dt.UTC


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an ISO 8601 date or date-time into an aware UTC datetime.

    Naive values are taken as UTC (Maesn documents its timestamps as UTC).

    Raises:
        ValueError: if the value is not an ISO 8601 date or date-time.
    """
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
        msg = f"{value!r} is outside the range of representable UTC timestamps"
        raise ValueError(msg) from exc


def format_timestamp(moment: dt.datetime) -> str:
    """Render an aware datetime in the tap's single fixed-width UTC form."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    # isoformat (C code, unlike strftime) zero-pads years before 1000 to four digits.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@functools.lru_cache(maxsize=4096)  # ~1 MB; holds every distinct calendar date of years
def normalize_timestamp(value: str) -> str:
    """Rewrite an ISO 8601 date or date-time string into the tap's UTC form.

    Cached: about half of the date values in a sync repeat (dates, due dates).

    Raises:
        ValueError: if the value is not an ISO 8601 date or date-time.
    """
    return format_timestamp(parse_timestamp(value))


def filter_timestamp(moment: dt.datetime) -> str:
    """Render a ``lastModifiedAt`` filter value, floored to the whole second.

    Second precision with ``Z`` is the form every target system accepts; flooring
    keeps the inclusive boundary conservative (a little more, never less).
    """
    u = moment.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


def utc_now() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(tz=UTC)
