"""Deterministic, spec-shaped Qonto data as Maesn serves it, and its in-memory store.

Records follow the Maesn OpenAPI DTOs (``InvoiceResponseDto``, ``BillResponseDto``,
``BookingProposalResponseDto`` and their line-item / dimension / address schemas): every key is
present, ``null`` when Qonto does not populate it. Field names are hard-coded on purpose: the
emulator must not read the vendored YAML at runtime.

Speed matters (a benchmark serves 100 000 records), so:

* each record is serialized to JSON bytes once; only records that change are serialized again;
* amounts and line items come from a pool of "baskets" per resource, each serialized once (when
  a record first needs it) as the closing part of a record's JSON object (money fields and
  ``lineItems`` come last);
* filtered and sorted views are cached until the next change;
* a record served in lists without its line items (``list_omits_line_items``) gets a second,
  pre-built list body; every other record serves the same bytes in lists and in detail.

Each record keeps its true instants (``created``, ``updated``) for filtering and sorting, whatever
format its timestamps are written in. Nothing here is thread-safe: the server holds its single
lock around every call.
"""

from __future__ import annotations

import bisect
import gc
import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

INVOICES = "invoices"
BILLS = "bills"
BOOKING_PROPOSALS = "bookingProposals"
RESOURCES = (INVOICES, BILLS, BOOKING_PROPOSALS)

ORDER_FIELDS: dict[str, tuple[str, ...]] = {
    INVOICES: ("invoiceDate", "invoiceNumber", "createdDate", "updatedDate"),
    BILLS: ("billDate", "billNumber", "createdDate", "updatedDate"),
    BOOKING_PROPOSALS: ("bookingProposalDate", "number", "createdDate", "updatedDate"),
}

# Fixed, never wall-clock: the same seed gives the same data on any day.
DATA_START = datetime(2024, 1, 1, tzinfo=UTC)
DATA_END = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
UPDATED_CAP = datetime(2026, 11, 1, tzinfo=UTC)
MAX_UPDATE_DELAY_MS = 90 * 24 * 3600 * 1000
_SECOND = timedelta(seconds=1)

# Added by the ``extra_fields`` knob: fields Maesn might ship tomorrow that no schema knows yet.
EXTRA_TOP_LEVEL_FIELD = ("einvoicingStatus", "SENT")
EXTRA_LINE_ITEM_FIELD = ("einvoicingLineRef", "EN16931-BT-126")

_OLDEST_SORT_INSTANT = datetime.min.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True, slots=True)
class TimestampStyle:
    """How one record writes its timestamps; the real API mixes these across records."""

    utc_offset_minutes: int
    with_millis: bool
    dates_as_datetimes: bool  # date fields as "2026-03-04T00:00:00Z" instead of "2026-03-04"


_TIMESTAMP_STYLES = tuple(
    TimestampStyle(offset, millis, as_datetime)
    for offset in (0, 0, 60, 120)  # Z twice as likely as the Paris winter/summer offsets
    for millis in (False, True)
    for as_datetime in (False, False, True)
)


def format_instant(instant: datetime, style: TimestampStyle) -> str:
    """Render an aware datetime; milliseconds are written whenever the instant has them."""
    local = instant.astimezone(timezone(timedelta(minutes=style.utc_offset_minutes)))
    with_millis = style.with_millis or instant.microsecond != 0
    text = local.isoformat(timespec="milliseconds" if with_millis else "seconds")
    return text[:-6] + "Z" if style.utc_offset_minutes == 0 else text


def format_date(day: date, style: TimestampStyle) -> str:
    return f"{day.isoformat()}T00:00:00Z" if style.dates_as_datetimes else day.isoformat()


# Amounts are held as marked strings and unquoted after json.dumps, so the number in the JSON is
# exactly the Decimal's text ("22.10", "0.123456789012345678") and never goes through float.
# json.dumps always escapes control characters, so the marks cannot collide with real text.
_NUMBER_START = "\x1f"
_NUMBER_END = "\x1e"


def json_number(value: Decimal, strip_trailing_zeros: bool = False) -> str:
    """Mark ``value`` to be written as a bare JSON number; optionally JS-style (1440.1, 1440)."""
    text = format(value, "f")
    if strip_trailing_zeros and "." in text:
        text = text.rstrip("0").rstrip(".")
    return _NUMBER_START + text + _NUMBER_END


# One shared encoder: json.dumps with options builds a new one per call, which shows when
# thousands of records and baskets are serialized at start-up.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def to_json_bytes(document: object) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept raw, as the real API sends it), marked numbers bare."""
    text = _COMPACT_JSON.encode(document)
    return text.replace('"\\u001f', "").replace('\\u001e"', "").encode()


@dataclass(frozen=True, slots=True)
class Presentation:
    """Knobs that change how records are served without changing the data behind them."""

    null_updated_date_fraction: float = 0.0
    extra_fields: bool = False
    list_omits_line_items: float = 0.0


