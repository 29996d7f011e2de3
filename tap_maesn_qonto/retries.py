"""How long to wait before retrying a request, and when to stop retrying.

fetch.py sends a request again while :meth:`RetryPolicy.waits` lets it: the
generator does the waiting itself, on the run's stop event, so a SIGTERM ends a retry
wait at once instead of after a minute-long ``Retry-After``. It also enforces what
``backoff`` cannot express: a total time budget, a small budget for 4xx answers
that are known to be transient, and a fast failure when nothing listens at
``api_url`` at all.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
import typing as t
from dataclasses import dataclass

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_maesn_qonto.errors import MaesnAPIError, TransientClientError, WrongApiUrlError
from tap_maesn_qonto.transport import retry_after_seconds

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from tap_maesn_qonto.runtime import RunContext

RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 30.0
#: A 4xx mid-stream (404, 422 ...) is retried this often before it is fatal.
CLIENT_ERROR_RETRIES = 3
#: Nothing listening at api_url before any answer: retried this often, quickly.
UNREACHABLE_RETRIES = 2
#: What a request may raise that is worth sending again.
RETRIABLE = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _refused(exception: BaseException) -> bool:
    """A connection refused (nothing listens), as opposed to a reset or timeout."""
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__ or _wrapped_reason(current)
    return "Connection refused" in str(exception)


def _wrapped_reason(exception: BaseException) -> BaseException | None:
    reason = getattr(exception, "reason", None)  # urllib3's MaxRetryError
    return reason if isinstance(reason, BaseException) else None


def describe_failure(exception: BaseException) -> str:
    """The last error of a request, in a few words (no URL, no secret)."""
    response = getattr(exception, "response", None)
    if isinstance(response, requests.Response):
        if response.status_code < 400:  # an unusable 200: the exception says why
            return str(exception)
        return f"HTTP {response.status_code} {response.reason}"
    if _refused(exception):
        return "connection refused"
    if isinstance(exception, requests.exceptions.Timeout):
        return f"{type(exception).__name__} (no answer within request_timeout)"
    return type(exception).__name__


@dataclass
class RetryPolicy:
    """The limits of one run's retries, from the settings."""

    max_retries: int
    max_retry_seconds: float

    def waits(
        self,
        run: RunContext,
        name: str,
        where: Callable[[], str],
        logger: logging.Logger | logging.LoggerAdapter,
    ) -> Generator[float, BaseException, None]:
        """A ``backoff`` wait generator: wait (on the stop event), then yield 0.

        Raises:
            MaesnAPIError: when a budget is spent, saying how many attempts were made.
            SyncInterruptedError: when the run is stopped while waiting.
        """
        started = time.monotonic()
        client_errors = 0
        exception = yield 0.0  # primed by backoff with None
        for attempt in itertools.count(1):
            run.raise_if_stopped()
            if attempt > self.max_retries:
                raise self._gave_up(where(), attempt, started, exception) from None
            if isinstance(exception, TransientClientError):
                client_errors += 1
                if client_errors > CLIENT_ERROR_RETRIES:
                    raise self._gave_up(where(), attempt, started, exception) from None
            if not run.reached_api and _refused(exception) and attempt > UNREACHABLE_RETRIES:
                msg = (
                    f"Nothing answered at api_url ({run.api_url}): connection refused "
                    f"{attempt} times. Check api_url and the network (is a proxy or the "
                    "emulator meant to be running?)."
                )
                raise WrongApiUrlError(msg) from None
            response = getattr(exception, "response", None)
            asked = retry_after_seconds(
                response if isinstance(response, requests.Response) else None
            )
            if asked is not None:
                wait = asked
                run.throttle.pause(wait)  # every worker holds, not only this one
            elif not run.reached_api and _refused(exception):
                wait = RETRY_BASE_SECONDS * attempt
            else:
                # Exponential backoff with "equal jitter": never less than half the step.
                step = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))
                wait = step / 2 + random.uniform(0, step / 2)  # noqa: S311 - not crypto
            if time.monotonic() - started + wait > self.max_retry_seconds:
                raise self._gave_up(where(), attempt, started, exception) from None
            logger.warning(
                "%s: %s on %s; retry %d in %.1f s",
                name,
                describe_failure(exception),
                where(),
                attempt,
                wait,
            )
            if run.stop.wait(wait):
                run.raise_if_stopped()
            exception = yield 0.0

    def _gave_up(
        self, where: str, attempts: int, started: float, exception: BaseException
    ) -> MaesnAPIError:
        return gave_up(where, attempts, time.monotonic() - started, exception)


def gave_up(where: str, attempts: int, elapsed: float, exception: BaseException) -> MaesnAPIError:
    """The one line for a request that failed every attempt."""
    return MaesnAPIError(
        f"{where} still failed after {attempts} attempts over {elapsed:.0f} s; last error: "
        f"{describe_failure(exception)}. Maesn or Qonto is unavailable or rate-limiting: "
        "re-run later (the state emitted so far is safe to resume from), or raise "
        "max_retries / max_retry_seconds."
    )
