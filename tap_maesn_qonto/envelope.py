"""Read Maesn's response envelope into a :class:`Page`, or say clearly why not.

Maesn wraps every list in ``{"meta": {"warnings": [...], "pagination": {...}},
"data": [...], "errors": ..., "rawData": ...}``. A proxy's HTML login page or a
changed envelope must stop the tap with a message a person can act on, not a
``JSONDecodeError`` traceback. A truncated body, or a 200 whose ``errors`` member
is set (Maesn could not get the page from Qonto), is transient: it is raised as
retriable, and fatal only when it persists.
"""

from __future__ import annotations

import datetime as dt
import decimal
import email.utils
import typing as t
from dataclasses import dataclass

import msgspec
from singer_sdk.exceptions import RetriableAPIError

from tap_maesn_qonto import numbers
from tap_maesn_qonto.errors import MaesnAPIError, WrongApiUrlError
from tap_maesn_qonto.redaction import redact

if t.TYPE_CHECKING:
    import requests

# Money must stay exact: a JSON number with a fraction is kept as its text (numbers.py).
_DECODER = numbers.DECODER


@dataclass(frozen=True)
class Page:
    """One page of records with the paging facts Maesn reported beside it."""

    number: int
    records: list[dict]
    total: int | None
    total_pages: int | None
    per_page: int | None
    warnings: tuple[str, ...]
    #: The server's clock when it answered (its ``Date`` header), if it sent one.
    server_time: dt.datetime | None = None


def _optional_int(value: t.Any) -> int | None:
    """A count as an int: a JSON number, or a numeric string (``"300"``); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, numbers.Raw):
        value = numbers.to_decimal(value)
    elif isinstance(value, str):
        try:
            value = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            return None
    if isinstance(value, decimal.Decimal) and value.is_finite() and value == int(value):
        return int(value)
    return None


def _member(container: dict, name: str, kind: type[t.Any]) -> t.Any:
    """``container[name]`` if it is of ``kind`` (meta and pagination may be null)."""
    value = container.get(name)
    return value if isinstance(value, kind) else kind()


def server_time(response: requests.Response) -> dt.datetime | None:
    """The moment in the response's ``Date`` header (None: absent or unreadable)."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _describe(response: requests.Response) -> str:
    return f"GET {response.request.path_url.split('?')[0] if response.request else ''}"


def _looks_like_html(response: requests.Response, body: bytes) -> bool:
    content_type = response.headers.get("Content-Type", "").lower()
    return "html" in content_type or body.lstrip()[:1] == b"<"


def parse_page(
    response: requests.Response,
    body: bytes,
    *,
    number: int,
    api_url: str,
    single: bool = False,
    secrets: t.Iterable[str] = (),
) -> Page:
    """Decode one list response's ``body`` (``single``: one record's detail) into a :class:`Page`.

    Raises:
        MaesnAPIError: if the body is not Maesn's JSON envelope with a list of records.
    """
    where = f"{_describe(response)} (page {number})"
    if _looks_like_html(response, body):
        msg = (
            f"{where} answered with an HTML page instead of JSON (HTTP "
            f"{response.status_code}); a proxy or login page is in the way. Check that "
            f"api_url ({api_url}) points at the Maesn API."
        )
        raise WrongApiUrlError(msg)
    try:
        decoded = _DECODER.decode(body)
    except msgspec.DecodeError as exc:
        msg = (
            f"{where} answered with a body that is not valid JSON ({exc}; "
            f"{len(body)} bytes, probably cut off). If it persists, check "
            "the network path to api_url."
        )
        raise RetriableAPIError(msg, response) from None
    if not isinstance(decoded, dict) or "data" not in decoded:
        msg = f"{where} answered with JSON that is not Maesn's envelope (no 'data' member)."
        raise MaesnAPIError(msg)
    records = [decoded["data"]] if single else decoded["data"]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        msg = (
            f"{where} answered with 'data' that is not a list of records "
            f"(got {type(records).__name__}). The endpoint's response format changed."
        )
        raise MaesnAPIError(msg)
    if decoded.get("errors"):
        # A server may echo the request's headers there: never print a key.
        detail = redact(msgspec.json.encode(decoded["errors"]).decode(), secrets)[:300]
        msg = f"{where} answered 200 with an error from Maesn instead of records: {detail}"
        raise RetriableAPIError(msg, response)
    meta = _member(decoded, "meta", dict)
    pagination = _member(meta, "pagination", dict)
    warnings = _member(meta, "warnings", list)
    return Page(
        number=number,
        records=records,
        total=_optional_int(pagination.get("total")),
        total_pages=_optional_int(pagination.get("totalPages")),
        per_page=_optional_int(pagination.get("perPage")),
        warnings=tuple(str(w) for w in warnings),
        server_time=server_time(response),
    )
