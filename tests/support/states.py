"""Singer states as the tap's users hand them in: plain, or one partition per account."""

from __future__ import annotations

import typing as t

from tests.support.configs import STREAM_RESOURCES


def plain_state(value: str, streams: t.Iterable[str] = STREAM_RESOURCES) -> dict[str, t.Any]:
    """A bookmark under each stream itself (no partitions): an older layout."""
    return {
        "bookmarks": {
            stream: {"replication_key": "updatedDate", "replication_key_value": value}
            for stream in streams
        }
    }


def partitioned(label: str, value: str) -> dict[str, t.Any]:
    """One account's partition with a bookmark."""
    return {
        "context": {"account_label": label},
        "replication_key": "updatedDate",
        "replication_key_value": value,
    }
