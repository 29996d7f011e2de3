"""The quick path for plain RFC 3339 values gives exactly what the general parser gives.

``normalize_timestamp`` reads the usual forms (``Z`` or ``±HH:MM``, at most
microseconds) without making an aware datetime; everything else, and every value
the quick path cannot vouch for, goes through ``parse_timestamp``. These tests hold
the two to the same answers, including refusals, on values near and past every limit.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tap_maesn_qonto.timestamps import (
    _normalize_rfc3339,
    format_timestamp,
    normalize_timestamp,
    parse_timestamp,
)


def _general(value: str) -> str | None:
    """The general path's answer; None where it refuses the value."""
    try:
        return format_timestamp(parse_timestamp(value))
    except ValueError:
        return None


def _normalized(value: str) -> str | None:
    try:
        return normalize_timestamp.__wrapped__(value)
    except ValueError:
        return None


def _two_digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


# Components up to and past their limits: month 13, day 32, hour 24, second 60 and 61,
# offsets of 24 hours and 60 minutes, seven fraction digits, other separators.
_VALUES = st.builds(
    "{}-{}-{}{}{}:{}:{}{}{}".format,
    st.sampled_from(["0000", "0001", "0999", "1970", "2016", "2024", "2026", "9999"]),
    _two_digits(0, 13),
    _two_digits(0, 32),
    st.sampled_from(["T", "t", " "]),
    _two_digits(0, 24),
    _two_digits(0, 60),
    _two_digits(0, 61),
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=7).map(lambda d: "." + d)),
    st.one_of(
        st.sampled_from(["Z", "z", "", "+00:00", "-00:00"]),
        st.builds("{}{}:{}".format, st.sampled_from("+-"), _two_digits(0, 25), _two_digits(0, 60)),
    ),
)


@pytest.mark.parametrize(
    "examples",
    [pytest.param(500, id="quick"), pytest.param(3000, id="full", marks=pytest.mark.e2e)],
)
def test_the_quick_path_gives_the_general_paths_answer(examples: int) -> None:
    @settings(max_examples=examples, deadline=None)
    @given(_VALUES)
    @example("2026-10-28T20:30:03.066Z")
    @example("2026-10-28T21:30:03+01:00")
    @example("0001-01-01T00:30:00+01:00")  # before year 1 in UTC: clamped
    @example("9999-12-31T23:30:00-01:00")  # after year 9999 in UTC: clamped
    @example("2016-12-31T23:59:60Z")  # leap second
    @example("2026-02-28T24:00:00Z")
    @example("2026-02-29T00:00:00Z")  # not a leap year
    @example("2026-01-01T00:00:00+23:59")
    @example("2026-01-01T00:00:00+24:00")
    def check(value: str) -> None:
        assert _normalized(value) == _general(value)

    check()


@pytest.mark.parametrize(
    "value",
    [
        "2026-10-28T20:30:03.066Z",
        "2026-10-28T20:30:03Z",
        "2026-10-28T21:30:03+01:00",
        "2026-10-28T22:30:03.066+02:00",
        "2026-10-28T20:30:03.123456-00:00",
    ],
)
def test_the_usual_forms_take_the_quick_path(value: str) -> None:
    assert _normalize_rfc3339(value) == _general(value)


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-26",  # date only: cached instead
        " 2026-10-28T20:30:03Z",
        "2026-10-28T20:30:03z",
        "2026-10-28T20:30:03.1234567Z",
        "2016-12-31T23:59:60Z",
        "2026-01-01T24:00:00Z",
        "2026-13-01T00:00:00Z",
        "0001-01-01T00:30:00+01:00",
        "2026-01-01T00:00:00+24:00",
        "2026-10-28T20:30:03+01:60",
        "٢٠٢٦-10-28T20:30:03Z",  # other scripts' digits
    ],
)
def test_unusual_forms_are_left_to_the_general_path(value: str) -> None:
    assert _normalize_rfc3339(value) is None
    assert _normalized(value) == _general(value)


# --- timestamps at the edges of what datetime holds -----------------------------------------------
# --- 4. valid timestamps that datetime cannot hold -----------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000000Z"),
        ("2016-12-31T23:59:60.250Z", "2017-01-01T00:00:00.250000Z"),
        ("2015-06-30T23:59:60+00:00", "2015-07-01T00:00:00.000000Z"),
        ("2017-01-01T05:29:60+05:30", "2017-01-01T00:00:00.000000Z"),
        ("20161231T235960Z", "2017-01-01T00:00:00.000000Z"),
        ("2026-02-28T24:00:00Z", "2026-03-01T00:00:00.000000Z"),
        ("2026-12-31T24:00:00.000+02:00", "2026-12-31T22:00:00.000000Z"),
        ("2026-01-01T24:00Z", "2026-01-02T00:00:00.000000Z"),
        ("0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00.000000Z"),
        ("0001-01-01T00:59:59.999+01:00", "0001-01-01T00:00:00.000000Z"),
        ("0001-01-01T24:00:00+01:00", "0001-01-01T23:00:00.000000Z"),
        ("9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T23:59:60Z", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T24:00:00Z", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T24:00:00+01:00", "9999-12-31T23:00:00.000000Z"),
        # Unchanged: the ordinary forms.
        ("2026-05-01T10:00:00+02:00", "2026-05-01T08:00:00.000000Z"),
        ("2026-05-01", "2026-05-01T00:00:00.000000Z"),
    ],
)
def test_valid_timestamps_at_the_edges_are_normalized_not_lost(value: str, expected: str) -> None:
    assert normalize_timestamp(value) == expected
    moment = parse_timestamp(value)
    assert moment.tzinfo == dt.UTC
    assert format_timestamp(moment) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T24:00:01Z",
        "2026-01-01T24:00:00.5Z",
        "2026-01-01T23:59:61Z",
        "2026-01-01T23:60Z",
        "2026-13-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "not a date",
        "",
        "2026-01-01T23:59:60+25:00",
    ],
)
def test_invalid_timestamps_are_still_refused(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the only contract is ValueError
        normalize_timestamp(value)


# --- normalized timestamps sort as time does ------------------------------------------------------
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
MOMENTS = st.datetimes(
    min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 30), timezones=OFFSETS
)


@given(a=MOMENTS, b=MOMENTS, milliseconds=st.booleans())
def test_normalized_timestamps_sort_as_time_does(
    a: dt.datetime, b: dt.datetime, milliseconds: bool
) -> None:
    spec = "milliseconds" if milliseconds else "auto"
    text_a, text_b = (
        normalize_timestamp(a.isoformat(timespec=spec)),
        normalize_timestamp(b.isoformat(timespec=spec)),
    )
    if not milliseconds:
        assert text_a == format_timestamp(a)
    # String order equals time order: what makes bookmarks safe to compare.
    assert (text_a < text_b) == (
        a.replace(microsecond=a.microsecond // 1000 * 1000 if milliseconds else a.microsecond)
        < b.replace(microsecond=b.microsecond // 1000 * 1000 if milliseconds else b.microsecond)
    )
