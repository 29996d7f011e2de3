"""Check a state before resuming from it, so a bad one can never skip data.

State reaches the tap from files, Meltano's state backend or an orchestrator, and
is sometimes edited by hand. A bookmark in an odd timestamp form is normalized
(string comparison of mixed forms corrupts bookmarks); one that cannot be read, or
that lies in the future (which would silently skip every record until then), stops
the tap with a message saying which stream and what to do.

The tap keeps one state partition per account (``bookmarks.<stream>.partitions[]``
with ``context = {"account_label": …}``). A state in another shape must not be
ignored silently, which would re-read everything: a plain stream bookmark (hand
written, or from an older layout) is moved into the configured account's partition,
and bookmarks kept only under other account labels (a renamed ``account_label``) are
named in a warning.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import typing as t
from collections import defaultdict

from tap_maesn_qonto.errors import InvalidStateError
from tap_maesn_qonto.timestamps import format_timestamp, parse_timestamp, utc_now

# A bookmark may be ahead of this machine's clock by Maesn's clock skew, not more.
FUTURE_TOLERANCE = dt.timedelta(hours=1)
#: The keys of a bookmark, in a partition or (older layout) directly under the stream.
BOOKMARK_KEYS = ("replication_key", "replication_key_value")

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


def _partitions(stream: str, stream_state: t.Any) -> list[dict]:
    if not isinstance(stream_state, dict):
        msg = f"The state for stream '{stream}' is not an object. {_FIX}"
        raise InvalidStateError(msg)
    partitions = stream_state.get("partitions", [])
    if not isinstance(partitions, list) or not all(
        isinstance(p, dict) and isinstance(p.get("context"), dict) for p in partitions
    ):
        msg = f"The state's partitions for stream '{stream}' are malformed. {_FIX}"
        raise InvalidStateError(msg)
    contexts = [_context_key(p["context"]) for p in partitions]
    if duplicate := next((c for c in contexts if contexts.count(c) > 1), None):
        msg = f"The state for stream '{stream}' has two partitions for context {duplicate}. {_FIX}"
        raise InvalidStateError(msg)
    return partitions


def _context_key(context: dict) -> str:
    return json.dumps(context, sort_keys=True, default=str)


def _has_bookmark(entry: dict) -> bool:
    return entry.get("replication_key_value") is not None


def _partition_of(partitions: list[dict], label: str) -> dict | None:
    # The SDK matches a partition by equality of its whole context.
    return next((p for p in partitions if p["context"] == {"account_label": label}), None)


def _label_of(context: dict) -> str:
    if context.keys() == {"account_label"}:
        return repr(context["account_label"])
    return _context_key(context)


def _quoted(labels: t.Iterable[str]) -> str:
    return ", ".join(repr(label) for label in labels)


class _Findings:
    """What the checks of every stream found, logged as one line per kind."""

    def __init__(self) -> None:
        self.migrated: list[str] = []
        self.ambiguous: list[str] = []
        self.orphaned: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = defaultdict(list)

    def log(self, logger: logging.Logger, labels: tuple[str, ...]) -> None:
        if self.migrated:
            logger.info(
                "The state keeps the bookmark of %s directly under the stream (a hand-written "
                "state or an older layout); it was moved into the partition of account_label "
                "%r, and the run resumes from it.",
                ", ".join(self.migrated),
                labels[0],
            )
        if self.ambiguous:
            logger.warning(
                "The state keeps the bookmark of %s directly under the stream, without an "
                "account partition; with several account labels configured (%s) it cannot "
                "be given to one, so it is not used.",
                ", ".join(self.ambiguous),
                _quoted(labels),
            )
        for (found, missing), streams in self.orphaned.items():
            logger.warning(
                "The state has bookmarks of %s for account_label %s but none for the "
                "configured account_label %s: everything for %s will be read from "
                "start_date. If the account was renamed, set account_label back, or rename "
                "the label in the state's partition contexts, to resume instead.",
                ", ".join(streams),
                ", ".join(found),
                _quoted(missing),
                _quoted(missing),
            )


def _check_partitions(
    stream: str, stream_state: dict, labels: tuple[str, ...], findings: _Findings
) -> None:
    partitions = _partitions(stream, stream_state)
    for entry in (stream_state, *partitions):
        _check_bookmark(stream, entry)
    if _has_bookmark(stream_state):
        if len(labels) == 1:
            own = _partition_of(partitions, labels[0])
            if own is None:
                own = {"context": {"account_label": labels[0]}}
                partitions.append(own)
                stream_state["partitions"] = partitions
            if not _has_bookmark(own):
                for key in BOOKMARK_KEYS:
                    if key in stream_state:
                        own[key] = stream_state.pop(key)
                findings.migrated.append(stream)
        elif labels:
            findings.ambiguous.append(stream)
    missing = tuple(
        label
        for label in labels
        if not _has_bookmark(_partition_of(partitions, label) or {})  # no bookmark of its own
    )
    configured = [{"account_label": label} for label in labels]
    found = tuple(
        _label_of(p["context"])
        for p in partitions
        if _has_bookmark(p) and p["context"] not in configured
    )
    if missing and found:
        findings.orphaned[found, missing].append(stream)


def check_state(
    state: t.Any,
    stream_names: set[str],
    logger: logging.Logger,
    *,
    account_labels: t.Iterable[str],
) -> dict:
    """Return the state with bookmarks normalized, or raise :class:`InvalidStateError`.

    Args:
        state: The state as given to the tap.
        stream_names: The tap's streams; bookmarks of other streams are dropped.
        logger: Where to say what was migrated or will be re-read.
        account_labels: The account labels this run syncs (each one partition). A plain
            stream bookmark is moved into the partition only when there is exactly one.
    """
    labels = (account_labels,) if isinstance(account_labels, str) else tuple(account_labels)
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
    findings = _Findings()
    for stream in sorted(set(bookmarks) & stream_names):
        _check_partitions(stream, bookmarks[stream], labels, findings)
    findings.log(logger, labels)
    return {**state, "bookmarks": {k: v for k, v in bookmarks.items() if k in stream_names}}
