"""The base stream: what a Maesn list request carries and what its answers mean.

How a partition is read lives elsewhere: ``window.py`` (incremental reads as a
sliding window over ``updatedDate``), ``fullread.py`` (the whole list, checked
for drift) and ``pager.py`` (concurrent fetch-ahead). This class supplies them
one function, :meth:`MaesnStream.fetch_page`, that sends a request through the
SDK's retry hooks and turns every answer into a :class:`~envelope.Page` or one of
the errors of ``errors.py``, and decides which reader a partition needs.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
import typing as t
from dataclasses import dataclass
from functools import cached_property, partial
from urllib.parse import quote

import backoff
import msgspec
import requests
from singer_sdk import RESTStream, StreamSchema
from singer_sdk.authenticators import SimpleAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE
from singer_sdk.streams.rest import PageContext

from tap_maesn_qonto import keycheck, numbers, reconcile, statelookup
from tap_maesn_qonto.accounts import Account
from tap_maesn_qonto.details import AutoVerdict, Details
from tap_maesn_qonto.envelope import Page, parse_page
from tap_maesn_qonto.errors import (
    AuthError,
    ClientError,
    EndOfDataError,
    MaesnAPIError,
    RecordGoneError,
    StreamUnavailableError,
    SyncInterruptedError,
    TransientClientError,
    WrongApiUrlError,
)
from tap_maesn_qonto.fullread import FullRead
from tap_maesn_qonto.lineitems import ROWS_WAITING_AT_MOST, LineBuffer, LineItemsStream
from tap_maesn_qonto.pager import most_lent, opening_requests, pages_for
from tap_maesn_qonto.pages import PageRequest, Position
from tap_maesn_qonto.prefetch import Key, spare
from tap_maesn_qonto.records import PlainRecordMessages
from tap_maesn_qonto.redaction import redact
from tap_maesn_qonto.retries import RetryPolicy, gave_up
from tap_maesn_qonto.schemas import SCHEMAS_DIR
from tap_maesn_qonto.shaping import ShapeIssues, Shaper
from tap_maesn_qonto.timestamps import (
    filter_timestamp,
    format_timestamp,
    normalize_timestamp,
    parse_timestamp,
)
from tap_maesn_qonto.transport import left_origin, read_body
from tap_maesn_qonto.window import (
    GroupFillsPagesError,
    WholeListInsteadError,
    WindowNotHonouredError,
    WindowRead,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_maesn_qonto.runtime import RunContext

PROGRESS_LOG_SECONDS = 5.0
#: A STATE message every this many records while the bookmark is resumable ...
RESUMABLE_STATE_EVERY = 1000
#: ... or every this many per account, if more: a STATE holds every account's partition,
#: so its size (and the SDK's deep copy of it) grows with accounts; this keeps STATE
#: bytes per record flat (1 000 accounts: 3 STATE messages of ~2 MB, not 30).
STATE_RECORDS_PER_ACCOUNT = 10
_NEVER = 10**12
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)

_RETRIABLE = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
_ERROR_DECODER = msgspec.json.Decoder()


@dataclass
class StreamOutcome:
    """How a stream's sync ended, for the tap's verdict and summary."""

    skipped: str | None = None  # why the endpoint was not available
    incomplete: bool = False  # records may be missing; the bookmark was held
    records: int = 0
    pages: int = 0
    retries: int = 0


def _error_body(response: requests.Response) -> tuple[bool, bool]:
    """Whether a 4xx body is Maesn's JSON error, and whether it says the route is missing."""
    try:
        body = _ERROR_DECODER.decode(response.content)
    except msgspec.DecodeError:
        return False, False
    if not isinstance(body, dict) or not ({"statusCode", "message", "errors"} & set(body)):
        return False, False
    message = body.get("message")
    return True, isinstance(message, str) and message.startswith("Cannot ")


