"""Money reaches the target exactly as Maesn sent it: the command line writes each number
as the text it read (numbers.py). The other writers and the SDK's path:
tests/sync/test_numbers.py."""

from __future__ import annotations

import re
import typing as t

from tests.support.configs import stub_config
from tests.support.servers import EXACT_BILL, EXACT_MONEY, bills_as_text
from tests.support.tap import run_cli

if t.TYPE_CHECKING:
    from pathlib import Path


def test_the_tap_writes_each_number_as_the_text_it_read(tmp_path: Path) -> None:
    with bills_as_text(b"[" + EXACT_BILL + b"]") as url:
        run = run_cli(config=stub_config(url), tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    bill = next(line for line in lines if line.startswith('{"type":"RECORD","stream":"bills"'))
    for name, text in EXACT_MONEY.items():
        assert f'"{name}":{text},' in bill or f'"{name}":{text}}}' in bill, name
    row = next(line for line in lines if '"stream":"bill_line_items","record"' in line)
    assert re.search(r'"unitAmount":0\.10[,}]', row)
    assert re.search(r'"quantity":2\.5E\+3[,}]', row)
    assert '"accountNumber":"4.10"' in row  # a string column gets the number's text
