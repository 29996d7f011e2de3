"""The benchmarks package (benchmarks/): its code paths run and yield sane figures.

The smoke tests run each benchmark at tiny sizes against the emulator; only shapes and
counts are checked, timings never (they depend on the machine). The cheap checks that the
benchmarks read what the tap writes today: tests/unit/test_benchmarks.py.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from benchmarks import accounts, measure, peer, single
from benchmarks.measure import Checkout

RECORDS = 300
LATENCIES_MS = (0, 10)


# --------------------------------------------------------------------------- smoke tests


@pytest.mark.e2e
def test_single_produces_one_sane_row_per_run() -> None:
    rows = single.run_benchmark([RECORDS], LATENCIES_MS)

    expected_runs = [(0, "baseline read+write"), (0, "sequential"), (0, "concurrent")]
    expected_runs += [(10, "sequential"), (10, "concurrent")]
    assert [(row.latency_ms, row.mode) for row in rows] == expected_runs
    pages = math.ceil(RECORDS / 100)
    for row in rows:
        assert row.records == RECORDS
        assert row.wall_s > 0
        assert row.cpu_s > 0
        assert row.peak_rss_mb > 1
        # Per stream the tap may also send one small probe (newest createdDate, for its
        # drift check) and asks once for each empty stream; the baseline reads invoices only.
        assert pages <= row.requests <= pages + 3 + 6
        assert row.limit_s > 0
        assert row.records_per_s > 0
    baseline = rows[0]
    assert all(row.limit_s == baseline.wall_s for row in rows[1:3])
    assert rows[3].limit_s == measure.latency_limit_s(RECORDS, 1, 10)
    assert rows[4].limit_s == measure.latency_limit_s(RECORDS, measure.DEFAULT_CONCURRENCY, 10)

    report = single.format_report(rows)
    assert report.count("\n| ") == 2 * (len(rows) + 1)  # two tables: header and one per row
    assert "Concurrency gain" in report
    assert "not measured in this run" in report  # no 10 000 / 100 000 rows at this size


@pytest.mark.e2e
def test_two_checkouts_run_in_turn_and_write_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--previous`` (here this checkout again, through its own .venv) with a report file."""
    argv = [
        *("--records", str(RECORDS), "--latencies", "0", "--modes", "concurrent"),
        *("--previous", str(measure.REPO_ROOT), "--runs", "2", "--reports-dir", str(tmp_path)),
    ]
    assert single.main(argv) == 0
    out = capsys.readouterr().out
    (written,) = tmp_path.glob("benchmark-single-*.md")
    assert written.read_text() in out
    previous = Checkout.other(measure.REPO_ROOT).label
    assert out.count(f" {previous} |") == 2 + 1  # each of its runs, and its medians
    assert re.search(r"records/s vs first", out)


@pytest.mark.e2e
def test_startup_is_timed_to_the_first_request_of_a_real_command() -> None:
    times = single.startup_times(1, [Checkout.this()])
    (measured,) = times.values()
    assert 0 < measured[0] < measure.STARTUP_TIMEOUT_S
    assert "median" in single.format_startup(times)


@pytest.mark.e2e
def test_two_checkouts_take_turns_on_the_peer_data() -> None:
    previous = Checkout.other(measure.REPO_ROOT)  # the "previous" one, here the same
    body = peer.alternate_body([Checkout.this(), previous], 1, RECORDS, 10)
    assert " this checkout |" in body
    assert f" {previous.label} |" in body


@pytest.mark.e2e
def test_many_accounts_first_runs_count_requests_and_log_lines() -> None:
    rows = accounts.first_runs([3], [0], [True, False], [Checkout.this()])
    assert [row.start_date for row in rows] == [True, False]
    for row in rows:
        assert row.records == 3 * 30
        assert row.requests >= row.account_streams  # at least one per account-stream
        assert row.stderr_lines > 0
        assert row.state_bytes > 0
    report = accounts.format_first_runs(rows)
    assert "requests/account-stream" in report
    assert report.count("-> ") == 2  # one verdict per run


@pytest.mark.e2e
def test_many_accounts_reconcile_runs_activate_versions() -> None:
    rows = accounts.reconcile_runs(2, [0], [Checkout.this()])
    assert [row.mode for row in rows] == ["incremental", "reconcile"]
    assert rows[0].activations == 0
    assert rows[1].activations > 0
    assert rows[1].records == 2 * 30
    assert "ACTIVATE_VERSION" in accounts.format_reconcile(rows)


@pytest.mark.e2e
def test_cpu_per_record_is_measured_in_each_checkouts_own_process() -> None:
    measured = single.cpu_runs(RECORDS, [Checkout.this(), Checkout.other(measure.REPO_ROOT)], 1)
    assert len(measured) == 2
    for run in measured:
        assert 0 < run.main_thread_s <= run.cpu_s
        assert run.wall_s > 0
    assert "main thread µs/record" in single.format_cpu(measured)
