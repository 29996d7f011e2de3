"""When a pass over the pages can be trusted, and when it must be read again (fullread.py).

Two probes bracket a pass: the list's total before any page was asked for, and after
every page was answered, with the records created in between. ``start + created - end``
records left the list while it paged; any such departure may have shifted an unread
record onto a page already read. Records created at the very instant of the opening
probe's newest count as created unless that probe listed them.
"""

from __future__ import annotations

import pytest

from tap_maesn_qonto.fullread import Anchor, PassCheck


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        (PassCheck(start_total=100, end_total=100, created_between=0, received=100), None),
        # New records appended while paging: nothing shifted.
        (PassCheck(start_total=100, end_total=103, created_between=3, received=103), None),
        # A deletion balanced by a creation: the totals alone would not show it.
        (
            PassCheck(start_total=100, end_total=100, created_between=1, received=100),
            "about 1 record(s) left the list",
        ),
        (PassCheck(start_total=100, end_total=98, created_between=0, received=98), "about 2"),
        # Fewer records arrived than the server said it had.
        (
            PassCheck(start_total=100, end_total=100, created_between=0, received=99),
            "99 records arrived but Maesn reported 100",
        ),
        # An id listed twice is counted as the server counts it: received, not distinct.
        (
            PassCheck(start_total=100, end_total=100, created_between=0, received=100, distinct=99),
            None,
        ),
        # More creations than one closing probe shows: not countable.
        (
            PassCheck(start_total=100, end_total=200, created_between=None),
            "more records were created",
        ),
        # Read by updatedDate (createdDate refused): any change may have shifted a record.
        (
            PassCheck(start_total=100, end_total=100, created_between=1, changes_shift=True),
            "changed while paging by updatedDate",
        ),
        # No totals at all: nothing to prove the pass with.
        (PassCheck(received=42), "no totals"),
    ],
)
def test_a_pass_is_sound_only_if_no_record_left_it(check: PassCheck, reason: str | None) -> None:
    verdict = check.drift()
    if reason is None:
        assert verdict is None
    else:
        assert verdict is not None
        assert reason in verdict


def test_a_record_created_in_the_probes_instant_counts_unless_the_probe_listed_it() -> None:
    anchor = Anchor(total=10, newest="2026-01-01T00:00:05Z", ids_at_newest=frozenset({"a"}))
    closing = [
        ("2026-01-01T00:00:06Z", "later"),  # created after: counts
        ("2026-01-01T00:00:05Z", "a"),  # the probe's own newest: not new
        ("2026-01-01T00:00:05Z", "same-instant"),  # same instant, not listed then: new
        ("2026-01-01T00:00:04Z", "older"),
    ]
    assert anchor.created_since(closing) == 2


def test_without_an_anchor_every_record_of_the_closing_probe_counts_as_created() -> None:
    assert Anchor(total=0, newest=None).created_since([("2026-01-01T00:00:00Z", "x")]) == 1
