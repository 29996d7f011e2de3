"""Meltano end to end against the emulator: what a Meltano user does, checked.

Meltano 4.4.1 (the quick start's pin, from uv's tool cache) runs in this repository's
project (meltano.yml, environment ``emulator``), each test against an emulator of its own:

1. `meltano config test` passes with good keys and fails clearly with bad ones.
2. `meltano select --list` shows the three streams and their line-item streams.
3. Settings come from TAP_MAESN_QONTO_* environment variables (page size 50 shows
   in the page counts), and the SDK's stream maps (alias, filter, hashed field,
   dropped field) and flattening work through Meltano into target-jsonl.
4. Tested targets (README, "Tested targets"): for target-postgres (on a real
   PostgreSQL server on 127.0.0.1: Debian's when installed, else the wheel's),
   target-duckdb, target-jsonl and target-csv, three `meltano run`s: a full one,
   an incremental one after updates and creations (rows must equal the emulator's
   truth: no loss, no duplicate, money digit for digit, timestamps as instants, line
   items intact, as tests/support/warehouse_check.py compares them) and one after
   deletions. What each target does is asserted against TESTED_TARGETS, the facts
   the README's table states, so the table cannot drift from what CI sees.
5. The MeltanoHub definition works as users will meet it: `meltano add --from-ref`
   into a fresh project (pip_url pointed at this checkout with the `faker` extra, as
   `pip install "tap-maesn-qonto[faker]"` would serve it), `meltano install`, a
   `meltano invoke` that syncs from the emulator, and a stream map using
   `fake.name()` with `faker_config`.

Each test prints what it saw (``-rP`` shows it).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import typing as t
from pathlib import Path
from typing import Any

import pytest

from tap_maesn_qonto.emulator import Emulator
from tests.support import warehouse_check
from tests.support.meltano import Meltano
from tests.support.tap import REPO_ROOT

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Postgres

pytestmark = pytest.mark.usefixtures("meltano_project")

COUNTS = {"invoices": 310, "bills": 120, "bookingProposals": 75}
STREAMS = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}
LINE_ITEM_STREAMS = {
    "invoice_line_items": "invoice_id",
    "bill_line_items": "bill_id",
    "booking_proposal_line_items": "booking_proposal_id",
}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(counts=COUNTS) as running:
        yield running


@pytest.fixture
def meltano(meltano_executable: str, emulator: Emulator) -> Meltano:
    return Meltano(meltano_executable, emulator)


def test_config_test_passes_with_good_keys_and_names_a_wrong_one(meltano: Meltano) -> None:
    good = meltano("--environment=emulator", "config", "test", "tap-maesn-qonto")
    assert good.returncode == 0, good.stderr[-2000:]
    bad = meltano(
        "--environment=emulator",
        "config",
        "test",
        "tap-maesn-qonto",
        TAP_MAESN_QONTO_ACCOUNT_KEY="not-a-real-account-key",
    )
    assert bad.returncode != 0, "config test passed with a wrong account key"
    output = bad.stdout + bad.stderr
    assert "401 Unauthorized" in output, output[-2000:]
    assert "not-a-real-account-key" not in output, "the key leaked into Meltano's output"


def test_select_list_shows_every_stream_and_its_line_items(meltano: Meltano) -> None:
    listed = meltano("--environment=emulator", "select", "tap-maesn-qonto", "--list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    for stream in STREAMS:
        assert f"] {stream}.id" in listed.stdout, f"{stream} missing from select --list"
    for stream, key in LINE_ITEM_STREAMS.items():
        assert f"] {stream}.{key}" in listed.stdout, f"{stream} missing from select --list"


def test_stream_maps_flattening_and_settings_from_the_environment(meltano: Meltano) -> None:
    output_dir = REPO_ROOT / "output" / "jsonl"
    for old in output_dir.glob("*.jsonl"):
        old.unlink()
    maps = {
        "invoices": {
            "__alias__": "customer_invoices",
            "__filter__": "status == 'PAID'",
            "name_hash": "md5(name) if name else None",
            "name": "__NULL__",
        }
    }
    run = meltano(
        "--environment=emulator",
        "run",
        "--state-id-suffix=maps",
        "--full-refresh",
        "tap-maesn-qonto",
        "target-jsonl",
        TAP_MAESN_QONTO_STREAM_MAPS=json.dumps(maps),
        TAP_MAESN_QONTO_FLATTENING_ENABLED="true",
        TAP_MAESN_QONTO_FLATTENING_MAX_DEPTH="1",
        TAP_MAESN_QONTO_PAGE_SIZE="50",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    pages = re.search(r"invoices: sync summary: \d+ records emitted\b.*?\b(\d+) pages", run.stderr)
    assert pages, "no invoices summary line in the log"
    assert int(pages.group(1)) == -(-COUNTS["invoices"] // 50), "page_size from env not used"
    files = list(output_dir.glob("customer_invoices*.jsonl"))  # target-jsonl adds a timestamp
    assert len(files) == 1, f"expected one customer_invoices file, found {files}"
    lines = files[0].read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records, "the aliased stream is empty"
    assert {r["status"] for r in records} == {"PAID"}, "the filter was not applied"
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["name_hash"]) for r in records if r["name_hash"])
    assert all("name" not in r for r in records), "the dropped field is still there"
    assert all(isinstance(r["lineItems"], str) for r in records if r["lineItems"] is not None), (
        "flattening did not serialize nested line items"
    )
    assert not list(output_dir.glob("invoices*.jsonl")), "the unaliased stream was written"
    print(
        f"stream maps + flattening + env settings: {len(records)} PAID invoices as "
        f"customer_invoices, hashed names, {pages.group(1)} pages of 50"
    )


# What each target does with this tap's types, as the README's "Tested targets" table
# states it. check_tested_targets measures every fact and fails on any difference.
TESTED_TARGETS: dict[str, dict[str, bool]] = {
    "target-postgres": {
        "money_exact": True,
        "same_instants": True,
        "line_items_intact": True,
        "rows_equal_truth": True,  # merged by primary key: no duplicate after run 2
        "deleted_rows_kept": True,
    },
    "target-duckdb": {
        "money_exact": False,  # DOUBLE
        "same_instants": True,
        "line_items_intact": False,  # their numbers go through float as well
        "rows_equal_truth": True,
        "deleted_rows_kept": True,
    },
    "target-jsonl": {
        "money_exact": True,
        "same_instants": True,
        "line_items_intact": True,
        "rows_equal_truth": False,  # append-only: run 2's records are added, not merged
        "deleted_rows_kept": True,
    },
    "target-csv": {
        "money_exact": True,
        "same_instants": True,
        "line_items_intact": False,  # written as Python reprs, not JSON
        "rows_equal_truth": False,
        "deleted_rows_kept": False,
    },
}
MUTATION: dict[str, Any] = {"update": 5, "create": 3, "delete": 0}
DELETIONS = 2


def _tested_target_env(target: str, pg_state: Path) -> dict[str, Any]:
    out = REPO_ROOT / "output" / "tested"
    if target == "target-postgres":
        port = json.loads(pg_state.read_text())["port"]
        return {
            "TARGET_POSTGRES_PORT": str(port),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "tested",
        }
    if target == "target-duckdb":
        return {"TARGET_DUCKDB_FILEPATH": str(out / "warehouse.duckdb")}
    if target == "target-jsonl":
        return {"TARGET_JSONL_DESTINATION_PATH": str(out / "jsonl")}
    return {"TARGET_CSV_OUTPUT_PATH": str(out / "csv")}


def _read_target(target: str, pg_state: Path) -> dict[str, list[dict[str, Any]]]:
    out = REPO_ROOT / "output" / "tested"
    if target == "target-postgres":
        return warehouse_check.read_postgres(pg_state, "tested")
    if target == "target-duckdb":
        python = REPO_ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"
        return warehouse_check.read_duckdb(str(python), out / "warehouse.duckdb", "qonto")
    if target == "target-jsonl":
        return warehouse_check.read_jsonl(out / "jsonl")
    return warehouse_check.read_csv(out / "csv")


def truths(emulator: Emulator) -> dict[str, warehouse_check.Truth]:
    return {
        table: warehouse_check.Truth(emulator.truth(resource), emulator.deleted_ids(resource))
        for table, resource in STREAMS.items()
    }


def measure_target(
    meltano: Meltano, emulator: Emulator, target: str, pg_state: Path
) -> tuple[dict[str, bool], str]:
    """Three runs into ``target``; the facts TESTED_TARGETS states, and a report."""
    shutil.rmtree(REPO_ROOT / "output" / "tested", ignore_errors=True)
    (REPO_ROOT / "output" / "tested").mkdir(parents=True)
    env = _tested_target_env(target, pg_state)
    args = ("--environment=emulator", "run", "--state-id-suffix=tested", "tap-maesn-qonto", target)
    first = meltano(*args[:2], "--full-refresh", *args[2:], **env)
    assert first.returncode == 0, f"{target} run 1: {first.stderr[-3000:]}"
    for resource in STREAMS.values():
        emulator.mutate(resource, **MUTATION)
    second = meltano(*args, **env)
    assert second.returncode == 0, f"{target} run 2: {second.stderr[-3000:]}"
    emitted = [int(n) for n in re.findall(r"sync summary: (\d+) records emitted", second.stderr)]
    assert sum(emitted) < sum(COUNTS.values()) / 4, f"run 2 was not incremental: {emitted}"
    reports = warehouse_check.check(truths(emulator), _read_target(target, pg_state))
    for resource in STREAMS.values():
        emulator.mutate(resource, delete=DELETIONS)
    third = meltano(*args, **env)
    assert third.returncode == 0, f"{target} run 3: {third.stderr[-3000:]}"
    after_deletions = warehouse_check.check(truths(emulator), _read_target(target, pg_state))
    facts = {
        "money_exact": all(r.tally.money_wrong == 0 for r in reports),
        "same_instants": all(r.tally.instants_wrong == 0 for r in reports),
        "line_items_intact": all(r.tally.line_items_wrong == 0 for r in reports),
        "rows_equal_truth": all(r.missing == r.unexpected == r.duplicates == 0 for r in reports),
        "deleted_rows_kept": all(r.deleted_kept == DELETIONS for r in after_deletions),
    }
    return facts, warehouse_check.render(reports, "", deleted="kept", duplicates_allowed=True)


@pytest.fixture(scope="module")
def installed_targets(meltano_project: None, meltano_executable: str) -> None:
    with Emulator(counts=COUNTS) as emulator:
        installed = Meltano(meltano_executable, emulator)("install", *TESTED_TARGETS)
    assert installed.returncode == 0, installed.stderr[-3000:]


@pytest.mark.usefixtures("installed_targets")
@pytest.mark.parametrize("target", TESTED_TARGETS)
def test_a_tested_target_does_what_the_readme_states(
    target: str, meltano: Meltano, emulator: Emulator, postgres: Postgres
) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"| `{target}`" in readme, f"README's Tested targets table has no row for {target}"
    facts, report = measure_target(meltano, emulator, target, postgres.state)
    print(f"{target} (target-postgres on PostgreSQL {postgres.version}, three runs):")
    print(report)
    expected = TESTED_TARGETS[target]
    differ = {k: v for k, v in facts.items() if expected[k] != v}
    assert not differ, f"{target} now does {differ}, the README says otherwise"


def test_the_hub_definition_installs_and_syncs_with_the_faker_extra(
    meltano: Meltano, emulator: Emulator
) -> None:
    hub_file = (
        REPO_ROOT
        / "hub"
        / "_data"
        / "meltano"
        / "extractors"
        / "tap-maesn-qonto"
        / "maesn-qonto.yml"
    )
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "meltano.yml").write_text(
            "send_anonymous_usage_stats: false\ndefault_environment: dev\n"
            "environments:\n- name: dev\nproject_id: hub-check\n"
        )
        run = lambda *args, **env: meltano(*args, cwd=project, **env)  # noqa: E731
        added = run(
            "add", "--no-install", "--from-ref", str(hub_file), "extractor", "tap-maesn-qonto"
        )
        assert added.returncode == 0, added.stderr[-2000:]
        text = (project / "meltano.yml").read_text()
        assert "pip_url: tap-maesn-qonto" in text, "the Hub definition's pip_url changed"
        # As `pip install "tap-maesn-qonto[faker]"` will serve it from PyPI.
        (project / "meltano.yml").write_text(
            text.replace("pip_url: tap-maesn-qonto", f"pip_url: '{REPO_ROOT}[faker]'")
        )
        installed = run("install")
        assert installed.returncode == 0, installed.stderr[-2000:]
        synced = run(
            "invoke",
            "tap-maesn-qonto",
            TAP_MAESN_QONTO_API_KEY="emulator-api-key",
            TAP_MAESN_QONTO_ACCOUNT_KEY="emulator-account-qonto",
        )
        assert synced.returncode == 0, synced.stderr[-2000:]
        records = sum(synced.stdout.count(f'"type":"RECORD","stream":"{s}"') for s in STREAMS)
        expected = sum(len(emulator.truth(r)) for r in STREAMS.values())
        assert records == expected, f"{records} records, the emulator has {expected}"
        faked = run(
            "invoke",
            "tap-maesn-qonto",
            TAP_MAESN_QONTO_API_KEY="emulator-api-key",
            TAP_MAESN_QONTO_ACCOUNT_KEY="emulator-account-qonto",
            TAP_MAESN_QONTO_STREAM_MAPS=json.dumps({"invoices": {"name": "fake.name()"}}),
            TAP_MAESN_QONTO_FAKER_CONFIG=json.dumps({"seed": 3, "locale": "fr_FR"}),
        )
        assert faked.returncode == 0, faked.stderr[-2000:]
        names = [
            message["record"]["name"]
            for message in map(json.loads, faked.stdout.splitlines())
            if message.get("type") == "RECORD" and message["stream"] == "invoices"
        ]
        served = {record["name"] for record in emulator.truth("invoices").values()}
        assert names, "no invoices with the faker stream map"
        assert not set(names) & served, "fake.name() did not replace the names"
    print(
        f"Hub definition with the faker extra: meltano add --from-ref, install, invoke "
        f"synced {records} records; fake.name() replaced {len(names)} invoice names"
    )
