"""Deletions end to end: reconcile runs retire deleted rows in target-postgres.

Maesn has no feed of deleted records, so the tap retires them with reconcile runs
(tap_maesn_qonto/reconcile.py): a whole read whose records carry a new table version,
then ACTIVATE_VERSION. These tests prove it through MeltanoLabs target-postgres
(the loader Meltano installed from meltano.yml, meltanolabs-target-postgres 0.8.1) on
a real PostgreSQL server on 127.0.0.1 (tests/support/pg.py), one test per target setting:
``hard_delete: false`` (schema deletions_soft: rows get ``_sdc_deleted_at``) and
``hard_delete: true`` (schema deletions_hard: rows are deleted). Each setting gets a
fresh emulator (same seed, same data) and three runs:

1. load: ``reconcile_interval_days`` unset (7 days), no state: not a reconcile, no
   ACTIVATE_VERSION; every record and line is loaded and every row carries a version;
2. in the emulator: records updated and deleted (invoices, bills, booking proposals),
   and one invoice's line items shrunk from 3 lines to 1; then an incremental run,
   still no reconcile: the updates arrive, the deleted records and the removed lines
   stay live (the reason for reconciles);
3. ``reconcile_interval_days: 0``, a reconcile: ACTIVATE_VERSION for the six streams.
   Afterwards the live rows of each parent table (soft: ``_sdc_deleted_at IS NULL``,
   hard: all rows) are exactly the emulator truth's ids, equal to it value for value
   (tests/support/warehouse_check.py); the deleted ones are flagged (soft) or gone (hard) and
   no row that still exists was retired. Each line-item table's live rows are exactly
   the (parent id, position) of the truth's current lineItems: the deleted parents'
   lines and the shrunk invoice's removed lines are retired too.

The tap runs as ``python -m tap_maesn_qonto`` piped into the Meltano-installed
target-postgres (``meltano install`` first if it is missing), with the target's
config and env taken from meltano.yml and the tap's from its emulator environment:
``meltano run`` cannot pass ``hard_delete``, a setting meltano.yml does not declare.
State goes from one run to the next as the tap's last STATE message. Each test prints
the commands and a table (``-rP`` shows them); the first failed check fails it in one line.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import typing as t
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tap_maesn_qonto.emulator import Emulator
from tests.support import pg, warehouse_check
from tests.support.meltano import Meltano
from tests.support.tap import REPO_ROOT
from tests.support.tools import MELTANO, uvx_executable

if t.TYPE_CHECKING:
    from tests.e2e.conftest import Postgres

pytestmark = pytest.mark.usefixtures("meltano_project")

ROOT = REPO_ROOT
COUNTS = {"invoices": 310, "bills": 120, "bookingProposals": 75}  # as test_meltano.py's
STREAMS = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}
# Line-item table -> (its parent-id column, its parent table), as tap_maesn_qonto/streams.py.
LINES = {
    "invoice_line_items": ("invoice_id", "invoices"),
    "bill_line_items": ("bill_id", "bills"),
    "booking_proposal_line_items": ("booking_proposal_id", "booking_proposals"),
}
TABLES = [*STREAMS, *LINES]
UPDATES = {"invoices": 5, "bills": 3, "bookingProposals": 2}
DELETES = {"invoices": 6, "bills": 4, "bookingProposals": 2}
SHRINK = ("invoices", 3, 1)  # one invoice goes from 3 lines to 1
SETTINGS = {"deletions_soft": False, "deletions_hard": True}  # schema -> hard_delete
TARGET = ROOT / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin" / "target-postgres"

Key = tuple[str, int]  # (id, 0) for a parent row, (parent id, position) for a line row


class Failure(AssertionError):
    """A check failed; the message is the test's one line."""


def expect(ok: bool, message: str) -> None:
    if not ok:
        raise Failure(message)


# --------------------------------------------------------------------------- the source


