"""Meltano end to end against the emulator: what a Meltano user does, checked.

    uv run python scripts/meltano_e2e.py --meltano .quickstart/meltano/bin/meltano

Run by .ci/run after the quick start (which installs Meltano and the plugins). Each
check prints one line; the script exits 1 if any fails.

1. `meltano config test` passes with good keys and fails clearly with bad ones.
2. `meltano select --list` shows the three streams.
3. Settings come from TAP_MAESN_QONTO_* environment variables (page size 50 shows
   in the page counts), and the SDK's stream maps (alias, filter, hashed field,
   dropped field) and flattening work through Meltano into target-jsonl.
4. Two `meltano run`s into DuckDB: the second resumes from the stored state and
   every table's row count equals the emulator's truth after the merge.
5. The MeltanoHub definition works as users will meet it: `meltano add --from-ref`
   into a fresh project (pip_url pointed at this checkout, as PyPI would serve it),
   `meltano install`, and a `meltano invoke` that syncs from the emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tap_maesn_qonto.emulator import Emulator  # noqa: E402

COUNTS = {"invoices": 310, "bills": 120, "bookingProposals": 75}
STREAMS = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}


class Meltano:
    def __init__(self, executable: str, emulator: Emulator) -> None:
        self.executable = str(Path(executable).resolve())  # also run from other projects
        self.env = {
            **os.environ,
            "TAP_MAESN_QONTO_API_URL": emulator.url,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
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
    return "select --list: invoices, bills, booking_proposals"


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
    pages = re.search(r"invoices: sync summary: \d+ records emitted .*?, (\d+) pages", run.stderr)
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


def check_two_runs_into_duckdb(meltano: Meltano, emulator: Emulator) -> str:
    database = ROOT / "output" / "e2e.duckdb"
    database.unlink(missing_ok=True)
    env = {"TARGET_DUCKDB_FILEPATH": str(database)}
    meltano("state", "clear", "--force", "emulator:tap-maesn-qonto-to-target-duckdb:e2e")
    args = (
        "--environment=emulator",
        "run",
        "--state-id-suffix=e2e",
        "tap-maesn-qonto",
        "target-duckdb",
    )
    first = meltano(*args, **env)
    assert first.returncode == 0, first.stderr[-3000:]
    for resource in STREAMS.values():
        emulator.mutate(resource, update=7, create=4, delete=0)
    second = meltano(*args, **env)
    assert second.returncode == 0, second.stderr[-3000:]
    emitted = [int(n) for n in re.findall(r"sync summary: (\d+) records emitted", second.stderr)]
    assert len(emitted) == 3, second.stderr[-3000:]
    assert sum(emitted) < sum(COUNTS.values()) / 4, f"second run was not incremental: {emitted}"
    counts = duckdb_counts(database)
    for stream, resource in STREAMS.items():
        truth = len(emulator.truth(resource))
        assert counts[stream] == [truth, truth], f"{stream}: {counts[stream]} rows/ids vs {truth}"
    return f"two runs into DuckDB: second emitted {sum(emitted)}, tables == truth {counts}"


def duckdb_counts(database: Path) -> dict[str, list[int]]:
    python = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"
    query = (
        "import duckdb, json, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "print(json.dumps({t: list(con.execute("
        "f'select count(*), count(distinct id) from qonto.{t}').fetchone()) for t in sys.argv[2:]}))"
    )
    result = subprocess.run(
        [str(python), "-c", query, str(database), *STREAMS],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


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
        (project / "meltano.yml").write_text(
            text.replace("pip_url: tap-maesn-qonto", f"pip_url: {ROOT}")
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
        records = synced.stdout.count('"type":"RECORD"')
        expected = sum(len(emulator.truth(r)) for r in STREAMS.values())
        assert records == expected, f"{records} records, the emulator has {expected}"
    return f"Hub definition: meltano add --from-ref, install, invoke synced {records} records"


CHECKS: list[Callable[[Meltano, Emulator], str]] = [
    check_config_test,
    check_select_list,
    check_maps_flattening_and_env,
    check_two_runs_into_duckdb,
    check_hub_definition_installs,
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--meltano", required=True, help="path to the meltano executable")
    args = parser.parse_args()
    failures = 0
    with Emulator(counts=COUNTS) as emulator:
        meltano = Meltano(args.meltano, emulator)
        for check in CHECKS:
            try:
                print(f"PASS {check(meltano, emulator)}")
            except Exception as exc:  # report every failing check, then exit 1
                failures += 1
                print(f"FAIL {check.__name__}: {exc}")
    print(f"{len(CHECKS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
