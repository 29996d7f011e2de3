"""The Maesn emulator behaves as specified: real HTTP on loopback, no tap involved."""

from __future__ import annotations

import email.utils
import http.client
import json
import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import pytest

from tap_maesn_qonto.emulator import (
    DEFAULT_API_KEY,
    QONTO_ACCOUNT_KEY,
    SANDBOX_ACCOUNT_KEY,
    Emulator,
    EmulatorSettings,
    many_accounts,
)
from tests.support.emulator_calls import AUTH, Response, call

SMALL = {"invoices": 23, "bills": 20, "bookingProposals": 7}
SEEDED_DATA_CAP = datetime(2026, 11, 1, tzinfo=UTC)  # no seeded timestamp is later
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


@pytest.mark.parametrize("target_system", ["qonto", "qonto-sandbox"])
def test_auth_login_url_needs_only_the_tenant_key(emu: Emulator, target_system: str) -> None:
    # GET /auth/{TARGET_SYSTEM} starts the end-user auth flow: no account key exists yet.
    path = f"/auth/{target_system}"
    for headers in ({"X-API-KEY": DEFAULT_API_KEY}, {**AUTH, "X-ACCOUNT-KEY": "wrong"}):
        response = call(emu, path, headers=headers)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.body.decode().startswith(
            f"https://login.emulator.invalid/{target_system}/oauth?state="
        )
    for headers in ({}, {"X-API-KEY": "wrong", "X-ACCOUNT-KEY": QONTO_ACCOUNT_KEY}):
        response = call(emu, path, headers=headers)
        assert response.status == 401
        assert response.json()["message"] == "Invalid or missing X-API-KEY"
    assert emu.stats()["auth_requests"] == {target_system: 4}


def test_auth_login_url_of_an_unknown_target_system_is_405(emu: Emulator) -> None:
    response = call(emu, "/auth/sage-one", headers={"X-API-KEY": DEFAULT_API_KEY})
    assert response.status == 405
    assert response.json()["message"] == "Target system not found"
    assert call(emu, "/auth/sage-one", headers={"X-API-KEY": "wrong"}).status == 401
    assert call(emu, "/auth/qonto/extra", headers={"X-API-KEY": DEFAULT_API_KEY}).status == 404


def test_auth_login_url_is_served_even_for_an_inactive_or_failing_account(emu: Emulator) -> None:
    # Account faults are about X-ACCOUNT-KEY; this endpoint does not look at it.
    emu.configure(
        inactive_accounts=[QONTO_ACCOUNT_KEY], failing_accounts={SANDBOX_ACCOUNT_KEY: "401"}
    )
    for account_key in (QONTO_ACCOUNT_KEY, SANDBOX_ACCOUNT_KEY):
        headers = {**AUTH, "X-ACCOUNT-KEY": account_key}
        assert call(emu, "/auth/qonto", headers=headers).status == 200
        assert call(emu, "/accounting/invoices", headers=headers).status in {401, 403}


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


def test_not_maesn_answers_every_request_with_a_web_servers_html_404(emu: Emulator) -> None:
    emu.configure(not_maesn=True)
    for path in ("/health", "/user/user-info", "/accounting/invoices", "/accounting/bills/x"):
        response = call(emu, path)
        assert response.status == 404
        assert response.headers["Content-Type"] == "text/html"
        assert b"<title>404 Not Found</title>" in response.body
    assert call(emu, "/_emulator/stats", headers={}).status == 200  # admin stays reachable
    emu.configure(not_maesn=False)
    assert call(emu, "/health").status == 200


def test_redirect_api_to_sends_every_api_request_elsewhere(emu: Emulator) -> None:
    emu.configure(redirect_api_to="https://api.example.test")
    response = list_page(emu, "invoices", limit=5, page=2)
    assert response.status == 302
    assert response.headers["Location"] == (
        "https://api.example.test/accounting/invoices?limit=5&page=2"
    )
    assert response.body == b""
    health = call(emu, "/health", headers={})
    assert (health.status, health.headers["Location"]) == (302, "https://api.example.test/health")
    stats = call(emu, "/_emulator/stats", headers={})
    assert stats.status == 200
    assert stats.json()["statuses"] == {"302": 2}
    emu.configure(redirect_api_to=None)
    assert list_page(emu, "invoices").status == 200


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


@pytest.mark.parametrize("resource", ["invoices", "bills", "bookingProposals"])
def test_detail_endpoint_serves_one_record(emu: Emulator, resource: str) -> None:
    truth = emu.truth(resource)
    record_id = sorted(truth)[0]
    response = call(emu, f"/accounting/{resource}/{record_id}")
    assert response.status == 200
    assert response.json() == {
        "meta": {"warnings": []},
        "data": truth[record_id],
        "errors": None,
        "rawData": None,
    }
    assert emu.stats()["detail_requests"] == {resource: 1}


