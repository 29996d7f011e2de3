"""The HTTP session every request of a run goes through.

* One pooled connection per concurrent request (the default pool of 10 would
  discard connections above that: "Connection pool is full").
* Proxy and CA settings resolved once, not on every request.
* The keys never leave ``api_url``'s origin: requests strips only
  ``Authorization`` on a redirect to another host, so ``X-API-KEY`` and
  ``X-ACCOUNT-KEY`` are stripped here too, and the stream then refuses the
  redirected answer (see ``MaesnStream.validate_response``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import time
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

KEY_HEADERS = ("X-API-KEY", "X-ACCOUNT-KEY")


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: what must match for the keys to be sent."""
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class MaesnSession(requests.Session):
    """A session that drops the Maesn keys on any redirect away from ``api_url``."""

    def __init__(self, api_url: str) -> None:
        super().__init__()
        self.api_origin = origin(api_url)

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        super().rebuild_auth(prepared_request, response)
        if origin(prepared_request.url or "") != self.api_origin:
            for name in KEY_HEADERS:
                prepared_request.headers.pop(name, None)


def build_session(api_url: str, pool_size: int) -> MaesnSession:
    """The run's session: sized pool, environment proxies resolved once."""
    session = MaesnSession(api_url)
    session.proxies.update(requests.utils.get_environ_proxies(api_url))
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    session.trust_env = False  # resolved above; requests would re-read os.environ per send
    for prefix in ("https://", "http://"):
        session.mount(prefix, HTTPAdapter(pool_connections=4, pool_maxsize=pool_size))
    return session


def left_origin(response: requests.Response, api_url: str) -> str | None:
    """The foreign host a redirect chain led to, if any."""
    wanted = origin(api_url)
    for hop in (*response.history, response):
        if origin(hop.url or "") != wanted:
            return urlsplit(hop.url).hostname or hop.url
    return None


#: Bytes asked of the socket at a time: whatever has arrived, up to this.
READ_BYTES = 256 * 1024


def read_body(response: requests.Response, deadline: float) -> bytes:
    """The whole body, by ``deadline`` (a ``time.monotonic()`` value) or a Timeout.

    ``response`` must come from a ``stream=True`` send. The socket timeout bounds each
    read, not the response: a server trickling its body a few bytes at a time would hold
    the run without limit, so the body is read in pieces of whatever has arrived, and
    the deadline is checked between them. (``Response.content`` reads in 10 kB pieces
    through several layers of urllib3: a third of the CPU of fetching a 150 kB page.)
    """
    pieces = []
    raw = response.raw
    try:
        while piece := raw.read1(READ_BYTES, decode_content=True):
            pieces.append(piece)
            if time.monotonic() > deadline:
                break
    except requests.exceptions.RequestException:
        raise
    except Exception as exc:  # urllib3's own errors, as requests would wrap them
        raise requests.exceptions.ConnectionError(exc) from exc
    else:
        if not piece:
            return b"".join(pieces)
    response.close()
    msg = "the response did not arrive whole within request_timeout"
    raise requests.exceptions.ReadTimeout(msg)


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Seconds a response's ``Retry-After`` header asks for (delta or HTTP date)."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000" and a missing zone both mean UTC (RFC 5322 §3.3)
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, (moment - dt.datetime.now(tz=dt.UTC)).total_seconds())
