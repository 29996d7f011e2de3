"""One timestamp form for everything the tap emits or bookmarks.

Maesn passes Qonto's timestamps through in mixed forms (``Z``, ``+02:00`` offsets,
milliseconds, date-only). Singer state compares bookmark values as strings, and
``"…:00Z" > "…:00.500Z"`` although it is earlier, so mixed forms silently corrupt
bookmarks. Every date field is therefore rewritten to one fixed-width UTC form whose
string order equals time order: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

Valid ISO 8601 / RFC 3339 values that Python's ``datetime`` cannot hold are kept, not
dropped: a leap second (``23:59:60``) becomes the next second, ``24:00:00`` the next
day's midnight, and a moment before year 1 or after year 9999 in UTC (reachable
through an offset, e.g. ``0001-01-01T00:00:00+01:00``) is clamped to the first or
last representable microsecond.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

UTC = dt.UTC
#: The clamps for moments outside what ``datetime`` represents in UTC.
EARLIEST_UTC = dt.datetime.min.replace(tzinfo=UTC)
LATEST_UTC = dt.datetime.max.replace(tzinfo=UTC)
_ZERO = dt.timedelta(0)

# The time of day of a date-time ``fromisoformat`` refused: any date form it reads,
# one separator character, then HH[[:]MM[[:]SS]][.fff] and the rest (the offset).
_TIME_OF_DAY = re.compile(
    r"(?P<date>\d{4}(?:-\d\d-\d\d|\d{4}|-?W\d\d(?:-?\d)?))(?P<sep>.)"
    r"(?P<hour>\d\d)(?::?(?P<minute>\d\d)(?::?(?P<second>\d\d))?)?"
    r"(?P<fraction>[.,]\d+)?(?P<offset>.*)",
    re.DOTALL,
)

# The forms Maesn sends nearly always: an RFC 3339 date-time with seconds, at most
# microseconds, and ``Z`` or a ``±HH:MM`` offset. Its parts then sit at fixed places:
# date and hour [0:13], minutes [13:16], seconds [16:19], fraction, offset. ASCII digits
# only: ``\d`` would also match other scripts' digits. A second of 60 (a leap second)
# is left to the general path.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})"
)


def _to_utc(parsed: dt.datetime) -> dt.datetime:
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        offset = parsed.utcoffset()
        return EARLIEST_UTC if offset is not None and offset > _ZERO else LATEST_UTC


def _shifted_to_utc(parsed: dt.datetime, extra: dt.timedelta) -> dt.datetime:
    """``parsed + extra`` in UTC, computed in one step so that only the result can overflow."""
    shift = extra - (parsed.utcoffset() or _ZERO)
    try:
        return (parsed.replace(tzinfo=None) + shift).replace(tzinfo=UTC)
    except OverflowError:
        return LATEST_UTC if shift > _ZERO else EARLIEST_UTC


def _parse_end_of_day_forms(text: str) -> dt.datetime:
    """Parse a leap second (``…:60``) or ``24:00:00``, which ``datetime`` cannot hold.

    Raises:
        ValueError: if the value is not one of these forms either.
    """
    match = _TIME_OF_DAY.fullmatch(text)
    if match is None:
        raise ValueError(f"Invalid isoformat string: {text!r}")
    hour, minute, second, fraction = match.group("hour", "minute", "second", "fraction")
    if hour == "24" and minute in {None, "00"} and second in {None, "00"}:
        if fraction and fraction[1:].strip("0"):
            raise ValueError(f"{text!r} is past 24:00:00")
        extra, time = dt.timedelta(days=1), "00:00:00"  # 24:00 is the next day's 00:00
    elif second == "60":
        extra, time = dt.timedelta(seconds=1), f"{hour}:{minute}:59{fraction or ''}"
    else:
        raise ValueError(f"Invalid isoformat string: {text!r}")
    date, sep, offset = match.group("date", "sep", "offset")
    parsed = dt.datetime.fromisoformat(f"{date}{sep}{time}{offset}")
    return _shifted_to_utc(parsed, extra)


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an ISO 8601 date or date-time into an aware UTC datetime.

    Naive values are taken as UTC (Maesn documents its timestamps as UTC). A leap
    second is read as the next second, ``24:00:00`` as the next day's midnight, and a
    moment outside years 1..9999 in UTC is clamped to :data:`EARLIEST_UTC` or
    :data:`LATEST_UTC`.

    Raises:
        ValueError: if the value is not an ISO 8601 date or date-time.
    """
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        # Off the hot path: only values fromisoformat refuses get here.
        return _parse_end_of_day_forms(text)
    return _to_utc(parsed)


def format_timestamp(moment: dt.datetime) -> str:
    """Render an aware datetime in the tap's single fixed-width UTC form."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    # isoformat (C code, unlike strftime) zero-pads years before 1000 to four digits.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@functools.cache  # at most 2 * 24 * 60 + 1 distinct values
def _shift_to_utc(offset: str) -> dt.timedelta | None:
    """What turns a local time at ``offset`` (``Z`` or ``±HH:MM``) into UTC; None: out of range."""
    if offset == "Z":
        return _ZERO
    hours, minutes = int(offset[1:3]), int(offset[4:])
    if hours > 23 or minutes > 59:  # past what fromisoformat reads: the general path decides
        return None
    shift = dt.timedelta(hours=hours, minutes=minutes)
    return -shift if offset[0] == "+" else shift


def _normalize_rfc3339(value: str) -> str | None:
    """The tap's form of a plain RFC 3339 date-time, or None to take the general path.

    About twice as quick as the general path: no aware datetime is made, the fraction
    is copied as text and only the date and time (validated by ``fromisoformat``) are
    shifted. Anything unusual (a leap second, ``24:00``, an overflow, an offset out of
    range) is left to :func:`parse_timestamp`.
    """
    if _RFC3339.fullmatch(value) is None:
        return None
    zulu = value[-1] == "Z"
    shift = _ZERO if zulu else _shift_to_utc(value[-6:])
    if shift is None:
        return None
    fraction = value[20:-1] if zulu else value[20:-6]
    seconds = value[:19]
    try:
        moment = dt.datetime.fromisoformat(seconds)
        if shift:
            seconds = (moment + shift).isoformat()
    except (ValueError, OverflowError):
        return None
    return f"{seconds}.{fraction.ljust(6, '0')}Z"


@functools.lru_cache(maxsize=4096)  # ~1 MB; holds every distinct calendar date of years
def normalize_timestamp(value: str) -> str:
    """Rewrite an ISO 8601 date or date-time string into the tap's UTC form.

    Cached: about half of the date values in a sync repeat (dates, due dates).

    Raises:
        ValueError: if the value is not an ISO 8601 date or date-time.
    """
    return _normalize_rfc3339(value) or format_timestamp(parse_timestamp(value))


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


def minus(moment: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """``moment - delta``, saturating at :data:`EARLIEST_UTC` instead of overflowing."""
    return moment - delta if moment - EARLIEST_UTC > delta else EARLIEST_UTC