def test_detail_of_a_deleted_or_unknown_record_is_a_nest_404(emu: Emulator) -> None:
    emu.mutate("bills", delete=1)
    (deleted,) = emu.deleted_ids("bills")
    for record_id in (deleted, "00000000-0000-4000-8000-000000000000"):
        response = call(emu, f"/accounting/bills/{record_id}")
        assert response.status == 404
        assert response.json()["statusCode"] == 404
        assert response.json()["error"] == "Not Found"
    assert call(emu, "/accounting/bills/", headers={}).status == 404
    assert call(emu, "/accounting/bills/some-id", headers={}).status == 401


def test_lists_can_omit_line_items_the_detail_endpoint_serves(emu: Emulator) -> None:
    emu.configure(list_omits_line_items=0.5)
    truth = emu.truth("invoices")
    listed = records_of(all_pages(emu, "invoices", limit=10))
    omitted = [record for record in listed if record["lineItems"] is None]
    assert 0 < len(omitted) < len(listed)
    assert any(truth[record["id"]]["lineItems"] for record in omitted)
    for record in listed:
        full = truth[record["id"]]
        assert record == (full | {"lineItems": None} if record in omitted else full)
        detail = call(emu, f"/accounting/invoices/{record['id']}").json()["data"]
        assert detail == full
    # Decided per record: the same records again, and a larger fraction only adds some.
    emu.configure(list_omits_line_items=0.0)
    assert {r["id"]: r for r in records_of(all_pages(emu, "invoices"))} == truth
    emu.configure(list_omits_line_items=0.5)
    again = {r["id"] for r in records_of(all_pages(emu, "invoices")) if r["lineItems"] is None}
    assert again == {record["id"] for record in omitted}
    emu.configure(list_omits_line_items=0.9)
    more = {r["id"] for r in records_of(all_pages(emu, "invoices")) if r["lineItems"] is None}
    assert more > again
    emu.configure(list_omits_line_items=0.0)
    assert all(r["lineItems"] is not None for r in records_of(all_pages(emu, "invoices")))


# --------------------------------------------------------------------------- many accounts


def test_many_accounts_helper_is_deterministic() -> None:
    accounts = many_accounts(3)
    assert accounts == {
        "emulator-account-0001": "qonto",
        "emulator-account-0002": "qonto",
        "emulator-account-0003": "qonto",
    }
    assert many_accounts(3) == accounts
    assert list(many_accounts(2, prefix="tenant-")) == ["tenant-0001", "tenant-0002"]


def test_account_counts_override_counts_per_account() -> None:
    accounts = many_accounts(3)
    first, second, third = accounts
    with Emulator(
        accounts=accounts, counts=SMALL, account_counts={second: {"bills": 3, "invoices": 0}}
    ) as emu:
        assert len(emu.truth("bills", account=second)) == 3
        assert len(emu.truth("invoices", account=second)) == 0
        assert len(emu.truth("bookingProposals", account=second)) == SMALL["bookingProposals"]
        assert len(emu.truth("bills", account=third)) == SMALL["bills"]
        assert emu.truth("bills", account="qonto") == emu.truth("bills", account=first)
        headers = {**AUTH, "X-ACCOUNT-KEY": second}
        served = call(emu, "/accounting/bills", {"limit": 10}, headers=headers).json()
        assert served["meta"]["pagination"]["total"] == 3
        assert {record["id"] for record in served["data"]} == set(emu.truth("bills", second))


def test_failing_accounts_fail_every_request_of_that_account() -> None:
    accounts = many_accounts(5)
    healthy, unauthorized, forbidden, broken, dropped = accounts
    with Emulator(accounts=accounts, counts=SMALL) as emu:
        failures = {unauthorized: "401", forbidden: "403", broken: "500", dropped: "reset"}
        configure = call(
            emu,
            "/_emulator/configure",
            method="POST",
            body={"failing_accounts": failures},
            headers={},
        )
        assert configure.status == 200
        for path in ("/accounting/invoices", "/accounting/bills", "/user/user-info"):
            assert call(emu, path, headers={**AUTH, "X-ACCOUNT-KEY": healthy}).status == 200
            statuses = {}
            for account, failure in failures.items():
                headers = {**AUTH, "X-ACCOUNT-KEY": account}
                if failure == "reset":
                    with pytest.raises(ConnectionError):
                        call(emu, path, headers=headers)
                    continue
                response = call(emu, path, headers=headers)
                statuses[failure] = response.status
                assert response.json()["statusCode"] == response.status
            assert statuses == {"401": 401, "403": 403, "500": 500}
        response = call(emu, "/accounting/invoices", headers={**AUTH, "X-ACCOUNT-KEY": forbidden})
        assert response.json() == {
            "statusCode": 403,
            "message": "The user account is inactive",
            "error": "Forbidden",
        }
        emu.configure(failing_accounts={})
        headers = {**AUTH, "X-ACCOUNT-KEY": dropped}
        assert call(emu, "/accounting/invoices", headers=headers).status == 200