def truth_keys(emulator: Emulator) -> dict[str, set[Key]]:
    """Every table's keys as the emulator serves its records now."""
    keys: dict[str, set[Key]] = {}
    for table, resource in STREAMS.items():
        records = emulator.truth(resource)
        keys[table] = {(record_id, 0) for record_id in records}
        for line_table, (_, parent) in LINES.items():
            if parent == table:
                keys[line_table] = {
                    (record_id, position)
                    for record_id, record in records.items()
                    for position in range(1, len(record["lineItems"] or []) + 1)
                }
    return keys


def shrink_line_items(emulator: Emulator, resource: str, before: int, after: int) -> str:
    """One record of ``before`` lines edited down to ``after`` (a user removing lines)."""
    target = emulator.shrink_line_items(resource, before=before, after=after)
    served = emulator.truth(resource)[target]["lineItems"]
    expect(len(served) == after, f"could not shrink the line items of {resource} {target}")
    return target


@dataclass
class Changes:
    updated: dict[str, set[str]]
    deleted: dict[str, set[str]]
    shrunk: str

    def describe(self) -> str:
        counts = [
            f"{table}: {len(self.updated[table])} updated, {len(self.deleted[table])} deleted"
            for table in STREAMS
        ]
        resource, before, after = SHRINK
        return f"{'; '.join(counts)}; {resource} {self.shrunk}: {before} lines -> {after}"


def change_the_source(emulator: Emulator) -> Changes:
    before = {table: emulator.truth(resource) for table, resource in STREAMS.items()}
    for resource in STREAMS.values():
        emulator.mutate(resource, update=UPDATES[resource], delete=DELETES[resource])
    resource, lines_before, lines_after = SHRINK
    shrunk = shrink_line_items(emulator, resource, lines_before, lines_after)
    updated, deleted = {}, {}
    for table, resource in STREAMS.items():
        now = emulator.truth(resource)
        updated[table] = {
            i
            for i, record in now.items()
            if record["updatedDate"] != before[table][i]["updatedDate"] and i != shrunk
        }
        deleted[table] = emulator.deleted_ids(resource)
        expect(len(deleted[table]) == DELETES[resource], f"{resource}: deletions not applied")
    return Changes(updated, deleted, shrunk)


# --------------------------------------------------------------------------- the warehouse


@dataclass(frozen=True)
class Row:
    version: int | None
    deleted: bool  # _sdc_deleted_at is set
    lines: int | None  # parent_line_count of a line row


def read_table(pg: pg.Server, schema: str, table: str) -> dict[Key, Row]:
    if table in STREAMS:
        key, position, lines = "id", "0", "null"
    else:
        key, position, lines = LINES[table][0], "position", "parent_line_count"
    sql = (
        "select row_to_json(t)::text from ("  # noqa: S608 - our own names
        f"select {key} as id, {position} as position, {lines} as lines, "
        "_sdc_table_version as version, _sdc_deleted_at is not null as deleted "
        f'from "{schema}"."{table}") t'
    )
    rows: dict[Key, Row] = {}
    for line in pg.psql(sql).splitlines():
        if line:
            row = json.loads(line)
            key_of_row = (row["id"], row["position"])
            expect(key_of_row not in rows, f"{schema}.{table}: duplicate row {key_of_row}")
            rows[key_of_row] = Row(row["version"], row["deleted"], row["lines"])
    return rows


def read_all(pg: pg.Server, schema: str) -> dict[str, dict[Key, Row]]:
    return {table: read_table(pg, schema, table) for table in TABLES}


def truths(emulator: Emulator) -> dict[str, warehouse_check.Truth]:
    return {
        table: warehouse_check.Truth(emulator.truth(resource), emulator.deleted_ids(resource))
        for table, resource in STREAMS.items()
    }


def live(rows: dict[Key, Row]) -> set[Key]:
    return {key for key, row in rows.items() if not row.deleted}