# --------------------------------------------------------------------------- records


_LINE_ITEMS_KEY = b',"lineItems":'


@dataclass(slots=True)
class _Basket:
    """Currency, amounts and line items shared by several records, serialized once.

    ``tail`` is the end of a record's JSON object: ``,"totalAmount":…,"lineItems":[…]}``.
    Building and serializing amounts and line items is most of the cost of a record; drawing
    them from a pool keeps 100 000 records quick to build while the data stays varied. Each
    serialized form is built the first time a record needs it (small pools leave a third of
    their baskets unused).
    """

    currency: str
    money_fields: dict[str, Any]  # amounts and lineItems, marked for to_json_bytes
    _tail: bytes | None = None
    _tail_with_extra_fields: bytes | None = None
    _tail_without_line_items: bytes | None = None

    @property
    def tail(self) -> bytes:
        if self._tail is None:
            self._tail = _json_tail(self.money_fields)
        return self._tail

    @property
    def tail_with_extra_fields(self) -> bytes:
        """Line items carry the unknown field of the extra_fields knob."""
        if self._tail_with_extra_fields is None:
            line_items = _with_extra_line_field(self.money_fields["lineItems"])
            self._tail_with_extra_fields = _json_tail(
                {**self.money_fields, "lineItems": line_items}
            )
        return self._tail_with_extra_fields

    @property
    def tail_without_line_items(self) -> bytes:
        """``tail`` with ``"lineItems":null``; lineItems is the last key, amounts come before."""
        if self._tail_without_line_items is None:
            tail = self.tail
            self._tail_without_line_items = (
                tail[: tail.index(_LINE_ITEMS_KEY)] + _LINE_ITEMS_KEY + b"null}"
            )
        return self._tail_without_line_items


@dataclass(slots=True)
class StoredRecord:
    """One record: true instants and sort keys, its own fields, its basket, its served JSON."""

    id: str
    created: datetime
    updated: datetime
    style: TimestampStyle
    null_draw: float  # updatedDate is served null while null_draw < null_updated_date_fraction
    business_date: date  # invoiceDate / billDate / bookingProposalDate
    number: str  # invoiceNumber / billNumber / number
    # Every DTO key but the basket's, in spec order; render() sets updatedDate.
    fields: dict[str, Any]
    basket: _Basket
    # Lists serve lineItems null while lines_draw < list_omits_line_items. Taken from the id's
    # last hex digits (random, and unrelated to ordering by id), so no extra rng draw shifts the
    # seeded data.
    lines_draw: float = 0.0
    served_updated: datetime | None = None
    body: bytes = b""  # the record in full, as the detail endpoint and truth() serve it
    list_body: bytes = b""  # as list pages serve it: ``body`` itself, or without line items

    def render(self, presentation: Presentation) -> None:
        hides_updated = self.null_draw < presentation.null_updated_date_fraction
        self.served_updated = None if hides_updated else self.updated
        self.fields["updatedDate"] = (
            None if hides_updated else format_instant(self.updated, self.style)
        )
        head, tail = self.fields, self.basket.tail
        if presentation.extra_fields:
            name, value = EXTRA_TOP_LEVEL_FIELD
            head, tail = {**head, name: value}, self.basket.tail_with_extra_fields
        # The record's own fields hold no amounts, so plain JSON is exact here.
        head_json = _COMPACT_JSON.encode(head).encode()[:-1]
        self.body = head_json + tail
        if self.lines_draw < presentation.list_omits_line_items:
            self.list_body = head_json + self.basket.tail_without_line_items
        else:
            self.list_body = self.body


# --------------------------------------------------------------------------- realistic values

_COMPANIES: tuple[tuple[str, str], ...] = (
    ("Société Générale", "FR"),
    ("Müller & Söhne GmbH", "DE"),
    ("Bäckerei Groß KG", "DE"),
    ("L'Atelier du Goût SARL", "FR"),
    ("Crème & Brûlée SAS", "FR"),
    ("Façade Rénovation EURL", "FR"),
    ("Straße & Weg Bau GmbH", "DE"),
    ("Zürcher Treuhand AG", "CH"),
    ("Ørsted Nordic ApS", "DK"),
    ("Łódź Logistyka Sp. z o.o.", "PL"),
    ("Ñandú Importaciones S.L.", "ES"),
    ("株式会社山田商事", "JP"),
    ("北京云端科技有限公司", "CN"),
    ("Café ☕ Lumière", "FR"),
    ("🍕 Pizzeria Napoli SRL", "IT"),
    ('Atelier "Les Guillemets" & Co', "FR"),
    ("Back\\Slash Consulting SPRL", "BE"),
    ("OVH SAS", "FR"),
    ("Acme SAS", "FR"),
    ("Qonto Partner Ltd", "GB"),
)