def test_two_hundred_accounts_build_quickly_and_each_has_its_truth() -> None:
    accounts = many_accounts(200)
    started = time.perf_counter()
    emu = Emulator(accounts=accounts, counts=dict.fromkeys(SMALL, 30))
    elapsed = time.perf_counter() - started
    # About 1.7 s on an idle 2-core machine; the generous bound (shared CI runners, xdist) only
    # catches a build gone quadratic.
    assert elapsed < 30, f"200 accounts took {elapsed:.1f} s to build"
    truths = [emu.truth("bills", account=account) for account in accounts]
    assert all(len(truth) == 30 for truth in truths)
    assert len(set().union(*truths)) == 200 * 30  # every account has its own records
    with emu:
        last = list(accounts)[-1]
        headers = {**AUTH, "X-ACCOUNT-KEY": last}
        served = call(emu, "/accounting/bills", {"limit": 50}, headers=headers).json()["data"]
        assert {record["id"] for record in served} == set(truths[-1])


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


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_a_tie_group_shares_one_updated_date_and_ties_break_by_id(direction: str) -> None:
    with Emulator(counts=SMALL, tie_group_size=8) as emu:
        for resource, count in SMALL.items():
            truth = emu.truth(resource)
            sharing = Counter(instant(record["updatedDate"]) for record in truth.values())
            assert max(sharing.values()) == min(count, 8)
            for record in truth.values():
                assert instant(record["createdDate"]) <= instant(record["updatedDate"])
                assert instant(record["updatedDate"]) <= SEEDED_DATA_CAP
        records = records_of(
            all_pages(emu, "invoices", limit=5, orderField="updatedDate", orderDir=direction)
        )
    keys = [(instant(record["updatedDate"]), record["id"]) for record in records]
    assert keys == sorted(keys, reverse=direction == "DESC")
    assert len(keys) == SMALL["invoices"]


def test_tie_groups_are_reproducible_and_leave_other_records_alone() -> None:
    with Emulator(counts=SMALL) as plain, Emulator(counts=SMALL, tie_group_size=5) as tied:
        with Emulator(counts=SMALL, tie_group_size=5) as twin:
            assert tied.truth("bills") == twin.truth("bills")
        before, after = plain.truth("bills"), tied.truth("bills")
    assert set(before) == set(after)
    changed = [key for key in before if before[key] != after[key]]
    assert 0 < len(changed) <= 5
    for key in changed:
        assert before[key] | {"updatedDate": None} == after[key] | {"updatedDate": None}


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_nulls_last_puts_null_updated_dates_after_the_others(direction: str) -> None:
    with Emulator(counts=SMALL, null_updated_date_fraction=0.4) as emu:
        params = {"orderField": "updatedDate", "orderDir": direction}
        default = [r["updatedDate"] for r in records_of(all_pages(emu, "bills", **params))]
        emu.configure(nulls_last=True)
        records = records_of(all_pages(emu, "bills", **params))
    nulls = default.count(None)
    assert 0 < nulls < len(default)
    # By default null sorts as the oldest instant: first ascending, last descending.
    default_nulls = default[:nulls] if direction == "ASC" else default[-nulls:]
    assert default_nulls == [None] * nulls
    served = [record["updatedDate"] for record in records]
    assert served[-nulls:] == [None] * nulls
    assert None not in served[:-nulls]
    dated = [instant(text) for text in served[:-nulls]]
    assert dated == sorted(dated, reverse=direction == "DESC")
    undated_ids = [record["id"] for record in records[-nulls:]]
    assert undated_ids == sorted(undated_ids, reverse=direction == "DESC")


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    "kind", ["401", "403", "404", "405", "409", "410", "422", "500", "502", "503"]
)
def test_error_faults_answer_with_their_status(emu: Emulator, kind: str) -> None:
    emu.fail_next(kind)
    response = list_page(emu, "invoices")
    assert response.status == int(kind)
    assert isinstance(response.json(), dict)
    if kind not in ("422",):  # Qonto's own shape; the others are Maesn's (NestJS)
        assert response.json()["statusCode"] == int(kind)
    assert list_page(emu, "invoices").status == 200


def test_429_carries_retry_after(emu: Emulator) -> None:
    emu.configure(retry_after=3)
    emu.fail_next("429")
    response = list_page(emu, "bills")
    assert response.status == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["statusCode"] == 429


HTTP_DATE = r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d"


@pytest.mark.parametrize(
    ("style", "zone"),
    [("http_date", " GMT"), ("http_date_minus0000", " -0000"), ("http_date_no_zone", "")],
)
def test_429_retry_after_can_be_an_http_date(emu: Emulator, style: str, zone: str) -> None:
    emu.configure(retry_after=120, retry_after_format=style)
    emu.fail_next("429")
    before = time.time()
    response = list_page(emu, "bills")
    after = time.time()
    assert response.status == 429
    header = response.headers["Retry-After"]
    assert re.fullmatch(HTTP_DATE + re.escape(zone), header), header
    when = email.utils.parsedate_to_datetime(header).replace(tzinfo=UTC).timestamp()
    assert before + 120 <= when < after + 121  # rounded up to a whole second


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