def versions(rows: dict[Key, Row], keys: Iterable[Key] | None = None) -> set[int | None]:
    return {rows[key].version for key in (rows if keys is None else keys)}


# --------------------------------------------------------------------------- one run


@dataclass
class Run:
    command: str
    seconds: float
    records: Counter[str] = field(default_factory=Counter)
    record_versions: dict[str, set[int | None]] = field(default_factory=dict)
    activated: dict[str, int] = field(default_factory=dict)
    state: dict[str, Any] | None = None

    def read_messages(self, path: Path) -> None:
        with path.open(encoding="utf-8") as messages:
            for line in messages:
                message = json.loads(line)
                kind, stream = message.get("type"), message.get("stream")
                if kind == "RECORD":
                    self.records[stream] += 1
                    self.record_versions.setdefault(stream, set()).add(message.get("version"))
                elif kind == "ACTIVATE_VERSION":
                    expect(stream not in self.activated, f"two ACTIVATE_VERSION for {stream}")
                    self.activated[stream] = message["version"]
                elif kind == "STATE":
                    self.state = message["value"]


@dataclass
class Pipeline:
    """``tap | tee messages | target-postgres``, as a shell pipeline with pipefail."""

    work: Path
    tap_config: dict[str, Any]
    target_config: dict[str, Any]
    target_env: dict[str, str]
    state: dict[str, Any] | None = None

    def run(self, name: str, **tap_settings: Any) -> Run:
        files = {
            part: self.work / f"{name}-{part}"
            for part in ("tap.json", "state.json", "target.json", "messages.jsonl", "out.jsonl")
        }
        files["tap.json"].write_text(json.dumps({**self.tap_config, **tap_settings}))
        files["target.json"].write_text(json.dumps(self.target_config))
        tap = [sys.executable, "-m", "tap_maesn_qonto", "--config", str(files["tap.json"])]
        if self.state is not None:
            files["state.json"].write_text(json.dumps(self.state))
            tap += ["--state", str(files["state.json"])]
        target = [str(TARGET), "--config", str(files["target.json"])]
        command = (
            f"{shlex.join(tap)} | tee {shlex.quote(str(files['messages.jsonl']))} | "
            f"{shlex.join(target)} > {shlex.quote(str(files['out.jsonl']))}"
        )
        shown = command.replace(str(self.work.parent), "$WORK").replace(f"{ROOT}/", "")
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            env={**os.environ, **self.target_env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        run = Run(shown, time.monotonic() - started)
        if done.returncode != 0:
            last = [line for line in done.stderr.splitlines() if line.strip()][-3:]
            raise Failure(f"{name}: the pipeline exited {done.returncode}: {' | '.join(last)}")
        run.read_messages(files["messages.jsonl"])
        expect(run.state is not None, f"{name}: the tap sent no STATE message")
        self.state = run.state
        return run


def meltano_setup(emulator: Emulator) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The tap's config (the emulator environment's), target-postgres's config and env."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    environment = next(e for e in project["environments"] if e["name"] == "emulator")
    extractor = next(
        p for p in environment["config"]["plugins"]["extractors"] if p["name"] == "tap-maesn-qonto"
    )
    loader = next(p for p in project["plugins"]["loaders"] if p["name"] == "target-postgres")
    if not TARGET.exists():
        meltano = Meltano(uvx_executable(MELTANO, "meltano"), emulator)
        installed = meltano("install", "target-postgres")
        expect(installed.returncode == 0, f"meltano install failed: {installed.stderr[-500:]}")
    tap_config = {**extractor["config"], "api_url": emulator.url}
    env = {name: str(value) for name, value in (loader.get("env") or {}).items()}
    return tap_config, dict(loader["config"]), env


# --------------------------------------------------------------------------- the checks