_STREETS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "FR": (("10 Rue de Rivoli", "Paris", "75001"), ("3 Quai Saint-Vincent", "Lyon", "69001")),
    "DE": (("Königstraße 12", "Stuttgart", "70173"), ("Hauptstraße 5", "München", "80331")),
    "CH": (("Bahnhofstrasse 21", "Zürich", "8001"),),
    "DK": (("Østergade 4", "København", "1100"),),
    "PL": (("ul. Piotrkowska 104", "Łódź", "90-006"),),
    "ES": (("Calle de Alcalá 48", "Madrid", "28014"),),
    "JP": (("千代田区丸の内1-1", "東京", "100-0005"),),
    "CN": (("朝阳区建国路88号", "北京", "100022"),),
    "IT": (("Via Toledo 256", "Napoli", "80134"),),
    "BE": (("Rue Neuve 30", "Bruxelles", "1000"),),
    "GB": (("221B Baker Street", "London", "NW1 6XE"),),
}

_LINE_DESCRIPTIONS = (
    ("Conseil stratégique", "Monthly consulting services"),
    ("Hébergement serveur", "Hosting, dedicated server"),
    ("Wartung & Support", "Wartungsvertrag Quartal"),
    ("Übersetzung", "Übersetzung Deutsch → Français"),
    ("デザイン費用", "ウェブサイトのデザイン"),
    ("Frais de déplacement", "Déplacement Paris ↔ Lyon"),
    ("Licence logiciel", "Licence annuelle, 5 postes"),
    ("Formation", "Formation équipe (2 jours)"),
)

_UNIT_NAMES = ("piece", "hour", "day", "month", None)
_TAX_RATES = (
    Decimal(20),
    Decimal(20),
    Decimal(10),
    Decimal("5.5"),
    Decimal("2.1"),
    Decimal(19),
    Decimal(0),
)
_INVOICE_STATUSES = ("DRAFT", "OPEN", "OPEN", "PAID", "PAID", "PAID", "OVERDUE", "VOIDED")
_BOOKING_PROPOSAL_STATUSES = ("DRAFT", "OPEN", "OPEN", "PAID", "PAID", "OVERDUE", "CANCELLED")
_PAYMENT_STATUS_BY_STATUS = {
    "DRAFT": None,
    "OPEN": "PENDING",
    "PAID": "PAID",
    "OVERDUE": "PENDING",
    "VOIDED": "CANCELED",
}
_CENT = Decimal("0.01")

_UUID4_MARKERS = (4 << 76) | (0b10 << 62)  # version 4, RFC 4122 variant
_UUID4_MARKER_MASK = ~((0xF << 76) | (0b11 << 62))


def _uuid(rng: random.Random) -> str:
    """Same text as ``str(uuid.UUID(int=rng.getrandbits(128), version=4))``, twice as fast."""
    digits = f"{rng.getrandbits(128) & _UUID4_MARKER_MASK | _UUID4_MARKERS:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _currency(rng: random.Random) -> str:
    return "EUR" if rng.random() < 0.85 else rng.choice(("USD", "GBP", "CHF", "JPY"))


def _address(
    street: tuple[str, str, str], country: str, address_type: str, second_line: str | None
) -> dict[str, Any]:
    street_line, city, postal_code = street
    return {
        "addressLine1": street_line,
        "addressLine2": second_line,
        "city": city,
        "countryCode": country,
        "postalCode": postal_code,
        "type": address_type,
    }


# Built once and shared by records (they are only ever serialized, never edited).
_ADDRESSES: dict[tuple[str, str], tuple[dict[str, Any], ...]] = {
    (country, address_type): tuple(
        _address(street, country, address_type, second_line)
        for street in streets
        for second_line in (None, None, None, "Bâtiment B, 2ᵉ étage")
    )
    for country, streets in _STREETS.items()
    for address_type in ("BILLING", "DELIVERY")
}


def _one_line(address: dict[str, Any]) -> str:
    street, postal_code = address["addressLine1"], address["postalCode"]
    return f"{street}, {postal_code} {address['city']}, {address['countryCode']}"


# --------------------------------------------------------------------------- money


class _Rounding:
    """Rounds to the currency's minor unit and writes amounts in the basket's number style."""

    def __init__(self, currency: str, js_style: bool) -> None:
        self._quantum = Decimal(1) if currency == "JPY" else _CENT
        self._js_style = js_style  # 1440.1 as a JS backend writes it, else 1440.10

    def round(self, amount: Decimal) -> Decimal:
        return amount.quantize(self._quantum)

    def text(self, amount: Decimal) -> str:
        return json_number(amount, strip_trailing_zeros=self._js_style)


def _high_precision(rng: random.Random) -> Decimal:
    """An amount like 12.123456789012345678: proves the pipeline never rounds through float."""
    return Decimal(rng.randrange(10**18)).scaleb(-18) + rng.randrange(0, 500)


@dataclass(slots=True)
class _Line:
    """One line item; amounts are marked JSON numbers (see json_number)."""

    title: str
    description: str
    quantity: str
    unit: str
    net: str
    tax_rate: str
    tax: str
    gross: str
    unit_name: str | None


