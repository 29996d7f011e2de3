"""The reliability report's scenarios, at reduced size: nothing lost, nothing doubled.

`scripts/reliability_report.py` (no --quick) runs the same scenarios with >= 20 000
records each; the README shows its table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import load_script

REPORT = load_script("reliability_report")
SCENARIOS = [
    "clean",
    "burst_then_quiet",
    "updates_creates",
    "deletes",
    "ignored_order",
    "ignored_filter_and_order",
    "old_records_edited_and_deleted",
    "edits_all_run_long_whole_list",
    "lagging_server_clock",
    "faults",
    "transient_4xx",
    "sigkill",
    "sigterm",
    "never_clears",
    "past_last_page",
    "broken_page_then_resume",
    "not_maesn",
]


@pytest.mark.parametrize("index", range(len(SCENARIOS)), ids=SCENARIOS)
def test_scenario_loses_nothing_and_duplicates_nothing(tmp_path: Path, index: int) -> None:
    scenarios = REPORT.Scenarios(1200, tmp_path, REPORT.random.Random(7 + index))
    outcome = scenarios.all()[index]()
    assert outcome.lost == 0, outcome
    assert outcome.duplicates == 0, outcome
    assert outcome.stale == 0, outcome
    assert outcome.received == outcome.expected, outcome
    assert outcome.result == "PASS", outcome
