"""The emulator's command line (``python -m tap_maesn_qonto.emulator``) serves until
SIGTERM. The emulator itself: tests/sync/test_emulator.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tap_maesn_qonto.emulator import (
    Emulator,
)
from tests.support.emulator_calls import call

SMALL = {"invoices": 23, "bills": 20, "bookingProposals": 7}
REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def emu() -> Any:
    with Emulator(counts=SMALL) as emulator:
        yield emulator


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