@dataclass(slots=True)
class _Money:
    """Line items and totals of one basket, consistent with each other, marked for JSON."""

    lines: list[_Line]
    net: str
    tax: str
    gross: str
    negated_gross: str  # credit notes carry negative totals


def _amounts(rng: random.Random, currency: str, line_count: int, high_precision: bool) -> _Money:
    rounding = _Rounding(currency, js_style=rng.random() < 0.5)
    lines, net, tax = [], Decimal(0), Decimal(0)
    for _ in range(line_count):
        line, line_net, line_tax = _line(rng, rounding)
        lines.append(line)
        net += line_net
        tax += line_tax
    if not lines:
        net = rounding.round(Decimal(rng.randrange(500, 5_000_000)) / 100)
        tax = rounding.round(net * rng.choice(_TAX_RATES) / 100)
    if high_precision:
        tax = _high_precision(rng)
    gross = net + tax
    return _Money(
        lines, rounding.text(net), rounding.text(tax), rounding.text(gross), rounding.text(-gross)
    )


def _line(rng: random.Random, rounding: _Rounding) -> tuple[_Line, Decimal, Decimal]:
    title, description = rng.choice(_LINE_DESCRIPTIONS)
    quantity = (
        Decimal(rng.randint(1, 12)) if rng.random() < 0.8 else Decimal(rng.randint(1, 40)) / 4
    )
    unit = rounding.round(Decimal(rng.randrange(100, 500_000)) / 100)
    tax_rate = rng.choice(_TAX_RATES)
    net = rounding.round(unit * quantity)
    tax = rounding.round(net * tax_rate / 100)
    line = _Line(
        title=title,
        description=description,
        quantity=json_number(quantity),
        unit=rounding.text(unit),
        net=rounding.text(net),
        tax_rate=json_number(tax_rate),
        tax=rounding.text(tax),
        gross=rounding.text(net + tax),
        unit_name=rng.choice(_UNIT_NAMES),
    )
    return line, net, tax


# --------------------------------------------------------------------------- record shapes


@dataclass(slots=True)
class _Basics:
    """What every resource draws first: who, when, in which timestamp style and currency."""

    id: str
    index: int
    style: TimestampStyle
    company: str
    country: str
    issue_date: date
    due_date: date
    status: str
    currency: str


def _paid_date(basics: _Basics) -> str | None:
    if basics.status != "PAID":
        return None
    return format_date(basics.due_date - timedelta(days=basics.index % 7), basics.style)


def _make_invoice(basics: _Basics, rng: random.Random) -> dict[str, Any]:
    billing = rng.choice(_ADDRESSES[basics.country, "BILLING"])
    addresses = [billing]
    if rng.random() < 0.2:
        addresses.append(rng.choice(_ADDRESSES[basics.country, "DELIVERY"]))
    style = basics.style
    return {
        "id": basics.id,
        "invoiceId": basics.id,
        "addresses": addresses,
        "contactId": _uuid(rng),
        "createdDate": None,
        "currency": basics.currency,
        "discountAmount": None,
        "dueDate": format_date(basics.due_date, style),
        "fileId": _uuid(rng) if rng.random() < 0.7 else None,
        "invoiceDate": format_date(basics.issue_date, style),
        "invoiceNumber": f"F-{basics.issue_date.year}-{basics.index:06d}",
        "invoiceType": "STANDARD",
        "journalCode": None,
        "lineAmountTypes": "EXCLUSIVE",
        "name": basics.company,
        "oneLineAddress": _one_line(billing),
        "paidDate": _paid_date(basics),
        "paymentStatus": _PAYMENT_STATUS_BY_STATUS[basics.status],
        "paymentTermDuration": (basics.due_date - basics.issue_date).days,
        "paymentTermId": None,
        "reference": f"PO-{rng.randint(1000, 9999)}" if rng.random() < 0.3 else None,
        "shippingDate": format_date(basics.issue_date, style) if rng.random() < 0.4 else None,
        "status": basics.status,
        "taxRule": "NET",
        "updatedDate": None,
    }


def _invoice_money(
    money: _Money, line_items: list[dict[str, Any]] | None, rng: random.Random
) -> dict[str, Any]:
    return {
        "sumNetAmount": money.net,
        "totalAmount": money.gross,
        "totalTaxAmount": money.tax,
        "lineItems": line_items,
    }


def _invoice_line(line: _Line, rng: random.Random) -> dict[str, Any]:
    return {
        "lineItemId": None,
        "accountId": None,
        "createdDate": None,
        "description": line.description,
        "dimensions": [{"id": _uuid(rng), "categoryName": "Projet", "name": "Été 2026"}]
        if rng.random() < 0.1
        else None,
        "discountItemAmount": None,
        "discountItemPercentage": None,
        "grossAmount": line.gross,
        "itemsAmount": line.net,
        "itemId": None,
        "name": line.title,
        "quantity": line.quantity,
        "taxCode": None,
        "taxRatePercentage": line.tax_rate,
        "unitAmount": line.unit,
        "updatedDate": None,
    }


