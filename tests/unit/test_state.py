"""check_state (state.py): a state in another shape, moved into the account partitions.

With several account labels a plain stream bookmark cannot be given to one of them and
stays; bookmarks under a label no account has any more are named in one warning. The same
migrations in a real sync: tests/sync/test_state.py.
"""

from __future__ import annotations

import logging

import pytest

from tap_maesn_qonto.state import check_state
from tests.support.configs import STREAM_RESOURCES
from tests.support.states import partitioned, plain_state

STREAMS = set(STREAM_RESOURCES)
LOGGER = logging.getLogger("tests.test_inputs")


# --- 5. state in another shape --------------------------------------------------------


def _messages(caplog: pytest.LogCaptureFixture, level: int, phrase: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == level and phrase in r.getMessage()
    ]


def test_check_state_takes_several_account_labels(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    state = plain_state("2025-01-01T00:00:00Z", ["invoices"])
    state["bookmarks"]["bills"] = {
        "partitions": [
            partitioned("a", "2025-02-01T00:00:00Z"),
            partitioned("old", "2025-03-01T00:00:00Z"),
        ]
    }
    checked = check_state(state, STREAMS, LOGGER, account_labels=["a", "b"])
    # Several labels: the plain bookmark cannot be given to one of them, and stays.
    assert checked["bookmarks"]["invoices"] == {
        "replication_key": "updatedDate",
        "replication_key_value": "2025-01-01T00:00:00.000000Z",
    }
    assert len(_messages(caplog, logging.WARNING, "several account labels")) == 1
    renamed = _messages(caplog, logging.WARNING, "'old'")
    assert len(renamed) == 1
    assert "'b'" in renamed[0]
    assert "'a'" not in renamed[0]  # 'a' has its own bookmark
    assert not _messages(caplog, logging.INFO, "directly under the stream")
    # One label, given as a plain string, migrates.
    one = check_state(state, STREAMS, LOGGER, account_labels="a")
    assert one["bookmarks"]["invoices"]["partitions"] == [
        partitioned("a", "2025-01-01T00:00:00.000000Z")
    ]
