"""Maesn's envelope read into a Page (envelope.py): paging totals are counts, whatever
JSON number form they come in."""

from __future__ import annotations

import decimal
import typing as t

from tap_maesn_qonto import numbers
from tap_maesn_qonto.envelope import parse_page

if t.TYPE_CHECKING:
    pass


def test_paging_totals_sent_with_a_fraction_are_still_counts() -> None:
    body = (
        b'{"meta":{"pagination":{"total":250.0,"totalPages":3.0,"perPage":1e2}},'
        b'"data":[{"id":"x","n":1.5}]}'
    )

    class Response:
        status_code = 200
        headers: t.ClassVar[dict[str, str]] = {"Content-Type": "application/json"}
        request = None

    page = parse_page(Response(), body, number=1, api_url="http://x")  # type: ignore[arg-type]
    assert (page.total, page.total_pages, page.per_page) == (250, 3, 100)
    assert numbers.with_decimals(page.records) == [{"id": "x", "n": decimal.Decimal("1.5")}]
    assert numbers.text_of(page.records[0]["n"]) == "1.5"
