"""The warehouse check (tests/support/warehouse_check.py, the quick start's last step).

The check is what makes the quick start's "money is exact" claim testable, so it must
fail on exactly the losses real targets cause: money through float, a dropped trailing
zero, a timestamp stored as local wall time, a lost or reordered line item, duplicates.
"""

from __future__ import annotations

import json
import re
import typing as t
from copy import deepcopy
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support import warehouse_check as check_warehouse

ROOT = Path(__file__).resolve().parents[2]


SERVED: dict[str, t.Any] = {
    "id": "inv-1",
    "totalAmount": Decimal("47947.724043644385255950"),
    "sumNetAmount": Decimal("22.10"),
    "paymentTermDuration": 30,
    "status": "PAID",
    "updatedDate": "2026-03-04T10:00:00.123+02:00",
    "invoiceDate": "2026-03-04",
    "lineItems": [
        {
            "name": "Conseil",
            "quantity": 2,
            "unitAmount": Decimal("0.123456789012345678"),
            "createdDate": "2026-03-04T08:00:00Z",
            "dimensions": [{"id": "d1", "name": "Été 2026"}],
        },
        {"name": "Hébergement", "quantity": 1, "unitAmount": Decimal("10.00"), "dimensions": None},
    ],
    "addresses": None,
}
# What a correct load looks like: UTC timestamps (naive at top level, as in a
# `timestamp without time zone` column), line items back from JSON.
LOADED: dict[str, t.Any] = {
    **deepcopy(SERVED),
    "updatedDate": "2026-03-04T08:00:00.123",
    "invoiceDate": "2026-03-04T00:00:00",
    "target_system": "qonto",
    "account_label": "default",
}


def report_for(rows: list[dict], deleted: set[str] | None = None) -> t.Any:
    """check_warehouse's TableReport (the script is loaded from its file, so untyped here)."""
    truth = check_warehouse.Truth({"inv-1": deepcopy(SERVED)}, deleted or set())
    return check_warehouse.compare_table("invoices", truth, rows)


def test_a_faithful_load_passes_and_counts_what_it_compared() -> None:
    report = report_for([deepcopy(LOADED)])
    assert report.ok(), report.tally.examples
    assert report.tally.money == 7  # 4 top-level numbers + 3 in line items
    assert report.tally.instants == 3
    assert report.tally.line_items == 2


@pytest.mark.parametrize(
    ("field", "stored", "kind"),
    [
        ("totalAmount", 47947.72404364438, "money"),  # through float
        ("totalAmount", Decimal("47947.724043644385255950000"), "money"),  # scale changed
        ("sumNetAmount", Decimal("22.1"), "money"),  # trailing zero dropped
        ("paymentTermDuration", Decimal("30.0"), "money"),  # 30 became 30.0
        ("updatedDate", "2026-03-04T10:00:00.123", "timestamp"),  # Paris wall time as UTC
        ("invoiceDate", "2026-03-03T23:00:00", "timestamp"),
        ("status", "paid", "value"),
    ],
)
def test_each_kind_of_loss_is_caught(field: str, stored: object, kind: str) -> None:
    row = {**deepcopy(LOADED), field: stored}
    report = report_for([row])
    assert not report.ok()
    assert report.tally.examples[0].startswith(kind), report.tally.examples


def test_the_same_instant_in_another_offset_passes() -> None:
    row = {**deepcopy(LOADED), "updatedDate": "2026-03-04T09:00:00.123+01:00"}
    assert report_for([row]).ok()


def test_line_items_must_be_intact_and_in_order() -> None:
    for change in (
        lambda items: items.pop(),
        lambda items: items.reverse(),
        lambda items: items[0].update(unitAmount=0.12345678901234568),
        lambda items: items[0]["dimensions"].clear(),
        lambda items: items[1].pop("name"),
    ):
        row = deepcopy(LOADED)
        change(row["lineItems"])
        report = report_for([row])
        assert not report.ok()
        assert report.tally.line_items_wrong == 1


def test_line_items_kept_as_json_text_are_compared_too() -> None:
    """As JSON-typed columns (DuckDB) and text files (CSV) keep them; numbers as written."""
    row = deepcopy(LOADED)
    text = json.dumps(row["lineItems"], default=lambda d: f"@{d}@")
    row["lineItems"] = re.sub(r'"@([0-9.]+)@"', r"\1", text)
    assert "0.123456789012345678," in row["lineItems"]
    assert report_for([row]).ok(), report_for([row]).tally.examples
    row["lineItems"] = text.replace('"@0.123456789012345678@"', "0.12345678901234568")
    assert not report_for([row]).ok()


def test_duplicates_missing_and_deleted_rows_are_counted() -> None:
    assert report_for([deepcopy(LOADED), deepcopy(LOADED)]).duplicates == 1
    assert not report_for([deepcopy(LOADED), deepcopy(LOADED)]).ok()
    assert report_for([]).missing == 1
    gone = {**deepcopy(LOADED), "id": "inv-0"}
    kept = report_for([deepcopy(LOADED), gone], deleted={"inv-0"})
    assert kept.deleted_kept == 1
    assert not kept.ok()
    assert kept.ok(deleted="kept")
    assert not report_for([deepcopy(LOADED), {**gone, "id": "stranger"}]).ok()


def test_the_printed_table_is_aligned() -> None:
    good = report_for([deepcopy(LOADED)])
    bad = report_for([{**deepcopy(LOADED), "totalAmount": 1.5}])
    bad.table = "booking_proposals"  # a longer name than the header's column
    header, first, second = check_warehouse.render([good, bad], "qonto").splitlines()[:3]
    # Numbers are right-aligned under their header, text left-aligned.
    for column, cell in (("rows", "1"), ("emulator", "1")):
        end = header.index(column) + len(column)
        assert first[end - len(cell) : end] == cell
        assert second[end - len(cell) : end] == cell
    assert header.index("result") == first.index("OK") == second.index("MISMATCH")
