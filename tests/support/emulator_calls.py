"""Plain HTTP calls to the emulator, with its default keys, for the tests that check it."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

from tap_maesn_qonto.emulator import DEFAULT_API_KEY, QONTO_ACCOUNT_KEY, Emulator

AUTH = {"X-API-KEY": DEFAULT_API_KEY, "X-ACCOUNT-KEY": QONTO_ACCOUNT_KEY}


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
