"""The three Maesn accounting streams; each declares only what differs."""

from __future__ import annotations

import typing as t

from tap_maesn_qonto.client import MaesnStream


class InvoicesStream(MaesnStream):
    """Customer invoices (Qonto client invoices)."""

    name = "invoices"
    path = "/accounting/invoices"
    # The spec names the key invoiceId; newer Maesn docs say id (invoiceId deprecated).
    id_aliases: t.ClassVar[tuple[str, ...]] = ("invoiceId",)


class BillsStream(MaesnStream):
    """Supplier invoices (Qonto supplier invoices)."""

    name = "bills"
    path = "/accounting/bills"


class BookingProposalsStream(MaesnStream):
    """Booking proposals: proposed bookkeeping entries Maesn derives from Qonto."""

    name = "booking_proposals"
    path = "/accounting/bookingProposals"


STREAM_TYPES: tuple[type[MaesnStream], ...] = (
    InvoicesStream,
    BillsStream,
    BookingProposalsStream,
)
