"""Beyond one machine, end to end: Dagster runs the shards, Meltano keeps state in S3,
and the reconcile job retires in PostgreSQL what was deleted at the source.

    uv run --locked pytest -m e2e tests/e2e/test_orchestration.py -rP [--basetemp DIR]

In the e2e tier (.ci/run). Everything it needs it installs and starts itself, on
127.0.0.1 only, and stops when it ends, whatever happens:

* Meltano with S3 support (``meltano[s3]``), Dagster and moto's S3 server, each in its own
  cached uv tool environment (nothing is added to the tap's lock);
* moto's S3 server as Meltano's state backend (``MELTANO_STATE_BACKEND_URI=s3://…`` with
  ``MELTANO_STATE_BACKEND_S3_ENDPOINT_URL``), and the Maesn emulator serving 200 accounts;
* a PostgreSQL server (the ``postgres`` fixture, tests/support/pg.py) for target-postgres,
  in runs 3-5;
* the Dagster job of ``orchestration/dagster/definitions.py``, executed for real by
  ``dagster job execute`` with the multiprocess executor: one step per shard, in parallel,
  each a ``meltano run --state-id-suffix=shard-<i> tap-maesn-qonto target-jsonl`` (one
  output directory and one Meltano system directory, with its system database, per shard
  and run, as on separate ephemeral machines: the only state a run can find is in S3).

Run 1: one account's key is rejected (401). Its shard's step must fail in Dagster, naming
it; the other shard's step succeeds, and the two overlap in time. The failed step's
captured log shows Meltano writing the state to S3 before it reports the failure. Both
shards' states are in the bucket, the failed shard's with a bookmark for each of its
healthy accounts and none for the failed one. The rows loaded (both shards' directories
together) equal the emulator's truth (ids and ``updatedDate``) for every other account,
each account in its own shard only.

Run 2: the failure cleared, records updated and created in a few accounts.
Both steps succeed, far fewer records are read than in run 1, every changed record arrives
with its new ``updatedDate``, the failed account is read in full, every other record read
again lies within the 600 s lookback before its account's bookmark from S3, and the rows of
both runs (latest per id) equal the truth for every account, each bookmarked in S3.

Runs 3-5, deletions: a deployment of its own, the first 40 accounts into target-postgres
(one schema for every shard and the reconcile; soft deletes, ``_sdc_deleted_at``), its
state in S3 too, and the Dagster instance configured with orchestration/dagster/dagster.yaml
(the run tag limit) and a ``dagster-daemon`` serving the run queue.

Run 3, the shards job, loads every account (one shard after the other: shards creating the
same table at once collide). The rows equal the source, none is retired, and every row
carries its shard's table version, never NULL. Meanwhile, on an instance of its own, the
reconcile op is called twice: alone it goes on to start meltano; beside a shards run in
progress it fails before that, naming the run. Then at the source, in 3 accounts of each
shard, records are updated and deleted in every stream, one invoice goes from 3 lines to 1,
and in one otherwise unchanged account per shard a bill moves away (no longer listed).
Run 4, the shards job (incremental), and run 5, the reconcile job, are submitted to the queue
together: run 5 must wait and start only after run 4 ended. Afterwards the reconcile read
every account and activated the three parent streams, its state is in S3, the live rows of
all six tables equal the source exactly (keys, line positions and ``updatedDate``) and carry
the reconcile's version, above every shard's, and for every shard the retired rows are
exactly those gone at the source (deleted records, their lines, the removed lines, the moved
bills), all retired after run 5 started: no row that still exists was retired, in any shard.

Prints one line per check (``-rP`` shows them), a PASS/FAIL summary and its own run time;
fails listing every failed check. ``ORCHESTRATION_ACCOUNTS`` and ``ORCHESTRATION_SHARDS``
change the 200 accounts and 2 shards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import time
import typing as t
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tap_maesn_qonto.accounts import shard_of
from tap_maesn_qonto.emulator import Emulator, many_accounts
from tap_maesn_qonto.timestamps import parse_timestamp
from tests.support import pg
from tests.support.tap import REPO_ROOT
from tests.support.tools import tool_python

if t.TYPE_CHECKING:
    from tests.e2e.conftest import Postgres

pytestmark = pytest.mark.usefixtures("meltano_project")

ROOT = REPO_ROOT
# The tools, each in its own cached uv tool environment. Meltano: the quick start's pin,
# with S3 support.
MELTANO = "meltano[s3]==4.4.1"
DAGSTER = "dagster==1.13.28"
MOTO = "moto[server]==5.2.5"

DEFINITIONS = ROOT / "orchestration" / "dagster" / "definitions.py"
INSTANCE_SETTINGS = DEFINITIONS.parent / "dagster.yaml"
JOB = "maesn_qonto_shards"
RECONCILE_JOB = "maesn_qonto_reconcile"
TARGET = "target-jsonl"
ENVIRONMENT = "prod"  # real keys come from TAP_MAESN_QONTO_* variables there
BUCKET = "meltano-state-e2e"
PREFIX = "tap-maesn-qonto"
STREAMS = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}
PER_ACCOUNT = {"invoices": 25, "bills": 15, "bookingProposals": 10}
API_KEY = "emulator-api-key"
S3_KEY_ID, S3_SECRET = "e2e-access-key", "e2e-secret-key"  # moto accepts any pair
MUTATED_ACCOUNTS = 6
MUTATION = {"update": 3, "create": 2}

MOTO_SERVER = """
import signal, sys, threading
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"http://{host}:{port}")
import os; os.replace(sys.argv[1] + ".tmp", sys.argv[1])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
server.stop()
"""

# Read in Dagster's environment: the runs tagged e2e/run=<name> for each name in argv[2:]
# (after waiting for them to end if argv[1] is "wait"), each with its status, when it was
# submitted, started and ended, and each step's outcome.
RUN_REPORT = """
import json, sys, time
from dagster import DagsterEventType, DagsterInstance, RunsFilter
instance = DagsterInstance.get()

def found(name):
    return instance.get_run_records(RunsFilter(tags={"e2e/run": name}), limit=1)[0]

deadline = time.monotonic() + 900
while sys.argv[1] == "wait" and time.monotonic() < deadline:
    if all(found(name).dagster_run.is_finished for name in sys.argv[2:]):
        break
    time.sleep(0.5)

