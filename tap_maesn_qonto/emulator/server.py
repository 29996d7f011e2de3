"""A local HTTP server that behaves like the Maesn Unified API for Qonto, and misbehaves on demand.

Request handling is split in two: ``Emulator.handle`` turns a parsed request into a ``Reply``
(status, headers, body, or "reset the connection") while holding the single lock, and the HTTP
handler only reads the request, waits out any delay without the lock, and writes the reply.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import gc
import json
import math
import random
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from .data import (
    ORDER_FIELDS,
    RESOURCES,
    UPDATED_CAP,
    Collection,
    Presentation,
    ViewKey,
    _cyclic_gc_paused,
    to_json_bytes,
)

DEFAULT_API_KEY = "emulator-api-key"
QONTO_ACCOUNT_KEY = "emulator-account-qonto"
SANDBOX_ACCOUNT_KEY = "emulator-account-sandbox"

DEFAULT_COUNTS = {"invoices": 250, "bills": 180, "bookingProposals": 120}
ALLOWED_LIMITS = (5, 10, 20, 50, 100)
RANDOM_FAULT_KINDS = ("429", "500", "502", "503", "reset", "slow")
FAULT_KINDS = (
    *RANDOM_FAULT_KINDS,
    "html",
    "truncated",
    "data_not_list",
    "401",
    "403",
    "404",
    "405",
    "422",
    "errors_200",
    "html_404",
    "409",
    "410",
    "empty_with_more",
    "trickle",
)
# Faults answered with a page (200) rather than instead of one.
_FAULTS_IN_A_PAGE = (
    "slow",
    "truncated",
    "data_not_list",
    "errors_200",
    "empty_with_more",
    "trickle",
)
# What a detail request can be made to answer (failing_details): the faults that replace a reply.
DETAIL_FAULT_KINDS = tuple(kind for kind in FAULT_KINDS if kind not in _FAULTS_IN_A_PAGE)
PAGINATION_META_MODES = ("full", "null", "no_meta")
PAST_LAST_PAGE_MODES = ("empty", "422")
MUTATION_KINDS = ("update", "create", "delete")
RETRY_AFTER_FORMATS = ("seconds", "http_date", "http_date_minus0000", "http_date_no_zone")
ACCOUNT_FAILURES = ("401", "403", "404", "500", "reset")
SORT_SCOPES = ("list", "page")
FILTER_SEMANTICS = ("gte", "gt_seconds")
AUTH_CHECK_FAILURES = ("401", "unreachable")

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Qonto - Sign in</title></head>"
    b'<body><form action="/login" method="post"><input name="email">'
    b'<input name="password" type="password">'
    b"<button>Sign in</button></form></body></html>"
)
_PAGE_OUT_OF_RANGE = {"errors": [{"code": "invalid_page", "detail": "page is out of range"}]}
# What a plain web server (not Maesn) answers for a path it does not have.
_NOT_FOUND_PAGE = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
# The errors_200 fault: Maesn wraps a failed upstream call in a 200 envelope.
_UPSTREAM_ERROR = {"message": "Qonto request failed", "code": "UPSTREAM_ERROR"}
_UPSTREAM_ERRORS = to_json_bytes(_UPSTREAM_ERROR)


@dataclass
class EmulatorSettings:
    """Every knob of the emulator. All but the data-defining ones can change at runtime."""

    seed: int = 42
    counts: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_COUNTS))
    api_keys: list[str] = field(default_factory=lambda: [DEFAULT_API_KEY])
    accounts: dict[str, str] = field(
        default_factory=lambda: {QONTO_ACCOUNT_KEY: "qonto", SANDBOX_ACCOUNT_KEY: "qonto-sandbox"}
    )
    # account key -> per-resource counts replacing ``counts`` for that account
    account_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # records per collection sharing one updatedDate instant, as after a bulk import
    tie_group_size: int = 0
    inactive_accounts: list[str] = field(default_factory=list)
    # account key -> "401", "403", "500" or "reset": how every request of that account fails;
    # "404": every list and detail request gets Maesn's "Endpoint not supported" 404
    failing_accounts: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    verbose: bool = False
    # API behaviour
    honor_filters: bool = True
    honor_ordering: bool = True
    # False: orderDir is ignored, silently (ASC by the orderField; without one, native order)
    honor_order_dir: bool = True
    # "page": a page is cut from the native order (createdDate DESC) and only that page is
    # sorted by orderField/orderDir (a broken target system); "list" sorts the whole list
    sort_scope: str = "list"
    # "gt_seconds": lastModifiedAt and updatedDate are both truncated to the second and
    # compared with ">" (a stricter server); "gte" compares the instants with ">="
    filter_semantics: str = "gte"
    # orderField values answered with Maesn's 400 validation error
    rejected_order_fields: list[str] = field(default_factory=list)
    # this many records of every list view are listed twice (the same id at two positions,
    # the smallest ids of the view, each copy right after the first), totals counting both
    duplicate_ids: int = 0
    pagination_meta: str = "full"
    pagination_totals_as_strings: bool = False  # "total": "300" rather than 300
    # pages hold at most this many records whatever limit asks (pagination says so, in
    # perPage and totalPages; page numbers count these pages); None: limit records
    max_page_size: int | None = None
    past_last_page: str = "empty"
    null_updated_date_fraction: float = 0.0
    nulls_last: bool = False  # ordering by updatedDate puts null updatedDates last, not first
    list_omits_line_items: float = 0.0  # fraction of records listed with lineItems null
    extra_fields: bool = False
    echo_headers_in_errors: bool = False
    # changes are stamped this many seconds behind the wall clock (a server clock lagging)
    updated_lag_seconds: float = 0.0
    # changes are stamped (createdDate, updatedDate) at whole seconds, several sharing one
    stamp_to_the_second: bool = False
    # GET /auth/{target}: "401" although the same X-API-KEY reads data, or "unreachable"
    # (the connection is reset); None answers it as Maesn does
    auth_check_failure: str | None = None
    # whole API (admin endpoints excepted)
    not_maesn: bool = False  # every request gets a plain web server's HTML 404
    redirect_api_to: str | None = None  # every request gets a 302 to this base URL
    # faults
    latency_ms: float = 0.0
    # account key -> {resource or "*": milliseconds}: added to that account's list and detail
    # requests of that resource (a slow partition)
    partition_latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    # Qonto's per-IP limit, [requests, seconds]: a request beyond that many within any window
    # of that many seconds is answered 429 with the Retry-After that frees the window.
    rate_limit: list[float] | None = None
    fault_rate: float = 0.0
    fault_kinds: list[str] = field(default_factory=lambda: list(RANDOM_FAULT_KINDS))
    retry_after: int = 1
    retry_after_format: str = "seconds"  # or http_date, http_date_minus0000, http_date_no_zone
    slow_seconds: float = 5.0
    # the "trickle" fault: its 200 body goes out this many bytes at a time, with this pause
    # between, so no single read waits long but the whole answer takes long
    trickle_bytes: int = 20
    trickle_interval_seconds: float = 0.5
    fail_always: str | None = None
    # record id (or "*" for every record) -> a fault kind every detail request for it gets
    failing_details: dict[str, str] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)
    # changes while a client pages
    mutate_every_requests: int = 0
    # at most this many of those batches (counted from when either knob was last set); 0: no limit
    mutation_batches: int = 0
    # only list requests of these resources count and are changed; empty: every resource
    mutated_resources: list[str] = field(default_factory=list)
    mutations_per_batch: dict[str, int] = field(
        default_factory=lambda: {"update": 2, "create": 1, "delete": 0}
    )


_MAX_LAG_SECONDS = 10 * 366 * 24 * 3600
_ONE_SECOND = timedelta(seconds=1)

# The dataset is generated once from these; changing them would mean a different emulator.
_CONSTRUCTION_ONLY = frozenset(
    {"seed", "counts", "accounts", "account_counts", "tie_group_size", "host", "port"}
)
RUNTIME_KNOBS = frozenset(f.name for f in dataclasses.fields(EmulatorSettings)) - _CONSTRUCTION_ONLY


def _normalized(settings: EmulatorSettings) -> EmulatorSettings:
    """Validate every knob; accept 422 as well as "422" where a kind or mode is expected."""
    # Own copies, so a caller editing its lists later cannot change a running emulator.
    settings.counts = {**DEFAULT_COUNTS, **settings.counts}
    settings.api_keys = list(settings.api_keys)
    settings.accounts = dict(settings.accounts)
    settings.account_counts = {
        str(account): {str(resource): int(n) for resource, n in counts.items()}
        for account, counts in settings.account_counts.items()
    }
    settings.inactive_accounts = list(settings.inactive_accounts)
    settings.failing_accounts = {
        str(account): str(failure) for account, failure in settings.failing_accounts.items()
    }
    settings.unsupported = list(settings.unsupported)
    settings.mutated_resources = list(settings.mutated_resources)
    settings.rejected_order_fields = [str(name) for name in settings.rejected_order_fields]
    settings.partition_latency_ms = {
        str(account): {str(resource): float(ms) for resource, ms in latencies.items()}
        for account, latencies in settings.partition_latency_ms.items()
    }
    settings.failing_details = {
        str(record_id): str(kind) for record_id, kind in settings.failing_details.items()
    }
    settings.auth_check_failure = (
        None if settings.auth_check_failure is None else str(settings.auth_check_failure)
    )
    settings.updated_lag_seconds = float(settings.updated_lag_seconds)
    settings.past_last_page = str(settings.past_last_page)
    settings.fault_kinds = [str(kind) for kind in settings.fault_kinds]
    settings.fail_always = None if settings.fail_always is None else str(settings.fail_always)
    settings.mutations_per_batch = {
        kind: int(n) for kind, n in settings.mutations_per_batch.items()
    }
    problems = [
        *_unknown("counts resource", settings.counts, RESOURCES),
        *_unknown("unsupported resource", settings.unsupported, RESOURCES),
        *_unknown("mutated resource", settings.mutated_resources, RESOURCES),
        *_unknown(
            "fault kind",
            [*settings.fault_kinds, *filter(None, [settings.fail_always])],
            FAULT_KINDS,
        ),
        *_unknown("pagination_meta", [settings.pagination_meta], PAGINATION_META_MODES),
        *_unknown("past_last_page", [settings.past_last_page], PAST_LAST_PAGE_MODES),
        *_unknown("mutation kind", settings.mutations_per_batch, MUTATION_KINDS),
        *_unknown("retry_after_format", [settings.retry_after_format], RETRY_AFTER_FORMATS),
        *_unknown("account of account_counts", settings.account_counts, tuple(settings.accounts)),
        *_unknown(
            "account_counts resource",
            {resource for counts in settings.account_counts.values() for resource in counts},
            RESOURCES,
        ),
        *_unknown(
            "account of failing_accounts", settings.failing_accounts, tuple(settings.accounts)
        ),
        *_unknown("account failure", settings.failing_accounts.values(), ACCOUNT_FAILURES),
        *_unknown("sort_scope", [settings.sort_scope], SORT_SCOPES),
        *_unknown("filter_semantics", [settings.filter_semantics], FILTER_SEMANTICS),
        *_unknown(
            "auth_check_failure",
            filter(None, [settings.auth_check_failure]),
            AUTH_CHECK_FAILURES,
        ),
        *_unknown(
            "rejected order field",
            settings.rejected_order_fields,
            tuple(dict.fromkeys(name for names in ORDER_FIELDS.values() for name in names)),
        ),
        *_unknown("detail fault kind", settings.failing_details.values(), DETAIL_FAULT_KINDS),
        *_unknown(
            "account of partition_latency_ms",
            settings.partition_latency_ms,
            tuple(settings.accounts),
        ),
        *_unknown(
            "partition_latency_ms resource",
            {
                resource
                for latencies in settings.partition_latency_ms.values()
                for resource in latencies
            },
            (*RESOURCES, "*"),
        ),
        *_value_problems(settings),
    ]
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def _value_problems(settings: EmulatorSettings) -> list[str]:
    """Numbers out of range and values of the wrong type (rate_limit is made floats)."""
    problems = []
    all_counts = [
        *settings.counts.values(),
        *(n for counts in settings.account_counts.values() for n in counts.values()),
    ]
    if any(count < 0 for count in all_counts):
        problems.append("counts must not be negative")
    for name in ("fault_rate", "null_updated_date_fraction", "list_omits_line_items"):
        if not 0.0 <= getattr(settings, name) <= 1.0:
            problems.append(f"{name} must be between 0 and 1")
    for name in (
        "nulls_last",
        "not_maesn",
        "honor_order_dir",
        "pagination_totals_as_strings",
        "stamp_to_the_second",
    ):
        if not isinstance(getattr(settings, name), bool):
            problems.append(f"{name} must be true or false")
    for name in ("tie_group_size", "duplicate_ids", "mutation_batches"):
        value = getattr(settings, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(f"{name} must be a whole number, not negative")
    if not (isinstance(settings.trickle_bytes, int) and settings.trickle_bytes > 0):
        problems.append("trickle_bytes must be a whole number of bytes, at least 1")
    if not 0 <= settings.trickle_interval_seconds <= 60:  # also refuses NaN
        problems.append("trickle_interval_seconds must be between 0 and 60")
    latencies = [ms for by in settings.partition_latency_ms.values() for ms in by.values()]
    if not all(0 <= ms <= 600_000 for ms in latencies):  # also refuses NaN
        problems.append("partition_latency_ms must be between 0 and 600000 ms")
    size = settings.max_page_size
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        problems.append("max_page_size must be None or a whole number, at least 1")
    if not abs(settings.updated_lag_seconds) <= _MAX_LAG_SECONDS:  # also refuses NaN
        problems.append("updated_lag_seconds must be a number of seconds, at most ten years")
    return [*problems, *_rate_limit_and_redirect_problems(settings)]


def _rate_limit_and_redirect_problems(settings: EmulatorSettings) -> list[str]:
    problems = []
    limit = settings.rate_limit
    if limit is not None:
        if not (isinstance(limit, list | tuple) and len(limit) == 2 and min(limit) > 0):
            problems.append("rate_limit must be None or [requests, seconds], both positive")
        else:
            settings.rate_limit = [float(limit[0]), float(limit[1])]
    redirect = settings.redirect_api_to
    if redirect is not None and not (
        isinstance(redirect, str) and redirect.startswith(("http://", "https://"))
    ):
        problems.append("redirect_api_to must be None or an http:// or https:// URL")
    return problems


def _unknown(what: str, values: Any, allowed: tuple[str, ...]) -> list[str]:
    return [
        f"unknown {what} {value!r} (expected one of {', '.join(allowed)})"
        for value in values
        if value not in allowed
    ]


# --------------------------------------------------------------------------- request / reply


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]  # first value of each parameter
    headers: list[tuple[str, str]]  # as received, names unchanged
    body: bytes
    raw_query: str = ""  # the query string as received, for redirects

    def header(self, name: str) -> str | None:
        """Case-insensitive lookup, as HTTP header names are."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON_CONTENT_TYPE  # "" sends no Content-Type header
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    reset: bool = False  # drop the TCP connection instead of answering
    # (bytes, seconds): send the body that many bytes at a time, pausing that long between
    trickle: tuple[int, float] | None = None


