"""The Maesn emulator behaves as specified: real HTTP on loopback, no tap involved."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tap_maesn_qonto.emulator import (
    DEFAULT_API_KEY,
    QONTO_ACCOUNT_KEY,
    SANDBOX_ACCOUNT_KEY,
    Emulator,
    EmulatorSettings,
)

AUTH = {"X-API-KEY": DEFAULT_API_KEY, "X-ACCOUNT-KEY": QONTO_ACCOUNT_KEY}
SMALL = {"invoices": 23, "bills": 20, "bookingProposals": 7}
REPO_ROOT = Path(__file__).resolve().parent.parent
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# Every property of the DTOs in the vendored Maesn OpenAPI spec (maesn-openapi.yaml), plus `id`
# on invoices (the newer docs' name for the deprecated `invoiceId`).
INVOICE_KEYS = {
    "id", "invoiceId", "addresses", "contactId", "createdDate", "currency", "discountAmount",
    "dueDate", "fileId", "invoiceDate", "invoiceNumber", "invoiceType", "journalCode",
    "lineAmountTypes", "lineItems", "name", "oneLineAddress", "paidDate", "paymentStatus",
    "paymentTermDuration", "paymentTermId", "reference", "shippingDate", "status", "sumNetAmount",
    "taxRule", "totalAmount", "totalTaxAmount", "updatedDate",
}  # fmt: skip
INVOICE_LINE_KEYS = {
    "lineItemId", "accountId", "createdDate", "description", "dimensions", "discountItemAmount",
    "discountItemPercentage", "grossAmount", "itemsAmount", "itemId", "name", "quantity",
    "taxCode", "taxRatePercentage", "unitAmount", "updatedDate",
}  # fmt: skip
BILL_KEYS = {
    "id", "accountId", "addresses", "billDate", "billNumber", "contactId", "createdDate",
    "currency", "deliveryDate", "dueDate", "fileId", "journalCode", "lineItems", "name",
    "oneLineAddress", "paidDate", "paymentReference", "paymentTermCode", "paymentStatus",
    "paymentDays", "reference", "shippingDate", "shippingType", "status", "taxRule", "taxText",
    "totalDiscountAmount", "totalDiscountPercentage", "totalGrossAmount", "totalNetAmount",
    "totalTaxAmount", "updatedDate",
}  # fmt: skip
BILL_LINE_KEYS = {
    "id", "accountId", "accountNumber", "createdDate", "deferredEndDate", "deferredStartDate",
    "description", "dimensions", "itemId", "itemName", "quantity", "taxCode", "taxRatePercentage",
    "totalDiscountAmount", "totalDiscountPercentage", "totalGrossAmount", "totalNetAmount",
    "totalTaxAmount", "unitAmount", "unitDiscountAmount", "unitDiscountPercentage", "unitName",
    "updatedDate",
}  # fmt: skip
BOOKING_PROPOSAL_KEYS = {
    "id", "accountName", "addresses", "bankAccountId", "bankAccountNumber", "bankCode", "bic",
    "bookingProposalDate", "bookingType", "contactAccountNumber", "contactId", "contactName",
    "createdDate", "currency", "deliveryDate", "discountPaymentDate", "discountPaymentDate2",
    "dueDate", "files", "journalCode", "iban", "isPaymentOrder", "ledgerName", "lineItems",
    "notes", "number", "orderId", "paidDate", "paymentTermsId", "status", "taskId",
    "totalGrossAmount", "updatedDate", "vatId",
}  # fmt: skip
BOOKING_PROPOSAL_LINE_KEYS = {
    "id", "accountCode", "accountId", "accountName", "accountNumber", "bookingTaxCode",
    "createdDate", "description", "dimension1", "dimension2", "discountAmount", "discountAmount2",
    "discountPercentage", "discountPercentage2", "taxCode", "taxRatePercentage",
    "totalGrossAmount", "totalNetAmount", "type", "updatedDate",
}  # fmt: skip
SHAPES = {
    "invoices": (INVOICE_KEYS, INVOICE_LINE_KEYS),
    "bills": (BILL_KEYS, BILL_LINE_KEYS),
    "bookingProposals": (BOOKING_PROPOSAL_KEYS, BOOKING_PROPOSAL_LINE_KEYS),
}


# --------------------------------------------------------------------------- helpers


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body, parse_float=Decimal)


def call(
    emu: Emulator | str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: object = None,
    timeout: float = 5.0,
) -> Response:
    url = urlsplit(emu if isinstance(emu, str) else emu.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    try:
        target = path + (f"?{urlencode(params)}" if params else "")
        payload = None if body is None else json.dumps(body)
        connection.request(
            method, target, body=payload, headers=AUTH if headers is None else headers
        )
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def list_page(emu: Emulator, resource: str, **params: Any) -> Response:
    return call(emu, f"/accounting/{resource}", params)


def all_pages(emu: Emulator, resource: str, **params: Any) -> list[dict[str, Any]]:
    """Every page until a short one, as a well-behaved client pages."""
    limit = params.setdefault("limit", 5)
    pages = []
    for page in range(1, 10_000):
        response = list_page(emu, resource, page=page, **params)
        assert response.status == 200, response.body
        pages.append(response.json())
        if len(pages[-1]["data"]) < limit:
            return pages
    raise AssertionError("paging never ended")


def records_of(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for page in pages for record in page["data"]]


def instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@pytest.fixture
def emu() -> Any:
    with Emulator(counts=SMALL) as emulator:
        yield emulator


# --------------------------------------------------------------------------- basics and auth


def test_health_answers_without_keys(emu: Emulator) -> None:
    response = call(emu, "/health", headers={})
    assert (response.status, response.body) == (200, b"Service is healthy")


def test_user_info_describes_the_end_user(emu: Emulator) -> None:
    response = call(emu, "/user/user-info")
    document = response.json()
    assert response.status == 200
    assert set(document["data"]) == {"id", "account_id", "family_name", "name"}
    assert (document["meta"], document["errors"], document["rawData"]) == ({}, None, None)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-ACCOUNT-KEY": QONTO_ACCOUNT_KEY},
        {"X-API-KEY": "wrong", "X-ACCOUNT-KEY": QONTO_ACCOUNT_KEY},
        {"X-API-KEY": DEFAULT_API_KEY},
        {"X-API-KEY": DEFAULT_API_KEY, "X-ACCOUNT-KEY": "wrong"},
    ],
)
def test_missing_or_unknown_keys_are_401(emu: Emulator, headers: dict[str, str]) -> None:
    for path in ("/accounting/invoices", "/user/user-info"):
        response = call(emu, path, headers=headers)
        assert response.status == 401
        assert response.json()["statusCode"] == 401
        assert response.json()["error"] == "Unauthorized"


def test_header_names_are_case_insensitive(emu: Emulator) -> None:
    headers = {"x-api-key": DEFAULT_API_KEY, "X-Account-Key": QONTO_ACCOUNT_KEY}
    assert call(emu, "/accounting/bills", headers=headers).status == 200


def test_inactive_account_is_403(emu: Emulator) -> None:
    emu.configure(inactive_accounts=[QONTO_ACCOUNT_KEY])
    response = list_page(emu, "invoices")
    assert response.status == 403
    assert response.json()["error"] == "Forbidden"
    sandbox = {**AUTH, "X-ACCOUNT-KEY": SANDBOX_ACCOUNT_KEY}
    assert call(emu, "/accounting/invoices", headers=sandbox).status == 200


def test_unknown_route_is_a_nest_404(emu: Emulator) -> None:
    response = call(emu, "/accounting/customers")
    assert response.status == 404
    assert response.json()["message"] == "Cannot GET /accounting/customers"


def test_keep_alive_serves_several_requests_on_one_connection(emu: Emulator) -> None:
    url = urlsplit(emu.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/accounting/invoices?limit=5", headers=AUTH)
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Length") == str(len(response.read()))
    finally:
        connection.close()


# --------------------------------------------------------------------------- records


@pytest.mark.parametrize("resource", ["invoices", "bills", "bookingProposals"])
def test_records_carry_every_spec_key(resource: str) -> None:
    record_keys, line_keys = SHAPES[resource]
    with Emulator(counts={resource: 60}) as emu:
        records = records_of(all_pages(emu, resource, limit=100))
    assert all(set(record) == record_keys for record in records)
    lines = [line for record in records for line in record["lineItems"] or []]
    assert lines
    assert all(set(line) == line_keys for line in lines)


def test_invoices_carry_equal_id_and_invoice_id(emu: Emulator) -> None:
    records = list_page(emu, "invoices").json()["data"]
    assert all(record["id"] == record["invoiceId"] for record in records)
    assert all(UUID4.fullmatch(record["id"]) for record in records)


def test_numbers_are_exact_decimal_text_and_text_is_raw_utf8() -> None:
    with Emulator(counts={"invoices": 400}) as emu:
        bodies = b"".join(list_page(emu, "invoices", page=p, limit=100).body for p in (1, 2, 3, 4))
    assert re.search(rb'"totalTaxAmount":\d+\.\d{15,}[,}]', bodies), "some amounts need > 15 digits"
    assert re.search(rb'"totalAmount":\d+\.\d0[,}]', bodies), "some amounts keep a trailing zero"
    assert re.search(rb'"totalAmount":\d+\.\d[1-9]?[,}]', bodies), "some amounts are JS-style"
    assert "Müller & Söhne GmbH".encode() in bodies
    assert "株式会社山田商事".encode() in bodies


def test_timestamps_come_in_mixed_formats() -> None:
    with Emulator(counts={"bills": 200}) as emu:
        records = records_of(all_pages(emu, "bills", limit=100))
    created = {record["createdDate"] for record in records}
    patterns = [
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d",
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d",
    ]
    for pattern in patterns:
        assert any(re.fullmatch(pattern, text) for text in created), pattern
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\d", record["billDate"]) for record in records)
    for record in records:
        assert instant(record["createdDate"]) <= instant(record["updatedDate"])
        assert datetime(2024, 1, 1, tzinfo=UTC) <= instant(record["createdDate"])
        assert instant(record["updatedDate"]) <= datetime(2026, 11, 1, tzinfo=UTC)


def test_same_seed_same_data_other_seed_other_data() -> None:
    with Emulator(counts=SMALL) as first, Emulator(counts=SMALL) as second:
        assert first.truth("bills") == second.truth("bills")
        assert list_page(first, "bills").body == list_page(second, "bills").body
    with Emulator(counts=SMALL, seed=7) as other:
        assert set(other.truth("bills")).isdisjoint(first.truth("bills"))


def test_each_target_system_has_its_own_dataset(emu: Emulator) -> None:
    sandbox = {**AUTH, "X-ACCOUNT-KEY": SANDBOX_ACCOUNT_KEY}
    served = call(emu, "/accounting/invoices", {"limit": 50}, headers=sandbox).json()["data"]
    assert {record["id"] for record in served} == set(emu.truth("invoices", "qonto-sandbox"))
    assert set(emu.truth("invoices", "qonto-sandbox")).isdisjoint(emu.truth("invoices", "qonto"))
    assert emu.truth("invoices", SANDBOX_ACCOUNT_KEY) == emu.truth("invoices", "qonto-sandbox")
    qonto_user = call(emu, "/user/user-info").json()["data"]
    sandbox_user = call(emu, "/user/user-info", headers=sandbox).json()["data"]
    assert qonto_user["id"] != sandbox_user["id"]


def test_truth_is_what_is_served(emu: Emulator) -> None:
    served = records_of(all_pages(emu, "bookingProposals"))
    assert {record["id"]: record for record in served} == emu.truth("bookingProposals")


def test_extra_fields_adds_unknown_fields_everywhere(emu: Emulator) -> None:
    emu.configure(extra_fields=True)
    records = list_page(emu, "invoices", limit=20).json()["data"]
    assert all(record["einvoicingStatus"] == "SENT" for record in records)
    lines = [line for record in records for line in record["lineItems"]]
    assert lines
    assert all("einvoicingLineRef" in line for line in lines)
    assert all(set(record) - INVOICE_KEYS == {"einvoicingStatus"} for record in records)


def test_null_updated_dates_are_served_and_always_pass_the_filter(emu: Emulator) -> None:
    emu.configure(null_updated_date_fraction=1.0)
    response = list_page(emu, "bills", limit=50, lastModifiedAt="2030-01-01")
    records = response.json()["data"]
    assert len(records) == SMALL["bills"]
    assert all(record["updatedDate"] is None for record in records)


# --------------------------------------------------------------------------- paging


@pytest.mark.parametrize("count", [20, 23])
def test_pages_cover_the_truth_exactly_once(count: int) -> None:
    with Emulator(counts={"invoices": count}) as emu:
        pages = all_pages(emu, "invoices", limit=5)
        truth = emu.truth("invoices")
    expected_pages = -(-count // 5)
    for number, page in enumerate(pages, start=1):
        pagination = page["meta"]["pagination"]
        assert pagination == {
            "total": count,
            "perPage": 5,
            "currentPage": number,
            "totalPages": expected_pages,
        }
        assert page["errors"] is None
        assert page["rawData"] is None
        assert page["meta"]["warnings"] == []
    ids = [record["id"] for record in records_of(pages)]
    assert len(ids) == len(set(ids)) == count
    assert set(ids) == set(truth)


def test_limit_defaults_to_100(emu: Emulator) -> None:
    document = list_page(emu, "invoices").json()
    assert document["meta"]["pagination"]["perPage"] == 100
    assert len(document["data"]) == SMALL["invoices"]


@pytest.mark.parametrize("limit", ["7", "0", "1000", "ten", ""])
def test_limit_outside_the_enum_is_400(emu: Emulator, limit: str) -> None:
    response = list_page(emu, "invoices", limit=limit)
    assert response.status == 400
    assert response.json() == {
        "statusCode": 400,
        "message": ["limit must be one of the following values: 5, 10, 20, 50, 100"],
        "error": "Bad Request",
    }


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "x"},
        {"lastModifiedAt": "yesterday"},
        {"lastModifiedAt": "2026-03-04T17:58:30 02:00"},  # a '+' sent unencoded
        {"orderField": "billDate"},
        {"orderDir": "UP"},
    ],
)
def test_invalid_parameters_are_400(emu: Emulator, params: dict[str, str]) -> None:
    response = list_page(emu, "invoices", **params)
    assert response.status == 400
    assert response.json()["error"] == "Bad Request"


def test_ignored_parameters_are_accepted(emu: Emulator) -> None:
    params = {
        "environmentName": "prod",
        "companyId": "c1",
        "rawData": "true",
        "status": "PAID",
        "paymentStatus": "PAID",
        "bookingType": "BILL",
        "dueDateFrom": "2025-01-01",
    }
    response = list_page(emu, "invoices", **params)
    assert response.status == 200
    assert response.json()["meta"]["pagination"]["total"] == SMALL["invoices"]


def test_zero_records_have_zero_pages() -> None:
    with Emulator(counts={"bills": 0}) as emu:
        document = list_page(emu, "bills", limit=10).json()
    assert document["data"] == []
    assert document["meta"]["pagination"] == {
        "total": 0,
        "perPage": 10,
        "currentPage": 1,
        "totalPages": 0,
    }


def test_past_the_last_page_is_empty_by_default(emu: Emulator) -> None:
    document = list_page(emu, "invoices", limit=10, page=4).json()
    assert document["data"] == []
    assert document["meta"]["pagination"]["total"] == SMALL["invoices"]
    assert document["meta"]["pagination"]["totalPages"] == 3


def test_past_the_last_page_can_be_a_qonto_422(emu: Emulator) -> None:
    emu.configure(past_last_page="422")
    assert list_page(emu, "invoices", limit=10, page=3).status == 200
    response = list_page(emu, "invoices", limit=10, page=4)
    assert response.status == 422
    assert response.json() == {
        "errors": [{"code": "invalid_page", "detail": "page is out of range"}]
    }


@pytest.mark.parametrize(
    ("mode", "expected_meta"),
    [("null", {"warnings": [], "pagination": None}), ("no_meta", None)],
)
def test_pagination_meta_can_be_missing(emu: Emulator, mode: str, expected_meta: Any) -> None:
    emu.configure(pagination_meta=mode)
    document = list_page(emu, "bills", limit=5).json()
    assert document["meta"] == expected_meta
    assert len(document["data"]) == 5


# --------------------------------------------------------------------------- filter and order


def test_last_modified_filter_is_inclusive_and_offset_aware(emu: Emulator) -> None:
    truth = emu.truth("invoices")
    updated = sorted(instant(record["updatedDate"]) for record in truth.values())
    boundary = updated[len(updated) // 2]
    as_paris_time = boundary.astimezone(timezone(timedelta(hours=2))).isoformat()
    records = records_of(all_pages(emu, "invoices", lastModifiedAt=as_paris_time))
    expected = {key for key, record in truth.items() if instant(record["updatedDate"]) >= boundary}
    assert {record["id"] for record in records} == expected
    assert any(instant(record["updatedDate"]) == boundary for record in records)


def test_last_modified_accepts_a_plain_date(emu: Emulator) -> None:
    truth = emu.truth("bills")
    response = list_page(emu, "bills", limit=50, lastModifiedAt="2025-06-01")
    expected = {
        key
        for key, record in truth.items()
        if instant(record["updatedDate"]) >= datetime(2025, 6, 1, tzinfo=UTC)
    }
    assert {record["id"] for record in response.json()["data"]} == expected
    assert response.json()["meta"]["pagination"]["total"] == len(expected)


@pytest.mark.parametrize("field", ["createdDate", "updatedDate"])
@pytest.mark.parametrize("direction", ["ASC", "DESC", "asc"])
def test_ordering_by_timestamps(emu: Emulator, field: str, direction: str) -> None:
    records = records_of(all_pages(emu, "bills", orderField=field, orderDir=direction))
    instants = [instant(record[field]) for record in records]
    descending = direction.upper() == "DESC"
    assert instants == sorted(instants, reverse=descending)
    assert len(records) == SMALL["bills"]


def test_default_order_is_newest_created_first(emu: Emulator) -> None:
    records = records_of(all_pages(emu, "invoices"))
    instants = [instant(record["createdDate"]) for record in records]
    assert instants == sorted(instants, reverse=True)


def test_ordering_by_number(emu: Emulator) -> None:
    records = records_of(all_pages(emu, "bookingProposals", orderField="number", orderDir="ASC"))
    numbers = [record["number"] for record in records]
    assert numbers == sorted(numbers)


def test_unhonored_filter_is_ignored_with_a_warning(emu: Emulator) -> None:
    emu.configure(honor_filters=False)
    document = list_page(emu, "invoices", limit=50, lastModifiedAt="2030-01-01T00:00:00Z").json()
    assert len(document["data"]) == SMALL["invoices"]
    assert document["meta"]["warnings"] == [
        "lastModifiedAt is not supported by qonto and was ignored"
    ]


def test_unhonored_ordering_is_ignored_with_a_warning(emu: Emulator) -> None:
    emu.configure(honor_ordering=False)
    document = list_page(emu, "bills", limit=50, orderField="createdDate", orderDir="ASC").json()
    instants = [instant(record["createdDate"]) for record in document["data"]]
    assert instants == sorted(instants, reverse=True)
    assert len(document["meta"]["warnings"]) == 2


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", ["401", "403", "404", "405", "422", "500", "502", "503"])
def test_error_faults_answer_with_their_status(emu: Emulator, kind: str) -> None:
    emu.fail_next(kind)
    response = list_page(emu, "invoices")
    assert response.status == int(kind)
    assert isinstance(response.json(), dict)
    assert list_page(emu, "invoices").status == 200


def test_429_carries_retry_after(emu: Emulator) -> None:
    emu.configure(retry_after=3)
    emu.fail_next("429")
    response = list_page(emu, "bills")
    assert response.status == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["statusCode"] == 429


def test_reset_drops_the_connection(emu: Emulator) -> None:
    emu.fail_next("reset")
    with pytest.raises(ConnectionError):
        list_page(emu, "invoices")
    assert list_page(emu, "invoices").status == 200


def test_slow_outlasts_a_short_client_timeout(emu: Emulator) -> None:
    emu.configure(slow_seconds=0.5)
    emu.fail_next("slow")
    with pytest.raises(TimeoutError):
        call(emu, "/accounting/invoices", timeout=0.1)
    assert list_page(emu, "invoices").status == 200


def test_html_login_page(emu: Emulator) -> None:
    emu.fail_next("html")
    response = list_page(emu, "invoices")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.body.startswith(b"<!DOCTYPE html>")


def test_truncated_json(emu: Emulator) -> None:
    emu.fail_next("truncated")
    response = list_page(emu, "invoices")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_data_not_a_list(emu: Emulator) -> None:
    emu.fail_next("data_not_list")
    document = list_page(emu, "invoices").json()
    assert document["data"] == {}
    assert document["meta"]["pagination"]["total"] == SMALL["invoices"]


def test_fail_next_counts_only_matching_requests(emu: Emulator) -> None:
    emu.fail_next("500", count=2, resource="bills")
    assert list_page(emu, "invoices").status == 200
    assert [list_page(emu, "bills").status for _ in range(3)] == [500, 500, 200]
    stats = emu.stats()
    assert stats["faults"] == {"500": 2}
    assert stats["list_requests"] == {"invoices": 1, "bills": 3}
    assert stats["statuses"] == {"200": 2, "500": 2}
    assert stats["requests"] == 4


def test_fail_always_until_reconfigured(emu: Emulator) -> None:
    emu.configure(fail_always="503")
    assert [list_page(emu, "invoices").status for _ in range(3)] == [503, 503, 503]
    assert call(emu, "/health").status == 200
    emu.configure(fail_always=None)
    assert list_page(emu, "invoices").status == 200


def test_random_faults_follow_the_rate_and_kinds(emu: Emulator) -> None:
    emu.configure(fault_rate=1.0, fault_kinds=["502"])
    assert {list_page(emu, "bills").status for _ in range(5)} == {502}
    emu.configure(fault_rate=0.5, fault_kinds=["500", "503"])
    statuses = [list_page(emu, "bills").status for _ in range(40)]
    assert {200, 500, 503} == set(statuses)


def test_unsupported_endpoint_is_404(emu: Emulator) -> None:
    emu.configure(unsupported=["bookingProposals"])
    response = list_page(emu, "bookingProposals")
    assert response.status == 404
    assert response.json() == {
        "statusCode": 404,
        "message": "Endpoint not supported for target system qonto",
        "error": "Not Found",
    }
    assert list_page(emu, "bills").status == 200


def test_errors_echo_the_keys_only_when_asked(emu: Emulator) -> None:
    emu.fail_next("500")
    assert DEFAULT_API_KEY.encode() not in list_page(emu, "invoices").body
    emu.configure(echo_headers_in_errors=True)
    emu.fail_next("500")
    body = list_page(emu, "invoices").body
    assert DEFAULT_API_KEY.encode() in body
    assert QONTO_ACCOUNT_KEY.encode() in body
    unauthorized = call(emu, "/accounting/bills", headers={"X-API-KEY": "secret-tenant-key"})
    assert b"secret-tenant-key" in unauthorized.body


def test_latency_overlaps_between_concurrent_requests(emu: Emulator) -> None:
    emu.configure(latency_ms=300)
    statuses: list[int] = []

    def fetch() -> None:
        statuses.append(list_page(emu, "invoices").status)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert statuses == [200] * 4
    assert 0.3 <= elapsed < 1.0  # one after the other would take 1.2 s


# --------------------------------------------------------------------------- mutations


def test_update_touches_a_record_now(emu: Emulator) -> None:
    before = emu.truth("invoices")
    started = datetime.now(UTC) - timedelta(seconds=1)
    emu.mutate("invoices", update=1)
    after = emu.truth("invoices")
    changed = [key for key in before if before[key] != after[key]]
    assert len(changed) == 1
    record = after[changed[0]]
    assert instant(record["updatedDate"]) >= started
    assert record["status"] != before[changed[0]]["status"]
    served = list_page(emu, "invoices", lastModifiedAt=started.isoformat()).json()["data"]
    assert [item["id"] for item in served] == changed


def test_create_and_delete_change_truth_and_listing(emu: Emulator) -> None:
    before = set(emu.truth("bills"))
    emu.mutate("bills", create=2, delete=3)
    after = set(emu.truth("bills"))
    deleted = emu.deleted_ids("bills")
    assert len(after - before) == 2
    assert len(deleted) == 3
    assert deleted == before - after
    served = {record["id"] for record in records_of(all_pages(emu, "bills"))}
    assert served == after


def test_mutations_every_n_successful_list_requests(emu: Emulator) -> None:
    emu.configure(mutate_every_requests=2, mutations_per_batch={"update": 1, "create": 1})
    first = list_page(emu, "bookingProposals").json()["meta"]["pagination"]["total"]
    second = list_page(emu, "bookingProposals").json()["meta"]["pagination"]["total"]
    third = list_page(emu, "bookingProposals").json()["meta"]["pagination"]["total"]
    assert (first, second, third) == (7, 7, 8)
    assert emu.stats()["mutations"] == {"update": 1, "create": 1, "delete": 0}


def test_mutations_are_reproducible(emu: Emulator) -> None:
    with Emulator(counts=SMALL) as twin:
        for emulator in (emu, twin):
            emulator.mutate("invoices", delete=2, create=1)
        assert emu.deleted_ids("invoices") == twin.deleted_ids("invoices")
        assert set(emu.truth("invoices")) == set(twin.truth("invoices"))


# --------------------------------------------------------------------------- configuration


def test_configure_rejects_bad_knobs(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="not a runtime knob"):
        emu.configure(seed=3)
    with pytest.raises(ValueError, match="past_last_page"):
        emu.configure(past_last_page="404")
    with pytest.raises(ValueError, match="fault kind"):
        emu.fail_next("teapot")
    with pytest.raises(ValueError, match="fault_rate"):
        Emulator(fault_rate=2)


def test_settings_object_and_overrides_combine() -> None:
    settings = EmulatorSettings(counts={"invoices": 3}, past_last_page="422")
    with Emulator(settings, seed=9) as emu:
        assert emu.settings.seed == 9
        assert emu.settings.counts == {"invoices": 3, "bills": 180, "bookingProposals": 120}
        assert len(emu.truth("invoices")) == 3


# --------------------------------------------------------------------------- admin endpoints


def test_admin_endpoints_drive_the_emulator(emu: Emulator) -> None:
    truth = call(emu, "/_emulator/truth/invoices", {"account": "qonto"}, headers={}).json()
    assert truth["count"] == SMALL["invoices"]
    assert set(truth["ids"]) == set(emu.truth("invoices"))

    mutate = {"resource": "invoices", "create": 1, "delete": 1}
    assert call(emu, "/_emulator/mutate", method="POST", body=mutate, headers={}).status == 200
    truth = call(emu, "/_emulator/truth/invoices", headers={}).json()
    assert truth["count"] == SMALL["invoices"]
    assert len(truth["deleted_ids"]) == 1

    knobs = {"past_last_page": "422", "retry_after": 2}
    assert call(emu, "/_emulator/configure", method="POST", body=knobs, headers={}).status == 200
    assert emu.settings.retry_after == 2

    fault = {"kind": "429", "count": 1, "resource": "bills"}
    assert call(emu, "/_emulator/fail_next", method="POST", body=fault, headers={}).status == 200
    assert list_page(emu, "bills").status == 429

    stats = call(emu, "/_emulator/stats", headers={}).json()
    assert stats["faults"] == {"429": 1}
    assert stats["list_requests"] == {"bills": 1}


def test_admin_rejects_bad_input(emu: Emulator) -> None:
    bad = call(emu, "/_emulator/configure", method="POST", body={"nope": 1}, headers={})
    assert bad.status == 400
    assert "nope" in bad.json()["error"]
    assert call(emu, "/_emulator/truth/customers", headers={}).status == 400
    assert call(emu, "/_emulator/reset", method="POST", headers={}).status == 404


# --------------------------------------------------------------------------- CLI


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    command = [
        sys.executable, "-m", "tap_maesn_qonto.emulator", "--port", "0",
        "--url-file", str(url_file), "--invoices", "12", "--bills", "0", "--booking-proposals", "3",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not url_file.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the emulator never wrote its URL"
            time.sleep(0.05)
        url = url_file.read_text().strip()
        assert call(url, "/health", headers={}).body == b"Service is healthy"
        invoices = call(url, "/accounting/invoices").json()
        assert invoices["meta"]["pagination"]["total"] == 12
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert stdout.startswith(f"Maesn emulator listening on {url} (api key emulator-api-key;")
