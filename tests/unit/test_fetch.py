"""fetch.py's error table: what each answer means where the request stands in its read.

A :class:`Fetcher` sends through a scripted session (no server): each request gets the
next answer of a script (the last one repeats), and the test reads what the fetcher made
of them, and how many requests it sent, by :class:`Position`:

| answer | first request | known page | past a full page, no count | detail |
|---|---|---|---|---|
| 2xx | the page | the page | the page | the record |
| 400 | the reader decides | retried, then fatal | retried, then fatal | retried, then fatal |
| 401, 403 | the key to fix | same | same | same |
| 404, Maesn body | retried, then EndpointMissingError | retried, then fatal | retried, then fatal | the record is gone |
| 404, another body | api_url is not Maesn | same | same | the record is gone |
| 404, 405, "Cannot GET" | api_url is not Maesn | same | same | same |
| 422 | retried, then fatal | retried, then fatal | asked once more, then the end | retried, then fatal |
| other 4xx | retried, then fatal | same | same | same |
| 429, 5xx, reset | retried, then fatal | same | same | same |

Retries wait milliseconds (the ``fast_retries`` fixture).
"""

from __future__ import annotations

import json
import logging
import typing as t
from dataclasses import dataclass, field

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from singer_sdk.exceptions import RetriableAPIError

from tap_maesn_qonto.errors import (
    AuthError,
    ClientError,
    EndOfDataError,
    EndpointMissingError,
    MaesnAPIError,
    WrongApiUrlError,
)
from tap_maesn_qonto.fetch import Fetcher
from tap_maesn_qonto.pages import PageRequest, Position
from tap_maesn_qonto.retries import CLIENT_ERROR_RETRIES, RetryPolicy
from tap_maesn_qonto.runtime import RunContext

API_URL = "https://api.maesn.test"
PATH = "/accounting/invoices"
MAX_RETRIES = 5  # more than the budget of a 4xx taken as passing (CLIENT_ERROR_RETRIES)
PAGE = {
    "meta": {"warnings": [], "pagination": {"total": 1, "perPage": 10, "totalPages": 1}},
    "data": [{"id": "inv-1"}],
}
MAESN_404 = {"statusCode": 404, "message": "Invoice not found", "errors": []}
ROUTE_404 = {"statusCode": 404, "message": "Cannot GET /v1/accounting/invoices", "errors": []}
MAESN_4XX = {"statusCode": 0, "message": "Rejected", "errors": ["orderField"]}


@dataclass(frozen=True)
class Answer:
    status: int
    body: t.Any = None  # JSON (dict) or raw text
    content_type: str = "application/json"


class _Body:
    """What ``transport.read_body`` reads a response's raw stream with."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read1(self, size: int, *, decode_content: bool = True) -> bytes:
        del decode_content
        piece, self.data = self.data[:size], self.data[size:]
        return piece

    def close(self) -> None:
        self.data = b""


@dataclass(eq=False)  # hashable: keycheck.py keeps one answer per session
class ScriptedSession:
    """Answers each request with the next answer of ``script``; the last one repeats."""

    script: list[Answer | type[Exception]]
    sent: list[str] = field(default_factory=list)

    def _next(self) -> Answer | type[Exception]:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def send(self, prepared: requests.PreparedRequest, **_: t.Any) -> requests.Response:
        self.sent.append(prepared.url or "")
        answer = self._next()
        if not isinstance(answer, Answer):
            raise answer("scripted")
        return _response(prepared, answer)

    def get(self, url: str, **_: t.Any) -> requests.Response:
        """The key check (keycheck.py): the tenant key is accepted."""
        return _response(requests.Request("GET", url).prepare(), Answer(200, {}))


def _response(prepared: requests.PreparedRequest, answer: Answer) -> requests.Response:
    response = requests.Response()
    response.status_code = answer.status
    response.reason = {200: "OK", 404: "Not Found"}.get(answer.status, "Scripted")
    response.url = prepared.url or ""
    response.request = prepared
    response.headers = CaseInsensitiveDict({"Content-Type": answer.content_type})
    body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body or {})
    response.raw = _Body(body.encode())
    return response


def fetcher(*script: Answer | type[Exception]) -> tuple[Fetcher, ScriptedSession]:
    session = ScriptedSession(list(script))
    run = RunContext(api_url=API_URL, max_concurrency=1)
    run.__dict__["session"] = session  # the run's session, scripted

    def prepare(label: str, request: PageRequest) -> requests.PreparedRequest:
        del label
        params = {"page": request.page, "limit": request.limit}
        return requests.Request("GET", API_URL + PATH, params=params).prepare()

    logger = logging.getLogger("tests.fetch")
    logger.disabled = True
    return (
        Fetcher(
            run=run,
            stream="invoices",
            path=PATH,
            api_url=API_URL,
            api_key="tenant-key",
            timeout=5,
            policy=RetryPolicy(max_retries=MAX_RETRIES, max_retry_seconds=60),
            prepare=prepare,
            logger=logger,
        ),
        session,
    )


def request_at(position: Position) -> PageRequest:
    return PageRequest(page=1 if position is Position.FIRST else 3, limit=10, position=position)


PAGE_POSITIONS = [Position.FIRST, Position.KNOWN, Position.UNKNOWN]


def ask(fetch: Fetcher, position: Position) -> object:
    """A page at ``position``, or a record's detail."""
    if position is Position.DETAIL:
        return fetch.detail("default", "inv-1")
    return fetch.page("default", request_at(position))


