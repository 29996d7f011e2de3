"""Money reaches the target exactly as Maesn sent it, through every writer and path.

JSON numbers with a fraction are kept as their text (numbers.py): the tap's own writer
copies that text out, a writer without msgspec gets Decimals, and the SDK's path (stream
maps) gets Decimals it can compute with.
"""

from __future__ import annotations

import decimal
import typing as t

import msgspec
from singer_sdk.singerlib.encoding.simple import SimpleSingerWriter

from tap_maesn_qonto.tap import TapMaesnQonto
from tests.support.configs import stub_config
from tests.support.servers import EXACT_BILL, EXACT_MONEY, bills_as_text
from tests.support.tap import sync

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

DECIMALS = msgspec.json.Decoder(float_hook=decimal.Decimal)


def test_a_writer_without_msgspec_gets_exact_decimals() -> None:
    class Collecting(SimpleSingerWriter):
        def __init__(self) -> None:
            super().__init__()
            self.lines: list[str] = []

        def write_message(self, message: Message) -> None:
            self.lines.append(self.format_message(message))

    writer = Collecting()
    with bills_as_text(b"[" + EXACT_BILL + b"]") as url:
        TapMaesnQonto(config=stub_config(url), message_writer=writer).sync_all()
    bill = next(
        m["record"]
        for line in writer.lines
        if (m := DECIMALS.decode(line))["type"] == "RECORD" and m["stream"] == "bills"
    )
    for name, text in EXACT_MONEY.items():
        assert bill[name] == decimal.Decimal(text), name
        assert str(bill[name]) == str(decimal.Decimal(text)), name  # trailing zeros kept


def test_stream_maps_compute_with_exact_numbers() -> None:
    maps = {
        "bills": {"net_cents": "totalNetAmount * 100"},
        "bill_line_items": {"line_total": "unitAmount * quantity"},
    }
    with bills_as_text(b"[" + EXACT_BILL + b"]") as url:
        result = sync(stub_config(url, stream_maps=maps))
    (bill,) = result.records("bills")
    assert str(bill["net_cents"]) == "15430.00"  # a float would say 15430.000000000002
    (row,) = result.records("bill_line_items")
    assert row["line_total"] == decimal.Decimal("250.000")
