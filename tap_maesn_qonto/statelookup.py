"""Partition state found by an index, not by a scan of every account's partition.

The SDK's stream state manager finds a partition's state dict by scanning the stream's
list of partitions, and it does so for every record (``increment_state``). With one
partition per account that is quadratic in accounts: at 1 000 accounts, the scans were
the largest single cost of a run (``scripts/benchmark_accounts.py``), and at 10 000
they would dominate it.

:func:`index_partition_lookups` gives one manager an index of the dicts its own lookup
returned, keyed by the partition context, checked against the partition list it came
from (a state replaced as a whole is looked up afresh). It changes no state: the dicts
are the SDK's, found by the SDK the first time.

This replaces a method on the SDK's manager object, the one place the tap reaches into
it; tests/test_sdk_contract.py fails if the SDK stops looking partitions up through
that method, and checks that a run's state is the same either way.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from singer_sdk.helpers.types import Context


def index_partition_lookups(manager: t.Any) -> None:
    """Make ``manager.get_context_state`` a dictionary lookup after each context's first."""
    if getattr(manager, "indexed_partition_lookups", False):
        return
    find: Callable[[Context | None], dict] = manager.get_context_state  # the SDK's own
    found: dict[tuple, tuple[list | None, dict]] = {}

    def partitions() -> list | None:
        bookmarks = manager.tap_state.get("bookmarks") or {}
        return (bookmarks.get(manager.stream_name) or {}).get("partitions")

    def get_context_state(context: Context | None) -> dict:
        if not context:
            return find(context)
        key = tuple(sorted(context.items()))
        current = partitions()
        hit = found.get(key)
        if hit is not None and hit[0] is current:
            return hit[1]
        state = find(context)
        found[key] = (partitions(), state)  # the list may have been created just now
        return state

    manager.get_context_state = get_context_state
    manager.indexed_partition_lookups = True