class MaesnStream(PlainRecordMessages, RESTStream[PageRequest]):
    """A Maesn accounting list endpoint, one state partition per connected account."""

    schema = StreamSchema(SCHEMAS_DIR)
    primary_keys: t.ClassVar[tuple[str, ...]] = ("id",)
    replication_key = "updatedDate"
    # Incremental reads emit records in updatedDate order (window.py), so the SDK's
    # per-record bookmark is safe to resume from; where it is not (whole-list reads),
    # STATE_MSG_FREQUENCY holds the STATE messages back.
    is_sorted = True
    # A record committed late can carry an older updatedDate than one already
    # emitted: it is emitted all the same, and the bookmark steps back (never past data).
    check_sorted = False
    # post_process emits exactly the schema's shape, so the SDK's conformance pass
    # (its costliest per-record step) has nothing left to do.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: Other names the API has used for ``id`` on this resource; emitted beside it.
    id_aliases: t.ClassVar[tuple[str, ...]] = ()

    def __init__(self, tap: Tap, *, run: RunContext) -> None:
        self.run = run
        super().__init__(tap)
        self._shape_issues = ShapeIssues()
        self._shaper = Shaper(self.schema, self._shape_issues)
        self._reader: WindowRead | FullRead | None = None
        self._lines: LineBuffer | None = None  # set when the sync starts
        self._auto_verdicts: dict[str, AutoVerdict] = {}  # target system -> what auto learnt
        self._partition_state: dict = {}  # the current partition's state (the SDK's own dict)
        self._state_every = RESUMABLE_STATE_EVERY  # set when the sync starts
        self._last_label: str | None = None  # the stream's last partition
        self._table: reconcile.TablePlan | None = None  # set when the sync starts
        self._table_since = dt.datetime.now(dt.UTC)
        self._write_message = tap.write_message
        self._previous_bookmark: str | None = None
        self._first_sent: dict[str, float] = {}  # account label -> when that request left
        self._whole_first: Page | None = None  # the whole list's probe, if already sent
        self._warned: set[str] = set()
        self._last_progress = time.monotonic()
        self._where = threading.local()  # what the current thread is requesting, for messages
        self._retry_lock = threading.Lock()
        #: Retries per account label, wherever they happened (prefetch threads too).
        self._retries_by_account: dict[str | None, int] = {}
        self.outcome = StreamOutcome()
        self.retry_policy = RetryPolicy(
            max_retries=int(self.config["max_retries"]),
            max_retry_seconds=float(self.config["max_retry_seconds"]),
        )

    # --- what every request carries -------------------------------------------------

    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @property
    def authenticator(self) -> SimpleAuthenticator:
        # The tenant key; the account key depends on the partition (get_http_request).
        return SimpleAuthenticator(auth_headers={"X-API-KEY": self.config["api_key"]})

    @property
    def http_headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "User-Agent": self.user_agent}

    @property
    def timeout(self) -> int:
        return int(self.config["request_timeout"])

    @property
    def requests_session(self) -> requests.Session:
        return self.run.session

    @property
    def partitions(self) -> list[dict]:
        # One state partition per connected account, keyed by its non-secret label.
        return [{"account_label": label} for label in self.run.accounts]

    def account(self, context: Context | None) -> Account:
        """The partition's account (its key never goes into the context or the state)."""
        return self.run.accounts[(context or {})["account_label"]]

    def account_key(self, context: Context | None) -> str:
        return self.account(context).key

    def get_http_request(self, *, page: PageContext[PageRequest]) -> t.Any:
        request = super().get_http_request(page=page)
        request.headers["X-ACCOUNT-KEY"] = self.account_key(page.stream_context)
        return request

    def get_url_params(self, context: Context | None, next_page_token: PageRequest | None) -> dict:
        del context
        query = next_page_token or PageRequest(page=1, limit=int(self.config["page_size"]))
        params: dict[str, t.Any] = {"page": query.page, "limit": query.limit}
        if query.since is not None:
            params["lastModifiedAt"] = filter_timestamp(query.since)
        if query.order_field is not None:
            params["orderField"] = query.order_field
            params["orderDir"] = "DESC" if query.descending else "ASC"
        return params

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        # No cap from this machine's clock: bookmarks are values the server sent.
        del context

    @property
    def records_move_the_bookmark(self) -> bool:
        """A whole-list read sets its bookmark when it ends (``_read_partition``), or puts
        the previous one back if it stops (``restore_resumable_state``)."""
        return not isinstance(self._reader, FullRead)

    @property  # the SDK reads this class attribute per record; here it depends on the reader
    def STATE_MSG_FREQUENCY(self) -> int:  # type: ignore[override]
        if not isinstance(self._reader, WindowRead):
            return _NEVER
        if self._lines is not None and self._lines.waiting:
            return _NEVER  # lineitems.py: never a bookmark past an unwritten line
        return self._state_every

    # --- answers ----------------------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        return (str(self.config["api_key"]), *(a.key for a in self.run.accounts.values()))

    def response_error_message(self, response: requests.Response) -> str:
        """Describe a failed response without the URL's query or any secret."""
        snippet = redact(response.text[:300], self._secrets()).replace("\n", " ")
        return f"GET {self.path} answered {response.status_code} {response.reason}: {snippet}"

    def validate_response(self, response: requests.Response) -> None:
        """Sort an answer by its status; where it stands in the stream decides the rest."""
        if (host := left_origin(response, self.url_base)) is not None:
            msg = (
                f"api_url ({self.url_base}) redirected to another host ({host}); the keys were "
                "not sent there. Set api_url to the Maesn API's own address."
            )
            raise WrongApiUrlError(msg)
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status in {401, 403}:
            raise keycheck.auth_error(self, status)  # which key: one tenant-key request
        if status >= 300:
            maesn_body, route_missing = _error_body(response)
            raise ClientError(
                self.response_error_message(response),
                response,
                maesn_body=maesn_body,
                route_missing=route_missing,
            )

    def _auth_message(
        self, status: int, account: Account | None, check: keycheck.TenantKeyCheck
    ) -> str:
        """The line for a 401/403, naming the key to fix when the tenant-key check could."""
        answered = f"{status} {'Unauthorized' if status == 401 else 'Forbidden'}"
        where = f"GET {self.path}"
        probe = f"{check.request}, which needs only X-API-KEY,"
        label = account.label if account is not None else "(unknown)"
        auth_flow = f"GET /auth/{account.target_system if account is not None else 'qonto'}"
        if check.verdict is keycheck.Verdict.REJECTED:
            several = len(self.run.accounts) > 1
            return (
                f"Maesn refused the tenant key: {answered} on {where}, and {probe} "
                f"{check.answer} too. api_key (your Maesn tenant key) is wrong"
                + (" or its Maesn tenant is not active" if status == 403 else "")
                + ": copy it again from the Maesn dashboard. "
                + (
                    f"All {len(self.run.accounts)} accounts would fail the same way, so the "
                    "run stopped at once. "
                    if several
                    else ""
                )
                + "account_key is checked once api_key is accepted (if Maesn refuses it "
                "then, re-link the end user)."
            )
        if check.verdict is keycheck.Verdict.ACCEPTED:
            accepted = f"api_key is valid ({probe} {check.answer})"
            if status == 401:
                return (
                    f"Maesn rejected the account key: {answered} on {where}; {accepted}. "
                    f"account_key of account {label} is not valid for this tenant (or its "
                    "Qonto connection expired: re-link). To re-link, the end user opens a "
                    f"new login URL from {auth_flow} and you use the account key Maesn "
                    "then gives."
                )
            return (
                f"Maesn refused access: {answered} on {where} for account {label}; "
                f"{accepted}. The end user behind that account_key is inactive or does "
                "not belong to this tenant: check in Maesn that the user is active and "
                "that the account key was issued under this api_key's tenant."
            )
        unsure = f" (The tap could not tell which key: {probe} {check.answer}.)"
        if status == 401:
            return (
                f"Maesn rejected the keys (401 Unauthorized) on {where}. Check "
                "api_key (your Maesn tenant key, sent as X-API-KEY) and account_key of "
                f"account {label} (the end user's key for target system qonto or "
                "qonto-sandbox, sent as X-ACCOUNT-KEY). If the end user's Qonto connection "
                "expired, re-link them through Maesn's auth flow to get a new account "
                "key." + unsure
            )
        return (
            f"Maesn refused access (403 Forbidden) on {where} for account {label}. The "
            "end user may be inactive or not belong to this tenant: check in Maesn that "
            "the user is active and that api_key and account_key come from the same "
            "tenant." + unsure
        )

    def _read_client_error(self, exc: ClientError, request: PageRequest) -> Exception:
        """The error table for a 4xx, by where the request stands in its stream."""
        where = f"GET {self.path} (page {request.page})"
        if request.position is Position.DETAIL and exc.status == 404 and not exc.route_missing:
            return RecordGoneError(exc.message)
        if exc.status in {404, 405} and (exc.route_missing or not exc.maesn_body):
            return WrongApiUrlError(
                f"{where} answered HTTP {exc.status} with a body that is not a Maesn "
                f"error: api_url ({self.url_base}) does not point at the Maesn API. Check "
                "the host, and that no path such as /v1 follows it (the default is "
                "https://api.maesn.dev)."
            )
        if request.position is Position.FIRST:
            if exc.status in {404, 405}:
                return StreamUnavailableError(f"HTTP {exc.status}")
            return exc  # e.g. a 400 for an optional parameter: the reader decides
        if request.position is Position.UNKNOWN and exc.status == 422:
            return exc  # perhaps past the last page: fetch_page asks once more
        return TransientClientError(
            f"{exc.message} (where Maesn reported data: retried, then fatal rather than "
            "skipping records)",
            exc.response,
        )

    # --- sending, with the SDK's retry hooks ------------------------------------------

    def request_decorator(self, func: Callable) -> Callable:
        """The SDK's decorator, without backoff's own log lines (the wait generator logs)."""
        return backoff.on_exception(
            self.backoff_wait_generator,
            _RETRIABLE,
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )(func)

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        return self.retry_policy.waits(self.run, self.name, self._describe_request, self.logger)

    def backoff_max_tries(self) -> int:
        return self.retry_policy.max_retries + 1

    def backoff_jitter(self, value: float) -> float:
        return value  # the wait generator applies its own jitter (never to Retry-After)

    def backoff_handler(self, details: t.Mapping[str, t.Any]) -> None:
        del details  # the wait generator already logged the retry
        label = getattr(self._where, "label", None)
        with self._retry_lock:
            self.outcome.retries += 1
            self._retries_by_account[label] = self._retries_by_account.get(label, 0) + 1

    def _describe_request(self) -> str:
        return getattr(self._where, "text", f"GET {self.path}")

    def _send(self, prepared: requests.PreparedRequest, request: PageRequest) -> Page:
        """One attempt: wait for the throttle, send, read the answer."""
        body = b""

        def send_and_read() -> requests.Response:
            nonlocal body
            response = self.requests_session.send(
                prepared, timeout=self.timeout, allow_redirects=self.allow_redirects, stream=True
            )
            body = read_body(response)  # within the in-flight slot, like the request
            return response

        response = self.run.send(send_and_read)
        self.run.reached_api = True
        try:
            self.validate_response(response)
        except ClientError as exc:
            raise self._read_client_error(exc, request) from None
        return parse_page(
            response,
            body,
            number=request.page,
            api_url=self.url_base,
            single=request.position is Position.DETAIL,
        )

    @cached_property
    def _send_with_retries(self) -> Callable[[requests.PreparedRequest, PageRequest], Page]:
        return self.request_decorator(self._send)

    def fetch_page(
        self, context: Context | None, request: PageRequest, *, retries: bool = True
    ) -> Page:
        """Request one page, with retries unless told not to; runs on worker threads too."""
        http_request = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=request)
        )
        prepared = self.build_prepared_request(
            method=http_request.method,
            url=http_request.url,
            params=http_request.encode_params(),
            headers=http_request.headers,
        )
        where = f"GET {self.path} (page {request.page})"
        return self._fetch(prepared, request, where, context, retries=retries)

    def fetch_detail(self, context: Context | None, record_id: str) -> dict | None:
        """One record's detail, with retries; None if it is gone (details.py)."""
        http_request = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=None)
        )
        prepared = self.build_prepared_request(
            method="GET",
            url=f"{http_request.url}/{quote(record_id, safe='')}",
            params={},
            headers=http_request.headers,
        )
        request = PageRequest(page=1, limit=1, order_field=None, position=Position.DETAIL)
        try:
            page = self._fetch(prepared, request, f"GET {self.path}/{{id}}", context)
        except RecordGoneError:
            return None
        return page.records[0]

    def _fetch(
        self,
        prepared: requests.PreparedRequest,
        request: PageRequest,
        where: str,
        context: Context | None,
        *,
        retries: bool = True,
    ) -> Page:
        self._where.text = where
        self._where.label = (context or {}).get("account_label")
        started = time.monotonic()
        send = self._send_with_retries if retries else self._send
        try:
            try:
                return send(prepared, request)
            except ClientError as exc:
                if request.position is Position.UNKNOWN and exc.status == 422:
                    try:  # Qonto answers 422 past the last page; once is not proof
                        return send(prepared, request)
                    except ClientError as again:
                        if again.status == 422:
                            raise EndOfDataError from None
                        raise
                raise
        except _RETRIABLE as exc:
            raise gave_up(
                self._where.text, self.backoff_max_tries(), time.monotonic() - started, exc
            ) from None

    # --- one partition ----------------------------------------------------------------

    def _bookmark(self, context: Context | None) -> str | None:
        state = self.get_context_state(context)
        value = state.get("replication_key_value")
        if value and state.get("replication_key") == self.replication_key:
            return str(value)
        return None

    def _start(self, bookmark: str | None) -> dt.datetime | None:
        """Where an incremental read starts: the bookmark minus the lookback, or start_date."""
        candidates = []
        if bookmark is not None:
            lookback = dt.timedelta(seconds=int(self.config["lookback_window"]))
            mark = parse_timestamp(bookmark)
            candidates.append(mark - lookback if mark - _EARLIEST > lookback else _EARLIEST)
        if start_date := self.config.get("start_date"):
            candidates.append(parse_timestamp(str(start_date)))
        return max(candidates) if candidates else None

    def identify(self, record: dict) -> str:
        """The record's id (or an alias), as a string."""
        for name in ("id", *self.id_aliases):
            value = record.get(name)
            if value not in (None, ""):
                return value if type(value) is str else numbers.text_of(value)
        msg = (
            f"GET {self.path} returned a record without an 'id'"
            f"{' or ' + repr(self.id_aliases[0]) if self.id_aliases else ''}; it cannot be "
            "deduplicated or merged, so the tap stops rather than load it. Report the "
            "response to Maesn support."
        )
        raise MaesnAPIError(msg)

    @staticmethod
    def _timestamp_of(name: str) -> Callable[[dict], str | None]:
        def read(record: dict) -> str | None:
            value = record.get(name)
            if not isinstance(value, str):
                return None
            try:
                return normalize_timestamp(value)
            except ValueError:
                return None

        return read

    def _whole_list(self) -> PageRequest:
        return PageRequest(page=1, limit=int(self.config["page_size"]))

    def _partition_start(self, context: Context | None) -> tuple[str | None, dt.datetime | None]:
        """The partition's bookmark and where its read starts (None: the whole list)."""
        if self.replication_method == REPLICATION_FULL_TABLE:
            return None, None
        previous = self._bookmark(context)
        if self._table is not None and self._table.reconciling:
            return previous, None
        return previous, self._start(previous)

    def _whole_list_since(self) -> dt.datetime | None:
        """What a whole-list read keeps when no window start applies: a reconcile's start_date."""
        return None if self.replication_method == REPLICATION_FULL_TABLE else self._start(None)

    def plan_first_request(self, context: Context | None, order: int) -> None:
        """Have the partition's first request, and what it implies, fetched ahead (prefetch.py).

        ``order`` is the partition's place in the sync. A first run whose window is long
        asks for the whole list's probe next (``_whole_list_is_faster``), and a whole-list
        read for its opening pages: each is planned as soon as the answer it follows from
        is in, so it is usually there before the partition's turn. On a first run of the
        first round's partitions the probe is also guessed at once, into a slot nothing
        else would use: a round sooner when the window is long, no time lost (and one
        small request) when it is not.
        """
        self._start_sync()  # a reconcile reads the whole list: its first request differs
        previous, start = self._partition_start(context)
        label = self.account(context).label
        probe = FullRead.probe_request()
        probe_key = self._key(context, probe)
        # Only a partition whose first request goes out in the first round: later ones
        # (many accounts) would find no idle slot to guess in.
        guessed = (
            start is not None
            and previous is None
            and self._may_probe()
            and order < self.run.max_concurrency
        )
        if start is not None:
            request = WindowRead.first_request(start, int(self.config["page_size"]))
        else:
            request = FullRead.probe_request(Position.FIRST)

        def first() -> Page:
            # A whole-list read's bookmark subtracts the time since its first request.
            self._first_sent[label] = time.monotonic()
            page = self.fetch_page(context, request)
            if start is None:
                self._plan_whole_list(context, order, page)
            elif self._worth_probing(page):
                self._plan_probe(context, order, page)
            elif guessed:
                self.run.ahead.forget(probe_key)
            return page

        self._plan(context, request, first, (order, 0))
        if guessed:
            self.run.ahead.plan(
                probe_key,
                partial(self.fetch_page, context, probe, retries=False),
                spare((order, 1)),
            )

    def _plan_probe(self, context: Context | None, order: int, window_first: Page) -> None:
        def plan_pages(probe: Page) -> None:
            if self._whole_list_wins(window_first, probe):
                self._plan_whole_list(context, order, probe)

        request = FullRead.probe_request()
        fetch = partial(self.fetch_page, context, request)
        self._plan(context, request, fetch, (order, 1), then=plan_pages)

    def _plan_whole_list(self, context: Context | None, order: int, probe: Page) -> None:
        """The opening pages of the whole list's first pass, as ``FullRead`` will ask for them."""
        expected = pages_for(probe.total, int(self.config["page_size"]))
        # As many as the lookahead holds, plus what a reader at its end lends it.
        ahead = self.run.ahead.lookahead + most_lent(self.run.max_concurrency)
        requests = opening_requests(self._whole_list(), expected, ahead)
        for step, request in enumerate(requests, start=2):
            self._plan(context, request, partial(self.fetch_page, context, request), (order, step))

    def _plan(
        self,
        context: Context | None,
        request: PageRequest,
        fetch: Callable[[], Page],
        order: tuple[int, int],
        then: Callable[[Page], None] | None = None,
    ) -> None:
        self.run.ahead.plan(self._key(context, request), fetch, order, then)

    def _key(self, context: Context | None, request: PageRequest) -> Key:
        return (self.name, self.account(context).label, request)

    def _fetcher(self, context: Context | None) -> Callable[[PageRequest], Page]:
        """``fetch_page`` for this partition, answered from what was fetched ahead where it was."""
        details = self._details(context)

        def fetch(request: PageRequest) -> Page:
            ahead = self.run.ahead.take(self._key(context, request))
            page = ahead.result() if ahead is not None else None
            if page is None:  # not fetched ahead, or a guess that failed
                page = self.fetch_page(context, request)
            # Descending queries are probes: their records are never emitted.
            return page if details is None or request.descending else details.complete(page)

        return fetch

    def _details(self, context: Context | None) -> Details | None:
        """How this partition's pages get their line items from details, if they do."""
        mode = str(self.config.get("fetch_details", "auto"))
        lines_wanted = bool(self._lines and self._lines.streams) or (
            self.selected and self.mask.get(("properties", "lineItems"), True)
        )
        if mode == "never" or (mode == "auto" and not lines_wanted):
            return None
        verdict = self._auto_verdicts.setdefault(self.account(context).target_system, AutoVerdict())

        def fetch_one(record: dict) -> dict | None:
            try:
                return self.fetch_detail(context, self.identify(record))
            except (WrongApiUrlError, AuthError):
                raise
            except (MaesnAPIError, ClientError) as exc:
                if mode == "always":
                    raise
                verdict.give_up()
                self._warn_once(
                    "details",
                    f"record details are not available here ({exc}); line items are "
                    "taken as the list serves them (fetch_details: auto).",
                )
                return None

        return Details(
            mode=mode,
            fetch_one=fetch_one,
            max_concurrency=self.run.max_concurrency,
            thread_name=f"{self.name}-detail",
            verdict=verdict,
        )

    def _full_read(
        self,
        context: Context | None,
        fetch: Callable[[PageRequest], Page],
        since: dt.datetime | None,
        emitted: set[str],
    ) -> FullRead:
        return FullRead(
            fetch=fetch,
            query=self._whole_list(),
            identify=self.identify,
            key_of=self._timestamp_of("updatedDate"),
            created_of=self._timestamp_of("createdDate"),
            max_concurrency=self.run.max_concurrency,
            thread_name=f"{self.name}-page",
            warn=self._warn,
            since_text=format_timestamp(since) if since else None,
            emitted=emitted,
            on_page=self._count_page,
            on_spare=self.run.ahead.lend,
            fetched_ahead=lambda request: self.run.ahead.holds(self._key(context, request)),
        )

    def _warn(self, message: str) -> None:
        self.logger.warning("%s: %s", self.name, message)

    def _count_page(self, page: Page) -> None:
        self.outcome.pages += 1
        for warning in page.warnings:
            self._warn_once(f"meta:{warning}", f"Maesn says: {warning}")
        if time.monotonic() - self._last_progress >= PROGRESS_LOG_SECONDS:
            self._last_progress = time.monotonic()
            reader = self._reader
            if isinstance(reader, WindowRead):
                where = f"updated up to {reader.max_key or 'the start'}"
            else:
                of_pages = f" of {page.total_pages}" if page.total_pages else ""
                where = f"page {page.number}{of_pages}"
            self.logger.info(
                "%s: %d records so far, %s, %d retries",
                self.name,
                self.outcome.records,
                where,
                self.outcome.retries,
            )

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._warn(message)

    @property
    def emit_activate_version_messages(self) -> bool:
        return False  # reconcile.py sends its own, after the rows, never before them

    def get_records(self, context: Context | None) -> Iterable[dict]:
        """One account's records; then its line rows, if it is time to write them."""
        lines, table = self._start_sync()
        # The SDK finds a partition's state by a linear search: once per partition here.
        self._partition_state = self.get_context_state(context)
        if not lines.started:
            self._write_lines(context)  # the SCHEMA of line streams written directly
        label = self.account(context).label
        try:
            yield from self._partition_records(context)
        finally:  # what was fetched ahead for this partition and not read is not needed
            self.run.ahead.discard((self.name, label))
        last = label == self._last_label
        if lines.waiting and (last or lines.waiting >= ROWS_WAITING_AT_MOST):
            self._write_lines(context)
        if last:
            for stream in lines.direct:  # the SDK's own count is of its syncs' records only
                self.logger.info(
                    "%s: %d rows written with their %s", stream.name, stream.rows_written, self.name
                )
            self._end_table(table)

    def _start_sync(self) -> tuple[LineBuffer, reconcile.TablePlan]:
        """On the stream's first partition: its line streams, and its table's version."""
        if self._lines is None or self._table is None:
            statelookup.index_partition_lookups(self.state_manager)  # one per account
            partitions = self.partitions or [{}]
            self._last_label = partitions[-1].get("account_label")
            self._state_every = max(
                RESUMABLE_STATE_EVERY, STATE_RECORDS_PER_ACCOUNT * len(partitions)
            )
            children = [c for c in self.child_streams if isinstance(c, LineItemsStream)]
            self._lines = LineBuffer([c for c in children if c.selected])
            self._table_since = dt.datetime.now(dt.UTC)
            self._table = reconcile.plan(
                (self.get_context_state(c) for c in self.partitions or []),
                every_days=reconcile.interval_days(self.config),
                now=self._table_since,
            )
            for stream in (self, *children):
                reconcile.carry_version(stream, self._table.version)
            if self._table.reconciling:
                self.logger.info(
                    "%s: reconciling: every account is read whole and rows no longer "
                    "listed are retired in the target (table version %d).",
                    self.name,
                    self._table.version,
                )
        return self._lines, self._table

    def _end_table(self, table: reconcile.TablePlan) -> None:
        """After the last partition: activate a reconcile's version if every read was whole."""
        labels = [self.account(c).label for c in self.partitions or []]
        failed = [label for label in labels if label in self.run.failed]
        if table.reconciling and (failed or self.outcome.incomplete):
            self._warn(
                "the reconcile was not finished ("
                + (f"account(s) {', '.join(failed)} failed" if failed else "a read was incomplete")
                + "), so no row was retired in the target; the next run reconciles again."
            )
            return
        if table.reconciling and table.version is not None:
            selected = (
                [s for s in (self, *self._lines.streams) if s.selected] if self._lines else []
            )
            for stream in selected:
                reconcile.activate(stream, table.version, self._write_message)
        for context in self.partitions or []:
            if self.account(context).label not in self.run.failed:
                reconcile.record_done(self.get_context_state(context), table, self._table_since)

    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Iterable[Context | None]:
        """No context for the SDK to sync children with: lineitems.py writes the line rows.

        They are written at once, or buffered and written on each record after which the
        SDK may write a STATE message, so none carries a bookmark past an unwritten line.
        """
        lines = self._lines
        if lines is None or not lines.streams:
            return
        if self.records_need_the_sdk and not self.stream_maps[0].get_filter_result(record):
            return  # a stream map filtered the parent out (without one, nothing filters)
        label = self.account(context).label
        resumable = isinstance(self._reader, WindowRead)
        # Where a stop would leave this partition if it happened now.
        safe = (
            self._partition_state.get("replication_key_value")
            if resumable
            else self._previous_bookmark
        )
        lines.add(record, label, safe)
        if lines.waiting and self.outcome.records % self._state_every == 0:
            self._write_lines(context)
        yield from ()

    def _write_lines(self, context: Context | None) -> None:
        """Write the waiting line rows; the STATE their sync ends with is safe to resume.

        That STATE carries this partition's bookmark as a stop would leave it
        (restore_resumable_state); the SDK's own value is put back afterwards.
        """
        state = self._partition_state
        saved = dict(state)
        self.restore_resumable_state(context)
        try:
            self._lines.write()  # type: ignore[union-attr]  # only called once it is set
        finally:
            state.clear()
            state.update(saved)

    def _partition_records(self, context: Context | None) -> Iterable[dict]:
        """One account's records; an account that fails is named and skipped."""
        label = self.account(context).label
        fetch = self._fetcher(context)
        if label in self.run.failed:
            self._first_sent.pop(label, None)
            return  # its state stays as it was; the run's verdict names it
        self._warned = set()
        self._whole_first = None
        self._last_progress = time.monotonic()
        # The read began when its first request left, if that was fetched ahead.
        started = self._first_sent.pop(label, self._last_progress)
        self._counts_before = (self.outcome.records, self.outcome.pages)
        incremental = self.replication_method != REPLICATION_FULL_TABLE
        previous, start = self._partition_start(context)
        self._previous_bookmark = previous
        try:
            bookmark = yield from self._read_partition(fetch, context, start, previous, started)
        except StreamUnavailableError as exc:
            account = self.account(context)
            self.outcome.skipped = (
                f"GET {self.path} is not available for target system "
                f"{account.target_system} ({exc}); skipping stream '{self.name}'"
                + (f" for account {label}" if len(self.run.accounts) > 1 else "")
            )
            self._warn(self.outcome.skipped)
            self._reader = None
            return
        except (WrongApiUrlError, SyncInterruptedError):
            raise  # not this account's problem: the whole run stops
        except MaesnAPIError as exc:
            if len(self.run.accounts) == 1:
                raise  # one account: its failure is the run's, in one line
            # The other accounts go on; this one keeps the state it had (or the resumable
            # progress of this read) and the run ends non-zero, naming it.
            self.restore_resumable_state(context)
            self._reader = None
            self.run.fail_account(label, str(exc))
            self.logger.warning("%s: account %s failed and is skipped: %s", self.name, label, exc)
            return
        if incremental:
            self._set_bookmark(context, bookmark)
        self._log_summary(label, time.monotonic() - started)
        self._reader = None

    def _read_partition(
        self,
        fetch: Callable[[PageRequest], Page],
        context: Context | None,
        start: dt.datetime | None,
        previous: str | None,
        started: float,
    ) -> t.Generator[dict, None, str | None]:
        """Read one partition; return the bookmark it leaves."""
        if start is not None:
            window = WindowRead(
                fetch=fetch,
                start=start,
                page_size=int(self.config["page_size"]),
                identify=self.identify,
                key_of=self._timestamp_of("updatedDate"),
                warn=self._warn,
                on_page=self._count_page,
                prefer_whole_list=lambda page: self._whole_list_is_faster(fetch, page),
            )
            self._reader = window
            try:
                yield from window.records()
            except WholeListInsteadError as exc:
                if isinstance(exc, GroupFillsPagesError):
                    self.logger.info(
                        "%s: %s; reading the whole list instead, where paging is exact.",
                        self.name,
                        exc,
                    )
                emitted = window.emitted_ids
            except (WindowNotHonouredError, ClientError) as exc:
                if isinstance(exc, ClientError) and exc.status != 400:
                    raise
                self._warn(
                    f"the target system does not read incrementally as asked ({exc}); "
                    "reading the whole list this run and filtering it here instead."
                )
                emitted = window.emitted_ids
            else:
                return max(filter(None, (previous, window.bookmark)), default=None)
        else:
            emitted = set()
        full = self._full_read(context, fetch, start or self._whole_list_since(), emitted)
        full.first_probe, self._whole_first = self._whole_first, None
        self._reader = full
        yield from full.records()
        if not full.complete:
            self.outcome.incomplete = True
            return previous
        if full.max_key is None:
            return previous
        # Any record updated while the list was read carries a newer updatedDate than
        # (newest seen - time the read took): the server's clock, only its rate assumed.
        elapsed = dt.timedelta(seconds=math.ceil(time.monotonic() - started))
        newest = parse_timestamp(full.max_key)
        safe = format_timestamp(newest - elapsed if newest - _EARLIEST > elapsed else _EARLIEST)
        return max(filter(None, (previous, safe)), default=None)

    def _whole_list_is_faster(self, fetch: Callable[[PageRequest], Page], first: Page) -> bool:
        """Whether the whole list, read concurrently, takes fewer rounds than the window.

        The window reads one page at a time; a backfill from an early start_date can
        instead read every page ``max_concurrency`` at a time (and filter here). The
        whole list's createdDate probe tells its size, and anchors that read if it wins.
        """
        if not self._worth_probing(first):
            return False
        probe = fetch(FullRead.probe_request())
        faster = self._whole_list_wins(first, probe)
        self._whole_first = probe if faster else None
        return faster

    def _worth_probing(self, window_first: Page) -> bool:
        """Whether the window is long enough that the whole list may be quicker."""
        pages = window_first.total_pages
        return self._may_probe() and pages is not None and pages >= 2 * self.run.max_concurrency

    def _may_probe(self) -> bool:
        """Whether a whole list can be read faster than a window at all: concurrently."""
        return self.run.max_concurrency > 1

    def _whole_list_wins(self, window_first: Page, probe: Page) -> bool:
        whole_pages = pages_for(probe.total, int(self.config["page_size"]))
        if whole_pages is None or window_first.total_pages is None:
            return False
        rounds = math.ceil(whole_pages / self.run.max_concurrency)
        return rounds < window_first.total_pages

    def _set_bookmark(self, context: Context | None, value: str | None) -> None:
        state = self.get_context_state(context)
        if value is None:
            state.pop("replication_key_value", None)
            state.pop("replication_key", None)
            return
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = value

    def restore_resumable_state(self, context: Context | None) -> None:
        """Before a STATE is written mid-partition (a stop): undo a non-resumable bookmark.

        A partition whose line rows are not all written goes back to where its first
        unwritten row's parent was (lineitems.py).
        """
        if self.replication_method == REPLICATION_FULL_TABLE:
            return
        reader = self._reader
        if reader is not None and not isinstance(reader, WindowRead):
            self._set_bookmark(context, self._previous_bookmark)  # mid whole-list read
            return
        label = self.account(context).label
        if self._lines is not None and label in self._lines.unwritten:
            self._set_bookmark(context, self._lines.unwritten[label])

    def _log_summary(self, label: str, seconds: float) -> None:
        issues = self._shape_issues
        if issues.unknown_fields:
            self._warn(
                "fields not in the tap's schema were dropped: "
                f"{', '.join(sorted(issues.unknown_fields))}. A newer tap-maesn-qonto may "
                "know them."
            )
        for path, count in sorted(issues.unreadable.items()):
            self._warn(
                f"{count} value(s) of {path} could not be read as the schema's type and "
                "were emitted as null."
            )
        records = self.outcome.records - self._counts_before[0]
        pages = self.outcome.pages - self._counts_before[1]
        with self._retry_lock:
            retries = self._retries_by_account.pop(label, 0)
        reader = self._reader
        if isinstance(reader, WindowRead):
            how = f"incremental from {format_timestamp(reader.start)}"
        elif isinstance(reader, FullRead):
            filtered = f", updated from {reader.since_text}" if reader.since_text else ""
            how = f"whole list{filtered}, {reader.passes} pass{'es' if reader.passes > 1 else ''}"
        else:
            how = "nothing read"
        of_account = f" of account {label}" if len(self.run.accounts) > 1 else ""
        self.logger.info(
            "%s: sync summary%s: %d records emitted, %d pages, %d retries, %.2f s (%s)",
            self.name,
            of_account,
            records,
            pages,
            retries,
            seconds,
            how,
        )

    # --- records --------------------------------------------------------------------

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Shape a record to the schema, with the fields every record carries."""
        for alias in self.id_aliases:  # accept either name, emit both
            if row.get("id") is None:
                row["id"] = row.get(alias)
            if row.get(alias) is None:
                row[alias] = row["id"]
        # Set before shaping: the record then has exactly the schema's keys (the fast path).
        account = self.account(context)
        row["target_system"] = account.target_system
        row["account_label"] = account.label
        self.outcome.records += 1
        shaped = self._shaper.convert(row)  # the compiled object shaper: row is a dict
        if self.records_need_the_sdk:  # stream maps compute with numbers (numbers.py)
            return numbers.with_decimals(shaped)
        return shaped