pytestmark = pytest.mark.usefixtures("fast_retries")


# --------------------------------------------------------------------------- 2xx


@pytest.mark.parametrize("position", PAGE_POSITIONS)
def test_a_2xx_is_the_page(position: Position) -> None:
    fetch, session = fetcher(Answer(200, PAGE))
    page = fetch.page("default", request_at(position))
    assert [r["id"] for r in page.records] == ["inv-1"]
    assert (page.total, page.total_pages) == (1, 1)
    assert len(session.sent) == 1
    assert fetch.run.api_key_accepted


def test_a_2xx_detail_is_the_record() -> None:
    fetch, session = fetcher(Answer(200, {"data": {"id": "inv-1", "lineItems": []}}))
    assert fetch.detail("default", "inv-1") == {"id": "inv-1", "lineItems": []}
    assert session.sent == [f"{API_URL}{PATH}/inv-1"]


# --------------------------------------------------------------------------- 400


def test_a_400_on_a_first_request_is_left_to_the_reader_at_once() -> None:
    fetch, session = fetcher(Answer(400, MAESN_4XX))
    with pytest.raises(ClientError) as raised:
        fetch.page("default", request_at(Position.FIRST))
    assert raised.value.status == 400
    assert len(session.sent) == 1


@pytest.mark.parametrize("position", [Position.KNOWN, Position.UNKNOWN])
def test_a_400_elsewhere_is_retried_then_fatal(position: Position) -> None:
    fetch, session = fetcher(Answer(400, MAESN_4XX))
    with pytest.raises(MaesnAPIError, match="still failed after"):
        fetch.page("default", request_at(position))
    assert len(session.sent) == CLIENT_ERROR_RETRIES + 1


# --------------------------------------------------------------------------- 401, 403


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("position", [*PAGE_POSITIONS, Position.DETAIL])
def test_a_401_or_403_names_the_key_to_fix_without_a_retry(status: int, position: Position) -> None:
    fetch, session = fetcher(Answer(status, {"statusCode": status, "message": "No"}))
    with pytest.raises(AuthError):
        ask(fetch, position)
    assert len(session.sent) == 1


# --------------------------------------------------------------------------- 404


def test_a_404_on_a_first_request_is_retried_then_the_endpoint_is_missing() -> None:
    fetch, session = fetcher(Answer(404, MAESN_404))
    with pytest.raises(EndpointMissingError):
        fetch.page("default", request_at(Position.FIRST))
    assert len(session.sent) == CLIENT_ERROR_RETRIES + 1


@pytest.mark.parametrize("position", [Position.FIRST, Position.KNOWN])
def test_a_404_that_passes_is_only_a_retry(position: Position) -> None:
    fetch, session = fetcher(Answer(404, MAESN_404), Answer(200, PAGE))
    assert fetch.page("default", request_at(position)).records
    assert len(session.sent) == 2


@pytest.mark.parametrize("position", [Position.KNOWN, Position.UNKNOWN])
def test_a_404_on_a_known_page_is_retried_then_fatal_but_no_missing_endpoint(
    position: Position,
) -> None:
    fetch, session = fetcher(Answer(404, MAESN_404))
    with pytest.raises(MaesnAPIError, match="still failed after") as raised:
        fetch.page("default", request_at(position))
    assert not isinstance(raised.value, EndpointMissingError)
    assert len(session.sent) == CLIENT_ERROR_RETRIES + 1


