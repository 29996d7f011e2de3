"""How a failed request is described (retries.py), from real failures: a name that does
not resolve, TLS to a plain HTTP port, a connection refused, a timeout."""

from __future__ import annotations

import pytest
import requests

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.retries import describe_failure, gave_up, network_cause
from tests.support.network import UNRESOLVABLE, failure

# --------------------------------------------------------------------------- after an answer


@pytest.fixture(scope="module")
def dns_failure() -> requests.RequestException:
    return failure(f"https://{UNRESOLVABLE}/accounting/invoices")


def test_the_causes_are_told_apart(dns_failure: requests.RequestException) -> None:
    with Emulator(counts={"invoices": 1, "bills": 1, "bookingProposals": 1}) as emulator:
        not_tls = failure(emulator.url.replace("http://", "https://"))
        port = emulator.url.rsplit(":", 1)[1]
    refused = failure(f"http://127.0.0.1:{port}")  # closed now

    assert describe_failure(dns_failure).startswith("name resolution failed")
    assert describe_failure(not_tls).startswith("TLS handshake failed: the server does not")
    assert describe_failure(refused) == "connection refused"
    assert network_cause(refused) is None
    timeout = requests.exceptions.ReadTimeout("read timed out")
    assert network_cause(timeout) is None
    assert "unavailable or rate-limiting" in str(gave_up("GET /x", 9, 61.0, timeout))
