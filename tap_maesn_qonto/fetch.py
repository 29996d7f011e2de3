"""One request to Maesn, answered as a :class:`~envelope.Page` or one error of ``errors.py``.

A :class:`Fetcher` serves one stream on any thread. It sends a request through the
run's in-flight limit and throttle (runtime.py), retries what may pass (a 429, a 5xx,
a dropped connection, a 4xx where data is known to exist) with the run's
:class:`~retries.RetryPolicy`, and reads every other answer by where the request
stands in its read (:class:`~pages.Position`):

| answer | first request of a read | known page | past a full page, no count | detail |
|---|---|---|---|---|
| 2xx | the page | the page | the page | the record |
| 400 | the reader decides (an order or filter it cannot use) | retried, then fatal | retried, then fatal | retried, then fatal |
| 401, 403 | the key to fix (keycheck.py) | same | same | same |
| 404, 405, Maesn body | retried, then :class:`EndpointMissingError` | retried, then fatal | retried, then fatal | the record is gone |
| 404, 405, any other body | api_url is not Maesn | same | same | same |
| 422 | retried, then fatal | retried, then fatal | asked once more, then the end | retried, then fatal |
| any other 4xx | retried, then fatal | retried, then fatal | retried, then fatal | retried, then fatal |
| 429, 5xx, timeout, reset | retried, then fatal | same | same | same |

Nothing here knows the stream: the request is built by the ``prepare`` function it
is given, and the account a request is for travels with it as a label.
"""

from __future__ import annotations

import time
import typing as t
from urllib.parse import quote

import msgspec
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_maesn_qonto import keycheck
from tap_maesn_qonto.envelope import Page, parse_page
from tap_maesn_qonto.errors import (
    ClientError,
    EndOfDataError,
    EndpointMissingError,
    MaesnAPIError,
    RecordGoneError,
    TransientClientError,
    WrongApiUrlError,
)
from tap_maesn_qonto.pages import PageRequest, Position
from tap_maesn_qonto.redaction import redact
from tap_maesn_qonto.retries import RETRIABLE, RetryPolicy
from tap_maesn_qonto.transport import left_origin, read_body

if t.TYPE_CHECKING:
    import logging

    from tap_maesn_qonto.accounts import Account
    from tap_maesn_qonto.prefetch import RequestsAhead
    from tap_maesn_qonto.runtime import RunContext

#: Builds the HTTP request of a page request for an account label (the stream's SDK hooks).
Prepare = t.Callable[[str, PageRequest], requests.PreparedRequest]

_ERROR_DECODER = msgspec.json.Decoder()


def _error_body(content: bytes) -> tuple[bool, bool]:
    """Whether a 4xx body is Maesn's JSON error, and whether it says the route is missing."""
    try:
        body = _ERROR_DECODER.decode(content)
    except msgspec.DecodeError:
        return False, False
    if not isinstance(body, dict) or not ({"statusCode", "message", "errors"} & set(body)):
        return False, False
    message = body.get("message")
    return True, isinstance(message, str) and message.startswith("Cannot ")


