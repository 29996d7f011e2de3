"""The quick path for plain RFC 3339 values gives exactly what the general parser gives.

``normalize_timestamp`` reads the usual forms (``Z`` or ``±HH:MM``, at most
microseconds) without making an aware datetime; everything else, and every value
the quick path cannot vouch for, goes through ``parse_timestamp``. These tests hold
the two to the same answers, including refusals, on values near and past every limit.
"""

from __future__ import annotations

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


@settings(max_examples=3000, deadline=None)
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
def test_the_quick_path_gives_the_general_paths_answer(value: str) -> None:
    assert _normalized(value) == _general(value)


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
