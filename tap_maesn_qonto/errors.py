"""Errors that end the tap with one readable line, and the exit code of each.

| code | meaning |
|------|---------|
| 0    | every selected record was read |
| 1    | failed: a setting, a key, or Maesn/Qonto (after retries); read it, fix it, run again |
| 2    | the command line itself is wrong (Click's usage error) |
| 3    | finished, but records may be missing: data changed faster than it could be read
         consistently; the state is held where nothing was skipped, so the next run reads
         that window again |
| 130  | interrupted by SIGINT; the state emitted is safe to resume from |
| 143  | interrupted by SIGTERM; likewise |
"""

from __future__ import annotations

import enum
import typing as t

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

if t.TYPE_CHECKING:
    import requests


class ExitCode(enum.IntEnum):
    """The tap's exit codes (the README's table)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    INCOMPLETE = 3
    INTERRUPTED_SIGINT = 130
    INTERRUPTED_SIGTERM = 143


class TapStopError(Exception):
    """A failure the user can act on; its message says what is wrong and what to do.

    The CLI prints the message as one line and exits with :attr:`exit_code`; the
    traceback is logged only at debug level.
    """

    exit_code: ExitCode = ExitCode.FAILED


class MaesnAPIError(TapStopError, FatalAPIError):
    """Maesn answered in a way the tap cannot continue from."""


class AuthError(MaesnAPIError):
    """Maesn rejected a key (401/403)."""


class WrongApiUrlError(MaesnAPIError):
    """Whatever answers at api_url is not the Maesn API."""


class EndpointMissingError(MaesnAPIError):
    """A read's first request kept answering Maesn's 404/405: the endpoint is not there."""


class RecordGoneError(Exception):
    """A record's detail answered 404: it was deleted since it was listed."""


class EndOfDataError(Exception):
    """A 4xx past the last page: there is nothing more to read (Qonto answers 422)."""


class ClientError(FatalAPIError):
    """A 4xx other than 401/403/429, before the pager knows where in the stream it stands."""

    def __init__(
        self,
        message: str,
        response: requests.Response,
        *,
        maesn_body: bool,
        route_missing: bool,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.response = response
        self.status = response.status_code
        #: The body is Maesn's JSON error (not an HTML page or a foreign server's body).
        self.maesn_body = maesn_body
        #: The body says the route itself does not exist ("Cannot GET /v1/...").
        self.route_missing = route_missing


class TransientClientError(RetriableAPIError):
    """A 4xx taken as passing: retried a few times, then fatal."""

    def __init__(
        self, message: str, response: requests.Response, *, endpoint_missing: bool = False
    ) -> None:
        super().__init__(message, response)
        self.message = message
        #: A 404/405 on a read's first request: if it persists, the endpoint is missing.
        self.endpoint_missing = endpoint_missing


class InvalidStateError(TapStopError):
    """The state passed to the tap cannot be resumed from safely."""


class InvalidConfigError(TapStopError):
    """A setting is missing or has the wrong shape."""


class ReadsFailedError(TapStopError):
    """Some (stream, account) reads failed; every other one was read and its state emitted."""


class IncompleteSyncError(TapStopError):
    """Every stream finished, but some may have missed records (see the warnings)."""

    exit_code = ExitCode.INCOMPLETE


class SyncInterruptedError(TapStopError):
    """SIGINT or SIGTERM arrived; the state emitted is safe to resume from."""

    def __init__(self, signal_name: str, exit_code: ExitCode) -> None:
        super().__init__(
            f"Stopped by {signal_name}. The last state emitted is safe to resume from: the "
            "next run resumes each stream from its last bookmark (a whole-list read that "
            "was cut short, as on a first run, starts over)."
        )
        self.exit_code = exit_code
