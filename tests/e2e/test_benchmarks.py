"""The benchmarks package (benchmarks/): its code paths run and yield sane figures.

The smoke tests (marker ``e2e``) run each benchmark at tiny sizes against the emulator;
only shapes and counts are checked, timings never (they depend on the machine). The
unmarked tests are cheap checks that the benchmarks read what the tap writes today.
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import math
import re
import sys
from pathlib import Path

import pytest

from benchmarks import accounts, measure, peer, single
from benchmarks.measure import Checkout
from tap_maesn_qonto.envelope import Page
from tap_maesn_qonto.pages import record_keys
from tap_maesn_qonto.plan import plan_read
from tap_maesn_qonto.progress import Progress
from tap_maesn_qonto.read import Outcome, PartitionRead, ReadReport
from tap_maesn_qonto.settings import DEFAULT_MAX_CONCURRENCY

RECORDS = 300
LATENCIES_MS = (0, 10)


# --------------------------------------------------------------------------- cheap checks


def summary_line(prefix: str, records: int) -> str:
    """The summary line read.py writes after a one-page whole-list read of ``records``."""
    page = Page(
        number=1,
        records=[
            {
                "id": f"r{i}",
                "createdDate": "2026-01-01T00:00:00Z",
                "updatedDate": "2026-01-01T00:00:00Z",
            }
            for i in range(records)
        ],
        total=records,
        total_pages=1,
        per_page=100,
        warnings=(),
    )
    plan = plan_read(
        {},
        replication_key="updatedDate",
        reconciling=False,
        lookback=dt.timedelta(0),
        start_date=None,
    )
    read = PartitionRead(
        label="company-0001",
        plan=plan,
        fetch=lambda request: page,
        keys=record_keys("/accounting/invoices"),
        report=ReadReport(logging.getLogger("test"), prefix, Progress()),
        page_size=100,
        max_concurrency=8,
        thread_name="test",
    )
    assert sum(len(batch) for batch in read.batches()) == records
    assert read.outcome is Outcome.COMPLETE
    return f"2026-12-06 19:00:00,000 | INFO     | tap-maesn-qonto | {read.summary(retries=0)}"


def test_record_counts_are_read_from_the_summary_lines() -> None:
    """The tap's summary lines as read.py writes them now, one account and several."""
    one_account = summary_line("invoices", 30)
    several = summary_line("bills of account company-0001", 7)
    assert "sync summary: 30 records emitted" in one_account  # the format benchmarks read
    stderr = "\n".join(
        [
            one_account,
            several,
            summary_line("booking_proposals", 0),
            # Before 518a9aa (a --previous checkout may be older): "of account" after it.
            "INFO invoices: sync summary of account company-0002: 5 records emitted, 1 pages",
            "baseline: 56 records written",
            "INFO invoices: 1234 records so far",  # a progress line is not a summary
        ]
    )
    assert measure.records_reported(stderr) == 30 + 7 + 5 + 56


def test_the_benchmarks_assume_the_taps_default_concurrency() -> None:
    assert measure.DEFAULT_CONCURRENCY == DEFAULT_MAX_CONCURRENCY


def test_benchmark_modules_import_only_the_measuring_library() -> None:
    """No circle: single, peer, accounts and baseline import measure.py and no other
    benchmark; nothing edits sys.path."""
    package = measure.REPO_ROOT / "benchmarks"
    modules = {path.stem for path in package.glob("*.py")} - {"__init__"}
    assert {"measure", "single", "peer", "accounts", "baseline"} <= modules
    for name in modules:
        source = (package / f"{name}.py").read_text()
        imported: set[str] = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module == "benchmarks":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("benchmarks."):
                imported.add((node.module or "").split(".")[1])
            elif isinstance(node, ast.Import):
                imported |= {
                    alias.name.split(".")[1]
                    for alias in node.names
                    if alias.name.startswith("benchmarks.")
                }
        allowed = set() if name == "measure" else {"measure"}
        assert imported <= allowed, f"benchmarks/{name}.py imports {imported - allowed}"
        assert "sys.path" not in source, f"benchmarks/{name}.py edits sys.path"


def test_a_report_is_dated_and_says_when_where_and_how(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = measure.Report(
        "single", ["uv", "run", "x"], [Checkout.this()], tmp_path, note="a patched run"
    )
    text = report.finish("| a |\n|--:|\n| 1 |")
    again = measure.Report("single", ["uv", "run", "x"], [Checkout.this()], tmp_path)
    again.finish("second")
    day = f"{dt.datetime.now(dt.UTC):%Y-%m-%d}"
    assert report.path == tmp_path / f"benchmark-single-{day}.md"
    assert again.path == tmp_path / f"benchmark-single-{day}-2.md"
    assert report.path.read_text(encoding="utf-8") == text
    assert text in capsys.readouterr().out
    for fact in ("Checkout `this checkout`: commit ", "Machine: ", "cores", "RAM", "Load average"):
        assert fact in text
    assert "- Command: `uv run x`\n\nNote: a patched run\n\n| a |" in text


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


def test_another_checkout_needs_its_own_virtualenv(tmp_path: Path) -> None:
    (tmp_path / "tap_maesn_qonto").mkdir()
    with pytest.raises(measure.BenchmarkError, match="uv sync --locked"):
        Checkout.other(tmp_path)
    assert Checkout.this().tap_argv(tmp_path / "c.json")[:3] == [
        sys.executable,
        "-m",
        "tap_maesn_qonto",
    ]


@pytest.mark.e2e
def test_cpu_per_record_is_measured_in_each_checkouts_own_process() -> None:
    measured = single.cpu_runs(RECORDS, [Checkout.this(), Checkout.other(measure.REPO_ROOT)], 1)
    assert len(measured) == 2
    for run in measured:
        assert 0 < run.main_thread_s <= run.cpu_s
        assert run.wall_s > 0
    assert "main thread µs/record" in single.format_cpu(measured)