def _json_reply(status: int, document: object, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(document, ensure_ascii=False).encode(), headers=headers or {})


@dataclass(frozen=True)
class _ListQuery:
    page: int
    limit: int
    since: datetime | None
    order_field: str | None
    order_dir: str | None


def _parse_list_query(resource: str, params: dict[str, str]) -> _ListQuery | list[str]:
    """The validated query, or the NestJS-style validation messages."""
    problems = []
    page = _parse_int(params.get("page", "1"))
    if page is None or page < 1:
        problems.append(
            "page must not be less than 1" if page is not None else "page must be an integer number"
        )
    limit = _parse_int(params.get("limit", "100"))
    if limit not in ALLOWED_LIMITS:
        problems.append(
            f"limit must be one of the following values: {', '.join(map(str, ALLOWED_LIMITS))}"
        )
    since = None
    if "lastModifiedAt" in params:
        since = _parse_instant(params["lastModifiedAt"])
        if since is None:
            problems.append("lastModifiedAt must be a valid ISO 8601 date string")
    order_field = params.get("orderField")
    if order_field is not None and order_field not in ORDER_FIELDS[resource]:
        problems.append(
            f"orderField must be one of the following values: {', '.join(ORDER_FIELDS[resource])}"
        )
    order_dir = params["orderDir"].upper() if "orderDir" in params else None
    if order_dir is not None and order_dir not in ("ASC", "DESC"):
        problems.append("orderDir must be one of the following values: ASC, DESC")
    if problems or page is None or limit is None:
        return problems
    return _ListQuery(page, limit, since, order_field, order_dir)


