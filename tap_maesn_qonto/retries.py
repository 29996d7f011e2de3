"""How long to wait before retrying a request, and when to stop retrying.

fetch.py sends a request again while :meth:`RetryPolicy.waits` lets it: the
generator does the waiting itself, on the run's stop event, so a SIGTERM ends a retry
wait at once instead of after a minute-long ``Retry-After``. It also enforces what
``backoff`` cannot express: a total time budget, a small budget for 4xx answers
that are known to be transient, and a fast failure when ``api_url`` is wrong: nothing
listens there, its host name does not resolve, or TLS with it fails (a plain HTTP
port, an untrusted certificate). Those last are named, not blamed on Maesn.
"""

from __future__ import annotations

import itertools
import logging
import random
import socket
import ssl
import time
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from singer_sdk.exceptions import RetriableAPIError
from urllib3.exceptions import NameResolutionError

from tap_maesn_qonto.errors import MaesnAPIError, TransientClientError, WrongApiUrlError
from tap_maesn_qonto.transport import retry_after_seconds

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

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
#: api_url's host name does not resolve, or TLS with it fails, before any answer: tried
#: this often in all (a second try rules out a blip), then the run stops naming the cause.
MISCONFIGURED_ATTEMPTS = 2
#: OpenSSL's reasons when what came back is not TLS at all (https:// to a plain HTTP port).
_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
    }
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


def _chain(exception: BaseException) -> Iterator[BaseException]:
    """``exception`` and every one it wraps (cause, context, urllib3's reason), once each."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exception]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__, _wrapped_reason(current)]


@dataclass(frozen=True)
class NetworkCause:
    """Why a request got no answer, when that is name resolution or TLS."""

    #: "dns", "not_tls" (the server does not speak TLS), "certificate" or "tls".
    kind: str
    #: What the resolver or OpenSSL said, e.g. "self-signed certificate".
    detail: str

    def words(self) -> str:
        """A few words for a log line or the final error (no URL, no secret)."""
        return {
            "dns": f"name resolution failed ({self.detail})",
            "not_tls": f"TLS handshake failed: the server does not speak TLS ({self.detail})",
            "certificate": f"the server's certificate is not trusted ({self.detail})",
        }.get(self.kind, f"TLS handshake failed ({self.detail})")


def network_cause(exception: BaseException) -> NetworkCause | None:
    """Name resolution or TLS, if that is why ``exception`` (a failed request) happened."""
    for current in _chain(exception):
        if isinstance(current, ssl.SSLCertVerificationError):
            detail = current.verify_message or current.reason or "certificate verify failed"
            return NetworkCause("certificate", str(detail).rstrip("."))
        if isinstance(current, ssl.SSLError):
            reason = current.reason or current.strerror or type(current).__name__
            kind = "not_tls" if current.reason in _NOT_TLS_REASONS else "tls"
            return NetworkCause(kind, str(reason))
        if isinstance(current, socket.gaierror):
            return NetworkCause("dns", str(current.strerror or current))
    for current in _chain(exception):  # urllib3's own, should it ever come without gaierror
        if isinstance(current, NameResolutionError):
            return NetworkCause("dns", "the host name does not resolve")
    return None


def _without_userinfo(url: str) -> str:
    """``url`` without any user:password@ (never shown)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def misconfigured(api_url: str, cause: NetworkCause, attempts: int) -> WrongApiUrlError:
    """The one line for api_url failing in name resolution or TLS before any answer."""
    url = _without_userinfo(api_url)
    host = urlsplit(api_url).hostname or url
    if cause.kind == "dns":
        msg = (
            f"api_url ({url}): the host name {host} does not resolve (name resolution "
            f"failed {attempts} times: {cause.detail}). Check api_url and the DNS or "
            "proxy settings."
        )
    elif cause.kind == "not_tls":
        msg = (
            f"TLS handshake with api_url ({url}) failed {attempts} times: the server does "
            f"not speak TLS ({cause.detail}). Is it an http:// server? Then api_url must "
            "start with http:// (Maesn itself is https://)."
        )
    elif cause.kind == "certificate" and "mismatch" in cause.detail.lower():  # host or IP
        msg = (
            f"api_url ({url}): the server's certificate is not valid for {host} "
            f"({cause.detail}; {attempts} attempts). Check the host name in api_url."
        )
    elif cause.kind == "certificate":
        msg = (
            f"api_url ({url}): the server's certificate is not trusted ({cause.detail}; "
            f"{attempts} attempts). If a proxy or a private CA signs it, set "
            "REQUESTS_CA_BUNDLE to that CA's certificate file (PEM); otherwise check api_url."
        )
    else:
        msg = (
            f"TLS handshake with api_url ({url}) failed {attempts} times ({cause.detail}). "
            "Check api_url (is it an http:// server?) and any proxy or firewall in between."
        )
    return WrongApiUrlError(msg)


def describe_failure(exception: BaseException) -> str:
    """The last error of a request, in a few words (no URL, no secret)."""
    response = getattr(exception, "response", None)
    if isinstance(response, requests.Response):
        if response.status_code < 400:  # an unusable 200: the exception says why
            return str(exception)
        return f"HTTP {response.status_code} {response.reason}"
    if _refused(exception):
        return "connection refused"
    if cause := network_cause(exception):
        return cause.words()
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
                    f"Nothing answered at api_url ({_without_userinfo(run.api_url)}): "
                    f"connection refused {attempt} times. Check api_url and the network (is "
                    "a proxy or the emulator meant to be running?)."
                )
                raise WrongApiUrlError(msg) from None
            # A wrong host name or scheme, or an untrusted certificate: a second failure
            # before the API ever answered is a setting to fix, not a server to wait for.
            # Once it has answered, the same errors are blips and have the whole budget.
            cause = None if run.reached_api else network_cause(exception)
            if cause is not None and attempt >= MISCONFIGURED_ATTEMPTS:
                raise misconfigured(run.api_url, cause, attempt) from None
            response = getattr(exception, "response", None)
            asked = retry_after_seconds(
                response if isinstance(response, requests.Response) else None
            )
            if asked is not None:
                wait = asked
            elif not run.reached_api and (cause is not None or _refused(exception)):
                wait = RETRY_BASE_SECONDS * attempt
            else:
                # Exponential backoff with "equal jitter": never less than half the step.
                step = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))
                wait = step / 2 + random.uniform(0, step / 2)  # noqa: S311 - not crypto
            if time.monotonic() - started + wait > self.max_retry_seconds:
                raise self._gave_up(where(), attempt, started, exception) from None
            if asked is not None:
                run.throttle.pause(wait)  # every worker holds, not only this one
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
    blame = (
        "The network between here and api_url failed (check DNS, proxy and certificates)"
        if network_cause(exception)
        else "Maesn or Qonto is unavailable or rate-limiting"
    )
    return MaesnAPIError(
        f"{where} still failed after {attempts} attempts over {elapsed:.0f} s; last error: "
        f"{describe_failure(exception)}. {blame}: re-run later (the state emitted so far "
        "is safe to resume from), or raise max_retries / max_retry_seconds."
    )