def _make_bill(basics: _Basics, rng: random.Random) -> dict[str, Any]:
    address = rng.choice(_ADDRESSES[basics.country, "BILLING"]) if rng.random() < 0.3 else None
    style = basics.style
    return {
        "id": basics.id,
        "accountId": None,
        "addresses": [address] if address else None,
        "billDate": format_date(basics.issue_date, style),
        "billNumber": f"{basics.company[:3].upper()}-{basics.index:06d}",
        "contactId": None,
        "createdDate": None,
        "currency": basics.currency,
        "deliveryDate": None,
        "dueDate": format_date(basics.due_date, style),
        "fileId": _uuid(rng),
        "journalCode": None,
        "name": basics.company,
        "oneLineAddress": _one_line(address) if address else None,
        "paidDate": _paid_date(basics),
        "paymentReference": f"RF{rng.randint(10, 99)} {rng.randint(1000, 9999)}"
        if rng.random() < 0.4
        else None,
        "paymentTermCode": None,
        "paymentStatus": _PAYMENT_STATUS_BY_STATUS[basics.status],
        "paymentDays": (basics.due_date - basics.issue_date).days,
        "reference": None,
        "shippingDate": None,
        "shippingType": None,
        "status": basics.status,
        "taxRule": None,
        "taxText": None,
        "totalDiscountAmount": None,
        "totalDiscountPercentage": None,
        "updatedDate": None,
    }


def _bill_money(
    money: _Money, line_items: list[dict[str, Any]] | None, rng: random.Random
) -> dict[str, Any]:
    return {
        "totalGrossAmount": money.gross,
        "totalNetAmount": money.net,
        "totalTaxAmount": money.tax,
        "lineItems": line_items,
    }


def _bill_line(line: _Line, rng: random.Random) -> dict[str, Any]:
    return {
        "id": None,
        "accountId": None,
        "accountNumber": None,
        "createdDate": None,
        "deferredEndDate": None,
        "deferredStartDate": None,
        "description": line.description,
        "dimensions": [{"name": "Été 2026", "categoryName": "Projet"}]
        if rng.random() < 0.1
        else None,
        "itemId": None,
        "itemName": line.title,
        "quantity": line.quantity,
        "taxCode": None,
        "taxRatePercentage": line.tax_rate,
        "totalDiscountAmount": None,
        "totalDiscountPercentage": None,
        "totalGrossAmount": line.gross,
        "totalNetAmount": line.net,
        "totalTaxAmount": line.tax,
        "unitAmount": line.unit,
        "unitDiscountAmount": None,
        "unitDiscountPercentage": None,
        "unitName": line.unit_name,
        "updatedDate": None,
    }


def _make_booking_proposal(basics: _Basics, rng: random.Random) -> dict[str, Any]:
    style = basics.style
    return {
        "id": basics.id,
        "accountName": None,
        "addresses": None,
        "bankAccountId": None,
        "bankAccountNumber": None,
        "bankCode": None,
        "bic": "QNTOFRP1XXX" if rng.random() < 0.5 else None,
        "bookingProposalDate": format_date(basics.issue_date, style),
        "contactAccountNumber": 70000 + basics.index % 1000 if rng.random() < 0.3 else None,
        "contactId": None,
        "contactName": basics.company,
        "createdDate": None,
        "currency": basics.currency,
        "deliveryDate": None,
        "discountPaymentDate": None,
        "discountPaymentDate2": None,
        "dueDate": format_date(basics.due_date, style),
        "files": [_uuid(rng)],
        "journalCode": None,
        "iban": f"FR76{rng.randrange(10**23):023d}",
        "isPaymentOrder": rng.choice((None, False, True)),
        "ledgerName": None,
        "notes": None,
        "number": f"BP-{basics.issue_date.year}-{basics.index:06d}",
        "orderId": None,
        "paidDate": _paid_date(basics),
        "paymentTermsId": None,
        "status": basics.status,
        "taskId": None,
        "updatedDate": None,
        "vatId": f"FR{rng.randrange(10**11):011d}" if rng.random() < 0.6 else None,
    }


def _booking_proposal_money(
    money: _Money, line_items: list[dict[str, Any]] | None, rng: random.Random
) -> dict[str, Any]:
    booking_type = rng.choice(("INVOICE", "BILL", "BILL", "CREDIT_NOTE"))
    return {
        "bookingType": booking_type,
        "totalGrossAmount": money.negated_gross if booking_type == "CREDIT_NOTE" else money.gross,
        "lineItems": line_items,
    }