def test_errors_200_is_a_200_envelope_carrying_errors(emu: Emulator) -> None:
    emu.fail_next("errors_200")
    response = list_page(emu, "invoices", limit=10)
    assert response.status == 200
    document = response.json()
    assert document["data"] == []
    assert document["errors"] == {"message": "Qonto request failed", "code": "UPSTREAM_ERROR"}
    assert document["rawData"] is None
    assert document["meta"]["pagination"]["total"] == SMALL["invoices"]
    assert document["meta"]["warnings"] == []
    assert list_page(emu, "invoices").json()["errors"] is None


def test_html_404_fault_looks_like_another_web_server(emu: Emulator) -> None:
    emu.fail_next("html_404")
    response = list_page(emu, "invoices")
    assert response.status == 404
    assert response.headers["Content-Type"] == "text/html"
    assert response.body.startswith(b"<html>")
    assert list_page(emu, "invoices").status == 200


def test_fail_next_can_target_one_page(emu: Emulator) -> None:
    emu.fail_next("500", resource="invoices", page=2)
    assert list_page(emu, "invoices").status == 200  # no page parameter: page 1
    assert list_page(emu, "bills", page=2, limit=5).status == 200
    assert list_page(emu, "invoices", page=2, limit=5).status == 500
    assert list_page(emu, "invoices", page=2, limit=5).status == 200
    fault = {"kind": "503", "count": 2, "page": 1}
    assert call(emu, "/_emulator/fail_next", method="POST", body=fault, headers={}).status == 200
    assert list_page(emu, "bills", page=3, limit=5).status == 200
    assert list_page(emu, "bills", limit=5).status == 503
    assert list_page(emu, "invoices", page=1).status == 503
    assert list_page(emu, "invoices", page=1).status == 200
    with pytest.raises(ValueError, match="page"):
        emu.fail_next("500", page=0)


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


def test_updated_lag_stamps_changes_behind_the_wall_clock() -> None:
    lag = 3 * 3600
    with Emulator(counts=SMALL, updated_lag_seconds=lag) as emu:
        before = set(emu.truth("invoices"))
        started = datetime.now(UTC)
        emu.mutate("invoices", update=1, create=1)
        finished = datetime.now(UTC)
        after_seeded = SEEDED_DATA_CAP + timedelta(milliseconds=1)
        since = max(started - timedelta(seconds=lag + 1), after_seeded).isoformat()
        served = list_page(emu, "invoices", lastModifiedAt=since).json()["data"]
    assert len(served) == 2
    assert len({record["id"] for record in served} - before) == 1  # the created one
    lowest = max(started - timedelta(seconds=lag), SEEDED_DATA_CAP) - timedelta(milliseconds=1)
    highest = max(finished - timedelta(seconds=lag), SEEDED_DATA_CAP) + timedelta(seconds=1)
    for record in served:
        assert lowest <= instant(record["updatedDate"]) <= highest
    assert any(record["createdDate"] == record["updatedDate"] for record in served)


def test_changes_keep_increasing_when_the_lag_is_below_the_seeded_data() -> None:
    ten_years = 10 * 365 * 24 * 3600
    with Emulator(counts=SMALL, updated_lag_seconds=ten_years) as emu:
        stamps = []
        for _ in range(3):
            emu.mutate("bills", update=1)
            params = {"orderField": "updatedDate", "orderDir": "DESC", "limit": 5}
            newest = list_page(emu, "bills", **params).json()["data"][0]
            stamps.append(instant(newest["updatedDate"]))
    assert all(stamp > SEEDED_DATA_CAP for stamp in stamps)
    assert stamps == sorted(set(stamps))


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


def test_new_knobs_are_validated(emu: Emulator) -> None:
    bad_runtime: list[tuple[dict[str, Any], str]] = [
        ({"retry_after_format": "rfc850"}, "retry_after_format"),
        ({"list_omits_line_items": 1.5}, "list_omits_line_items"),
        ({"nulls_last": "yes"}, "nulls_last"),
        ({"not_maesn": 1}, "not_maesn"),
        ({"redirect_api_to": "ftp://example.test"}, "redirect_api_to"),
        ({"failing_accounts": {"no-such-account": "500"}}, "account of failing_accounts"),
        ({"failing_accounts": {QONTO_ACCOUNT_KEY: "418"}}, "account failure"),
        ({"updated_lag_seconds": float("nan")}, "updated_lag_seconds"),
        ({"pagination_totals_as_strings": "yes"}, "pagination_totals_as_strings"),
        ({"honor_order_dir": 0}, "honor_order_dir"),
        ({"sort_scope": "window"}, "sort_scope"),
        ({"filter_semantics": "gt"}, "filter_semantics"),
        ({"duplicate_ids": -1}, "duplicate_ids"),
        ({"duplicate_ids": True}, "duplicate_ids"),
        ({"rejected_order_fields": ["name"]}, "rejected order field"),
        ({"auth_check_failure": "403"}, "auth_check_failure"),
        ({"failing_details": {"some-id": "trickle"}}, "detail fault kind"),
        ({"trickle_bytes": 0}, "trickle_bytes"),
        ({"trickle_interval_seconds": -1}, "trickle_interval_seconds"),
        ({"fault_kinds": ["408"]}, "fault kind"),
    ]
    for knobs, problem in bad_runtime:
        with pytest.raises(ValueError, match=problem):
            emu.configure(**knobs)
    construction_only: dict[str, Any]
    for construction_only in ({"tie_group_size": 3}, {"account_counts": {}}):
        with pytest.raises(ValueError, match="not a runtime knob"):
            emu.configure(**construction_only)
    with pytest.raises(ValueError, match="tie_group_size"):
        Emulator(tie_group_size=-1)
    with pytest.raises(ValueError, match="account_counts"):
        Emulator(account_counts={"no-such-account": {"bills": 1}})
    with pytest.raises(ValueError, match="account_counts resource"):
        Emulator(account_counts={QONTO_ACCOUNT_KEY: {"customers": 1}})
    emu.configure(failing_accounts={QONTO_ACCOUNT_KEY: 500}, retry_after_format="http_date")
    assert emu.settings.failing_accounts == {QONTO_ACCOUNT_KEY: "500"}


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