def test_a_404_on_a_detail_means_the_record_is_gone() -> None:
    fetch, session = fetcher(Answer(404, MAESN_404))
    assert fetch.detail("default", "inv-1") is None
    assert len(session.sent) == 1


NOT_MAESN = {
    "html": Answer(404, "<html><body>Not Found</body></html>", "text/html"),
    "foreign_json": Answer(404, {"error": "no such thing"}),  # JSON, not Maesn's error
    "route_missing": Answer(404, ROUTE_404),  # Maesn's, but the route does not exist
    "405_route_missing": Answer(405, ROUTE_404),
}


@pytest.mark.parametrize(
    ("answer", "position"),
    [
        *(
            pytest.param(answer, position, id=f"{name}-{position.value}")
            for name, answer in NOT_MAESN.items()
            for position in PAGE_POSITIONS
        ),
        # A detail's 404 is "the record is gone" unless the route itself is missing.
        pytest.param(NOT_MAESN["route_missing"], Position.DETAIL, id="route_missing-detail"),
        pytest.param(NOT_MAESN["405_route_missing"], Position.DETAIL, id="405-detail"),
    ],
)
def test_a_404_that_is_not_maesns_means_api_url_is_wrong(
    answer: Answer, position: Position
) -> None:
    fetch, session = fetcher(answer)
    with pytest.raises(WrongApiUrlError, match="does not point at the Maesn API"):
        ask(fetch, position)
    assert len(session.sent) == 1


# --------------------------------------------------------------------------- 422 and others


@pytest.mark.parametrize("position", [Position.FIRST, Position.KNOWN])
def test_a_422_is_retried_then_fatal(position: Position) -> None:
    fetch, session = fetcher(Answer(422, MAESN_4XX))
    with pytest.raises(MaesnAPIError, match="still failed after"):
        fetch.page("default", request_at(position))
    assert len(session.sent) == CLIENT_ERROR_RETRIES + 1


def test_a_422_past_a_full_page_without_a_count_is_asked_once_more_then_the_end() -> None:
    fetch, session = fetcher(Answer(422, MAESN_4XX))
    with pytest.raises(EndOfDataError):
        fetch.page("default", request_at(Position.UNKNOWN))
    assert len(session.sent) == 2


def test_a_single_422_past_a_full_page_is_not_the_end() -> None:
    fetch, session = fetcher(Answer(422, MAESN_4XX), Answer(200, PAGE))
    assert fetch.page("default", request_at(Position.UNKNOWN)).records
    assert len(session.sent) == 2


@pytest.mark.parametrize("position", [*PAGE_POSITIONS, Position.DETAIL])
def test_any_other_4xx_is_retried_then_fatal(position: Position) -> None:
    fetch, session = fetcher(Answer(409, MAESN_4XX))
    with pytest.raises(MaesnAPIError, match="still failed after"):
        ask(fetch, position)
    assert len(session.sent) == CLIENT_ERROR_RETRIES + 1


# --------------------------------------------------------------------------- 429, 5xx, resets


@pytest.mark.parametrize(
    "failure",
    [
        Answer(429, {"message": "slow down"}),
        Answer(503, "busy", "text/plain"),
        ConnectionResetError,
    ],
    ids=["429", "503", "reset"],
)
@pytest.mark.parametrize("position", [*PAGE_POSITIONS, Position.DETAIL])
def test_a_429_a_5xx_or_a_reset_is_retried_up_to_max_retries_then_fatal(
    failure: Answer | type[Exception], position: Position
) -> None:
    fetch, session = fetcher(failure)
    with pytest.raises(MaesnAPIError, match=f"still failed after {MAX_RETRIES + 1} attempts"):
        ask(fetch, position)
    assert len(session.sent) == MAX_RETRIES + 1


def test_a_failure_that_passes_is_only_a_retry_and_counted() -> None:
    fetch, session = fetcher(Answer(503, "busy", "text/plain"), Answer(200, PAGE))
    assert fetch.page("default", request_at(Position.KNOWN)).records
    assert len(session.sent) == 2
    assert fetch.run.progress.retries_of("invoices", "default") == 1


def test_a_guess_is_sent_once_and_never_retried() -> None:
    fetch, session = fetcher(Answer(503, "busy", "text/plain"), Answer(200, PAGE))
    with pytest.raises(RetriableAPIError):
        fetch.page("default", request_at(Position.KNOWN), retries=False)
    assert len(session.sent) == 1
