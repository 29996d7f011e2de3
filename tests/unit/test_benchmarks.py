"""The benchmarks package (benchmarks/), cheaply: the benchmarks read what the tap writes
today (its summary lines, its default concurrency), import only their measuring library,
date their reports and run another checkout only in its own virtualenv. The smoke tests,
each benchmark at tiny sizes against the emulator: tests/e2e/test_benchmarks.py.
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import sys
from pathlib import Path

import pytest

from benchmarks import commands, measure
from benchmarks.measure import Checkout
from tap_maesn_qonto.envelope import Page
from tap_maesn_qonto.pages import record_keys
from tap_maesn_qonto.plan import plan_read
from tap_maesn_qonto.progress import Progress
from tap_maesn_qonto.read import Outcome, PartitionRead, ReadReport
from tap_maesn_qonto.settings import DEFAULT_MAX_CONCURRENCY
from tests.e2e import readme

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


def test_another_checkout_needs_its_own_virtualenv(tmp_path: Path) -> None:
    (tmp_path / "tap_maesn_qonto").mkdir()
    with pytest.raises(measure.BenchmarkError, match="uv sync --locked"):
        Checkout.other(tmp_path)
    assert Checkout.this().tap_argv(tmp_path / "c.json")[:3] == [
        sys.executable,
        "-m",
        "tap_maesn_qonto",
    ]


def test_the_commands_benchmark_times_the_readmes_quick_start() -> None:
    (quick,) = [b for b in readme.readme_blocks() if readme.is_quick_start(b)]
    assert [command for _, command in commands.COMMANDS] == readme.command_lines(quick)
    run = commands.Timed("test command", "bash scripts/test.sh", 72.04, 110.0, "0.50", 0)
    table = commands.format_runs([run], empty_caches=False)
    row = next(line for line in table.splitlines() if "scripts/test.sh" in line)
    assert [cell.strip() for cell in row.strip("|").split("|")] == [
        "test command: `bash scripts/test.sh`",
        "72.0",
        "110.0",
        "0.50",
        "0",
    ]
