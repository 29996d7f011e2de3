"""What many tests ask of a run: the data sets they build, and one clear error line."""

from __future__ import annotations

import re
import subprocess
import typing as t
from collections import Counter

from tap_maesn_qonto.timestamps import normalize_timestamp
from tests.support.configs import ACCOUNT_KEY, API_KEY, STREAM_RESOURCES
from tests.support.tap import parse_messages

if t.TYPE_CHECKING:
    from tap_maesn_qonto.emulator import Emulator
    from tests.support.tap import SyncResult

KEYS = (API_KEY, ACCOUNT_KEY)
ERROR_LEVEL = re.compile(r"\| (ERROR|CRITICAL) +\|")
#: The SDK's own notice that a stream's sync failed: it names no cause, so not counted.
SDK_NOTICE = "An unhandled error occurred while syncing"
ONLY_INVOICES = {"invoices": 0, "bills": 0, "bookingProposals": 0}


def counts(n: int) -> dict[str, int]:
    """``n`` records of each resource."""
    return dict.fromkeys(STREAM_RESOURCES.values(), n)


def invoices(n: int) -> dict[str, int]:
    """``n`` invoices and nothing else."""
    return {**ONLY_INVOICES, "invoices": n}


def whole_list(config: dict[str, t.Any]) -> dict[str, t.Any]:
    """The config without start_date: a first run reads the whole list by page number."""
    config.pop("start_date")
    return config


@t.overload
def utc(value: str) -> str: ...


@t.overload
def utc(value: None) -> None: ...


def utc(value: str | None) -> str | None:
    """A timestamp in the tap's one UTC form."""
    return None if value is None else normalize_timestamp(value)


def bookmark_value(state: dict[str, t.Any], stream: str) -> str | None:
    """The single partition's bookmark of ``stream`` (None: none)."""
    partitions = state.get("bookmarks", {}).get(stream, {}).get("partitions", [])
    values = [p["replication_key_value"] for p in partitions if "replication_key_value" in p]
    assert len(values) <= 1, partitions
    return values[0] if values else None


def assert_one_clear_error(stderr: str, *phrases: str) -> None:
    """One readable error line, no traceback, and it says what it must."""
    assert "Traceback" not in stderr, stderr
    error_lines = [
        line for line in stderr.splitlines() if ERROR_LEVEL.search(line) and SDK_NOTICE not in line
    ]
    assert len(error_lines) == 1, stderr
    for phrase in phrases:
        assert phrase in error_lines[0], f"{phrase!r} not in:\n{error_lines[0]}"


def assert_no_key_leaked(*texts: str) -> None:
    for text in texts:
        for key in KEYS:
            assert key not in text, "a key reached the output"


def assert_a_clean_run_read_every_id(
    result: subprocess.CompletedProcess[str], truth: dict[str, set[str]]
) -> None:
    """Exit 0, no traceback, no key in the output, and every stream's ids equal the truth."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert_no_key_leaked(result.stdout, result.stderr)
    messages = parse_messages(result.stdout)
    for stream, ids in truth.items():
        assert set(messages.ids(stream)) == ids


#: Each parent stream's line-item stream and the column holding the parent's id.
LINE_STREAMS = {
    "invoices": ("invoice_line_items", "invoice_id"),
    "bills": ("bill_line_items", "bill_id"),
    "booking_proposals": ("booking_proposal_line_items", "booking_proposal_id"),
}


def expected_lines(emulator: Emulator, stream: str) -> Counter[tuple[str, int]]:
    """The (parent id, position) of every line the emulator holds for ``stream``."""
    truth = emulator.truth(STREAM_RESOURCES[stream])
    return Counter(
        (record_id, position)
        for record_id, record in truth.items()
        for position in range(1, len(record.get("lineItems") or []) + 1)
    )


def lines_written(result: SyncResult, stream: str) -> Counter[tuple[str, int]]:
    """The (parent id, position) of every line row the run wrote for ``stream``."""
    name, key = LINE_STREAMS[stream]
    return Counter((row[key], row["position"]) for row in result.records(name))
