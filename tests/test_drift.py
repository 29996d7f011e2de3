"""When a pass over the pages can be trusted, and when it must be read again.

Under createdDate ASC, only records leaving the result set (deletions) shift unread
records onto pages already read; creations land on the last page. So a pass is
trusted unless ids repeat, fewer distinct ids arrived than the total promised, or
the total fell by more than the creations seen explain.
"""

from __future__ import annotations

import typing as t

import pytest

from tap_maesn_qonto.fullread import PassCheck


class Observed(t.TypedDict, total=False):
    """The counts a pass reports, as PassCheck takes them."""

    first_total: int
    last_total: int
    created_during_pass: int
    distinct: int
    repeated_ids: int


def _pass(**observed: t.Unpack[Observed]) -> PassCheck:
    return PassCheck(**observed)


@pytest.mark.parametrize(
    ("observed", "reason"),
    [
        ({"first_total": 100, "last_total": 100, "distinct": 100}, None),
        # New records appended while paging: nothing shifted.
        ({"first_total": 100, "last_total": 103, "created_during_pass": 3, "distinct": 103}, None),
        # A deletion balanced by a creation: the total alone would not show it.
        (
            {"first_total": 100, "last_total": 100, "created_during_pass": 1, "distinct": 100},
            "about 1 record(s) left the list",
        ),
        ({"first_total": 100, "last_total": 98, "distinct": 98}, "about 2 record(s) left"),
        ({"first_total": 100, "last_total": 100, "distinct": 99}, "99 distinct records arrived"),
        (
            {"first_total": 100, "last_total": 100, "distinct": 100, "repeated_ids": 2},
            "appeared on two pages",
        ),
        # No pagination meta at all: nothing to compare, trusted.
        ({"distinct": 42}, None),
    ],
)
def test_drift_verdict(observed: Observed, reason: str | None) -> None:
    verdict = _pass(**observed).drift()
    if reason is None:
        assert verdict is None
    else:
        assert verdict is not None
        assert reason in verdict
