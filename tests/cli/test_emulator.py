"""The emulator's command line (``python -m tap_maesn_qonto.emulator``) serves until
SIGTERM. The emulator itself: tests/sync/test_emulator.py."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tap_maesn_qonto.emulator import (
    DEFAULT_API_KEY,
    QONTO_ACCOUNT_KEY,
    Emulator,
)

AUTH = {"X-API-KEY": DEFAULT_API_KEY, "X-ACCOUNT-KEY": QONTO_ACCOUNT_KEY}
SMALL = {"invoices": 23, "bills": 20, "bookingProposals": 7}
REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body, parse_float=Decimal)


def call(
    emu: Emulator | str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: object = None,
    timeout: float = 5.0,
) -> Response:
    url = urlsplit(emu if isinstance(emu, str) else emu.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    try:
        target = path + (f"?{urlencode(params)}" if params else "")
        payload = None if body is None else json.dumps(body)
        connection.request(
            method, target, body=payload, headers=AUTH if headers is None else headers
        )
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


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
