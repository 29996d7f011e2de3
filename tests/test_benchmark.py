"""Smoke test of scripts/benchmark.py: its code path runs and yields sane rows.

Only shapes and counts are checked. Timings depend on the machine and are never asserted.
"""

from __future__ import annotations

import math

import pytest

from tests.helpers import load_script

RECORDS = 300
LATENCIES_MS = (0, 10)


BENCHMARK = load_script("benchmark")


def test_benchmark_produces_one_sane_row_per_run() -> None:
    rows = BENCHMARK.run_benchmark([RECORDS], LATENCIES_MS)

    expected_runs = [(0, "baseline read+write"), (0, "sequential"), (0, "concurrent")]
    expected_runs += [(10, "sequential"), (10, "concurrent")]
    assert [(row.latency_ms, row.mode) for row in rows] == expected_runs
    pages = math.ceil(RECORDS / 100)
    for row in rows:
        assert row.records == RECORDS
        assert row.wall_s > 0
        assert row.cpu_s > 0
        assert row.peak_rss_mb > 1
        # Per stream the tap also sends one small probe (newest createdDate, for its drift
        # check, or guessed on a first run: prefetch.py) and asks once for each empty
        # stream; the baseline only reads invoices.
        assert pages <= row.requests <= pages + 3 + 6
        assert row.limit_s > 0
        assert row.records_per_s > 0
    baseline = rows[0]
    assert all(row.limit_s == baseline.wall_s for row in rows[1:3])
    assert rows[3].limit_s == BENCHMARK.latency_limit_s(RECORDS, 1, 10)
    assert rows[4].limit_s == BENCHMARK.latency_limit_s(RECORDS, 4, 10)

    report = "\n".join(
        [
            BENCHMARK.format_table(rows),
            BENCHMARK.format_summary(rows),
            BENCHMARK.format_targets(rows),
        ]
    )
    assert report.count("\n|") == len(rows) + 1  # header separator and one line per row
    assert "Concurrency gain" in report
    assert "not measured in this run" in report  # no 10 000 / 100 000 rows at this size


def test_record_counts_are_read_from_the_summary_lines() -> None:
    stderr = (
        "INFO invoices: sync summary: 1234 records emitted (0 older than the start dropped)\n"
        "INFO bills: sync summary: 0 records emitted (0 older than the start dropped)\n"
        "baseline: 56 records written\n"
    )
    assert BENCHMARK.records_reported(stderr) == 1290


def test_startup_is_timed_to_the_first_request_of_a_real_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert BENCHMARK.startup_main(1, None) == 0
    out = capsys.readouterr().out
    median = float(out.split("median ")[1].split(",")[0])
    assert 0 < median < BENCHMARK.STARTUP_TIMEOUT_S


def test_two_checkouts_take_turns_on_the_peer_data(capsys: pytest.CaptureFixture[str]) -> None:
    peer = load_script("peer_benchmark")  # imports the benchmark module loaded above
    assert peer.alternate_main(BENCHMARK.REPO_ROOT, 1, 300, 10) == 0
    out = capsys.readouterr().out
    assert out.count("median") == 2  # this checkout, and the "previous" one (here the same)
