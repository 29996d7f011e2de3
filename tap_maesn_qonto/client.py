"""The base stream: HTTP, paging, retries, drift checks and record shaping for Maesn.

Streams in ``streams.py`` only declare their path and what differs; everything
that talks to Maesn lives here.

Paging and drift, in short (the README's "Incremental semantics" has the long form):

* Requests ask for ``orderField=createdDate&orderDir=ASC``. Under that order an
  update never moves a record and a new record lands on the last page; only a
  record leaving the result set (a deletion) shifts unread records onto pages
  already read.
* The tap does not trust that: if an id arrives twice, if fewer distinct ids
  arrive than the total promised, or if the total fell by more than the records
  created during the pass explain, the pass is repeated (at most ``MAX_PASSES``),
  emitting only ids not yet emitted. If records still leave after the last pass,
  the bookmark is held at this run's starting point, so the next run reads the
  window again (see :class:`PassResult`).
* The order does not follow ``updatedDate``, so the stream is unsorted for the
  SDK: the bookmark is promoted only when a partition completes, capped at the
  moment the sync started. An interrupted run resumes from the last completed
  bookmark, which is always safe.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import email.utils
import itertools
import math
import os
import random
import threading
import time
import typing as t
from dataclasses import dataclass, field
from functools import cached_property

import backoff
import requests
from requests.adapters import HTTPAdapter
from singer_sdk import RESTStream, SchemaDirectory, StreamSchema
from singer_sdk.authenticators import SimpleAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams.rest import PageContext

from tap_maesn_qonto import schemas
from tap_maesn_qonto.envelope import Page, parse_page
from tap_maesn_qonto.errors import EndpointUnavailableError, MaesnAPIError
from tap_maesn_qonto.redaction import redact
from tap_maesn_qonto.shaping import ShapeIssues, Shaper
from tap_maesn_qonto.timestamps import (
    filter_timestamp,
    format_timestamp,
    parse_timestamp,
    utc_now,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator

    from singer_sdk.helpers.types import Context

SCHEMAS_DIR = SchemaDirectory(schemas)

MAX_PASSES = 3
EARLIEST = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
PROGRESS_LOG_SECONDS = 5.0
RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 30.0

_RETRIABLE_EXCEPTIONS = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class PageRejectedError(MaesnAPIError):
    """A 4xx other than auth/availability; past the last page it just means "no more"."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Seconds a response's ``Retry-After`` header asks for (delta or HTTP date)."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - dt.datetime.now(tz=dt.UTC)).total_seconds())


@dataclass
class PartitionRun:
    """Counters and boundaries of one stream partition's sync."""

    since: dt.datetime | None
    since_text: str | None  # ``since`` in the emitted timestamp form, for client-side checks
    started: float = field(default_factory=time.monotonic)
    pages: int = 0
    passes: int = 0
    emitted: int = 0
    dropped_older: int = 0
    emitted_ids: set[int] = field(default_factory=set)  # hash(id): ~60 bytes per record
    send_order_params: bool = True
    send_filter_param: bool = True
    retry_count: int = 0
    current_pass: PassResult | None = None
    drift_unresolved: bool = False
    warned: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count_retry(self) -> None:
        """Count one retry; called from worker threads."""
        with self._lock:
            self.retry_count += 1


