"""The state a run starts from, in a real sync: a leap-second bookmark, a start date
before year 1, a plain stream bookmark moved into the account partition, a partition
bookmark that wins, bookmarks left under another account label.

check_state itself: tests/unit/test_state.py; a state file given on the command line:
tests/cli/test_inputs.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t

import pytest

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.timestamps import format_timestamp, parse_timestamp
from tests.support.configs import STREAM_RESOURCES, tap_config
from tests.support.states import partitioned, plain_state
from tests.support.tap import bookmark, sync

COUNT = 12
COUNTS = dict.fromkeys(STREAM_RESOURCES.values(), COUNT)


def _sorted_moments(emulator: Emulator, resource: str) -> list[dt.datetime]:
    return sorted(
        parse_timestamp(r["updatedDate"])
        for r in emulator.truth(resource).values()
        if r.get("updatedDate")
    )


def test_a_leap_second_bookmark_is_resumed_from_the_next_second() -> None:
    leap = {
        "bookmarks": {
            stream: {"partitions": [partitioned("default", "2025-06-30T23:59:60Z")]}
            for stream in STREAM_RESOURCES
        }
    }
    with Emulator(counts=COUNTS) as emulator:
        resumed = sync(tap_config(emulator, lookback_window=0), state=leap)
    for stream in STREAM_RESOURCES:
        records = resumed.records(stream)
        assert len(records) < COUNT, "the leap-second bookmark was not used"
        assert all(
            r["updatedDate"] >= "2025-07-01T00:00:00.000000Z" for r in records if r["updatedDate"]
        )


def test_a_start_date_before_year_1_in_utc_reads_everything() -> None:
    with Emulator(counts=COUNTS) as emulator:
        result = sync(tap_config(emulator, start_date="0001-01-01T00:00:00+01:00"))
    for stream in STREAM_RESOURCES:
        assert len(result.records(stream)) == COUNT


# --- 5. state in another shape --------------------------------------------------------


def _middle(emulator: Emulator) -> str:
    """A bookmark with records on both sides of it in every stream."""
    moments = sorted(m for r in STREAM_RESOURCES.values() for m in _sorted_moments(emulator, r))
    return format_timestamp(moments[len(moments) // 2].replace(microsecond=0))


def _messages(caplog: pytest.LogCaptureFixture, level: int, phrase: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == level and phrase in r.getMessage()
    ]


@pytest.mark.parametrize("label", [None, "acme"])
def test_a_plain_stream_bookmark_is_moved_into_the_account_partition(
    caplog: pytest.LogCaptureFixture, label: str | None
) -> None:
    caplog.set_level(logging.INFO)
    overrides: dict[str, t.Any] = {"lookback_window": 0}
    if label is not None:
        overrides["account_label"] = label
    with Emulator(counts=COUNTS) as emulator:
        mark = _middle(emulator)
        result = sync(tap_config(emulator, **overrides), state=plain_state(mark))
    moved = _messages(caplog, logging.INFO, "directly under the stream")
    assert len(moved) == 1, caplog.text
    assert repr(label or "default") in moved[0]
    total = 0
    for stream in STREAM_RESOURCES:
        records = result.records(stream)
        total += len(records)
        assert all(r["updatedDate"] >= mark for r in records if r["updatedDate"]), stream
        stream_state = result.final_state["bookmarks"][stream]
        assert "replication_key_value" not in stream_state, "the plain bookmark stayed"
        assert bookmark(result.final_state, stream)["context"] == {
            "account_label": label or "default"
        }
    assert total < COUNT * len(STREAM_RESOURCES), "the plain bookmark was ignored"


def test_a_partition_bookmark_wins_over_a_plain_one(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with Emulator(counts=COUNTS) as emulator:
        mark = _middle(emulator)
        state = plain_state("2020-01-01T00:00:00Z")
        for stream_state in state["bookmarks"].values():
            stream_state["partitions"] = [partitioned("default", mark)]
        result = sync(tap_config(emulator, lookback_window=0), state=state)
    assert not _messages(caplog, logging.INFO, "directly under the stream")
    for stream in STREAM_RESOURCES:
        assert all(r["updatedDate"] >= mark for r in result.records(stream) if r["updatedDate"])


def test_bookmarks_only_under_another_account_label_are_named_in_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with Emulator(counts=COUNTS) as emulator:
        mark = _middle(emulator)
        state = {
            "bookmarks": {
                stream: {"partitions": [partitioned("old-name", mark)]}
                for stream in STREAM_RESOURCES
            }
        }
        result = sync(tap_config(emulator, account_label="new-name"), state=state)
    warnings = _messages(caplog, logging.WARNING, "'old-name'")
    assert len(warnings) == 1, caplog.text
    assert "'new-name'" in warnings[0]
    assert "start_date" in warnings[0]
    assert all(stream in warnings[0] for stream in STREAM_RESOURCES)
    for stream in STREAM_RESOURCES:  # read from start_date, as the warning says
        assert len(result.records(stream)) == COUNT