# --------------------------------------------------------------------------- misbehaviours of
# the "Delete nothing, lose nothing" issue (each default leaves the API as above)


def test_pagination_totals_can_be_json_strings() -> None:
    with Emulator(counts=SMALL, pagination_totals_as_strings=True) as emu:
        document = list_page(emu, "invoices", limit=10, page=2).json()
    assert document["meta"]["pagination"] == {
        "total": "23",
        "perPage": "10",
        "currentPage": "2",
        "totalPages": "3",
    }
    assert len(document["data"]) == 10


def test_order_dir_can_be_ignored_silently(emu: Emulator) -> None:
    emu.configure(honor_order_dir=False)
    for direction in ("ASC", "DESC"):
        params = {"orderField": "updatedDate", "orderDir": direction, "limit": 50}
        document = list_page(emu, "bills", **params).json()
        instants = [instant(record["updatedDate"]) for record in document["data"]]
        assert instants == sorted(instants)  # always ASC
        assert document["meta"]["warnings"] == []
    native = list_page(emu, "bills", limit=50, orderDir="ASC").json()["data"]
    instants = [instant(record["createdDate"]) for record in native]
    assert instants == sorted(instants, reverse=True)  # no orderField: the native order


def test_sort_scope_page_sorts_each_page_of_the_native_order_alone(emu: Emulator) -> None:
    body = {"sort_scope": "page"}
    assert call(emu, "/_emulator/configure", method="POST", body=body, headers={}).status == 200
    native = [r["id"] for r in records_of(all_pages(emu, "invoices", limit=5))]
    params = {"orderField": "updatedDate", "orderDir": "ASC", "limit": 5}
    pages = [page["data"] for page in all_pages(emu, "invoices", **params)]
    for number, page in enumerate(pages):
        assert {r["id"] for r in page} == set(native[number * 5 : number * 5 + 5])
        instants = [instant(record["updatedDate"]) for record in page]
        assert instants == sorted(instants)
    everything = [instant(record["updatedDate"]) for page in pages for record in page]
    assert everything != sorted(everything)  # not the list's order: only each page's
    emu.configure(sort_scope="list")
    everything = [
        instant(r["updatedDate"]) for r in records_of(all_pages(emu, "invoices", **params))
    ]
    assert everything == sorted(everything)