def check_load(run: Run, loaded: dict[str, dict[Key, Row]], truth: dict[str, set[Key]]) -> str:
    expect(not run.activated, f"run 1 sent ACTIVATE_VERSION for {sorted(run.activated)}")
    for table in TABLES:
        rows = loaded[table]
        expect(set(rows) == truth[table], f"{table}: {len(rows)} rows, truth {len(truth[table])}")
        carried = versions(rows)
        expect(
            len(carried) == 1 and None not in carried and carried == run.record_versions[table],
            f"{table}: rows carry versions {carried}, the tap sent {run.record_versions[table]}",
        )
    total = sum(len(rows) for rows in loaded.values())
    return f"{total} rows loaded, every one with its table's version; no ACTIVATE_VERSION"


def check_incremental(
    run: Run,
    *,
    first: dict[str, dict[Key, Row]],
    loaded: dict[str, dict[Key, Row]],
    truth: dict[str, set[Key]],
    changes: Changes,
    reports: list[warehouse_check.TableReport],
) -> str:
    expect(not run.activated, f"run 2 sent ACTIVATE_VERSION for {sorted(run.activated)}")
    parents = sum(run.records[table] for table in STREAMS)
    expect(parents < sum(COUNTS.values()) / 4, f"run 2 not incremental: {parents}")
    for report in reports:  # every value as served now: the updates arrived
        deleted = len(changes.deleted[report.table])
        expect(
            report.ok(deleted="kept") and report.deleted_kept == deleted,
            f"run 2, {report.table}: {report.missing} missing, {report.unexpected} unexpected, "
            f"{report.deleted_kept} of {deleted} deleted kept, {report.tally.examples[:1]}",
        )
    for table in TABLES:
        rows = loaded[table]
        expect(not any(row.deleted for row in rows.values()), f"run 2 flagged rows of {table}")
        expect(truth[table] <= set(rows), f"run 2: {table} lacks rows of the truth")
        expect(versions(rows) == versions(first[table]), f"run 2 changed {table}'s version")
    resource, before, after = SHRINK
    line_table = next(t for t, (_, parent) in LINES.items() if STREAMS[parent] == resource)
    lines = loaded[line_table]
    shrunk = [lines.get((changes.shrunk, position)) for position in range(1, before + 1)]
    counts = [row.lines if row else None for row in shrunk]
    expect(
        counts == [after] * after + [before] * (before - after),
        f"run 2, {line_table} of {changes.shrunk}: parent_line_count by position {counts}",
    )
    stale = sum(len(set(loaded[table]) - truth[table]) for table in TABLES)
    return (
        f"{parents} parent records (incremental), values equal the truth (updates arrived); "
        f"{stale} rows deleted or removed at the source still live, "
        f"incl. {line_table} {changes.shrunk} positions {after + 1}-{before}"
    )


def check_reconcile(
    run: Run,
    *,
    hard: bool,
    before: dict[str, dict[Key, Row]],
    loaded: dict[str, dict[Key, Row]],
    truth: dict[str, set[Key]],
    reports: list[warehouse_check.TableReport],
) -> list[str]:
    """The checks of run 3, as the per-table summary lines (the first failure raises)."""
    expect(set(run.activated) == set(TABLES), f"run 3 activated {sorted(run.activated)}")
    lines = []
    for table in TABLES:
        rows, version = loaded[table], run.activated[table]
        retired = set(before[table]) - truth[table]
        flagged = set(rows) - live(rows)
        gone = set(before[table]) - set(rows)
        expect(
            live(rows) == truth[table],
            f"{table}: live rows differ from the truth: "
            f"{sorted(live(rows) - truth[table])[:3]} not retired, "
            f"{sorted(truth[table] - live(rows))[:3]} retired but still at the source",
        )
        expect(
            (gone, flagged) == ((retired, set()) if hard else (set(), retired)),
            f"{table}: {len(flagged)} flagged, {len(gone)} gone, {len(retired)} to retire",
        )
        expect(
            versions(rows, truth[table]) == {version} == run.record_versions[table]
            and version > max(v or 0 for v in versions(before[table])),
            f"{table}: live rows carry {versions(rows, truth[table])}, activated {version}",
        )
        lines.append(
            [
                table,
                *(
                    len(k)
                    for k in (before[table], live(rows), flagged, gone, truth[table], retired)
                ),
            ]
        )
    for report in reports:
        expect(
            report.ok(),
            f"run 3, {report.table}: {report.missing} missing, {report.unexpected} unexpected, "
            f"{report.deleted_kept} deleted kept, {report.tally.examples[:1]}",
        )
    return render(lines)


