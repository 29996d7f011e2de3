"""A stream map calling ``fake.name()`` works with the faker extra (``faker_config``), as
the command line runs it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator

# --------------------------------------------------------------------------- faker extra


@pytest.mark.skipif(importlib.util.find_spec("faker") is None, reason="faker extra not installed")
def test_a_stream_map_using_faker_works_with_the_faker_extra(tmp_path: Path) -> None:
    """`fake.name()` in a stream map: what `faker_config` is advertised for."""
    with Emulator(counts={"invoices": 12, "bills": 0, "bookingProposals": 0}) as emulator:
        config = {
            "api_key": "emulator-api-key",
            "account_key": "emulator-account-qonto",
            "api_url": emulator.url,
            "start_date": "2020-01-01T00:00:00Z",
            "stream_maps": {"invoices": {"name": "fake.name()"}},
            "faker_config": {"seed": 7, "locale": "fr_FR"},
        }
        (tmp_path / "config.json").write_text(json.dumps(config))
        runs = [
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tap_maesn_qonto",
                    "--config",
                    str(tmp_path / "config.json"),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            for _ in range(2)
        ]
        served = {record["name"] for record in emulator.truth("invoices").values()}
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    names = [
        [
            m["record"]["name"]
            for m in map(json.loads, run.stdout.splitlines())
            if m["type"] == "RECORD" and m["stream"] == "invoices"
        ]
        for run in runs
    ]
    assert len(names[0]) == 12
    assert names[0] == names[1], "faker_config.seed must make the fake names reproducible"
    assert not set(names[0]) & served, "the names were not replaced"
    assert all(isinstance(name, str) and " " in name for name in names[0])
