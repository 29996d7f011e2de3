"""The three Maesn accounting streams and their line items; each declares only what differs."""

from __future__ import annotations

import typing as t

from tap_maesn_qonto.client import MaesnStream
from tap_maesn_qonto.lineitems import LineItemsStream


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


class InvoiceLineItemsStream(LineItemsStream):
    """The lines of each invoice."""

    name = "invoice_line_items"
    parent_stream_type = InvoicesStream
    parent_key = "invoice_id"


class BillLineItemsStream(LineItemsStream):
    """The lines of each bill."""

    name = "bill_line_items"
    parent_stream_type = BillsStream
    parent_key = "bill_id"


class BookingProposalLineItemsStream(LineItemsStream):
    """The lines of each booking proposal."""

    name = "booking_proposal_line_items"
    parent_stream_type = BookingProposalsStream
    parent_key = "booking_proposal_id"


STREAM_TYPES: tuple[type[MaesnStream], ...] = (
    InvoicesStream,
    BillsStream,
    BookingProposalsStream,
)
LINE_ITEM_STREAM_TYPES: tuple[type[LineItemsStream], ...] = (
    InvoiceLineItemsStream,
    BillLineItemsStream,
    BookingProposalLineItemsStream,
)
