"""TLS stays on and keys never travel in clear text to another host."""

from __future__ import annotations

from pathlib import Path

import pytest

from tap_maesn_qonto.client import MaesnStream
from tap_maesn_qonto.tap import TapMaesnQonto

PACKAGE = Path(__file__).resolve().parents[2] / "tap_maesn_qonto"


def test_tls_certificates_are_always_verified() -> None:
    tap = TapMaesnQonto(config={"api_key": "k" * 8, "account_key": "a" * 8})
    http_streams = [s for s in tap.streams.values() if isinstance(s, MaesnStream)]
    assert len(http_streams) == 3  # line-item streams make no requests
    for stream in http_streams:
        verify = stream.requests_session.verify
        # True, or the CA bundle named by REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE: never off.
        assert verify is True or (isinstance(verify, str) and Path(verify).is_file()), verify
    for source in PACKAGE.rglob("*.py"):
        assert "verify=False" not in source.read_text(), f"{source} turns TLS verification off"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8787", "http://localhost:1", "http://[::1]:80"])
def test_plain_http_is_allowed_only_to_loopback(url: str) -> None:
    TapMaesnQonto(config={"api_key": "k" * 8, "account_key": "a" * 8, "api_url": url})


def test_plain_http_to_another_host_needs_an_explicit_setting() -> None:
    config = {"api_key": "k" * 8, "account_key": "a" * 8, "api_url": "http://maesn.internal"}
    with pytest.raises(Exception, match="plain http to a non-loopback host"):
        TapMaesnQonto(config=config)
    TapMaesnQonto(config={**config, "allow_insecure_http": True})