def _booking_proposal_line(line: _Line, rng: random.Random) -> dict[str, Any]:
    return {
        "id": None,
        "accountCode": None,
        "accountId": None,
        "accountName": None,
        "accountNumber": None,
        "bookingTaxCode": None,
        "createdDate": None,
        "description": line.description,
        "dimension1": None,
        "dimension2": None,
        "discountAmount": None,
        "discountAmount2": None,
        "discountPercentage": None,
        "discountPercentage2": None,
        "taxCode": None,
        "taxRatePercentage": line.tax_rate,
        "totalGrossAmount": line.gross,
        "totalNetAmount": line.net,
        "type": rng.choice(("GOODS", "SERVICES")),
        "updatedDate": None,
    }


@dataclass(frozen=True, slots=True)
class _ResourceShape:
    make_fields: Callable[[_Basics, random.Random], dict[str, Any]]
    make_money_fields: Callable[
        [_Money, list[dict[str, Any]] | None, random.Random], dict[str, Any]
    ]
    make_line_item: Callable[[_Line, random.Random], dict[str, Any]]
    without_line_items: list[Any] | None  # what a record with no line items carries
    statuses: tuple[str, ...]
    date_field: str
    number_field: str
    revision_field: str  # the free-text field an update rewrites, so the change is visible


_SHAPES: dict[str, _ResourceShape] = {
    INVOICES: _ResourceShape(
        make_fields=_make_invoice,
        make_money_fields=_invoice_money,
        make_line_item=_invoice_line,
        without_line_items=[],
        statuses=_INVOICE_STATUSES,
        date_field="invoiceDate",
        number_field="invoiceNumber",
        revision_field="reference",
    ),
    BILLS: _ResourceShape(
        make_fields=_make_bill,
        make_money_fields=_bill_money,
        make_line_item=_bill_line,
        without_line_items=None,
        statuses=_INVOICE_STATUSES,
        date_field="billDate",
        number_field="billNumber",
        revision_field="reference",
    ),
    BOOKING_PROPOSALS: _ResourceShape(
        make_fields=_make_booking_proposal,
        make_money_fields=_booking_proposal_money,
        make_line_item=_booking_proposal_line,
        without_line_items=[],
        statuses=_BOOKING_PROPOSAL_STATUSES,
        date_field="bookingProposalDate",
        number_field="number",
        revision_field="notes",
    ),
}


def _json_tail(money_fields: dict[str, Any]) -> bytes:
    """``{"a":1,"b":2}`` -> ``,"a":1,"b":2}``, which closes a record's JSON object."""
    return b"," + to_json_bytes(money_fields)[1:]


