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

import os
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


def read_body(response: requests.Response) -> bytes:
    """A success's whole body, read in one piece; any other answer keeps it on ``response``.

    ``response`` must come from a ``stream=True`` send. ``Response.content`` reads in
    10 kB pieces, each through several layers of urllib3: a third of the CPU of fetching
    a 150 kB page. Other answers are read the usual way, so error messages can quote them.
    """
    if 200 <= response.status_code < 300:
        return b"".join(response.iter_content(chunk_size=None))
    return response.content