@dataclass
class PassResult:
    """What one walk over all pages saw, to decide whether it can be trusted.

    Under ``createdDate ASC`` only a record leaving the result set (a deletion)
    shifts unread records onto pages already read. New records land on the last
    page and updates move nothing, so neither is drift by itself; but a deletion
    balanced by a creation leaves the total unchanged, so the total is compared
    with the creations seen: ``first total + records created during the pass >
    last total`` means something left the set while the tap paged.
    """

    started_text: str  # pass start in the emitted timestamp form
    #: Ids seen in this pass; None on the first pass, where the run's set of emitted
    #: ids is exactly that set (one set instead of two keeps memory flat).
    seen: set[int] | None = None
    first_total: int | None = None
    last_total: int | None = None
    created_during_pass: int = 0
    distinct: int = 0
    repeated_ids: int = 0

    def drift(self) -> str | None:
        """Describe why this pass may have missed records, or None if it is sound."""
        if self.repeated_ids:
            return f"{self.repeated_ids} record(s) appeared on two pages (records shifted)"
        if self.first_total is not None and self.last_total is not None:
            left = self.first_total + self.created_during_pass - self.last_total
            if left > 0:
                return (
                    f"about {left} record(s) left the result set while paging (total "
                    f"{self.first_total} -> {self.last_total} with "
                    f"{self.created_during_pass} created)"
                )
        if self.last_total is not None and self.distinct < self.last_total:
            return (
                f"{self.distinct} distinct records arrived but the API reported {self.last_total}"
            )
        return None


class FetchPace:
    """How many pages to keep in flight: fetch time over consume time, rounded up.

    Both times are smoothed (exponential moving averages) so a single slow page
    does not swing the window.
    """

    SMOOTHING = 0.2

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.window = max_in_flight  # start wide: the first pages tell the real pace
        self._fetch_seconds: float | None = None
        self._consume_seconds: float | None = None

    def _smooth(self, average: float | None, sample: float) -> float:
        return sample if average is None else average + self.SMOOTHING * (sample - average)

    def timed(self, fetch: Callable[..., Page], *args: t.Any) -> Page:
        """Run one fetch (on a worker thread) and record how long it took."""
        started = time.monotonic()
        try:
            return fetch(*args)
        finally:
            self._fetch_seconds = self._smooth(self._fetch_seconds, time.monotonic() - started)

    @contextlib.contextmanager
    def consuming(self) -> Iterator[None]:
        """Time the caller's work on one page, then resize the window."""
        started = time.monotonic()
        yield
        self._consume_seconds = self._smooth(self._consume_seconds, time.monotonic() - started)
        if self._fetch_seconds is not None:
            needed = math.ceil(self._fetch_seconds / max(self._consume_seconds, 1e-6))
            self.window = max(1, min(self.max_in_flight, needed))


