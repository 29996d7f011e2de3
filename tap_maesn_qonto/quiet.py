"""Drop the SDK's log lines that say nothing a user can act on.

A run's log should read as a story: what it does, progress, one summary per
stream, one line per problem. Three SDK lines break that: a warning for every
record without ``updatedDate`` (the stream summary counts those instead),
"An unhandled error occurred while syncing …" before the tap's own one-line
error, which already names the stream and what to do, and "Starting incremental
sync of … with bookmark value" once per account and stream, naming no account.
"""

from __future__ import annotations

import logging

from tap_maesn_qonto.redaction import every_handler

NOISE = (
    "New replication value is null",
    "An unhandled error occurred while syncing",
    # Once per account and stream, without the account: the tap's own summary says it.
    "Starting incremental sync of",
)


class NoiseFilter(logging.Filter):
    """Filters out the SDK messages in :data:`NOISE`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return not message.startswith(NOISE)


def install() -> None:
    """Attach one :class:`NoiseFilter` to every handler known to the logging system."""
    noise = NoiseFilter()
    for handler in every_handler():
        if not any(isinstance(f, NoiseFilter) for f in handler.filters):
            handler.addFilter(noise)
