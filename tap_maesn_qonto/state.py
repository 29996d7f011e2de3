"""Check a state before resuming from it, so a bad one can never skip data.

State reaches the tap from files, Meltano's state backend or an orchestrator, and
is sometimes edited by hand. A bookmark in an odd timestamp form is normalized
(string comparison of mixed forms corrupts bookmarks); one that cannot be read, or
that lies in the future (which would silently skip every record until then), stops
the tap with a message saying which stream and what to do.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import typing as t

from tap_maesn_qonto.errors import InvalidStateError
from tap_maesn_qonto.timestamps import format_timestamp, parse_timestamp, utc_now

# A bookmark may be ahead of this machine's clock by Maesn's clock skew, not more.
FUTURE_TOLERANCE = dt.timedelta(hours=1)

_FIX = (
    "Fix or clear the state (`meltano state clear <state id>`, or delete the state "
    "file) to re-read from start_date."
)


def _check_bookmark(stream: str, entry: dict) -> None:
    value = entry.get("replication_key_value")
    if value is None:
        return
    try:
        moment = parse_timestamp(str(value))
    except ValueError:
        msg = f"The state's bookmark for stream '{stream}' ({value!r}) is not a timestamp. {_FIX}"
        raise InvalidStateError(msg) from None
    if moment > utc_now() + FUTURE_TOLERANCE:
        msg = (
            f"The state's bookmark for stream '{stream}' ({value}) is in the future, so "
            f"every record until then would be skipped. {_FIX}"
        )
        raise InvalidStateError(msg)
    entry["replication_key_value"] = format_timestamp(moment)


def _bookmark_entries(stream: str, stream_state: t.Any) -> list[dict]:
    if not isinstance(stream_state, dict):
        msg = f"The state for stream '{stream}' is not an object. {_FIX}"
        raise InvalidStateError(msg)
    partitions = stream_state.get("partitions", [])
    if not isinstance(partitions, list) or not all(
        isinstance(p, dict) and isinstance(p.get("context", {}), dict) for p in partitions
    ):
        msg = f"The state's partitions for stream '{stream}' are malformed. {_FIX}"
        raise InvalidStateError(msg)
    return [stream_state, *partitions]


def check_state(state: t.Any, stream_names: set[str], logger: logging.Logger) -> dict:
    """Return the state with bookmarks normalized, or raise :class:`InvalidStateError`."""
    state = copy.deepcopy(state)  # never edit the caller's dict
    if not isinstance(state, dict):
        msg = f"The state is not a JSON object (got {type(state).__name__}). {_FIX}"
        raise InvalidStateError(msg)
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        msg = f"The state's 'bookmarks' is not an object. {_FIX}"
        raise InvalidStateError(msg)
    foreign = sorted(set(bookmarks) - stream_names)
    if foreign:
        logger.warning(
            "The state has bookmarks for streams this tap does not have (%s); they are "
            "ignored. Is it another tap's state?",
            ", ".join(foreign),
        )
    for stream in sorted(set(bookmarks) & stream_names):
        for entry in _bookmark_entries(stream, bookmarks[stream]):
            _check_bookmark(stream, entry)
    return {**state, "bookmarks": {k: v for k, v in bookmarks.items() if k in stream_names}}