class MaesnStream(RESTStream[int]):
    """A Maesn accounting list endpoint read page by page for one connected account."""

    schema = StreamSchema(SCHEMAS_DIR)
    primary_keys: t.ClassVar[tuple[str, ...]] = ("id",)
    replication_key = "updatedDate"
    is_sorted = False  # pages are ordered by createdDate, not by the replication key
    # post_process emits exactly the schema's shape, so the SDK's conformance pass
    # (its costliest per-record step) has nothing left to do.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    order_field = "createdDate"
    #: Other names the API has used for ``id`` on this resource; emitted beside it.
    id_aliases: t.ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_started_at = utc_now()
        self._shape_issues = ShapeIssues()
        self._shaper = Shaper(self.schema, self._shape_issues)
        self._run: PartitionRun | None = None

    # --- what every request carries -------------------------------------------------

    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @cached_property
    def authenticator(self) -> SimpleAuthenticator:
        return SimpleAuthenticator(
            auth_headers={
                "X-API-KEY": self.config["api_key"],
                "X-ACCOUNT-KEY": self.config["account_key"],
            }
        )

    @property
    def http_headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "User-Agent": self.user_agent}

    @property
    def timeout(self) -> int:
        return int(self.config["request_timeout"])

    @property
    def requests_session(self) -> requests.Session:
        if not self._requests_session:
            session = requests.Session()
            # Proxy and CA settings from the environment are resolved once here, not
            # on every request (requests walks os.environ per send: ~0.6 ms a page).
            session.proxies.update(requests.utils.get_environ_proxies(self.url_base))
            session.verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
            session.trust_env = False
            # One pooled connection per worker, reused across pages (keep-alive).
            workers = int(self.config["max_concurrency"])
            session.mount("https://", HTTPAdapter(pool_maxsize=workers))
            session.mount("http://", HTTPAdapter(pool_maxsize=workers))
            self._requests_session = session
        return self._requests_session

    @property
    def partitions(self) -> list[dict]:
        # One state partition per connected account, keyed by its non-secret label.
        return [{"account_label": self.config["account_label"]}]

    @property
    def target_system(self) -> str:
        return "qonto-sandbox" if self.config["sandbox"] else "qonto"

    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict:
        run = self._current_run
        params: dict[str, t.Any] = {
            "page": next_page_token or 1,
            "limit": self.config["page_size"],
        }
        if run.since is not None and run.send_filter_param:
            params["lastModifiedAt"] = filter_timestamp(run.since)
        if run.send_order_params:
            params["orderField"] = self.order_field
            params["orderDir"] = "ASC"
        return params

    def get_replication_key_signpost(self, context: Context | None = None) -> str:
        # The bookmark never moves past the moment this sync started: anything changed
        # while it ran is read again next time. Same string form as emitted values,
        # because the SDK compares them as strings.
        del context
        return format_timestamp(self._sync_started_at)

    # --- responses and retries ------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        return (self.config["api_key"], self.config["account_key"])

    def response_error_message(self, response: requests.Response) -> str:
        """Describe a failed response without the URL's query or any secret."""
        snippet = redact(response.text[:300], self._secrets()).replace("\n", " ")
        return f"GET {self.path} answered {response.status_code} {response.reason}: {snippet}"

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status in {401, 403}:
            raise MaesnAPIError(self._auth_message(status))
        if status in {404, 405}:
            msg = (
                f"GET {self.path} is not available for target system "
                f"{self.target_system} (HTTP {status}); skipping stream '{self.name}'."
            )
            raise EndpointUnavailableError(msg)
        if status >= 400:
            raise PageRejectedError(self.response_error_message(response), status)

    def _auth_message(self, status: int) -> str:
        if status == 401:
            return (
                f"Maesn rejected the keys (401 Unauthorized) on GET {self.path}. Check "
                "api_key (your Maesn tenant key, sent as X-API-KEY) and account_key (the "
                f"end user's key for target system {self.target_system}, sent as "
                "X-ACCOUNT-KEY). If the end user's Qonto connection expired, re-link them "
                "through Maesn's auth flow to get a new account key."
            )
        return (
            f"Maesn refused access (403 Forbidden) on GET {self.path}. The end user may be "
            "inactive or not belong to this tenant: check in Maesn that the user is "
            "active and that api_key and account_key come from the same tenant."
        )

    def request_decorator(self, func: Callable) -> Callable:
        """Retry 429, 5xx, timeouts and resets with backoff, within a bounded time."""
        return backoff.on_exception(
            self._retry_waits,
            _RETRIABLE_EXCEPTIONS,
            max_tries=int(self.config["max_retries"]) + 1,
            max_time=int(self.config["max_retry_seconds"]),
            jitter=None,  # _retry_waits applies its own jitter, but not to Retry-After
            on_backoff=self._on_retry,
            logger=None,
        )(func)

    def _retry_waits(self) -> Generator[float, Exception, None]:
        throttle = self._tap.throttle  # type: ignore[attr-defined]
        exception = yield  # type: ignore[misc]
        for attempt in itertools.count():
            response = getattr(exception, "response", None)
            asked = retry_after_seconds(response)
            if asked is not None:
                wait = min(asked, float(self.config["max_retry_seconds"]))
                throttle.pause(wait)  # every worker holds, not only this one
            else:
                # Exponential backoff with "equal jitter": never less than half the step.
                step = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**attempt)
                wait = step / 2 + random.uniform(0, step / 2)  # noqa: S311 - not crypto
            exception = yield wait

    def _on_retry(self, details: t.Mapping[str, t.Any]) -> None:
        self._current_run.count_retry()
        exception = details.get("exception")
        response = getattr(exception, "response", None)
        cause = f"HTTP {response.status_code}" if response is not None else type(exception).__name__
        self.logger.warning(
            "%s: %s on GET %s; retry %d in %.1f s",
            self.name,
            cause,
            self.path,
            details.get("tries", 0),
            details.get("wait", 0.0),
        )

    @cached_property
    def _send_with_retries(self) -> Callable[..., requests.Response]:
        return self.request_decorator(self._send)

    def _send(
        self, prepared: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        self._tap.throttle.wait()  # type: ignore[attr-defined]
        return self._request(prepared, context)

    # --- fetching pages ---------------------------------------------------------------

    @property
    def _current_run(self) -> PartitionRun:
        if self._run is None:  # only get_records starts a run
            msg = "request made outside a partition sync"
            raise RuntimeError(msg)
        return self._run

    def _fetch_page(self, context: Context | None, number: int) -> Page:
        """Request one page (with retries) and decode it; runs on worker threads."""
        http_request = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=number)
        )
        prepared = self.build_prepared_request(
            method=http_request.method,
            url=http_request.url,
            params=http_request.encode_params(),
            headers=http_request.headers,
        )
        started = time.monotonic()
        try:
            response = self._send_with_retries(prepared, context)
        except _RETRIABLE_EXCEPTIONS as exc:
            raise self._gave_up(exc, number, time.monotonic() - started) from None
        return parse_page(response, number=number, api_url=self.url_base)

    def _gave_up(self, exc: Exception, number: int, elapsed: float) -> MaesnAPIError:
        response = getattr(exc, "response", None)
        last = (
            f"HTTP {response.status_code} {response.reason}"
            if response is not None
            else f"{type(exc).__name__}: {redact(str(exc), self._secrets())}"
        )
        return MaesnAPIError(
            f"GET {self.path} (page {number}) still failed after "
            f"{int(self.config['max_retries']) + 1} attempts over {elapsed:.0f} s; last "
            f"error: {last}. Maesn or Qonto is unavailable or rate-limiting: re-run later "
            "(the bookmarks of completed streams are kept), or raise max_retries / "
            "max_retry_seconds."
        )

    def _first_page(self, context: Context | None) -> Page:
        """Fetch page 1, dropping optional parameters the target system rejects."""
        run = self._current_run
        while True:
            try:
                return self._fetch_page(context, 1)
            except PageRejectedError as exc:
                if exc.status != 400 or not (run.send_order_params or run.send_filter_param):
                    raise
                dropped = "orderField/orderDir" if run.send_order_params else "lastModifiedAt"
                self.logger.warning(
                    "%s: the target system rejected %s (%s); retrying without it. "
                    "Records are still filtered client side.",
                    self.name,
                    dropped,
                    exc,
                )
                if run.send_order_params:
                    run.send_order_params = False
                else:
                    run.send_filter_param = False

    def _pages(self, context: Context | None) -> Iterator[Page]:
        """Yield the pages of one pass in page order, fetching ahead concurrently.

        Page 1 tells how many pages there are; the following pages are fetched by
        up to ``max_concurrency`` workers while the caller consumes them in order. At
        most that many pages are held, so memory does not grow with the stream.

        The number of pages in flight adapts to keep the caller fed and no more:
        (time to fetch a page) / (time to consume one), rounded up and capped at
        ``max_concurrency``. Against a slow API that is the cap; against a fast one
        it is one, because fetches far ahead only fight the record path for the GIL
        (measured: 10-25 % slower at zero latency with more pages in flight).
        """
        first = self._first_page(context)
        yield first
        previous = first
        expected_last = first.total_pages
        if self._is_last(first, expected_last):
            return
        workers = int(self.config["max_concurrency"])
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f"{self.name}-page"
        ) as pool:
            pending: dict[int, concurrent.futures.Future[Page]] = {}
            next_to_submit = 2
            number = 2
            pace = FetchPace(workers)
            try:
                while True:
                    while len(pending) < pace.window and (
                        expected_last is None or next_to_submit <= expected_last
                    ):
                        pending[next_to_submit] = pool.submit(
                            pace.timed, self._fetch_page, context, next_to_submit
                        )
                        next_to_submit += 1
                    if number not in pending:
                        return  # the reported page count is reached
                    try:
                        page = pending.pop(number).result()
                    except PageRejectedError as exc:
                        if self._full(previous):
                            # Qonto answers 422 past the last page; after a full page that
                            # is the end of the data, not a failure.
                            self.logger.info(
                                "%s: page %d answered HTTP %d after a full page; treating "
                                "it as the end of the data.",
                                self.name,
                                number,
                                exc.status,
                            )
                            return
                        raise
                    with pace.consuming():
                        yield page
                    if page.total_pages is not None:
                        expected_last = page.total_pages
                    if self._is_last(page, expected_last):
                        return
                    previous = page
                    number += 1
            finally:
                for future in pending.values():
                    future.cancel()

    def _full(self, page: Page) -> bool:
        return len(page.records) >= (page.per_page or int(self.config["page_size"]))

    def _is_last(self, page: Page, expected_last: int | None) -> bool:
        if not page.records:
            return True
        if expected_last is not None:
            if page.number >= expected_last:
                return True
            if not self._full(page):
                self._warn_once(
                    "short-page",
                    "%s: page %d held fewer records than requested although %d pages were "
                    "reported; continuing to the reported last page.",
                    self.name,
                    page.number,
                    expected_last,
                )
            return False
        return not self._full(page)

    def _warn_once(self, key: str, message: str, *args: t.Any) -> None:
        run = self._current_run
        if key not in run.warned:
            run.warned.add(key)
            self.logger.warning(message, *args)

    # --- one partition: passes, drift, summary ----------------------------------------

    def _since(self, context: Context | None) -> dt.datetime | None:
        """Where this run starts: the bookmark minus the lookback, or start_date."""
        state = self.get_context_state(context)
        candidates = []
        bookmark = state.get("replication_key_value")
        if bookmark and state.get("replication_key") == self.replication_key:
            lookback = dt.timedelta(seconds=int(self.config["lookback_window"]))
            mark = parse_timestamp(str(bookmark))
            candidates.append(mark - lookback if mark - EARLIEST > lookback else EARLIEST)
        if start_date := self.config.get("start_date"):
            candidates.append(parse_timestamp(str(start_date)))
        if not candidates:
            return None
        # Floored to the second, as sent to the API: the boundary is inclusive.
        return max(candidates).replace(microsecond=0)

    def get_records(self, context: Context | None) -> Iterable[dict]:
        self.state_manager.write_replication_key_signpost(
            self.get_replication_key_signpost(context), context=context
        )
        since = self._since(context)
        self._run = PartitionRun(since=since, since_text=format_timestamp(since) if since else None)
        try:
            yield from self.request_records(context)
        except EndpointUnavailableError as exc:
            self.logger.warning("%s", exc)
            return
        if self._run.drift_unresolved:
            # Hold the bookmark where this run started (the beginning of time when it
            # started without one): the next run reads this window again.
            self.state_manager.write_replication_key_signpost(
                format_timestamp(since or EARLIEST), context=context
            )
        self._log_summary()

    def request_records(self, context: Context | None) -> Iterable[dict]:
        run = self._current_run
        last_progress = time.monotonic()
        with self.get_http_request_counter() as request_counter:
            request_counter.with_context(context)
            for pass_number in range(1, MAX_PASSES + 1):
                run.passes = pass_number
                result = PassResult(
                    started_text=format_timestamp(utc_now()),
                    seen=None if pass_number == 1 else set(),
                )
                run.current_pass = result
                for page in self._pages(context):
                    request_counter.increment()
                    run.pages += 1
                    self._note_page(page, result)
                    yield from self._new_records(page, result)
                    if time.monotonic() - last_progress >= PROGRESS_LOG_SECONDS:
                        last_progress = time.monotonic()
                        self._log_progress(page)
                drift = result.drift()
                if drift is None:
                    return
                if pass_number < MAX_PASSES:
                    self.logger.warning(
                        "%s: data changed while paging: %s. Reading all pages again to "
                        "catch any record that slid past a page boundary (pass %d of at "
                        "most %d).",
                        self.name,
                        drift,
                        pass_number + 1,
                        MAX_PASSES,
                    )
            run.drift_unresolved = True
            self.logger.warning(
                "%s: data was still changing after %d passes (%s). Everything seen was "
                "emitted; the bookmark stays at this run's start so the next run reads "
                "this window again.",
                self.name,
                MAX_PASSES,
                drift,
            )

    def _note_page(self, page: Page, result: PassResult) -> None:
        for warning in page.warnings:
            self._warn_once(f"meta:{warning}", "%s: Maesn says: %s", self.name, warning)
        if page.total is not None:
            if result.first_total is None:
                result.first_total = page.total
            result.last_total = page.total

    def _new_records(self, page: Page, result: PassResult) -> Iterator[dict]:
        """Yield the records of a page not yet emitted by this run (by id)."""
        emitted = self._current_run.emitted_ids
        seen = emitted if result.seen is None else result.seen
        for record in page.records:
            key = hash(self._record_id(record, page))
            if key in seen:
                result.repeated_ids += 1
                continue
            seen.add(key)
            result.distinct += 1
            if seen is emitted or key not in emitted:
                emitted.add(key)
                yield record

    def _record_id(self, record: dict, page: Page) -> str:
        for name in ("id", *self.id_aliases):
            value = record.get(name)
            if value not in (None, ""):
                return str(value)
        msg = (
            f"GET {self.path} (page {page.number}) returned a record without an 'id'"
            f"{' or ' + repr(self.id_aliases[0]) if self.id_aliases else ''}; it cannot be "
            "deduplicated or merged, so the tap stops rather than load it. Report the "
            "response to Maesn support."
        )
        raise MaesnAPIError(msg)

    def _log_progress(self, page: Page) -> None:
        run = self._current_run
        of_pages = f" of {page.total_pages}" if page.total_pages else ""
        self.logger.info(
            "%s: %d records so far, page %d%s (pass %d), %d retries",
            self.name,
            run.emitted,
            page.number,
            of_pages,
            run.passes,
            run.retry_count,
        )

    def _log_summary(self) -> None:
        run = self._current_run
        issues = self._shape_issues
        if issues.unknown_fields:
            self.logger.warning(
                "%s: fields not in the tap's schema were dropped: %s. A newer "
                "tap-maesn-qonto may know them.",
                self.name,
                ", ".join(sorted(issues.unknown_fields)),
            )
        for path, count in sorted(issues.unreadable.items()):
            self.logger.warning(
                "%s: %d value(s) of %s could not be read as the schema's type and were "
                "emitted as null.",
                self.name,
                count,
                path,
            )
        self.logger.info(
            "%s: sync summary: %d records emitted (%d older than the start dropped), "
            "%d pages, %d passes, %d retries, %.2f s",
            self.name,
            run.emitted,
            run.dropped_older,
            run.pages,
            run.passes,
            run.retry_count,
            time.monotonic() - run.started,
        )

    # --- records --------------------------------------------------------------------

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Shape a record to the schema; drop it if it is older than the start."""
        del context
        run = self._current_run
        for alias in self.id_aliases:  # accept either name, emit both
            if row.get("id") is None:
                row["id"] = row.get(alias)
            if row.get(alias) is None:
                row[alias] = row["id"]
        # Set before shaping: the record then has exactly the schema's keys (the fast path).
        row["target_system"] = self.target_system
        row["account_label"] = self.config["account_label"]
        record = self._shaper.shape(row)
        updated = record["updatedDate"]
        if updated is not None and run.since_text is not None and updated < run.since_text:
            # The server should have filtered this out; some target systems ignore
            # lastModifiedAt, so the boundary is enforced here too.
            run.dropped_older += 1
            return None
        created = record["createdDate"]
        if run.current_pass and created is not None and created >= run.current_pass.started_text:
            run.current_pass.created_during_pass += 1
        run.emitted += 1
        return record
