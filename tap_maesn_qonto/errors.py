"""Errors that stop the tap with one readable line instead of a traceback."""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError


class TapStopError(Exception):
    """A failure the user can act on; its message says what is wrong and what to do.

    The CLI prints the message as one line and exits non-zero; the traceback is
    logged only at debug level.
    """


class MaesnAPIError(TapStopError, FatalAPIError):
    """Maesn answered in a way the tap cannot continue from."""


class EndpointUnavailableError(MaesnAPIError):
    """The endpoint does not exist for this target system (404/405): skip the stream."""


class InvalidStateError(TapStopError):
    """The state passed to the tap cannot be resumed from safely."""


class InvalidConfigError(TapStopError):
    """A setting is missing or has the wrong shape."""
