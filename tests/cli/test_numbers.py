"""Money reaches the target exactly as Maesn sent it: the command line writes each number
as the text it read (numbers.py). The other writers and the SDK's path:
tests/sync/test_numbers.py."""

from __future__ import annotations

import re
import typing as t

from tests.support.configs import stub_config
from tests.support.servers import bills_as_text
from tests.support.tap import run_cli

if t.TYPE_CHECKING:
    from pathlib import Path


# Beyond a float's precision, trailing zeros, an exponent, a negative zero.
BILL = (
    b'{"id":"b-1","totalGrossAmount":12345678901234567890.123456789012,'
    b'"totalNetAmount":154.30,"totalTaxAmount":1e-7,"totalDiscountAmount":-0.0,'
    b'"paymentDays":30,"lineItems":[{"unitAmount":0.10,"quantity":2.5E+3,'
    b'"accountNumber":4.10}]}'
)
EXACT = {
    "totalGrossAmount": "12345678901234567890.123456789012",
    "totalNetAmount": "154.30",
    "totalTaxAmount": "1e-7",
    "totalDiscountAmount": "-0.0",
    "paymentDays": "30",
}


def test_the_tap_writes_each_number_as_the_text_it_read(tmp_path: Path) -> None:
    with bills_as_text(b"[" + BILL + b"]") as url:
        run = run_cli(config=stub_config(url), tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    bill = next(line for line in lines if line.startswith('{"type":"RECORD","stream":"bills"'))
    for name, text in EXACT.items():
        assert f'"{name}":{text},' in bill or f'"{name}":{text}}}' in bill, name
    row = next(line for line in lines if '"stream":"bill_line_items","record"' in line)
    assert re.search(r'"unitAmount":0\.10[,}]', row)
    assert re.search(r'"quantity":2\.5E\+3[,}]', row)
    assert '"accountNumber":"4.10"' in row  # a string column gets the number's text