def _parse_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _parse_instant(text: str) -> datetime | None:
    """ISO 8601 date or date-time with any offset; no offset means UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class _ScriptedFault:
    kind: str
    remaining: int
    resource: str | None
    page: int | None = None
    account_key: str | None = None
    query: dict[str, str] | None = None  # these parameters with these values


# --------------------------------------------------------------------------- emulator


class Emulator:
    """The Maesn emulator: dataset, knobs, faults, truth API, and the HTTP server around them."""

    def __init__(self, settings: EmulatorSettings | None = None, **overrides: Any) -> None:
        self.settings = _normalized(
            dataclasses.replace(settings or EmulatorSettings(), **overrides)
        )
        self._lock = threading.Lock()
        self._closing = threading.Event()
        seed = self.settings.seed
        presentation = self._presentation()
        with _cyclic_gc_paused():  # between collections too: hundreds of accounts are built
            self._collections = {
                (account_key, resource): Collection(
                    resource,
                    self._record_count(account_key, resource),
                    _seeded_rng(f"{seed}/{account_key}/{resource}"),
                    presentation,
                    self.settings.tie_group_size,
                )
                for account_key in self.settings.accounts
                for resource in RESOURCES
            }
        if sum(len(collection.records) for collection in self._collections.values()) >= 10_000:
            # Let the cyclic GC scan the new records once now: left to the first requests, that
            # scan stalls them for up to a second on a 100 000-record dataset.
            gc.collect()
        self._mutation_rng = _seeded_rng(f"{seed}/mutations")
        self._fault_rng = _seeded_rng(f"{seed}/faults")
        self._scripted_faults: list[_ScriptedFault] = []
        self._last_stamp = UPDATED_CAP  # changes are stamped strictly after this, and later ones
        self._requests = 0
        self._recent_requests: deque[float] = deque()  # rate_limit
        self._statuses: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._list_requests: Counter[str] = Counter()
        self._detail_requests: Counter[str] = Counter()
        self._in_flight = 0  # requests being answered now (admin calls included)
        self._most_in_flight = 0
        self._auth_requests: Counter[str] = Counter()  # GET /auth/{TARGET_SYSTEM}, by system
        self._mutations: Counter[str] = Counter()
        self._successful_list_requests = 0
        self._periodic_batches = 0  # mutate_every_requests batches, for mutation_batches
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self._server is None:
            self._closing.clear()
            self._server = _Server((self.settings.host, self.settings.port), self)
            self._serve_thread = threading.Thread(
                target=self._server.serve_forever,
                name="maesn-emulator",
                kwargs={"poll_interval": 0.02},  # close() waits up to one interval
                daemon=True,
            )
            self._serve_thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake any sleeping handler and drop open keep-alive connections."""
        if self._server is None:
            return
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # the handler closed it meanwhile
                connection.shutdown(socket.SHUT_RDWR)
        if self._serve_thread is not None:
            self._serve_thread.join()
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ Python API

    def configure(self, **knobs: Any) -> None:
        """Change knobs at runtime (all but seed, counts, accounts, account_counts,
        tie_group_size, host, port)."""
        not_runtime = sorted(set(knobs) - RUNTIME_KNOBS)
        if not_runtime:
            raise ValueError(f"not a runtime knob: {', '.join(not_runtime)}")
        with self._lock:
            old_presentation = self._presentation()
            old_lag = self.settings.updated_lag_seconds
            self.settings = _normalized(dataclasses.replace(self.settings, **knobs))
            if {"mutate_every_requests", "mutation_batches"} & set(knobs):
                self._periodic_batches = 0
            if self.settings.updated_lag_seconds != old_lag:
                # The server clock was set to another time: stamps follow it, even backwards.
                self._last_stamp = UPDATED_CAP
            if self._presentation() != old_presentation:
                for collection in self._collections.values():
                    collection.rerender(self._presentation())

    def truth(self, resource: str, account: str = "qonto") -> dict[str, dict[str, Any]]:
        """id -> record exactly as currently served (JSON numbers parsed as Decimal)."""
        with self._lock:
            return self._collection(account, resource).truth()

    def deleted_ids(self, resource: str, account: str = "qonto") -> set[str]:
        with self._lock:
            return set(self._collection(account, resource).deleted_ids)

    def mutate(
        self,
        resource: str,
        *,
        update: int = 0,
        create: int = 0,
        delete: int = 0,
        account: str = "qonto",
    ) -> None:
        """Apply changes now, as if users edited Qonto while a client is paging."""
        with self._lock:
            self._mutate(
                self._account_key(account), resource, update=update, create=create, delete=delete
            )

    def shrink_line_items(
        self, resource: str, *, before: int, after: int, account: str = "qonto"
    ) -> str:
        """Edit one record of ``before`` lines to have ``after`` (a user removing lines):
        it takes the lines of a record of ``after`` lines in its currency and is stamped
        as a change. The record is the first by id that has such a donor. Returns its id."""
        with self._lock:
            collection = self._collection(account, resource)
            truth = collection.truth()

            def count(record_id: str) -> int:
                return len(truth[record_id].get("lineItems") or [])

            # The first record of ``before`` lines (by id) with a donor in its currency.
            donors: dict[Any, str] = {}
            for i in sorted(truth):
                if count(i) == after:
                    donors.setdefault(truth[i].get("currency"), i)
            target = next(
                i
                for i in sorted(truth)
                if count(i) == before and truth[i].get("currency") in donors
            )
            donor = donors[truth[target].get("currency")]
            record = collection.records[target]
            record.basket = collection.records[donor].basket
            record.updated = self._stamp()
            collection.rerender(self._presentation())
            return target

    def remove_line_items(
        self, resource: str, record_ids: list[str], *, account: str = "qonto"
    ) -> None:
        """Users remove every line of these records, one after the other: each takes the
        amounts and lines (none) of a record without lines in its currency, and is stamped
        as a change. ValueError, before any change, if a currency has no such record."""
        with self._lock:
            collection = self._collection(account, resource)
            truth = collection.truth()
            donors: dict[Any, str] = {}
            for record_id in sorted(truth):
                if not truth[record_id].get("lineItems"):
                    donors.setdefault(truth[record_id].get("currency"), record_id)
            unknown = [i for i in record_ids if i not in truth]
            orphans = [
                i for i in record_ids if i in truth and truth[i].get("currency") not in donors
            ]
            if unknown or orphans:
                raise ValueError(
                    f"cannot remove the lines of {', '.join(unknown + orphans)}: "
                    "no such record, or no record without lines in its currency"
                )
            for record_id in record_ids:
                donor = donors[truth[record_id].get("currency")]
                collection.records[record_id].basket = collection.records[donor].basket
                collection.records[record_id].updated = self._stamp()
            collection.rerender(self._presentation())

    def fail_next(
        self,
        kind: str | int,
        count: int = 1,
        resource: str | None = None,
        page: int | None = None,
        *,
        account: str | None = None,
        query: dict[str, str] | None = None,
    ) -> None:
        """Script ``kind`` for the next ``count`` list requests (of ``resource``, or of any;
        for page number ``page`` only, as the ``page`` query parameter says, 1 when absent;
        of ``account`` only, a key or a target system name as in ``truth``; with every
        parameter of ``query`` sent with that value, e.g. ``{"orderDir": "DESC"}``)."""
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {kind!r} (expected one of {', '.join(FAULT_KINDS)})"
            )
        if resource is not None and resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r}")
        if page is not None:
            if isinstance(page, bool) or int(page) != page or page < 1:
                raise ValueError(f"page must be a page number from 1, not {page!r}")
            page = int(page)
        with self._lock:
            account_key = None if account is None else self._account_key(account)
            wanted = None if query is None else {str(k): str(v) for k, v in query.items()}
            self._scripted_faults.append(
                _ScriptedFault(kind, count, resource, page, account_key, wanted)
            )

    def stats(self) -> dict[str, Any]:
        """Counts since start: API requests (admin calls excluded), statuses, faults, mutations,
        and the most requests it was answering at once (admin calls included)."""
        with self._lock:
            return {
                "requests": self._requests,
                "statuses": dict(self._statuses),
                "faults": dict(self._faults),
                "list_requests": dict(self._list_requests),
                "detail_requests": dict(self._detail_requests),
                "auth_requests": dict(self._auth_requests),
                "mutations": dict(self._mutations),
                "most_in_flight": self._most_in_flight,
            }

    # ------------------------------------------------------------------ hooks for the HTTP handler

    def request_started(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._most_in_flight = max(self._most_in_flight, self._in_flight)

    def request_ended(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def pause(self, seconds: float) -> None:
        """Sleep in a handler thread; close() cuts the sleep short."""
        self._closing.wait(seconds)

    @property
    def closing(self) -> bool:
        """close() was called: handlers stop what they are drawing out."""
        return self._closing.is_set()

    # ------------------------------------------------------------------ internals (lock held)

    def _presentation(self) -> Presentation:
        return Presentation(
            self.settings.null_updated_date_fraction,
            self.settings.extra_fields,
            self.settings.list_omits_line_items,
        )

    def _record_count(self, account_key: str, resource: str) -> int:
        per_account = self.settings.account_counts.get(account_key, {})
        return per_account.get(resource, self.settings.counts[resource])

    def _account_key(self, account: str) -> str:
        """Accept an account key or a target system name ("qonto", "qonto-sandbox"): the first
        account of that target system."""
        if account in self.settings.accounts:
            return account
        for account_key, target_system in self.settings.accounts.items():
            if target_system == account:
                return account_key
        raise ValueError(f"unknown account {account!r}")

    def _collection(self, account: str, resource: str) -> Collection:
        if resource not in RESOURCES:
            raise ValueError(
                f"unknown resource {resource!r} (expected one of {', '.join(RESOURCES)})"
            )
        return self._collections[self._account_key(account), resource]

    def _mutate(
        self, account_key: str, resource: str, *, update: int, create: int, delete: int
    ) -> None:
        collection = self._collection(account_key, resource)
        now = self._stamp()
        presentation = self._presentation()
        collection.update(self._mutation_rng, update, now, presentation)
        collection.create(self._mutation_rng, create, now, presentation)
        collection.delete(self._mutation_rng, delete)
        self._mutations.update({"update": update, "create": create, "delete": delete})

    def _stamp(self) -> datetime:
        """The instant a change is stamped with: the lagging server clock, strictly later than
        the previous change even where the floor of _now_millis holds the clock still.

        With ``stamp_to_the_second``, the clock's whole second: changes within one second
        share it (never earlier than the previous change, always after the seeded data).
        """
        now = _now_millis(self.settings.updated_lag_seconds)
        if self.settings.stamp_to_the_second:
            stamp = max(now.replace(microsecond=0), self._last_stamp, UPDATED_CAP + _ONE_SECOND)
        else:
            stamp = max(now, self._last_stamp + timedelta(milliseconds=1))
        self._last_stamp = stamp
        return stamp

    # ------------------------------------------------------------------ request handling

    def handle(self, request: Request) -> Reply:
        """Answer one request; called from handler threads. Delays are left to the caller."""
        if request.path.startswith("/_emulator/"):
            return self._admin(request)
        with self._lock:
            reply = self._rate_limited(request) or self._api(request)
            self._requests += 1
            if not reply.reset:
                self._statuses[str(reply.status)] += 1
            reply.delay_seconds += self._partition_latency_ms(request) / 1000
        reply.delay_seconds += self.settings.latency_ms / 1000
        return reply

    def _partition_latency_ms(self, request: Request) -> float:
        """partition_latency_ms for this request's account and resource (list or detail)."""
        resource, _ = _route(request)
        by_resource = self.settings.partition_latency_ms.get(request.header("X-ACCOUNT-KEY") or "")
        if resource is None or not by_resource:
            return 0.0
        return by_resource.get(resource, by_resource.get("*", 0.0))

    def _rate_limited(self, request: Request) -> Reply | None:
        """A 429 if ``rate_limit`` requests were already answered within its window."""
        if self.settings.rate_limit is None:
            return None
        most, seconds = self.settings.rate_limit
        now = time.monotonic()
        window = self._recent_requests
        while window and window[0] <= now - seconds:
            window.popleft()
        if len(window) < most:
            window.append(now)
            return None
        self._faults["rate_limit"] += 1
        retry_after = {"Retry-After": str(math.ceil(window[0] + seconds - now))}
        return self._error(429, "ThrottlerException: Too Many Requests", request, retry_after)

    def _api(self, request: Request) -> Reply:
        unauthenticated = self._unauthenticated_reply(request)
        if unauthenticated is not None:
            return unauthenticated
        if request.method == "GET" and request.path.startswith("/auth/"):
            return self._login_url(request)  # needs the tenant key only
        return self._account_api(request)

    def _account_api(self, request: Request) -> Reply:
        """The endpoints that need both keys."""
        resource, record_id = _route(request)
        if resource is None and (request.method, request.path) != ("GET", "/user/user-info"):
            return self._error(404, f"Cannot {request.method} {request.path}", request)
        account_key = self._authenticate(request, data_request=resource is not None)
        if isinstance(account_key, Reply):
            return account_key
        if resource is None:  # /user/user-info
            return self._user_info(account_key)
        if record_id is not None:
            return self._detail(account_key, resource, record_id, request)
        return self._list(account_key, resource, request)

    def _unauthenticated_reply(self, request: Request) -> Reply | None:
        """What is answered before routing: not_maesn, then redirect_api_to (both for every API
        request, /health included), then /health."""
        if self.settings.not_maesn:
            return _not_found_page()
        if self.settings.redirect_api_to is not None:
            location = self.settings.redirect_api_to.rstrip("/") + request.path
            if request.raw_query:
                location += "?" + request.raw_query
            return Reply(302, content_type="", headers={"Location": location})
        if request.method == "GET" and request.path == "/health":
            return Reply(200, b"Service is healthy", content_type="text/plain; charset=utf-8")
        return None

    def _authenticate(self, request: Request, *, data_request: bool) -> str | Reply:
        api_key = request.header("X-API-KEY")
        account_key = request.header("X-ACCOUNT-KEY")
        if api_key not in self.settings.api_keys:
            return self._error(401, "Invalid or missing X-API-KEY", request)
        if account_key is None or account_key not in self.settings.accounts:
            return self._error(401, "Invalid or missing X-ACCOUNT-KEY", request)
        failure = self.settings.failing_accounts.get(account_key)
        if failure == "404" and not data_request:
            failure = None  # only list and detail requests are "not supported"
        if failure is None and account_key in self.settings.inactive_accounts:
            failure = "403"
        if failure is not None:
            return self._account_failure(failure, self.settings.accounts[account_key], request)
        return account_key

    def _login_url(self, request: Request) -> Reply:
        """``GET /auth/{TARGET_SYSTEM}``: the first step of the end-user auth flow.

        It comes before any account key exists, so only X-API-KEY is checked (X-ACCOUNT-KEY
        is ignored): 401 for a wrong or missing one, else 200 with a login URL as text/html,
        as Maesn's spec has it. An unknown target system is Maesn's 405 "Target system not
        found". The URL is on the reserved ``.invalid`` domain: nothing is behind it.
        """
        target_system = unquote(request.path.removeprefix("/auth/"))
        if not target_system or "/" in target_system:
            return self._error(404, f"Cannot {request.method} {request.path}", request)
        self._auth_requests[target_system] += 1
        if self.settings.auth_check_failure == "unreachable":
            return Reply(0, reset=True)
        if self.settings.auth_check_failure == "401":  # whatever the key: a broken check
            return self._error(401, "Invalid or missing X-API-KEY", request)
        if request.header("X-API-KEY") not in self.settings.api_keys:
            return self._error(401, "Invalid or missing X-API-KEY", request)
        if target_system not in {"qonto", "qonto-sandbox", *self.settings.accounts.values()}:
            return self._error(405, "Target system not found", request)
        state = uuid.uuid4().hex
        url = f"https://login.emulator.invalid/{target_system}/oauth?state={state}"
        return Reply(200, url.encode(), content_type="text/html; charset=utf-8")

    def _account_failure(self, failure: str, target_system: str, request: Request) -> Reply:
        """How a request of a failing (or inactive) account is answered."""
        if failure == "reset":
            return Reply(0, reset=True)
        messages = {
            "401": "Invalid or missing X-ACCOUNT-KEY",
            "403": "The user account is inactive",
            "404": f"Endpoint not supported for target system {target_system}",
            "500": "Internal server error",
        }
        return self._error(int(failure), messages[failure], request)

    def _user_info(self, account_key: str) -> Reply:
        user_id = uuid.uuid5(uuid.NAMESPACE_URL, f"maesn-emulator/user/{account_key}")
        account_id = uuid.uuid5(uuid.NAMESPACE_URL, f"maesn-emulator/account/{account_key}")
        data = {
            "id": str(user_id),
            "account_id": str(account_id),
            "family_name": "Lefèvre",
            "name": "Zoé",
        }
        return _json_reply(200, {"data": data, "meta": {}, "errors": None, "rawData": None})

    def _error(
        self,
        status: int,
        message: str | list[str],
        request: Request,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """A NestJS-style error body."""
        document = {"statusCode": status, "message": message, "error": HTTPStatus(status).phrase}
        return _json_reply(status, self._with_echoed_headers(document, request), headers)

    def _with_echoed_headers(self, document: dict[str, Any], request: Request) -> dict[str, Any]:
        # Hostile on purpose: secrets in an error body must never reach a client's logs.
        if self.settings.echo_headers_in_errors:
            return {**document, "requestHeaders": dict(request.headers)}
        return document

    def _list(self, account_key: str, resource: str, request: Request) -> Reply:
        self._list_requests[resource] += 1
        target_system = self.settings.accounts[account_key]
        if resource in self.settings.unsupported:
            return self._error(
                404, f"Endpoint not supported for target system {target_system}", request
            )
        query = _parse_list_query(resource, request.query)
        if isinstance(query, list):
            return self._error(400, query, request)
        if query.order_field in self.settings.rejected_order_fields:
            allowed = [
                name
                for name in ORDER_FIELDS[resource]
                if name not in self.settings.rejected_order_fields
            ]
            message = f"orderField must be one of the following values: {', '.join(allowed)}"
            return self._error(400, [message], request)
        fault = self._draw_fault(resource, query.page, account_key, request.query)
        if fault is not None and fault not in _FAULTS_IN_A_PAGE:
            return self._fault_reply(fault, target_system, request)
        reply = self._page(account_key, resource, query, request, fault=fault)
        if fault == "truncated":
            reply.body = reply.body[: len(reply.body) // 2]
        if fault == "slow":
            reply.delay_seconds = self.settings.slow_seconds
        if fault == "trickle":
            reply.trickle = (self.settings.trickle_bytes, self.settings.trickle_interval_seconds)
        if reply.status == 200 and fault in (None, "slow"):
            self._count_success_and_maybe_mutate(account_key, resource)
        return reply

    def _draw_fault(
        self, resource: str, page: int, account_key: str, params: dict[str, str]
    ) -> str | None:
        kind = self.settings.fail_always or self._take_scripted_fault(
            resource, page, account_key, params
        )
        if (
            kind is None
            and self.settings.fault_rate
            and self._fault_rng.random() < self.settings.fault_rate
        ):
            kind = self._fault_rng.choice(self.settings.fault_kinds)
        if kind is not None:
            self._faults[kind] += 1
        return kind

    def _take_scripted_fault(
        self, resource: str, page: int, account_key: str, params: dict[str, str]
    ) -> str | None:
        for scripted in self._scripted_faults:
            if (
                scripted.resource in (None, resource)
                and scripted.page in (None, page)
                and scripted.account_key in (None, account_key)
                and all(params.get(k) == v for k, v in (scripted.query or {}).items())
            ):
                scripted.remaining -= 1
                if scripted.remaining <= 0:
                    self._scripted_faults.remove(scripted)
                return scripted.kind
        return None

    def _fault_reply(self, kind: str, target_system: str, request: Request) -> Reply:
        if kind == "reset":
            return Reply(0, reset=True)
        if kind == "html":
            return Reply(200, _LOGIN_PAGE, content_type="text/html; charset=utf-8")
        if kind == "html_404":
            return _not_found_page()
        if kind == "422":
            return _json_reply(422, self._with_echoed_headers(dict(_PAGE_OUT_OF_RANGE), request))
        if kind == "429":
            retry_after = {"Retry-After": self._retry_after_value()}
            return self._error(429, "ThrottlerException: Too Many Requests", request, retry_after)
        messages = {
            "401": "The end user must re-authenticate with the target system",
            "403": "Forbidden resource",
            "404": f"Resource not found in target system {target_system}",
            "405": "Target system not found",
            "409": f"Conflict: another request is changing this data in {target_system}",
            "410": f"Resource no longer available in target system {target_system}",
            "500": "Internal server error",
            "502": f"Bad Gateway: no valid response from {target_system}",
            "503": "Service Unavailable",
        }
        return self._error(int(kind), messages[kind], request)

    def _retry_after_value(self) -> str:
        """``retry_after`` seconds from now, as delta-seconds or an HTTP date (rounded up)."""
        seconds, style = self.settings.retry_after, self.settings.retry_after_format
        if style == "seconds":
            return str(seconds)
        text = email.utils.formatdate(math.ceil(time.time() + seconds), usegmt=True)
        if style == "http_date_minus0000":
            return text.removesuffix("GMT") + "-0000"
        if style == "http_date_no_zone":
            return text.removesuffix(" GMT")
        return text

    def _page(
        self,
        account_key: str,
        resource: str,
        query: _ListQuery,
        request: Request,
        *,
        fault: str | None,
    ) -> Reply:
        warnings: list[str] = []
        per_page = min(query.limit, self.settings.max_page_size or query.limit)
        view_key = self._view_key(query, per_page, self.settings.accounts[account_key], warnings)
        records = self._collections[account_key, resource].view(view_key)
        total = len(records)
        total_pages = math.ceil(total / per_page)
        if query.page > max(total_pages, 1) and self.settings.past_last_page == "422":
            return _json_reply(422, self._with_echoed_headers(dict(_PAGE_OUT_OF_RANGE), request))
        first = (query.page - 1) * per_page
        if fault == "data_not_list":
            data = b"{}"
        elif fault in ("errors_200", "empty_with_more"):
            data = b"[]"
        else:
            data = b"[" + b",".join(records[first : first + per_page]) + b"]"
        errors = b"null"
        if fault == "errors_200":
            errors = _UPSTREAM_ERRORS
            if self.settings.echo_headers_in_errors:  # hostile on purpose, as _error's
                errors = to_json_bytes({**_UPSTREAM_ERROR, "requestHeaders": dict(request.headers)})
        if fault == "empty_with_more":  # no records, yet totals that promise several pages
            total = max(total, per_page + 1)
            total_pages = math.ceil(total / per_page)
        pagination: dict[str, int | str] = {
            "total": total,
            "perPage": per_page,
            "currentPage": query.page,
            "totalPages": total_pages,
        }
        if self.settings.pagination_totals_as_strings:
            pagination = {name: str(value) for name, value in pagination.items()}
        meta = self._meta(warnings, pagination)
        body = (
            b'{"meta":'
            + to_json_bytes(meta)
            + b',"data":'
            + data
            + b',"errors":'
            + errors
            + b',"rawData":null}'
        )
        return Reply(200, body)

    def _detail(self, account_key: str, resource: str, record_id: str, request: Request) -> Reply:
        """One record in full; lists may serve it without line items (list_omits_line_items)."""
        self._detail_requests[resource] += 1
        target_system = self.settings.accounts[account_key]
        if resource in self.settings.unsupported:
            return self._error(
                404, f"Endpoint not supported for target system {target_system}", request
            )
        failing = self.settings.failing_details
        fault = failing.get(record_id, failing.get("*"))
        if fault is not None:
            self._faults[fault] += 1
            return self._fault_reply(fault, target_system, request)
        body = self._collections[account_key, resource].detail(record_id)
        if body is None:
            return self._error(
                404, f"Resource {record_id} not found in target system {target_system}", request
            )
        return Reply(
            200, b'{"meta":{"warnings":[]},"data":' + body + b',"errors":null,"rawData":null}'
        )

    def _view_key(
        self, query: _ListQuery, per_page: int, target_system: str, warnings: list[str]
    ) -> ViewKey:
        """Apply the honor_* knobs: an unsupported parameter is ignored with a warning."""
        since = query.since
        if since is not None and not self.settings.honor_filters:
            warnings.append(f"lastModifiedAt is not supported by {target_system} and was ignored")
            since = None
        order_field, order_dir = query.order_field, query.order_dir
        if not self.settings.honor_ordering:
            for name, value in (("orderField", order_field), ("orderDir", order_dir)):
                if value is not None:
                    warnings.append(f"{name} is not supported by {target_system} and was ignored")
            order_field, order_dir = None, None
        if not self.settings.honor_order_dir:  # silently: ASC, or the native order
            order_dir = None if order_field is None else "ASC"
        if since is not None and self.settings.filter_semantics == "gt_seconds":
            # floor(updated) > floor(since)  <=>  updated >= floor(since) + 1 s
            since = since.replace(microsecond=0) + timedelta(seconds=1)
        page_size = per_page if self.settings.sort_scope == "page" else 0
        duplicates = self.settings.duplicate_ids
        if order_field is None:  # Qonto's native order: newest first
            return ViewKey(since, "createdDate", order_dir != "ASC", False, page_size, duplicates)
        nulls_last = self.settings.nulls_last and order_field == "updatedDate"
        return ViewKey(since, order_field, order_dir == "DESC", nulls_last, page_size, duplicates)

    def _meta(self, warnings: list[str], pagination: dict[str, int | str]) -> dict[str, Any] | None:
        mode = self.settings.pagination_meta
        if mode == "no_meta":
            return None
        return {"warnings": warnings, "pagination": pagination if mode == "full" else None}

    def _count_success_and_maybe_mutate(self, account_key: str, resource: str) -> None:
        if self.settings.mutated_resources and resource not in self.settings.mutated_resources:
            return
        self._successful_list_requests += 1
        every, most = self.settings.mutate_every_requests, self.settings.mutation_batches
        if every and self._successful_list_requests % every == 0:
            if most and self._periodic_batches >= most:
                return
            self._periodic_batches += 1
            batch = {
                kind: self.settings.mutations_per_batch.get(kind, 0) for kind in MUTATION_KINDS
            }
            self._mutate(account_key, resource, **batch)

    # ------------------------------------------------------------------ admin endpoints

    def _admin(self, request: Request) -> Reply:
        """Unauthenticated control endpoints, so scripts can drive a subprocess emulator."""
        try:
            document = self._admin_action(request)
        except (ValueError, TypeError, KeyError) as problem:
            return _json_reply(400, {"error": str(problem)})
        if document is None:
            return _json_reply(404, {"error": f"no admin endpoint {request.method} {request.path}"})
        return _json_reply(200, document)

    def _admin_action(self, request: Request) -> dict[str, Any] | None:
        name = request.path.removeprefix("/_emulator/")
        if request.method == "GET" and name == "stats":
            return self.stats()
        if request.method == "GET" and name.startswith("truth/"):
            resource = name.removeprefix("truth/")
            return self._truth_summary(resource, request.query.get("account", "qonto"))
        commands: dict[str, Callable[..., None]] = {
            "configure": self.configure,
            "mutate": self.mutate,
            "fail_next": self.fail_next,
        }
        if request.method == "POST" and name in commands:
            payload = json.loads(request.body or b"{}")
            commands[name](**payload)
            return {"applied": {name: payload}}
        return None

    def _truth_summary(self, resource: str, account: str) -> dict[str, Any]:
        with self._lock:
            collection = self._collection(account, resource)
            ids = sorted(collection.records)
            deleted = sorted(collection.deleted_ids)
        return {"count": len(ids), "ids": ids, "deleted_ids": deleted}


def _route(request: Request) -> tuple[str | None, str | None]:
    """(resource, None) for a list, (resource, id) for a detail, (None, None) for neither."""
    if request.method != "GET" or not request.path.startswith("/accounting/"):
        return None, None
    resource, slash, record_id = request.path.removeprefix("/accounting/").partition("/")
    if resource not in RESOURCES:
        return None, None
    if not slash:
        return resource, None
    record_id = unquote(record_id)
    if not record_id or "/" in record_id:
        return None, None
    return resource, record_id


def _not_found_page() -> Reply:
    return Reply(404, _NOT_FOUND_PAGE, content_type="text/html")


def many_accounts(n: int, prefix: str = "emulator-account-") -> dict[str, str]:
    """``n`` Qonto account keys for ``accounts=``: emulator-account-0001, -0002, ... -> "qonto"."""
    if n < 0:
        raise ValueError("n must not be negative")
    width = max(4, len(str(n)))
    return {f"{prefix}{number:0{width}d}": "qonto" for number in range(1, n + 1)}


def _seeded_rng(seed: str) -> random.Random:
    """Reproducible test data and fault draws; nothing here needs unpredictability."""
    return random.Random(seed)


def _now_millis(lag_seconds: float = 0.0) -> datetime:
    """Wall-clock UTC minus ``lag_seconds``, at millisecond precision, the resolution the API
    shows.

    Never earlier than the seeded data, so a change always looks newer than every seeded
    record even on a machine whose clock is behind.
    """
    now = datetime.now(UTC) - timedelta(seconds=lag_seconds)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return max(now, UPDATED_CAP + timedelta(milliseconds=1))


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or hang up mid-answer are business as usual here.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every reply carries Content-Length
    server_version = "MaesnEmulator/1.0"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between headers and body
    timeout = 120  # idle keep-alive connections are dropped eventually
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.emulator.connection_opened(self.connection)

    def finish(self) -> None:
        self.server.emulator.connection_closed(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        emulator = self.server.emulator
        emulator.request_started()
        try:
            self._answer(emulator)
        finally:
            emulator.request_ended()

    def _answer(self, emulator: Emulator) -> None:
        reply = emulator.handle(self._read_request())
        if reply.delay_seconds:
            emulator.pause(reply.delay_seconds)
        if reply.reset:
            self._reset_connection()
            return
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.trickle is None:
            self.wfile.write(reply.body)
            return
        size, pause = reply.trickle
        for start in range(0, len(reply.body), size):
            if start:
                emulator.pause(pause)
                if emulator.closing:  # close() cut the pause short: hang up mid-body
                    self.close_connection = True
                    return
            self.wfile.write(reply.body[start : start + size])

    def _read_request(self) -> Request:
        parts = urlsplit(self.path)
        query = {
            name: values[0]
            for name, values in parse_qs(parts.query, keep_blank_values=True).items()
        }
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return Request(
            self.command, parts.path, query, list(self.headers.items()), body, parts.query
        )

    def _reset_connection(self) -> None:
        # SO_LINGER on with a zero timeout makes the close send RST instead of FIN, so the
        # client sees "connection reset by peer" rather than a clean end of stream. (The socket
        # really closes a moment later, when finish() releases the request's file objects.)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emulator.settings.verbose:
            super().log_message(format, *args)
