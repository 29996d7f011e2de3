"""The two places the tap leans on singer-sdk beyond its plain hooks; these fail if it changes.

* ``STATE_MSG_FREQUENCY`` is a property: STATE messages are held back while a
  partition's bookmark is not resumable (a whole-list read), and written every
  ``RESUMABLE_STATE_EVERY`` records while it is (an incremental read).
* ``Tap.sync_all`` (final in the SDK) is wrapped: the wrapper calls the SDK's and
  adds the run's verdict, so an incomplete run must still end with exit code 3.
"""

from __future__ import annotations

import inspect

from singer_sdk import Tap
from singer_sdk.streams.core import Stream

from tap_maesn_qonto.client import RESUMABLE_STATE_EVERY
from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.errors import IncompleteSyncError
from tests.helpers import sync, tap_config

RECORDS = 2 * RESUMABLE_STATE_EVERY + 500


def _states_between_records(messages: list[dict], stream: str) -> int:
    """STATE messages written after a record of ``stream`` and before its last record."""
    positions = [
        i for i, m in enumerate(messages) if m["type"] == "RECORD" and m["stream"] == stream
    ]
    first, last = positions[0], positions[-1]
    return sum(1 for m in messages[first:last] if m["type"] == "STATE")


def test_the_sdk_still_reads_state_msg_frequency_per_record() -> None:
    assert "STATE_MSG_FREQUENCY" in inspect.getsource(Stream._sync_records)


def test_an_incremental_read_writes_resumable_states_as_it_goes() -> None:
    with Emulator(counts={"invoices": RECORDS, "bills": 0, "bookingProposals": 0}) as emulator:
        result = sync(tap_config(emulator, max_concurrency=1))
    assert _states_between_records(result.messages, "invoices") == 2


def test_a_whole_list_read_writes_no_state_until_it_is_done() -> None:
    with Emulator(counts={"invoices": RECORDS, "bills": 0, "bookingProposals": 0}) as emulator:
        config = tap_config(emulator)
        del config["start_date"]
        result = sync(config)
    assert len(result.ids("invoices")) == RECORDS
    assert _states_between_records(result.messages, "invoices") == 0


def test_sync_all_is_still_the_sdk_entry_point_the_wrapper_extends() -> None:
    assert list(inspect.signature(Tap.sync_all).parameters) == ["self"]
    # The wrapper's verdict: a whole-list read that keeps seeing deletions is incomplete.
    with Emulator(counts={"invoices": 60, "bills": 0, "bookingProposals": 0}) as emulator:
        emulator.configure(mutate_every_requests=1, mutations_per_batch={"delete": 1})
        config = tap_config(emulator, page_size=5, max_concurrency=1)
        del config["start_date"]
        result = sync(config, expect=IncompleteSyncError)
    assert result.states, "the SDK's own sync ran and wrote state"