def events(run, kind):
    return [r.event_log_entry.dagster_event
            for r in instance.get_records_for_run(run.run_id, of_type=kind).records]

def values(metadata):
    return {k: getattr(v, "value", str(v)) for k, v in metadata.items()}

def report(name):
    record = found(name)
    run = record.dagster_run
    steps = {
        s.step_key: {"status": s.status.value if s.status else None,
                     "start": s.start_time, "end": s.end_time}
        for s in instance.get_run_step_stats(run.run_id)
    }
    failures = {}
    for event in events(run, DagsterEventType.STEP_FAILURE):
        user = event.step_failure_data.user_failure_data
        failures[event.step_key] = {
            "description": user.description if user else str(event.step_failure_data.error),
            "metadata": values(user.metadata if user else {}),
        }
    outputs = {  # step -> the metadata of its output (counts, reconciled streams)
        event.step_key: values(event.step_output_data.metadata)
        for event in events(run, DagsterEventType.STEP_OUTPUT)
    }
    logs = {}  # step -> the stderr Dagster captured for it (the UI's log view)
    for event in events(run, DagsterEventType.LOGS_CAPTURED):
        data = event.event_specific_data
        for step in data.step_keys:
            logs[step] = (
                f"{instance.storage_directory()}/{run.run_id}/compute_logs/{data.file_key}.err"
            )
    return {"run_id": run.run_id, "status": run.status.value, "steps": steps,
            "failures": failures, "outputs": outputs, "logs": logs,
            "created": record.create_timestamp.timestamp(), "start": record.start_time,
            "end": record.end_time}

print(json.dumps({name: report(name) for name in sys.argv[2:]}, default=str))
"""

# The overlap check of the ops, on an instance of its own (in memory): the reconcile op,
# called while a shards run is in progress (as one started with `dagster job execute`, which
# bypasses the queue, or one whose worker died, is), must fail before starting meltano; with
# no such run it goes on (and fails to start the meltano_bin that does not exist).
OVERLAP_CHECK = """
import importlib.util, sys
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, Failure, build_op_context
spec = importlib.util.spec_from_file_location("definitions", sys.argv[1])
definitions = importlib.util.module_from_spec(spec)
spec.loader.exec_module(definitions)

def call_reconcile(instance):
    meltano = definitions.MeltanoShards(meltano_bin="/nonexistent/meltano")
    context = build_op_context(instance=instance, resources={"meltano": meltano})
    try:
        definitions.reconcile(context)
    except Failure as failure:
        return failure.description
    except FileNotFoundError:
        return "started meltano"
    return "returned"

with DagsterInstance.ephemeral() as instance:
    alone = call_reconcile(instance)
    instance.add_run(DagsterRun(job_name="maesn_qonto_shards", run_id="a-shards-run",
                                status=DagsterRunStatus.STARTED, tags=definitions.TABLES_TAG))
    beside = call_reconcile(instance)
print(alone)
print(beside)
"""


class CheckFailed(AssertionError):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def base_env() -> dict[str, str]:
    """This environment, less PYTHONDONTWRITEBYTECODE: bytecode is written once into the tool
    environments (as the quick start does), instead of every Dagster and Meltano module being
    compiled again in every process."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wait_for_file(path: Path, process: subprocess.Popen[Any], what: str) -> str:
    for _ in range(300):
        if path.exists():
            return path.read_text().strip()
        check(process.poll() is None, f"{what} exited with {process.returncode}")
        time.sleep(0.1)
    raise CheckFailed(f"{what} did not start in 30 s")


def http(method: str, url: str, body: bytes | None = None) -> bytes:
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310  (loopback)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.read()


class S3:
    """Just enough S3 for the checks, unsigned (moto does not check signatures)."""

    NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

    def __init__(self, endpoint: str, bucket: str) -> None:
        self.endpoint, self.bucket = endpoint, bucket

    def create_bucket(self) -> None:
        http("PUT", f"{self.endpoint}/{self.bucket}")

    def keys(self) -> list[str]:
        xml = http("GET", f"{self.endpoint}/{self.bucket}?list-type=2")
        return sorted(e.text or "" for e in ET.fromstring(xml).iter(f"{self.NS}Key"))  # noqa: S314

    def get_json(self, key: str) -> Any:
        return json.loads(http("GET", f"{self.endpoint}/{self.bucket}/{urllib.parse.quote(key)}"))


# --------------------------------------------------------------------------- the data


def truth_of(emulator: Emulator, keys: dict[str, str]) -> dict[tuple[str, str], dict[str, str]]:
    """(stream, label) -> {id: updatedDate as a UTC instant} as the emulator serves it now."""
    return {
        (stream, label): {
            record_id: instant(record["updatedDate"])
            for record_id, record in emulator.truth(resource, account=key).items()
        }
        for stream, resource in STREAMS.items()
        for label, key in keys.items()
    }


def instant(value: str | None) -> str:
    return "" if value is None else parse_timestamp(value).isoformat()


