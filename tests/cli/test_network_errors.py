"""A wrong api_url fails in seconds and says what is wrong: DNS, TLS or the certificate.

Before the API has answered at all, a host name that does not resolve, ``https://`` to a
plain HTTP port or an untrusted certificate is a setting to fix: two tries, then one line
naming the cause and the fix (it used to be 62-67 s of retries and "Maesn or Qonto is
unavailable or rate-limiting"). Once the API has answered, the same errors are retried
within the normal budget, and the final message still names them.

The command-line tests run ``python -m tap_maesn_qonto`` as a user does and time it.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tests.support.configs import tap_config
from tests.support.network import UNRESOLVABLE
from tests.support.tap import run_cli

if t.TYPE_CHECKING:
    import socket
    from collections.abc import Iterator

TENANT_SECRET = "tenant-key-5e0c9a7b3d1f4e2a8c6b"
ACCOUNT_SECRET = "account-key-8f2a6c4e0b9d7a5c3e1f"
#: A wrong api_url must be named well within this (it was 62-67 s).
FAST_SECONDS = 10.0


def _config(api_url: str, **overrides: t.Any) -> dict[str, t.Any]:
    return tap_config(
        api_url,
        api_key=TENANT_SECRET,
        account_key=ACCOUNT_SECRET,
        max_retry_seconds=None,
        **overrides,
    )


def _run_timed(
    tmp_path: Path, config: dict[str, t.Any], env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = run_cli(config=config, tmp_path=tmp_path, env=env, timeout=60)
    return result, time.monotonic() - started


def _the_error_line(result: subprocess.CompletedProcess[str], seconds: float) -> str:
    """The run failed fast, with exactly one error line and no traceback or secret."""
    print(f"exit {result.returncode} after {seconds:.2f} s")  # the figures, with -s or -rP
    assert result.returncode == 1, result.stderr[-3000:]
    assert seconds < FAST_SECONDS, f"{seconds:.1f} s:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for secret in (TENANT_SECRET, ACCOUNT_SECRET):
        assert secret not in result.stderr
        assert secret not in result.stdout
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "unavailable or rate-limiting" not in errors[0], errors[0]
    print(errors[0])
    return errors[0]


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_unresolvable_host_is_named_in_seconds(tmp_path: Path, scheme: str) -> None:
    # http:// to a non-loopback host needs allow_insecure_http; it is not what fails here.
    config = _config(f"{scheme}://{UNRESOLVABLE}", allow_insecure_http=True)

    line = _the_error_line(*_run_timed(tmp_path, config))

    assert (
        f"api_url ({scheme}://{UNRESOLVABLE}): the host name {UNRESOLVABLE} does not resolve"
        in line
    )
    assert "name resolution failed 2 times" in line
    assert "Check api_url and the DNS or proxy settings" in line


def test_https_to_a_plain_http_port_is_named_in_seconds(tmp_path: Path) -> None:
    with Emulator(counts={"invoices": 1, "bills": 1, "bookingProposals": 1}) as emulator:
        url = emulator.url.replace("http://", "https://")
        line = _the_error_line(*_run_timed(tmp_path, _config(url)))
        assert emulator.stats()["requests"] == 0  # no request ever reached it as HTTP

    assert f"TLS handshake with api_url ({url}) failed 2 times" in line
    assert "the server does not speak TLS" in line
    assert "Is it an http:// server?" in line


# --------------------------------------------------------------------------- a TLS server


def _certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (an IP address or a name) and its key."""
    cert, key = directory / f"{host}.pem", directory / f"{host}.key"
    san = f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}"
    try:
        from cryptography import x509  # noqa: PLC0415 - optional: openssl serves otherwise
    except ImportError:
        if not shutil.which("openssl"):
            pytest.skip("neither the cryptography package nor openssl to make a certificate")
        command = ["openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", f"/CN={host}"]
        subprocess.run(
            [
                *command,
                *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
                *("-keyout", str(key), "-out", str(cert), "-addext", f"subjectAltName={san}"),
            ],
            capture_output=True,
            check=True,
        )
        return cert, key
    _cryptography_certificate(x509, host, cert, key)
    return cert, key


def _cryptography_certificate(x509: t.Any, host: str, cert: Path, key: Path) -> None:
    import datetime as dt  # noqa: PLC0415
    import ipaddress  # noqa: PLC0415

    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        alt = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class _Answer404(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: t.Any) -> None:
        pass


class _TLSServer(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1 with the given certificate; failed handshakes are dropped."""

    daemon_threads = True

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Answer404)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)

    def get_request(self) -> tuple[socket.socket, t.Any]:
        connection, address = self.socket.accept()
        connection.settimeout(5)
        return self.context.wrap_socket(connection, server_side=True), address

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


def _serving(server: _TLSServer) -> Iterator[_TLSServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[_TLSServer]:
    yield from _serving(_TLSServer(*_certificate(tmp_path, "127.0.0.1")))


@pytest.fixture
def server_for_another_name(tmp_path: Path) -> Iterator[tuple[_TLSServer, Path]]:
    cert, key = _certificate(tmp_path, "maesn.test")
    for server in _serving(_TLSServer(cert, key)):
        yield server, cert


def test_an_untrusted_certificate_is_named_in_seconds(
    tmp_path: Path, self_signed_server: _TLSServer
) -> None:
    url = self_signed_server.url

    line = _the_error_line(*_run_timed(tmp_path, _config(url)))

    assert f"api_url ({url}): the server's certificate is not trusted" in line
    assert "self-signed certificate" in line
    assert "set REQUESTS_CA_BUNDLE" in line


def test_a_certificate_for_another_host_is_named_in_seconds(
    tmp_path: Path, server_for_another_name: tuple[_TLSServer, Path]
) -> None:
    server, cert = server_for_another_name
    # Its CA is trusted (REQUESTS_CA_BUNDLE): only the name is wrong.
    env = {"REQUESTS_CA_BUNDLE": str(cert)}

    line = _the_error_line(*_run_timed(tmp_path, _config(server.url), env))

    assert f"api_url ({server.url}): the server's certificate is not valid for 127.0.0.1" in line
    assert "Check the host name in api_url" in line
