"""A record without an id stops the tap with one line (the command line, against a stub
serving whatever bills the test gives). Any other record Maesn may send:
tests/sync/test_hostile_input.py."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from tests.support.configs import stub_config
from tests.support.servers import BillsStub, bills_stub
from tests.support.tap import run_cli


@pytest.fixture(scope="module")
def stub() -> t.Iterator[BillsStub]:
    with bills_stub() as server:
        yield server


def _config(stub: BillsStub) -> dict[str, t.Any]:
    # Its detail endpoint is not a Maesn one: records are taken as listed.
    return stub_config(stub.url, fetch_details="never")


def test_a_record_without_an_id_stops_the_tap_with_one_line(
    stub: BillsStub, tmp_path: Path
) -> None:
    stub.bills = [{"id": "b-1"}, {"billNumber": "no id here"}]
    result = run_cli(config=_config(stub), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "returned a record without an 'id'" in result.stderr