def loaded(run_dir: Path, shards: int) -> dict[int, dict[tuple[str, str], list[dict[str, Any]]]]:
    """shard -> (stream, label) -> the records target-jsonl wrote in that shard's directory."""
    by_shard: dict[int, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for shard in range(shards):
        rows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for stream in STREAMS:
            for path in sorted((run_dir / f"shard-{shard}").glob(f"{stream}-*.jsonl")):
                for line in path.read_text(encoding="utf-8").splitlines():
                    record = json.loads(line)
                    rows[stream, record["account_label"]].append(record)
        by_shard[shard] = rows
    return by_shard


def union(
    *runs: dict[int, dict[tuple[str, str], list[dict[str, Any]]]],
) -> dict[tuple[str, str], dict[str, str]]:
    """(stream, label) -> {id: newest updatedDate} over every shard of every run."""
    merged: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for run in runs:
        for rows in run.values():
            for where, records in rows.items():
                for record in records:
                    seen = instant(record["updatedDate"])
                    merged[where][record["id"]] = max(merged[where].get(record["id"], ""), seen)
    return merged


def count(run: dict[int, dict[tuple[str, str], list[dict[str, Any]]]]) -> int:
    return sum(len(records) for rows in run.values() for records in rows.values())


def bookmarks(state: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(stream, label) -> the bookmark (an instant) in a Meltano state document."""
    singer = state.get("completed", {}).get("singer_state", {})
    return {
        (stream, p["context"]["account_label"]): instant(p["replication_key_value"])
        for stream in STREAMS
        for p in singer.get("bookmarks", {}).get(stream, {}).get("partitions", [])
        if p.get("replication_key_value")
    }


def bookmarked_labels(state: dict[str, Any]) -> dict[str, set[str]]:
    """stream -> the account labels with a bookmark in a Meltano state document."""
    marks = bookmarks(state)
    return {stream: {label for (s, label) in marks if s == stream} for stream in STREAMS}


# --------------------------------------------------------------------------- the warehouse

SCHEMA = "qonto"  # target-postgres: one schema for every shard and the reconcile
LINES = {  # line-item table -> (its parent-id column, its parent table)
    "invoice_line_items": ("invoice_id", "invoices"),
    "bill_line_items": ("bill_id", "bills"),
    "booking_proposal_line_items": ("booking_proposal_id", "booking_proposals"),
}
TABLES = [*STREAMS, *LINES]
CHANGED_ACCOUNTS = 3  # per shard: records updated and deleted in every stream
CHANGE = {"update": 2, "delete": 2}
Key = tuple[str, str, int]  # (account label, record id or parent id, line position; 0: parent)


@dataclass(frozen=True)
class Row:
    version: int | None
    retired_at: float | None  # _sdc_deleted_at, seconds since the epoch; None: live
    updated: str  # a parent's updatedDate as an instant; "" for a line


def warehouse(pg: pg.Server) -> dict[str, dict[Key, Row]]:
    """Every row of the six tables, live or retired, by key."""
    tables: dict[str, dict[Key, Row]] = {}
    for table in TABLES:
        key, position, updated = (
            ("id", "0", '"updatedDate"')
            if table in STREAMS
            else (LINES[table][0], "position", "null")
        )
        sql = (
            f"select row_to_json(t)::text from (select account_label as label, {key} as id, "  # noqa: S608
            f"{position} as position, {updated} as updated, _sdc_table_version as version, "
            f'extract(epoch from _sdc_deleted_at) as retired_at from "{SCHEMA}"."{table}") t'
        )
        rows: dict[Key, Row] = {}
        for line in pg.psql(sql).splitlines():
            if line:
                row = json.loads(line)
                where = (row["label"], row["id"], row["position"])
                check(where not in rows, f"{table}: two rows for {where}")
                rows[where] = Row(row["version"], row["retired_at"], instant(row["updated"]))
        tables[table] = rows
    return tables


def source(emulator: Emulator, keys: dict[str, str]) -> dict[str, dict[Key, str]]:
    """What the six tables must hold live: every record and line the emulator serves now,
    with each record's updatedDate as an instant."""
    tables: dict[str, dict[Key, str]] = {table: {} for table in TABLES}
    for table, resource in STREAMS.items():
        line_table = next(name for name, (_, parent) in LINES.items() if parent == table)
        for label, key in keys.items():
            for record_id, record in emulator.truth(resource, account=key).items():
                tables[table][label, record_id, 0] = instant(record["updatedDate"])
                for position in range(1, len(record.get("lineItems") or []) + 1):
                    tables[line_table][label, record_id, position] = ""
    return tables


def live(rows: dict[Key, Row]) -> dict[Key, str]:
    return {key: row.updated for key, row in rows.items() if row.retired_at is None}


# --------------------------------------------------------------------------- the test


class Harness:
    def __init__(self, args: Options, work: Path, stack: contextlib.ExitStack) -> None:
        self.args, self.work, self.stack = args, work, stack
        self.results: list[tuple[bool, str]] = []
        self.installs: dict[str, float] = {}
        self.extra_env: dict[str, str] = {}  # the deletions' target and accounts

    # ---- setup

    def install_tools(self) -> None:
        started = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            futures = {req: pool.submit(tool_python, req) for req in (MELTANO, DAGSTER, MOTO)}
            pythons = {req: future.result() for req, future in futures.items()}
        self.installs = {"tool environments": time.monotonic() - started}
        self.meltano = str(Path(pythons[MELTANO][0]).parent / "meltano")
        self.dagster = str(Path(pythons[DAGSTER][0]).parent / "dagster")
        self.dagster_python = pythons[DAGSTER][0]
        self.moto_python = pythons[MOTO][0]
        print(
            "tools: "
            + ", ".join(f"{req} {seconds:.1f} s" for req, (_, seconds) in pythons.items())
            + " (uv tool environments, in parallel)"
        )

    def start_s3(self) -> None:
        url_file = self.work / "moto.url"
        log = self.stack.enter_context((self.work / "moto.log").open("w"))
        process = subprocess.Popen(
            [self.moto_python, "-c", MOTO_SERVER, str(url_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=base_env(),
        )
        self.stack.callback(stop, process)
        self.s3_url = wait_for_file(url_file, process, "moto's S3 server")
        self.s3 = S3(self.s3_url, BUCKET)
        self.s3.create_bucket()
        print(f"S3 (moto) at {self.s3_url}, bucket {BUCKET}")

    def start_emulator(self) -> None:
        keys = many_accounts(self.args.accounts)
        self.emulator = Emulator(
            accounts=keys, account_counts=dict.fromkeys(keys, PER_ACCOUNT), counts=PER_ACCOUNT
        )
        self.emulator.start()
        self.stack.callback(self.emulator.close)
        # Labels are not keys: company-0000 … keyed by a stable hash to a shard.
        self.keys = {f"company-{i:04d}": key for i, key in enumerate(sorted(keys))}
        accounts = [{"label": label, "account_key": key} for label, key in self.keys.items()]
        self.accounts_file = self.work / "accounts.json"  # as a secret manager would write it
        self.accounts_file.write_text(json.dumps(accounts))
        self.accounts_file.chmod(0o600)
        self.shard = {label: shard_of(label, self.args.shards) for label in self.keys}
        sizes = Counter(self.shard.values())
        print(
            f"emulator at {self.emulator.url}: {len(keys)} accounts x "
            f"{sum(PER_ACCOUNT.values())} records; shards: "
            + ", ".join(f"{shard}: {sizes[shard]} accounts" for shard in sorted(sizes))
        )

    def use_postgres(self, postgres: Postgres) -> None:
        self.pg = postgres.server
        print(f"PostgreSQL {postgres.version} at 127.0.0.1:{self.pg.port}, schema {SCHEMA}")

    def environment(self) -> dict[str, str]:
        """What the deployment puts in the Dagster process's environment: secrets included."""
        home = self.work / "dagster-home"
        home.mkdir(exist_ok=True)
        (home / "dagster.yaml").write_text(
            "telemetry:\n  enabled: false\n"
            "run_queue:\n  dequeue_interval_seconds: 1\n"  # the daemon's queue, checked often
            + INSTANCE_SETTINGS.read_text()  # the shipped run tag limit: what is tested
        )
        return {
            **base_env(),
            "DAGSTER_HOME": str(home),
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "MAESN_SHARD_COUNT": str(self.args.shards),
            # The tap's secrets: never on a command line, never in the run config.
            "TAP_MAESN_QONTO_API_KEY": API_KEY,
            "TAP_MAESN_QONTO_ACCOUNTS_FILE": str(self.accounts_file),
            "TAP_MAESN_QONTO_API_URL": self.emulator.url,
            "TAP_MAESN_QONTO_MAX_RETRIES": "1",
            "TAP_MAESN_QONTO_MAX_RETRY_SECONDS": "5",
            # Meltano's state in S3 (moto), with credentials given as Meltano settings, which
            # is what makes Meltano's S3 client use the endpoint URL.
            "MELTANO_STATE_BACKEND_URI": f"s3://{BUCKET}/{PREFIX}",
            "MELTANO_STATE_BACKEND_S3_ENDPOINT_URL": self.s3_url,
            "MELTANO_STATE_BACKEND_S3_AWS_ACCESS_KEY_ID": S3_KEY_ID,
            "MELTANO_STATE_BACKEND_S3_AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            # Hermetic: no AWS config of this machine, no instance-metadata probe, and every
            # S3 client that would not use the endpoint above still talks to moto (boto3 reads
            # these; Meltano 4.4.1 passes its endpoint_url only with its own key settings).
            "AWS_ACCESS_KEY_ID": S3_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_ENDPOINT_URL": self.s3_url,
            "AWS_ENDPOINT_URL_S3": self.s3_url,
            "AWS_CONFIG_FILE": str(self.work / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.work / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
            **self.extra_env,
        }

    def install_plugins(self) -> None:
        started = time.monotonic()
        done = subprocess.run(
            [self.meltano, "install", TARGET, "target-postgres", "tap-maesn-qonto"],
            cwd=ROOT,
            env={
                **self.environment(),
                "MELTANO_DATABASE_URI": f"sqlite:///{self.work}/install.db",
            },
            capture_output=True,
            text=True,
            check=False,
        )
        check(done.returncode == 0, f"meltano install failed: {done.stderr[-3000:]}")
        self.installs["meltano install"] = time.monotonic() - started
        print(
            f"meltano install tap-maesn-qonto {TARGET} target-postgres: "
            f"{time.monotonic() - started:.1f} s"
        )

    # ---- one Dagster run

    def run_job(self, number: int) -> dict[str, Any]:
        """One run of the shards job to target-jsonl with ``dagster job execute``, waited for."""
        started = time.monotonic()
        process, run_dir = self.start_job(f"run-{number}", JOB, TARGET, "execute")
        try:
            process.wait(timeout=900)
        finally:
            stop_group(process)
        return self.report(
            f"run-{number}",
            f"run {number}: dagster job execute exit {process.returncode}",
            exit_code=process.returncode,
            seconds=time.monotonic() - started,
            dir=run_dir,
        )

    def start_job(
        self, name: str, job: str, target: str, verb: str, **env: str
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """``dagster job execute`` (runs it here, bypassing the queue) or ``dagster job launch``
        (submits it to the queue) of ``job`` as run ``name`` (its e2e/run tag)."""
        run_dir = self.work / name
        for shard in range(self.args.shards):
            (run_dir / f"shard-{shard}").mkdir(parents=True)
        shard_env = {
            "target-jsonl": {"TARGET_JSONL_DESTINATION_PATH": str(run_dir / "shard-{shard}")},
            "target-postgres": {},  # one schema for every shard and the reconcile
        }[target]
        run_config = {
            "resources": {
                "meltano": {
                    "config": {
                        "project_dir": str(ROOT),
                        "meltano_bin": self.meltano,
                        "target": target,
                        "environment": ENVIRONMENT,
                        # One output directory and one Meltano system directory (run files,
                        # system database) per shard and run, as on separate ephemeral
                        # machines: the only state a run can find is the one in S3.
                        "shard_env": shard_env,
                        "shard_sys_dir": str(run_dir / "meltano-shard-{shard}"),
                    }
                }
            }
        }
        config_file = run_dir / "run_config.yaml"
        config_file.write_text(json.dumps(run_config, indent=2))  # JSON is YAML
        command = [self.dagster, "job", verb, "-f", str(DEFINITIONS), "-j", job]
        command += ["-c", str(config_file), "--tags", json.dumps({"e2e/run": name})]
        with (run_dir / "dagster.log").open("w") as log:
            # Its own process group: a cancelled test stops Dagster's step processes and
            # their meltano and tap processes too, not only the CLI.
            process = subprocess.Popen(
                command,
                cwd=self.work,
                env={**self.environment(), **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return process, run_dir

    def report(self, name: str, what: str, **extra: Any) -> dict[str, Any]:
        """Run ``name`` as Dagster recorded it (RUN_REPORT), printed in one line."""
        report = json.loads(self.dagster_run(RUN_REPORT, "now", name))[name]
        report.update(extra)
        show(report, what)
        return report

    def dagster_run(self, script: str, *args: str) -> str:
        """``script`` run by the Python of Dagster's environment, on the test's instance."""
        return subprocess.run(
            [self.dagster_python, "-c", script, *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def record(self, name: str, test: Callable[[], str]) -> None:
        try:
            detail = test()
        except (CheckFailed, AssertionError, KeyError, ValueError, OSError) as problem:
            self.results.append((False, f"{name}: {problem}"))
            print(f"FAIL  {name}: {problem}")
        else:
            self.results.append((True, f"{name}: {detail}"))
            print(f"ok    {name}: {detail}")

    # ---- the scenario

    def scenario(self) -> None:
        shards = self.args.shards
        self.labels = list(self.keys)
        self.failed_label = self.labels[len(self.labels) // 3]
        self.state_key = {
            shard: f"{PREFIX}/{ENVIRONMENT}:tap-maesn-qonto-to-{TARGET}:shard-{shard}/state.json"
            for shard in range(shards)
        }
        self.members = {s: {lb for lb in self.labels if self.shard[lb] == s} for s in range(shards)}
        if not self.args.deletions_only:
            self.run_1()
            self.run_2()
        self.deletions()

    def run_1(self) -> None:
        """One account rejected: its shard's step fails, the state of the others is kept."""
        shards, labels, failed_label = self.args.shards, self.labels, self.failed_label
        failed_shard, state_key, members = self.shard[failed_label], self.state_key, self.members
        http(
            "POST",
            f"{self.emulator.url}/_emulator/configure",
            json.dumps({"failing_accounts": {self.keys[failed_label]: "401"}}).encode(),
        )
        run1 = self.run_job(1)
        truth1 = truth_of(self.emulator, self.keys)
        rows1 = loaded(run1["dir"], shards)

        def failed_step() -> str:
            check(run1["exit_code"] != 0, "dagster job execute exited 0 for a failed run")
            check(run1["status"] == "FAILURE", f"run status {run1['status']}")
            for shard in range(shards):
                want = "FAILURE" if shard == failed_shard else "SUCCESS"
                got = run1["steps"].get(f"shard_{shard}", {}).get("status")
                check(got == want, f"step shard_{shard} is {got}, expected {want}")
            failure = run1["failures"][f"shard_{failed_shard}"]
            check(failed_label in failure["description"], f"not named: {failure['description']}")
            return f"shard_{failed_shard} FAILURE: {failure['description']!r}"

        def parallel() -> str:
            spans = [
                (run1["steps"][f"shard_{s}"]["start"], run1["steps"][f"shard_{s}"]["end"])
                for s in range(shards)
            ]
            overlap = min(end for _, end in spans) - max(start for start, _ in spans)
            check(overlap > 0, f"the steps did not overlap: {spans}")
            return f"{shards} steps overlapped for {overlap:.1f} s (multiprocess executor)"

        def state_written_before_failure() -> str:
            # What Meltano did, as its own log lines say, in the step log Dagster captured.
            log = Path(run1["logs"][f"shard_{failed_shard}"]).read_text(encoding="utf-8")
            lines = [
                "Writing state to AWS S3",
                "Incremental state has been updated",
                "Extractor failed",
            ]
            where = [log.find(line) for line in lines]
            check(-1 not in where and where == sorted(where), f"not in this order: {lines}")
            return "Meltano's log for the step: " + " -> ".join(repr(x) for x in lines)

        def states_in_bucket() -> str:
            keys = self.s3.keys()
            for shard in range(shards):
                check(state_key[shard] in keys, f"{state_key[shard]} not in the bucket: {keys}")
            return "objects: " + ", ".join(keys)

        def failed_shard_state_kept() -> str:
            state = self.s3.get_json(state_key[failed_shard])
            healthy = members[failed_shard] - {failed_label}
            for stream, got in bookmarked_labels(state).items():
                check(
                    got == healthy,
                    f"{stream}: bookmarks for {len(got)} accounts, "
                    f"expected {len(healthy)} (missing {sorted(healthy - got)[:5]}, "
                    f"extra {sorted(got - healthy)[:5]})",
                )
            return (
                f"after the failed run, shard-{failed_shard}'s state has bookmarks for its "
                f"{len(healthy)} healthy accounts in each stream, none for {failed_label}"
            )

        def run1_equals_truth() -> str:
            got = union(rows1)
            for (stream, label), ids in truth1.items():
                if label == failed_label:
                    check(not got.get((stream, label)), f"{label} was loaded although it failed")
                    continue
                check(got.get((stream, label)) == ids, f"{stream} of {label} differs from truth")
            for shard, rows in rows1.items():
                strays = {label for (_, label) in rows if self.shard[label] != shard}
                check(
                    not strays, f"shard {shard} loaded other shards' accounts: {sorted(strays)[:5]}"
                )
            return (
                f"{count(rows1)} records, union of {shards} shard directories = truth for "
                f"{len(labels) - 1} accounts (ids and updatedDate); each account in its shard only"
            )

        self.record("run 1: a failed account fails its shard's step", failed_step)
        self.record("run 1: shards in parallel", parallel)
        self.record("run 1: Meltano saved the failed run's state", state_written_before_failure)
        self.record("run 1: both shards' states in S3", states_in_bucket)
        self.record("run 1: failed shard's state kept", failed_shard_state_kept)
        self.record("run 1: rows = truth", run1_equals_truth)
        self.truth1, self.rows1 = truth1, rows1
        self.bookmarks1: dict[tuple[str, str], str] = {}
        for shard in range(shards):
            with contextlib.suppress(OSError, ValueError):
                self.bookmarks1.update(bookmarks(self.s3.get_json(state_key[shard])))

    def change_some_accounts(
        self,
    ) -> tuple[
        list[str], dict[tuple[str, str], dict[str, str]], dict[tuple[str, str], dict[str, str]]
    ]:
        """Clear the failure, update and create records in a few accounts (both shards).

        Returns the accounts changed, the truth now, and the records that changed."""
        url = self.emulator.url
        http("POST", f"{url}/_emulator/configure", json.dumps({"failing_accounts": {}}).encode())
        others = [label for label in self.labels if label != self.failed_label]
        mutated = others[:: len(others) // MUTATED_ACCOUNTS][:MUTATED_ACCOUNTS]
        for label in mutated:
            for resource in STREAMS.values():
                body = {"resource": resource, "account": self.keys[label], **MUTATION}
                http("POST", f"{url}/_emulator/mutate", json.dumps(body).encode())
        truth2 = truth_of(self.emulator, self.keys)
        changed = {
            where: {i: u for i, u in ids.items() if self.truth1[where].get(i) != u}
            for where, ids in truth2.items()
        }
        return mutated, truth2, changed

    def resumed_from_bookmarks(
        self,
        rows2: dict[int, dict[tuple[str, str], list[dict[str, Any]]]],
        changed: dict[tuple[str, str], dict[str, str]],
        mutated: list[str],
    ) -> str:
        """Every record run 2 read again (not changed) for an account that did not fail lies
        inside the lookback window (600 s) before that account's bookmark from run 1, as read
        back from S3: the run started from the stored state, not from start_date."""
        lookback = dt.timedelta(seconds=600)
        reread = 0
        healthy = [label for label in self.labels if label != self.failed_label]
        for label in healthy:
            for stream in STREAMS:
                where = (stream, label)
                mark = dt.datetime.fromisoformat(self.bookmarks1[where]) - lookback
                for record in rows2[self.shard[label]].get(where, []):
                    if record["id"] in changed[where]:
                        continue
                    seen = dt.datetime.fromisoformat(instant(record["updatedDate"]))
                    check(seen >= mark, f"{where}: {record['id']} is older than the window")
                    reread += 1
        most = max(
            sum(len(rows2[self.shard[label]].get((s, label), [])) for s in STREAMS)
            for label in healthy
            if label not in mutated
        )
        check(most < sum(PER_ACCOUNT.values()), f"an unchanged account was read in full ({most})")
        return (
            f"{len(healthy)} accounts resumed from their S3 bookmarks: the {reread} records "
            f"read again all within the 600 s lookback window (at most {most} per unchanged "
            "account)"
        )

    def run_2(self) -> None:
        """The failure cleared and a few accounts changed: incremental, complete."""
        shards, labels, failed_label = self.args.shards, self.labels, self.failed_label
        state_key, members, rows1 = self.state_key, self.members, self.rows1
        mutated, truth2, changed = self.change_some_accounts()
        run2 = self.run_job(2)
        rows2 = loaded(run2["dir"], shards)
        got2 = union(rows2)

        def run2_succeeds() -> str:
            check(run2["exit_code"] == 0, f"dagster job execute exited {run2['exit_code']}")
            check(run2["status"] == "SUCCESS", f"run status {run2['status']}")
            bad = {k: v["status"] for k, v in run2["steps"].items() if v["status"] != "SUCCESS"}
            check(not bad, f"steps not successful: {bad}")
            return f"run SUCCESS, {shards} steps SUCCESS"

        def incremental() -> str:
            n1, n2 = count(rows1), count(rows2)
            full = sum(len(truth2[stream, failed_label]) for stream in STREAMS)
            check(n2 * 5 < n1, f"run 2 read {n2} records, run 1 {n1}: not incremental")
            return f"run 2 read {n2} records (run 1: {n1}; {full} of them the failed account's)"

        def changes_arrive() -> str:
            total = 0
            for where, ids in changed.items():
                for record_id, updated in ids.items():
                    check(
                        got2.get(where, {}).get(record_id) == updated,
                        f"{where}: changed record {record_id} missing in run 2",
                    )
                    total += 1
            expected = len(mutated) * len(STREAMS) * sum(MUTATION.values())
            check(total == expected, f"{total} changed records, expected {expected}")
            return f"all {total} records updated or created in {len(mutated)} accounts arrived"

        def failed_account_in_full() -> str:
            for stream in STREAMS:
                where = (stream, failed_label)
                check(got2.get(where) == truth2[where], f"{stream} of {failed_label} incomplete")
            n = sum(len(truth2[stream, failed_label]) for stream in STREAMS)
            return f"{failed_label} read in full in run 2 ({n} records)"

        def union_equals_truth() -> str:
            got = union(rows1, rows2)
            for where, ids in truth2.items():
                check(got.get(where) == ids, f"{where[0]} of {where[1]} differs from truth")
            keys = self.s3.keys()
            for shard in range(shards):
                state = self.s3.get_json(state_key[shard])
                for stream, has in bookmarked_labels(state).items():
                    check(has == members[shard], f"shard-{shard} {stream}: bookmarks incomplete")
            return (
                f"runs 1 + 2 (latest per id) = truth for all {len(labels)} accounts; "
                f"{len(keys)} state objects, every account bookmarked"
            )

        self.record("run 2: both steps succeed", run2_succeeds)
        self.record("run 2: incremental from the S3 state", incremental)
        self.record("run 2: changed records arrive", changes_arrive)
        self.record("run 2: the failed account is read in full", failed_account_in_full)
        self.record(
            "run 2: healthy accounts resume",
            lambda: self.resumed_from_bookmarks(rows2, changed, mutated),
        )
        self.record("run 2: rows = truth", union_equals_truth)

    # ---- deletions: shards load into PostgreSQL, the reconcile job retires what is gone

    def deletions(self) -> None:
        """Runs 3-5 through target-postgres, one schema for every shard and the reconcile.

        Run 3, the shards job, loads every account. Then, at the source, records are updated
        and deleted in a few accounts of each shard, an invoice loses lines, and in one
        otherwise unchanged account per shard a bill moves away (to Qonto's document review:
        it is no longer listed, with no event). Run 4, the shards job again, and run 5, the
        reconcile job, are submitted together to Dagster's queue: run 5 must wait for run 4.
        """
        # The first accounts of the list: a deployment of its own, whose reconcile reads them all.
        self.pg_keys = dict(list(self.keys.items())[: self.args.deletion_accounts])
        accounts_file = self.work / "accounts-postgres.json"
        accounts_file.write_text(
            json.dumps([{"label": lb, "account_key": key} for lb, key in self.pg_keys.items()])
        )
        accounts_file.chmod(0o600)
        self.extra_env = {
            "TAP_MAESN_QONTO_ACCOUNTS_FILE": str(accounts_file),
            "TARGET_POSTGRES_PORT": str(self.pg.port),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": SCHEMA,
        }
        parts = [f"shard-{shard}" for shard in range(self.args.shards)] + ["reconcile"]
        self.pg_state_key = {
            part: f"{PREFIX}/{ENVIRONMENT}:tap-maesn-qonto-to-target-postgres:{part}/state.json"
            for part in parts
        }
        overlap_check = subprocess.Popen(  # meanwhile: it uses an instance of its own
            [self.dagster_python, "-c", OVERLAP_CHECK, str(DEFINITIONS)],
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.stack.enter_context(overlap_check)  # waited for and closed, whatever happens
        self.stack.callback(stop, overlap_check)
        self.run_3()
        # Only runs 4 and 5 need the queue. Started now, not before run 3: the first run
        # creates Dagster's storage, which two processes must not create at once.
        self.start_daemon()
        self.record("the ops refuse to start beside another run", lambda: refused(overlap_check))
        changes = self.change_the_source()
        self.runs_4_and_5(changes)

    def start_daemon(self) -> None:
        """``dagster-daemon run``: the queue that launches submitted runs, one at a time for
        runs tagged maesn-qonto/tables (the shipped dagster.yaml, in DAGSTER_HOME)."""
        log = self.stack.enter_context((self.work / "dagster-daemon.log").open("w"))
        process = subprocess.Popen(
            [str(Path(self.dagster).parent / "dagster-daemon"), "run", "-f", str(DEFINITIONS)],
            cwd=self.work,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.stack.callback(stop_group, process)

    def execute(self, name: str, job: str, **env: str) -> dict[str, Any]:
        started = time.monotonic()
        process, _ = self.start_job(name, job, "target-postgres", "execute", **env)
        try:
            process.wait(timeout=900)
        finally:
            stop_group(process)
        return self.report(
            name,
            f"{name.replace('-', ' ')} ({job}): dagster job execute exit {process.returncode}",
            exit_code=process.returncode,
            seconds=time.monotonic() - started,
        )

    def run_3(self) -> None:
        # Into an empty schema one shard at a time: shards creating the same table at once
        # collide in PostgreSQL (README: "The first run into an empty schema").
        run3 = self.execute("run-3", JOB, MAESN_MAX_PARALLEL_SHARDS="1")
        self.truth3, self.rows3 = source(self.emulator, self.pg_keys), warehouse(self.pg)

        def loaded() -> str:
            check(run3["status"] == "SUCCESS", f"run status {run3['status']}")
            for table in TABLES:
                rows = self.rows3[table]
                check(live(rows) == self.truth3[table], f"{table}: live rows differ from truth")
                check(len(live(rows)) == len(rows), f"{table}: rows retired by a shard run")
            return (
                f"{sum(len(rows) for rows in self.rows3.values())} rows in 6 tables = the "
                f"source, for {len(self.pg_keys)} accounts; none retired"
            )

        versions: dict[tuple[str, int], set[int | None]] = defaultdict(set)
        for table, rows in self.rows3.items():
            for (label, _, _), row in rows.items():
                versions[table, self.shard[label]].add(row.version)
        self.shard_versions = versions  # (table, shard) -> the versions its rows carry

        def versioned() -> str:
            for (table, shard), found in versions.items():
                check(
                    len(found) == 1 and None not in found,
                    f"{table} of shard {shard}: versions {found}, expected one, not NULL",
                )
            keys = self.s3.keys()
            for part in self.pg_state_key:
                if part != "reconcile":
                    check(self.pg_state_key[part] in keys, f"no state for {part} in S3")
            return (
                "every row carries its shard's table version (one per shard and table, none "
                "NULL), so a reconcile can retire it; both shards' states in S3"
            )

        self.record("run 3: shards load PostgreSQL", loaded)
        self.record("run 3: shard rows carry versions", versioned)

    def change_the_source(self) -> dict[str, Any]:
        """Updates and deletions in CHANGED_ACCOUNTS accounts of each shard, lines removed
        from one invoice, and one bill moved away in an otherwise unchanged account."""
        by_shard = {s: sorted(m & set(self.pg_keys)) for s, m in self.members.items()}
        changed = [label for members in by_shard.values() for label in members[:CHANGED_ACCOUNTS]]
        moved = [members[CHANGED_ACCOUNTS] for members in by_shard.values()]
        for label in changed:
            for resource in STREAMS.values():
                self.emulator.mutate(resource, **CHANGE, account=self.keys[label])
        shrunk = ""
        for label in changed:
            with contextlib.suppress(StopIteration):  # an invoice of 3 lines and one of 1
                record_id = self.emulator.shrink_line_items(
                    "invoices", before=3, after=1, account=self.keys[label]
                )
                shrunk = f"{label} invoice {record_id}: 3 lines -> 1"
                break
        for label in moved:
            self.emulator.mutate("bills", delete=1, account=self.keys[label])
        print(
            f"source: {CHANGE} per stream in {len(changed)} accounts ({CHANGED_ACCOUNTS} per "
            f"shard); {shrunk or 'no invoice could be shrunk'}; one bill moved away in "
            f"{', '.join(moved)}"
        )
        check(shrunk, "no invoice of 3 lines to shrink")
        return {"changed": changed, "moved": moved}

    def queued(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Runs 4 (shards) and 5 (reconcile) submitted to the queue one after the other."""
        started = time.monotonic()
        for name, job in (("run-4", JOB), ("run-5", RECONCILE_JOB)):
            process, run_dir = self.start_job(name, job, "target-postgres", "launch")
            check(process.wait(timeout=300) == 0, f"dagster job launch failed: {run_dir}")
        reports = json.loads(self.dagster_run(RUN_REPORT, "wait", "run-4", "run-5"))
        show(reports["run-4"], f"run 4 ({JOB}, queued)")
        show(reports["run-5"], f"run 5 ({RECONCILE_JOB}, queued)")
        print(f"runs 4 and 5: submitted, and ended {time.monotonic() - started:.1f} s later")
        return reports["run-4"], reports["run-5"]

    def runs_4_and_5(self, changes: dict[str, Any]) -> None:
        run4, run5 = self.queued()
        truth, rows = source(self.emulator, self.pg_keys), warehouse(self.pg)
        activated = {  # the newest version in each table: the reconcile's, if it ran
            table: max((row.version or 0 for row in rows[table].values()), default=0)
            for table in TABLES
        }

        def one_after_the_other() -> str:
            for run in (run4, run5):
                check(run["status"] == "SUCCESS", f"a queued run ended {run['status']}")
            check(
                run5["created"] < run4["end"] <= run5["start"],
                f"run 5 submitted at {run5['created']:.1f}, run 4 ended at {run4['end']:.1f}, "
                f"run 5 started at {run5['start']:.1f}",
            )
            waited = run5["start"] - run5["created"]
            return (
                f"run 5 (reconcile) waited {waited:.1f} s in the queue and started "
                f"{run5['start'] - run4['end']:.1f} s after run 4 (shards) ended"
            )

        def shards_incremental() -> str:
            read = sum(int(o.get("records", 0)) for o in run4["outputs"].values())
            total = sum(len(self.truth3[table]) for table in STREAMS)
            check(0 < read < total / 5, f"run 4 read {read} records of {total}")
            return f"run 4 read {read} records (of {total}): incremental"

        def reconciled() -> str:
            output = run5["outputs"].get("reconcile", {})
            check(
                output.get("accounts_read") == len(self.pg_keys),
                f"the reconcile read {output.get('accounts_read')} accounts",
            )
            streams = sorted(output.get("reconciled_streams") or [])
            check(streams == sorted(STREAMS), f"reconciled streams: {streams}")
            state = self.s3.get_json(self.pg_state_key["reconcile"])["completed"]["singer_state"]
            for stream in STREAMS:
                kept = {p.get("table_version") for p in state["bookmarks"][stream]["partitions"]}
                check(kept == {activated[stream]}, f"{stream}: reconcile state has {kept}")
            return (
                f"{output.get('accounts_read')} accounts read whole, {output.get('records')} "
                f"records, {', '.join(streams)} activated; its state in S3 (suffix reconcile)"
            )

        def live_equals_source() -> str:
            for table in TABLES:
                check(live(rows[table]) == truth[table], f"{table}: live rows differ from source")
                versions = {rows[table][key].version for key in truth[table]}
                check(versions == {activated[table]}, f"{table}: live rows carry {versions}")
                newest_shard = max(
                    (
                        v or 0
                        for (t, _), found in self.shard_versions.items()
                        if t == table
                        for v in found
                    ),
                    default=0,
                )
                check(activated[table] > newest_shard, f"{table}: version not above the shards'")
            return (
                f"live rows = the source in all 6 tables ({sum(map(len, truth.values()))} rows, "
                "values of updatedDate too), each with the reconcile's version"
            )

        def retired_exactly() -> str:
            lines = []
            for shard in range(self.args.shards):
                gone, kept = 0, 0
                for table in TABLES:
                    for key, row in rows[table].items():
                        if self.shard[key[0]] != shard:
                            continue
                        at_source = key in truth[table]
                        check(
                            (row.retired_at is None) == at_source,
                            f"{table} {key}: {'retired although at the source' if at_source else 'not retired'}",
                        )
                        if row.retired_at is not None:
                            check(
                                row.retired_at >= run5["start"],
                                f"{table} {key}: retired before run 5",
                            )
                            gone += 1
                        else:
                            kept += 1
                lines.append(f"shard {shard}: {gone} retired, {kept} live")
            moved = sum(
                1
                for key, row in rows["bills"].items()
                if key[0] in changes["moved"] and row.retired_at is not None
            )
            check(moved == len(changes["moved"]), f"{moved} moved bills retired")
            return (
                "every row gone at the source retired (deleted records, their lines, removed "
                f"lines, {moved} moved bills), by run 5 only, and no other: {'; '.join(lines)}"
            )

        self.record("runs 4 and 5: the queue runs them one after the other", one_after_the_other)
        self.record("run 4: shards incremental", shards_incremental)
        self.record("run 5: the reconcile read every account", reconciled)
        self.record("run 5: live rows = source", live_equals_source)
        self.record("run 5: retired = gone at the source, in every shard", retired_exactly)


def refused(overlap_check: subprocess.Popen[str]) -> str:
    """OVERLAP_CHECK's verdict: the reconcile op alone goes on, beside a shards run not."""
    output, _ = overlap_check.communicate(timeout=120)
    lines = output.strip().splitlines()
    check(overlap_check.returncode == 0 and len(lines) >= 2, f"the check failed: {output[-2000:]}")
    alone, beside = lines[-2:]
    check(alone == "started meltano", f"alone, the reconcile op did not go on: {alone}")
    check(
        beside.startswith("reconcile: not started, another run writing the same tables")
        and "a-shards-run" in beside,
        f"beside a shards run, the reconcile op was not refused: {beside}",
    )
    return f"alone it starts meltano; beside a shards run in progress: {beside[:95]!r}…"


def show(report: dict[str, Any], what: str) -> None:
    steps = ", ".join(f"{k} {v['status']}" for k, v in sorted(report["steps"].items()))
    took = f" in {report['seconds']:.1f} s" if "seconds" in report else ""
    print(f"{what}{took}; run {report['status']}; steps: {steps}")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_group(process: subprocess.Popen[Any]) -> None:
    """Stop what is left of the process group ``process`` leads (started in a session of its
    own): SIGTERM while the leader runs, then SIGKILL to any member still there after 30 s."""
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(30)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass
class Options:
    """What the script's command line chose: the size of the deployment."""

    accounts: int = int(os.environ.get("ORCHESTRATION_ACCOUNTS", "200"))
    shards: int = int(os.environ.get("ORCHESTRATION_SHARDS", "2"))
    #: The accounts of the PostgreSQL deployment (runs 3-5): the first of ``accounts``.
    deletion_accounts: int = 40
    deletions_only: bool = False


def test_shards_with_state_in_s3_and_the_reconcile_lose_nothing_and_retire_only_the_deleted(
    postgres: Postgres, tmp_path: Path
) -> None:
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        harness = Harness(Options(), tmp_path, stack)
        harness.install_tools()
        harness.start_s3()
        harness.start_emulator()
        harness.use_postgres(postgres)
        harness.install_plugins()
        harness.scenario()
    failed = [line for ok, line in harness.results if not ok]
    passed = len(harness.results) - len(failed)
    installs = " + ".join(f"{what} {s:.1f} s" for what, s in harness.installs.items())
    print(
        f"orchestration e2e: {'PASS' if not failed else 'FAIL'}: {passed} passed, "
        f"{len(failed)} failed in {time.monotonic() - started:.0f} s "
        f"(installs: {installs or 'none'})"
    )
    assert not failed, "\n".join(failed)