def render(lines: list[list[Any]]) -> list[str]:
    header = ["table", "after run 2", "live", "flagged", "gone", "truth", "to retire"]
    cells = [header, *[[str(cell) for cell in line] for line in lines]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]


def live_parent_rows(pg_state: Path, schema: str) -> dict[str, list[dict[str, Any]]]:
    tables = warehouse_check.read_postgres(pg_state, schema)
    return {
        table: [row for row in rows if row.get("_sdc_deleted_at") is None]
        for table, rows in tables.items()
    }


# --------------------------------------------------------------------------- one setting


def check_setting(pg: pg.Server, pg_state: Path, work: Path, schema: str) -> None:
    hard = SETTINGS[schema]
    print(f"hard_delete: {str(hard).lower()} (schema {schema}, a fresh emulator)")
    with Emulator(counts=COUNTS) as emulator:
        tap_config, target_config, target_env = meltano_setup(emulator)
        target_config.update(
            port=pg.port,
            default_target_schema=schema,
            hard_delete=hard,
            add_record_metadata=True,
            activate_version=True,
        )
        (work / schema).mkdir()
        pipeline = Pipeline(work / schema, tap_config, target_config, target_env)

        def step(name: str, run: Run, outcome: str) -> None:
            print(f"  {name}  $ {run.command}\n          {outcome} ({run.seconds:.1f} s)")

        run1 = pipeline.run("run1")
        first = read_all(pg, schema)
        step("run 1", run1, check_load(run1, first, truth_keys(emulator)))
        changes = change_the_source(emulator)
        print(f"  source {changes.describe()}")
        run2 = pipeline.run("run2")
        second = read_all(pg, schema)
        reports = warehouse_check.check(
            truths(emulator), warehouse_check.read_postgres(pg_state, schema)
        )
        outcome = check_incremental(
            run2,
            first=first,
            loaded=second,
            truth=truth_keys(emulator),
            changes=changes,
            reports=reports,
        )
        step("run 2", run2, outcome)
        run3 = pipeline.run("run3", reconcile_interval_days=0)
        third = read_all(pg, schema)
        reports = warehouse_check.check(truths(emulator), live_parent_rows(pg_state, schema))
        table = check_reconcile(
            run3,
            hard=hard,
            before=second,
            loaded=third,
            truth=truth_keys(emulator),
            reports=reports,
        )
        version = max(run3.activated.values())
        outcome = (
            f"reconcile: ACTIVATE_VERSION for {len(run3.activated)} streams (versions up "
            f"to {version}); live rows equal the truth, values too"
        )
        step("run 3", run3, outcome)
        print("\n".join(f"    {line}" for line in table))


# --------------------------------------------------------------------------- the test


@pytest.mark.parametrize("schema", list(SETTINGS))
def test_a_reconcile_retires_in_target_postgres_exactly_what_the_source_deleted(
    schema: str, postgres: Postgres, tmp_path: Path
) -> None:
    started = time.monotonic()
    print(f"PostgreSQL {postgres.version} on 127.0.0.1:{postgres.server.port}; $WORK = {tmp_path}")
    check_setting(postgres.server, postgres.state, tmp_path, schema)
    print(f"PASS {schema}: 3 runs, {time.monotonic() - started:.1f} s")