def test_gt_seconds_filter_drops_the_filters_own_second(emu: Emulator) -> None:
    truth = emu.truth("invoices")
    updated = sorted(instant(record["updatedDate"]) for record in truth.values())
    boundary = updated[len(updated) // 2]
    since = boundary  # a record's own updatedDate: "gte" serves it, "gt_seconds" does not

    def served(**knobs: Any) -> set[str]:
        emu.configure(**knobs)
        records = records_of(all_pages(emu, "invoices", lastModifiedAt=since.isoformat()))
        return {record["id"] for record in records}

    later_seconds = {
        key
        for key, record in truth.items()
        if instant(record["updatedDate"]).replace(microsecond=0) > boundary.replace(microsecond=0)
    }
    at_the_boundary = {k for k, r in truth.items() if instant(r["updatedDate"]) == boundary}
    assert at_the_boundary
    assert served(filter_semantics="gt_seconds") == later_seconds
    assert served(filter_semantics="gte") == {
        key for key, record in truth.items() if instant(record["updatedDate"]) >= since
    }
    assert at_the_boundary <= served() - later_seconds


def test_duplicate_ids_list_records_twice_and_totals_count_both(emu: Emulator) -> None:
    emu.configure(duplicate_ids=2)
    truth = emu.truth("bills")
    for params in ({}, {"orderField": "updatedDate", "orderDir": "ASC"}):
        pages = all_pages(emu, "bills", limit=5, **params)
        ids = [record["id"] for record in records_of(pages)]
        assert set(ids) == set(truth)
        assert len(ids) == len(truth) + 2
        assert pages[0]["meta"]["pagination"]["total"] == len(truth) + 2
        twice = sorted(key for key, n in Counter(ids).items() if n == 2)
        assert twice == sorted(truth)[:2]
        for key in twice:  # one right after the other, as an unstable sort serves it
            first = ids.index(key)
            assert ids[first + 1] == key
    emu.configure(duplicate_ids=0)
    assert len(records_of(all_pages(emu, "bills", limit=5))) == len(truth)


def test_rejected_order_fields_are_a_maesn_400(emu: Emulator) -> None:
    emu.configure(rejected_order_fields=["createdDate"])
    response = list_page(emu, "invoices", orderField="createdDate", orderDir="ASC")
    assert response.status == 400
    assert response.json() == {
        "statusCode": 400,
        "message": [
            "orderField must be one of the following values: "
            "invoiceDate, invoiceNumber, updatedDate"
        ],
        "error": "Bad Request",
    }
    assert list_page(emu, "invoices", orderField="updatedDate").status == 200
    assert list_page(emu, "invoices").status == 200  # the native order is no orderField


def test_empty_with_more_is_an_empty_page_whose_totals_promise_more() -> None:
    with Emulator(counts={**SMALL, "bills": 0}) as emu:
        for resource, total in (("invoices", SMALL["invoices"]), ("bills", 6)):
            emu.fail_next("empty_with_more", resource=resource)
            response = list_page(emu, resource, limit=5)
            assert response.status == 200
            document = response.json()
            assert document["data"] == []
            assert document["errors"] is None
            pagination = document["meta"]["pagination"]
            assert pagination["total"] == total
            assert pagination["totalPages"] >= 2
        assert emu.stats()["faults"] == {"empty_with_more": 2}
        assert len(list_page(emu, "invoices", limit=5).json()["data"]) == 5


def test_trickle_sends_a_page_bit_by_bit_within_any_read_timeout(emu: Emulator) -> None:
    expected = list_page(emu, "invoices", limit=5).body
    emu.configure(trickle_bytes=len(expected) // 8 + 1, trickle_interval_seconds=0.1)
    emu.fail_next("trickle")
    started = time.monotonic()
    response = call(emu, "/accounting/invoices", {"limit": 5}, timeout=0.5)  # per read
    elapsed = time.monotonic() - started
    assert response.status == 200
    assert response.body == expected
    assert elapsed >= 0.7  # 8 pauses of 0.1 s, each shorter than the read timeout
    assert emu.stats()["faults"] == {"trickle": 1}


def test_close_cuts_a_trickle_short() -> None:
    emu = Emulator(counts=SMALL, trickle_bytes=10, trickle_interval_seconds=5).start()
    emu.fail_next("trickle")
    failures: list[BaseException] = []

    def fetch() -> None:
        try:
            call(emu, "/accounting/invoices", timeout=30)
        except (http.client.HTTPException, OSError) as problem:
            failures.append(problem)

    fetcher = threading.Thread(target=fetch)
    fetcher.start()
    time.sleep(0.3)
    started = time.monotonic()
    emu.close()
    fetcher.join(timeout=10)
    assert time.monotonic() - started < 3
    assert not fetcher.is_alive()
    assert failures, "the body was served whole"


def test_failing_account_404_says_the_endpoint_is_not_supported() -> None:
    accounts = many_accounts(2)
    healthy, unsupported = accounts
    with Emulator(accounts=accounts, counts=SMALL, failing_accounts={unsupported: "404"}) as emu:
        headers = {**AUTH, "X-ACCOUNT-KEY": unsupported}
        record_id = next(iter(emu.truth("invoices", account=unsupported)))
        for path in ("/accounting/invoices", f"/accounting/invoices/{record_id}"):
            response = call(emu, path, headers=headers)
            assert response.status == 404
            assert response.json() == {
                "statusCode": 404,
                "message": "Endpoint not supported for target system qonto",
                "error": "Not Found",
            }
        assert call(emu, "/user/user-info", headers=headers).status == 200
        assert (
            call(emu, "/accounting/invoices", headers={**AUTH, "X-ACCOUNT-KEY": healthy}).status
            == 200
        )


def test_auth_check_can_fail_while_the_same_tenant_key_reads_data(emu: Emulator) -> None:
    tenant_only = {"X-API-KEY": DEFAULT_API_KEY}
    emu.configure(auth_check_failure="401")
    response = call(emu, "/auth/qonto", headers=tenant_only)
    assert response.status == 401
    assert response.json()["message"] == "Invalid or missing X-API-KEY"
    assert list_page(emu, "invoices").status == 200
    body = {"auth_check_failure": "unreachable"}
    assert call(emu, "/_emulator/configure", method="POST", body=body, headers={}).status == 200
    with pytest.raises(ConnectionError):
        call(emu, "/auth/qonto", headers=tenant_only)
    assert list_page(emu, "invoices").status == 200
    emu.configure(auth_check_failure=None)
    assert call(emu, "/auth/qonto", headers=tenant_only).status == 200
    assert emu.stats()["auth_requests"] == {"qonto": 3}


def test_errors_200_echoes_the_keys_inside_errors_when_asked(emu: Emulator) -> None:
    emu.configure(echo_headers_in_errors=True)
    emu.fail_next("errors_200")
    response = list_page(emu, "invoices", limit=10)
    assert response.status == 200
    errors = response.json()["errors"]
    assert errors["message"] == "Qonto request failed"
    echoed = {name.lower(): value for name, value in errors["requestHeaders"].items()}
    assert echoed["x-api-key"] == DEFAULT_API_KEY
    assert echoed["x-account-key"] == QONTO_ACCOUNT_KEY


def test_fail_next_can_target_one_account(emu: Emulator) -> None:
    sandbox = {**AUTH, "X-ACCOUNT-KEY": SANDBOX_ACCOUNT_KEY}
    emu.fail_next("503", count=2, resource="bills", account="qonto-sandbox")
    assert list_page(emu, "bills").status == 200
    assert call(emu, "/accounting/bills", headers=sandbox).status == 503
    fault = {"kind": "410", "resource": "bills", "account": QONTO_ACCOUNT_KEY}
    assert call(emu, "/_emulator/fail_next", method="POST", body=fault, headers={}).status == 200
    assert call(emu, "/accounting/bills", headers=sandbox).status == 503
    assert list_page(emu, "bills").status == 410
    assert call(emu, "/accounting/bills", headers=sandbox).status == 200
    with pytest.raises(ValueError, match="unknown account"):
        emu.fail_next("500", account="no-such-account")


def test_failing_details_fail_one_record_or_every_record(emu: Emulator) -> None:
    first, second = sorted(emu.truth("invoices"))[:2]
    emu.configure(failing_details={first: "500"})
    assert call(emu, f"/accounting/invoices/{first}").status == 500
    assert call(emu, f"/accounting/invoices/{second}").status == 200
    assert list_page(emu, "invoices").status == 200
    emu.configure(failing_details={"*": "503"})
    assert call(emu, f"/accounting/invoices/{second}").status == 503
    assert emu.stats()["faults"] == {"500": 1, "503": 1}


def test_every_answer_carries_a_date_header_from_the_wall_clock(emu: Emulator) -> None:
    emu.configure(auth_check_failure="401")
    answers = [
        list_page(emu, "invoices"),
        call(emu, "/health", headers={}),
        call(emu, "/auth/qonto", headers={"X-API-KEY": DEFAULT_API_KEY}),
        call(emu, "/accounting/invoices", headers={}),
        call(emu, "/_emulator/stats", headers={}),
    ]
    emu.configure(redirect_api_to="http://127.0.0.1:1")
    answers.append(list_page(emu, "invoices"))
    assert [answer.status for answer in answers] == [200, 200, 401, 401, 200, 302]
    for answer in answers:
        served = email.utils.parsedate_to_datetime(answer.headers["Date"])
        assert abs((served - datetime.now(UTC)).total_seconds()) < 3


def test_a_negative_lag_stamps_changes_ahead_of_the_date_header(emu: Emulator) -> None:
    # updated_lag_seconds < 0: the data's clock runs ahead of the server's Date header.
    emu.configure(updated_lag_seconds=-7200)
    emu.mutate("invoices", update=1, create=1)
    params = {"orderField": "updatedDate", "orderDir": "DESC", "limit": 5}
    response = list_page(emu, "invoices", **params)
    served_at = email.utils.parsedate_to_datetime(response.headers["Date"])
    newest = [instant(record["updatedDate"]) for record in response.json()["data"][:2]]
    for stamp in newest:
        assert timedelta(seconds=7190) < stamp - served_at < timedelta(seconds=7210)


def test_max_page_size_caps_every_page_and_pagination_says_so(emu: Emulator) -> None:
    emu.configure(max_page_size=5)
    document = list_page(emu, "invoices", limit=10, page=2).json()
    assert len(document["data"]) == 5
    assert document["meta"]["pagination"] == {
        "total": SMALL["invoices"],
        "perPage": 5,
        "currentPage": 2,
        "totalPages": 5,
    }
    served = [r["id"] for r in records_of(all_pages(emu, "invoices", limit=5))]
    assert sorted(served) == sorted(emu.truth("invoices"))
    assert len(list_page(emu, "invoices", limit=20, page=5).json()["data"]) == 3


def test_partition_latency_slows_one_account_and_resource() -> None:
    accounts = many_accounts(2)
    fast, slow = accounts
    with Emulator(
        accounts=accounts, counts=SMALL, partition_latency_ms={slow: {"bills": 400}}
    ) as emu:

        def seconds(account: str, path: str) -> float:
            started = time.monotonic()
            assert call(emu, path, headers={**AUTH, "X-ACCOUNT-KEY": account}).status == 200
            return time.monotonic() - started

        assert seconds(slow, "/accounting/bills") >= 0.4
        record_id = next(iter(emu.truth("bills", account=slow)))
        assert seconds(slow, f"/accounting/bills/{record_id}") >= 0.4
        assert seconds(slow, "/accounting/invoices") < 0.3
        assert seconds(fast, "/accounting/bills") < 0.3
        emu.configure(partition_latency_ms={slow: {"*": 400}})
        assert seconds(slow, "/accounting/invoices") >= 0.4
        with pytest.raises(ValueError, match="partition_latency_ms resource"):
            emu.configure(partition_latency_ms={slow: {"customers": 1}})
        with pytest.raises(ValueError, match="max_page_size"):
            emu.configure(max_page_size=0)


def test_mutation_batches_stop_the_periodic_changes_after_that_many(emu: Emulator) -> None:
    emu.configure(mutate_every_requests=1, mutation_batches=2, mutations_per_batch={"create": 1})
    totals = [list_page(emu, "bills").json()["meta"]["pagination"]["total"] for _ in range(4)]
    assert totals == [20, 21, 22, 22]  # a batch follows the answer that counts
    emu.configure(mutation_batches=1)  # counted again from now
    totals = [list_page(emu, "bills").json()["meta"]["pagination"]["total"] for _ in range(2)]
    assert totals == [22, 23]
    assert emu.stats()["mutations"] == {"update": 0, "create": 3, "delete": 0}


def test_shrink_line_items_picks_a_record_whose_currency_has_a_donor() -> None:
    with Emulator(counts={"invoices": 40}) as emu:
        truth = emu.truth("invoices")
        empty_currencies = {r["currency"] for r in truth.values() if not r["lineItems"]}
        shrunk = [emu.shrink_line_items("invoices", before=1, after=0) for _ in range(5)]
        after = emu.truth("invoices")
    assert len(set(shrunk)) == 5
    for record_id in shrunk:
        assert len(truth[record_id]["lineItems"]) == 1
        assert truth[record_id]["currency"] in empty_currencies
        assert after[record_id]["lineItems"] == []
        assert after[record_id]["updatedDate"] != truth[record_id]["updatedDate"]


def test_remove_line_items_empties_the_chosen_records(emu: Emulator) -> None:
    truth = emu.truth("invoices")
    empty_currencies = {r["currency"] for r in truth.values() if not r["lineItems"]}
    chosen = sorted(
        i for i, r in truth.items() if r["lineItems"] and r["currency"] in empty_currencies
    )[:3]
    emu.remove_line_items("invoices", chosen)
    after = emu.truth("invoices")
    for record_id in chosen:
        assert after[record_id]["lineItems"] == []
        assert instant(after[record_id]["updatedDate"]) > SEEDED_DATA_CAP
    assert {i: r for i, r in after.items() if i not in chosen} == {
        i: r for i, r in truth.items() if i not in chosen
    }
    with pytest.raises(ValueError, match="cannot remove the lines"):
        emu.remove_line_items("invoices", ["no-such-id"])


def test_mutated_resources_limit_which_requests_count_and_change(emu: Emulator) -> None:
    emu.configure(
        mutate_every_requests=2,
        mutations_per_batch={"create": 1},
        mutated_resources=["invoices"],
    )
    for _ in range(3):
        assert list_page(emu, "bills").status == 200
    assert len(emu.truth("bills")) == SMALL["bills"]
    list_page(emu, "invoices")
    list_page(emu, "invoices")
    assert len(emu.truth("invoices")) == SMALL["invoices"] + 1
    with pytest.raises(ValueError, match="mutated resource"):
        emu.configure(mutated_resources=["customers"])


def test_stamp_to_the_second_makes_changes_share_whole_seconds() -> None:
    with Emulator(
        counts=SMALL, stamp_to_the_second=True, updated_lag_seconds=10 * 365 * 86400
    ) as emu:
        before = set(emu.truth("invoices"))
        emu.mutate("invoices", create=2, update=1)
        emu.mutate("invoices", create=1)
        truth = emu.truth("invoices")
    created = [truth[i] for i in set(truth) - before]
    changed = [r for r in truth.values() if instant(r["updatedDate"]) > SEEDED_DATA_CAP]
    assert len(created) == 3
    assert len(changed) == 4
    stamps = {instant(r["updatedDate"]) for r in changed} | {
        instant(r["createdDate"]) for r in created
    }
    assert stamps == {SEEDED_DATA_CAP + timedelta(seconds=1)}


def test_fail_next_can_target_requests_by_their_parameters(emu: Emulator) -> None:
    emu.fail_next("503", count=2, query={"orderField": "createdDate", "orderDir": "DESC"})
    assert list_page(emu, "invoices", orderField="createdDate", orderDir="ASC").status == 200
    assert list_page(emu, "invoices").status == 200
    newest = {"orderField": "createdDate", "orderDir": "DESC", "limit": 5}
    assert list_page(emu, "bills", **newest).status == 503
    fault = {"kind": "500", "query": {"limit": "5"}}
    assert call(emu, "/_emulator/fail_next", method="POST", body=fault, headers={}).status == 200
    assert list_page(emu, "bills", **newest).status == 503  # scripted first, taken first
    assert list_page(emu, "bills", limit=10).status == 200
    assert list_page(emu, "bills", limit=5).status == 500