def _with_extra_line_field(line_items: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not line_items:
        return line_items
    name, value = EXTRA_LINE_ITEM_FIELD
    return [{**item, name: value} for item in line_items]


_MIN_BASKETS = 16
_MAX_BASKETS = 997


class _RecordFactory:
    """Builds records of one resource, drawing amounts and line items from a pool of baskets."""

    def __init__(self, resource: str, rng: random.Random, record_count: int) -> None:
        self._shape = _SHAPES[resource]
        basket_count = min(max(record_count, _MIN_BASKETS), _MAX_BASKETS)
        # One basket in a hundred has an amount with 18 decimals, about 1% of the records.
        self._baskets = [self._basket(rng, position % 100 == 0) for position in range(basket_count)]

    def _basket(self, rng: random.Random, high_precision: bool) -> _Basket:
        shape = self._shape
        currency = _currency(rng)
        money = _amounts(rng, currency, rng.randint(0, 3), high_precision)
        line_items = [
            shape.make_line_item(line, rng) for line in money.lines
        ] or shape.without_line_items
        money_fields = shape.make_money_fields(money, line_items, rng)
        return _Basket(currency, money_fields)

    def build(
        self,
        rng: random.Random,
        index: int,
        created: datetime,
        updated: datetime,
        style: TimestampStyle,
    ) -> StoredRecord:
        shape = self._shape
        basket = rng.choice(self._baskets)
        company, country = rng.choice(_COMPANIES)
        issue_date = (created - timedelta(days=rng.randint(0, 5))).date()
        due_date = issue_date + timedelta(days=rng.choice((0, 14, 30, 30, 45, 60)))
        basics = _Basics(
            _uuid(rng),
            index,
            style,
            company,
            country,
            issue_date,
            due_date,
            rng.choice(shape.statuses),
            basket.currency,
        )
        fields = shape.make_fields(basics, rng)
        fields["createdDate"] = format_instant(created, style)
        return StoredRecord(
            basics.id,
            created,
            updated,
            style,
            rng.random(),
            issue_date,
            fields[shape.number_field],
            fields,
            basket,
            int(basics.id[-8:], 16) / 0x1_0000_0000,
        )

    def revise(self, record: StoredRecord, rng: random.Random, now: datetime) -> None:
        """A user edit: another status, rewritten free text, updatedDate = now."""
        shape = self._shape
        fields = record.fields
        fields["status"] = rng.choice(
            [status for status in dict.fromkeys(shape.statuses) if status != fields["status"]]
        )
        if "paymentStatus" in fields:
            fields["paymentStatus"] = _PAYMENT_STATUS_BY_STATUS[fields["status"]]
        fields[shape.revision_field] = f"révision {rng.randint(1, 10**6)}"
        record.updated = now


def _random_instant(
    rng: random.Random, start: datetime, span_ms: int, with_millis: bool
) -> datetime:
    offset_ms = rng.randrange(span_ms + 1)
    if not with_millis:
        offset_ms -= offset_ms % 1000
    return start + timedelta(milliseconds=offset_ms)


def _random_update(rng: random.Random, created: datetime, with_millis: bool) -> datetime:
    if rng.random() < 0.2:  # never modified since creation
        return created
    # Drawn below the cap rather than clamped to it, so no crowd of records shares one instant.
    span_ms = min(MAX_UPDATE_DELAY_MS, (UPDATED_CAP - created) // timedelta(milliseconds=1))
    return _random_instant(rng, created, span_ms, with_millis)


def _tie_updated_dates(records: list[StoredRecord], size: int, rng: random.Random) -> None:
    """A bulk import: ``size`` records in a row of creation share one whole-second updatedDate."""
    size = min(size, len(records))
    if size == 0:
        return
    start = rng.randrange(len(records) - size + 1)
    group = records[start : start + size]
    latest_created = max(record.created for record in group)
    # At or after every creation in the group, never past the cap, as _random_update draws.
    span_seconds = min(MAX_UPDATE_DELAY_MS // 1000, (UPDATED_CAP - latest_created) // _SECOND)
    shared = latest_created.replace(microsecond=0) + timedelta(
        seconds=rng.randint(1, max(span_seconds, 1))
    )
    shared = min(shared, UPDATED_CAP)
    for record in group:
        record.updated = shared


def _generate_records(
    factory: _RecordFactory, count: int, rng: random.Random
) -> list[StoredRecord]:
    """``count`` records, numbered in creation order like a real ledger."""
    span_ms = int((DATA_END - DATA_START).total_seconds()) * 1000
    styles = [rng.choice(_TIMESTAMP_STYLES) for _ in range(count)]
    created_instants = sorted(
        (_random_instant(rng, DATA_START, span_ms, style.with_millis), position)
        for position, style in enumerate(styles)
    )
    records = []
    for index, (created, position) in enumerate(created_instants, start=1):
        style = styles[position]
        updated = _random_update(rng, created, style.with_millis)
        records.append(factory.build(rng, index, created, updated, style))
    return records


# --------------------------------------------------------------------------- store


@dataclass(frozen=True, slots=True)
class ViewKey:
    since: datetime | None
    order_field: str
    descending: bool
    nulls_last: bool = False  # records without a served updatedDate go last (updatedDate only)
    # sort_scope "page": the list is cut into pages of this size in the native order
    # (createdDate DESC) and each page alone is sorted by the key; 0 sorts the whole list.
    sorted_page_size: int = 0
    # duplicate_ids: this many listed records (the smallest ids) are listed twice, in a row.
    duplicates: int = 0


_MAX_CACHED_VIEWS = 64


class Collection:
    """All records of one resource for one account, plus cached filtered+sorted views.

    A view is the list of serialized records for one (lastModifiedAt, orderField, orderDir);
    serving a page is slicing it. Every change drops the cached views.
    """

    def __init__(
        self,
        resource: str,
        count: int,
        rng: random.Random,
        presentation: Presentation,
        tie_group_size: int = 0,
    ) -> None:
        self.resource = resource
        self.deleted_ids: set[str] = set()
        self._next_index = count + 1
        self._views: dict[ViewKey, list[bytes]] = {}
        self._updated_index: tuple[list[StoredRecord], list[StoredRecord], list[datetime]] | None
        self._updated_index = None
        with _cyclic_gc_paused():
            self._factory = _RecordFactory(resource, rng, count)
            generated = _generate_records(self._factory, count, rng)
            if tie_group_size:  # drawn last, so the other records stay as without ties
                _tie_updated_dates(generated, tie_group_size, rng)
            self.records = {record.id: record for record in generated}
            self.rerender(presentation)

    def rerender(self, presentation: Presentation) -> None:
        for record in self.records.values():
            record.render(presentation)
        self._views.clear()
        self._updated_index = None

    def view(self, key: ViewKey) -> list[bytes]:
        cached = self._views.get(key)
        if cached is None:
            if len(self._views) >= _MAX_CACHED_VIEWS:
                self._views.clear()
            cached = self._views[key] = self._build_view(key)
        return cached

    def _build_view(self, key: ViewKey) -> list[bytes]:
        if not key.sorted_page_size:
            records = _with_duplicates(self._ordered(key), key.duplicates)
            return [record.list_body for record in records]
        # A broken target system: pages come from its native order, each sorted alone.
        native = ViewKey(key.since, "createdDate", descending=True)
        records = _with_duplicates(self._ordered(native), key.duplicates)
        size = key.sorted_page_size
        return [
            record.list_body
            for start in range(0, len(records), size)
            for record in self._sorted(records[start : start + size], key)
        ]

    def _ordered(self, key: ViewKey) -> list[StoredRecord]:
        """The records matching ``key.since``, in the key's order."""
        if key.order_field == "updatedDate":
            return self._by_updated(key)
        since = key.since
        matching = [
            record
            for record in self.records.values()
            if since is None or record.served_updated is None or record.served_updated >= since
        ]
        return self._sorted(matching, key)

    def _sorted(self, records: list[StoredRecord], key: ViewKey) -> list[StoredRecord]:
        """``records`` in the key's order: ties break by id; undated records count as the
        oldest updatedDate unless ``nulls_last``."""
        matching = list(records)
        sort_value = _sort_value(self.resource, key.order_field)
        if key.nulls_last and key.order_field == "updatedDate":
            undated = [record for record in matching if record.served_updated is None]
            matching = [record for record in matching if record.served_updated is not None]
            undated.sort(key=lambda record: record.id, reverse=key.descending)
        else:
            undated = []
        matching.sort(key=lambda record: (sort_value(record), record.id), reverse=key.descending)
        return matching + undated

    def _by_updated(self, key: ViewKey) -> list[StoredRecord]:
        """The updatedDate view by bisecting one sorted list, not a sort per query.

        Same order as the general path: undated records count as the oldest instant
        (first in ASC, last in DESC) unless ``nulls_last``; ties break by id.
        """
        if self._updated_index is None:
            undated = sorted(
                (r for r in self.records.values() if r.served_updated is None),
                key=lambda record: record.id,
            )
            dated = sorted(
                (r for r in self.records.values() if r.served_updated is not None),
                key=lambda record: (record.served_updated, record.id),
            )
            instants = [r.served_updated for r in dated if r.served_updated is not None]
            self._updated_index = (undated, dated, instants)
        undated, dated, instants = self._updated_index
        start = 0 if key.since is None else bisect.bisect_left(instants, key.since)
        matching = dated[start:]
        if key.descending:
            matching = matching[::-1]
            undated = undated[::-1]
        if key.nulls_last or key.descending:
            return matching + undated
        return undated + matching

    def detail(self, record_id: str) -> bytes | None:
        """The record in full (line items included), or None if there is no such record."""
        record = self.records.get(record_id)
        return None if record is None else record.body

    def update(
        self, rng: random.Random, count: int, now: datetime, presentation: Presentation
    ) -> None:
        for record_id in _sample(rng, self.records, count):
            record = self.records[record_id]
            self._factory.revise(record, rng, now)
            record.render(presentation)
        self._views.clear()
        self._updated_index = None

    def create(
        self, rng: random.Random, count: int, now: datetime, presentation: Presentation
    ) -> None:
        for _ in range(count):
            record = self._factory.build(
                rng, self._next_index, now, now, rng.choice(_TIMESTAMP_STYLES)
            )
            self._next_index += 1
            record.render(presentation)
            self.records[record.id] = record
        self._views.clear()
        self._updated_index = None

    def delete(self, rng: random.Random, count: int) -> None:
        for record_id in _sample(rng, self.records, count):
            del self.records[record_id]
            self.deleted_ids.add(record_id)
        self._views.clear()
        self._updated_index = None

    def truth(self) -> dict[str, dict[str, Any]]:
        """Records exactly as served in full (the detail endpoint's form, line items included,
        even for records list pages serve without them); numbers parse to Decimal."""
        return {
            record_id: json.loads(record.body, parse_float=Decimal)
            for record_id, record in self.records.items()
        }


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Building 10^5 records allocates millions of containers, none of them garbage; left on,
    the cyclic collector rescans them again and again (about 40% of the build time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _with_duplicates(records: list[StoredRecord], count: int) -> list[StoredRecord]:
    """``records`` with the ``count`` of smallest id each listed a second time, right after
    itself (an unstable sort serving one record on two pages)."""
    if count <= 0:
        return records
    twice = set(sorted(record.id for record in records)[:count])
    listed = []
    for record in records:
        listed.append(record)
        if record.id in twice:
            listed.append(record)
    return listed


def _sample(rng: random.Random, records: dict[str, StoredRecord], count: int) -> list[str]:
    return rng.sample(list(records), min(count, len(records)))


def _sort_value(resource: str, order_field: str) -> Callable[[StoredRecord], Any]:
    shape = _SHAPES[resource]
    if order_field == "createdDate":
        return lambda record: record.created
    if order_field == "updatedDate":
        return lambda record: record.served_updated or _OLDEST_SORT_INSTANT
    if order_field == shape.date_field:
        return lambda record: record.business_date
    if order_field == shape.number_field:
        return lambda record: record.number
    raise ValueError(f"{order_field} is not an order field of {resource}")