class Fetcher:
    """Requests of one stream, for any account and on any thread."""

    def __init__(
        self,
        *,
        run: RunContext,
        stream: str,
        path: str,
        api_url: str,
        api_key: str,
        timeout: float,
        policy: RetryPolicy,
        prepare: Prepare,
        logger: logging.Logger | logging.LoggerAdapter,
    ) -> None:
        self.run = run
        self.stream = stream
        self.path = path
        self.api_url = api_url
        self.api_key = api_key
        self.timeout = timeout
        self.policy = policy
        self.prepare = prepare
        self.logger = logger

    # --- what a read asks for ---------------------------------------------------------

    def page(self, label: str, request: PageRequest, *, retries: bool = True) -> Page:
        """One page of a list, with retries unless told not to (a guess: prefetch.py)."""
        prepared = self.prepare(label, request)
        where = f"GET {self.path} (page {request.page})"
        return self._fetch(prepared, request, where, label, retries=retries)

    def detail(self, label: str, record_id: str) -> dict | None:
        """One record's detail, with retries; None if it is gone (details.py)."""
        request = PageRequest(page=1, limit=1, order_field=None, position=Position.DETAIL)
        listed = self.prepare(label, request)
        base = (listed.url or "").split("?", 1)[0]
        listed.prepare_url(f"{base}/{quote(record_id, safe='')}", None)
        try:
            page = self._fetch(listed, request, f"GET {self.path}/{{id}}", label)
        except RecordGoneError:
            return None
        return page.records[0]

    # --- one request ------------------------------------------------------------------

    def _fetch(
        self,
        prepared: requests.PreparedRequest,
        request: PageRequest,
        where: str,
        label: str,
        *,
        retries: bool = True,
    ) -> Page:
        if not retries:
            return self._send(prepared, request, where, label)
        try:
            return self._retrying(prepared, request, where, label)
        except ClientError as exc:
            if request.position is not Position.UNKNOWN or exc.status != 422:
                raise
        # Qonto answers 422 past the last page; once is not proof.
        try:
            return self._send(prepared, request, where, label)
        except ClientError as again:
            if again.status == 422:
                raise EndOfDataError from None
            raise

    def _retrying(
        self, prepared: requests.PreparedRequest, request: PageRequest, where: str, label: str
    ) -> Page:
        """Send until an answer is final; the policy waits between tries and ends them."""
        waits = self.policy.waits(self.run, self.stream, lambda: where, self.logger)
        next(waits)
        while True:
            try:
                return self._send(prepared, request, where, label)
            except RETRIABLE as exc:
                try:
                    waits.send(exc)  # waits, or raises once the budget is spent
                except MaesnAPIError:
                    if isinstance(exc, TransientClientError) and exc.endpoint_missing:
                        raise EndpointMissingError(exc.message) from None
                    raise
                self.run.progress.retried(self.stream, label)

    def _send(
        self, prepared: requests.PreparedRequest, request: PageRequest, where: str, label: str
    ) -> Page:
        """One attempt: the run's slot and throttle, the answer read whole, then judged."""
        body = b""

        def send_and_read() -> requests.Response:
            nonlocal body
            response = self.run.session.send(
                prepared, timeout=self.timeout, allow_redirects=True, stream=True
            )
            body = read_body(response, deadline=time.monotonic() + self.timeout)
            return response

        response = self.run.send(send_and_read)
        self.run.reached_api = True
        self._judge(response, body, request, where, label)
        page = parse_page(
            response,
            body,
            number=request.page,
            api_url=self.api_url,
            single=request.position is Position.DETAIL,
            secrets=self.run.secrets,
        )
        if not page.records and page.total and (request.page - 1) * request.limit < page.total:
            msg = (
                f"{where} came back empty although Maesn reported {page.total} records, "
                f"enough to reach it"
            )
            raise RetriableAPIError(msg, response)  # an inconsistent answer: asked again
        return page

    def _judge(
        self,
        response: requests.Response,
        body: bytes,
        request: PageRequest,
        where: str,
        label: str,
    ) -> None:
        """Raise what a non-2xx answer means here (the module's table)."""
        if (host := left_origin(response, self.api_url)) is not None:
            msg = (
                f"api_url ({self.api_url}) redirected to another host ({host}); the keys were "
                "not sent there. Set api_url to the Maesn API's own address."
            )
            raise WrongApiUrlError(msg)
        status = response.status_code
        if 200 <= status < 300:
            self.run.api_key_accepted = True  # evidence: keycheck.py needs no probe
            return
        message = self._message(response, body)
        if status == 429 or status >= 500:
            raise RetriableAPIError(message, response)
        if status in {401, 403}:
            raise keycheck.auth_error(
                self.run,
                api_key=self.api_key,
                timeout=self.timeout,
                account=self._account(label),
                where=f"GET {self.path}",
                status=status,
            )
        maesn_body, route_missing = _error_body(body)
        error = ClientError(message, response, maesn_body=maesn_body, route_missing=route_missing)
        raise self._read_client_error(error, request, where) from None

    def _read_client_error(self, exc: ClientError, request: PageRequest, where: str) -> Exception:
        """The error table for a 4xx, by where the request stands in its read."""
        missing = exc.status in {404, 405}
        if request.position is Position.DETAIL and exc.status == 404 and not exc.route_missing:
            return RecordGoneError(exc.message)
        if missing and (exc.route_missing or not exc.maesn_body):
            return WrongApiUrlError(
                f"{where} answered HTTP {exc.status} with a body that is not a Maesn "
                f"error: api_url ({self.api_url}) does not point at the Maesn API. Check "
                "the host, and that no path such as /v1 follows it (the default is "
                "https://api.maesn.dev)."
            )
        if request.position is Position.FIRST and exc.status == 400:
            return exc  # an order or filter the target system refuses: the reader decides
        if request.position is Position.UNKNOWN and exc.status == 422:
            return exc  # perhaps past the last page: _fetch asks once more
        return TransientClientError(
            f"{exc.message} (retried: Maesn documents these endpoints for Qonto, so a 4xx "
            "here is taken as passing, and fatal only if it persists)",
            exc.response,
            endpoint_missing=missing and request.position is Position.FIRST,
        )

    def _message(self, response: requests.Response, body: bytes) -> str:
        """A failed answer in one line, without the URL's query or any secret."""
        text = body[:2000].decode("utf-8", errors="replace")
        snippet = redact(text, self.run.secrets)[:300].replace("\n", " ")
        return f"GET {self.path} answered {response.status_code} {response.reason}: {snippet}"

    def _account(self, label: str) -> Account | None:
        return self.run.accounts.get(label)


class PageSource:
    """One partition's pages: what was fetched ahead of its read (prefetch.py), else now."""

    def __init__(self, fetcher: Fetcher, ahead: RequestsAhead[Page], label: str) -> None:
        self.fetcher = fetcher
        self.ahead = ahead
        self.label = label

    def _key(self, request: PageRequest) -> tuple[str, str, PageRequest]:
        return (self.fetcher.stream, self.label, request)

    def __call__(self, request: PageRequest) -> Page:
        taken = self.ahead.take(self._key(request))
        page = taken.result() if taken is not None else None
        return page if page is not None else self.fetcher.page(self.label, request)

    def fetched_ahead(self, request: PageRequest) -> bool:
        """Whether ``request`` is already on its way (it counts in no read's window)."""
        return self.ahead.holds(self._key(request))
