"""Tiny stdlib HTTP servers that are not Maesn, for tests of what the tap sends where.

* :func:`static_server`: a plain static file server (``http.server``) over an empty
  directory: every API path gets its HTML 404, as a web server that is not Maesn does.
* :func:`header_recorder`: records the headers of every request it receives and answers
  with an empty Maesn-shaped list (so a client that trusts it sees a plausible page).
* :func:`bills_as_text`: serves one page of bills written as raw JSON text (numbers
  exactly as given), and empty lists elsewhere.
* :func:`bills_stub`: serves whatever list of bills a test sets (:class:`BillsStub`) as one
  page, and empty lists elsewhere; one server for many runs (hypothesis examples).

All listen on 127.0.0.1, port 0, in a daemon thread, for the ``with`` block only.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import typing as t
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (pytest shows stderr of failing tests)."""

    def log_message(self, format: str, *args: t.Any) -> None:
        del format, args


def send_json(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200) -> None:
    """Answer the handler's request with ``body`` as JSON."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@contextlib.contextmanager
def serving(handler: t.Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve with ``handler`` on loopback for the ``with`` block; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert isinstance(host, str)  # getsockname() of an AF_INET socket
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietStaticHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: t.Any) -> None:
        del format, args


@contextlib.contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """A static web server over ``directory``; yields its base URL."""
    with serving(functools.partial(_QuietStaticHandler, directory=str(directory))) as url:
        yield url


@dataclass
class Recorder:
    """What a :func:`header_recorder` received."""

    url: str = ""
    #: One list of (name, value) header pairs per request, as received.
    requests: list[list[tuple[str, str]]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def header_names(self) -> set[str]:
        with self.lock:
            return {name.lower() for headers in self.requests for name, _ in headers}

    def header_values(self) -> list[str]:
        with self.lock:
            return [value for headers in self.requests for _, value in headers]


_EMPTY_PAGE = json.dumps(
    {
        "meta": {"warnings": [], "pagination": {"total": 0, "perPage": 10, "totalPages": 0}},
        "data": [],
        "errors": None,
        "rawData": None,
    }
).encode()


def _recording_handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with recorder.lock:
                recorder.requests.append(list(self.headers.items()))
                recorder.paths.append(self.path)
            send_json(self, _EMPTY_PAGE)

    return Handler


@contextlib.contextmanager
def header_recorder() -> Iterator[Recorder]:
    """A server that records every request's headers; yields the :class:`Recorder`."""
    recorder = Recorder()
    with serving(_recording_handler(recorder)) as url:
        recorder.url = url
        yield recorder


def _bills_handler(records_json: bytes) -> type[BaseHTTPRequestHandler]:
    count = len(json.loads(records_json))

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            bills = self.path.startswith("/accounting/bills")
            first = "page=1&" in self.path or self.path.endswith("page=1")
            data = records_json if bills and first else b"[]"
            total = count if bills else 0
            pagination = f'{{"total":{total},"perPage":100,"currentPage":1,"totalPages":1}}'
            send_json(
                self,
                b'{"meta":{"warnings":[],"pagination":'
                + pagination.encode()
                + b'},"data":'
                + data
                + b"}",
            )

    return Handler


@contextlib.contextmanager
def bills_as_text(records_json: bytes) -> Iterator[str]:
    """A server whose bills are ``records_json`` (a JSON array) as one page; yields its URL."""
    with serving(_bills_handler(records_json)) as url:
        yield url


@dataclass
class BillsStub:
    """What a :func:`bills_stub` serves: ``bills`` as the one page of bills (set per run)."""

    url: str = ""
    bills: list[t.Any] = field(default_factory=list)


def _bills_stub_handler(stub: BillsStub) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            page = 1 if "page=1&" in self.path or self.path.endswith("page=1") else 2
            bills = self.path.startswith("/accounting/bills")
            records = stub.bills if bills and page == 1 else []
            total = len(stub.bills) if bills else 0
            pagination = {"total": total, "perPage": 100, "currentPage": page, "totalPages": 1}
            body = json.dumps(
                {
                    "meta": {"warnings": [], "pagination": pagination},
                    "data": records,
                    "errors": None,
                    "rawData": None,
                },
                ensure_ascii=False,
            ).encode()
            send_json(self, body)

    return Handler


@contextlib.contextmanager
def bills_stub() -> Iterator[BillsStub]:
    """A server whose bills are what the test puts in :attr:`BillsStub.bills`."""
    stub = BillsStub()
    with serving(_bills_stub_handler(stub)) as url:
        stub.url = url
        yield stub


# Beyond a float's precision, trailing zeros, an exponent, a negative zero.
EXACT_BILL = (
    b'{"id":"b-1","totalGrossAmount":12345678901234567890.123456789012,'
    b'"totalNetAmount":154.30,"totalTaxAmount":1e-7,"totalDiscountAmount":-0.0,'
    b'"paymentDays":30,"lineItems":[{"unitAmount":0.10,"quantity":2.5E+3,'
    b'"accountNumber":4.10}]}'
)
EXACT_MONEY = {
    "totalGrossAmount": "12345678901234567890.123456789012",
    "totalNetAmount": "154.30",
    "totalTaxAmount": "1e-7",
    "totalDiscountAmount": "-0.0",
    "paymentDays": "30",
}
