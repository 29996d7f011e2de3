"""Dagster definitions: tap-maesn-qonto's connected companies read by N parallel shards,
and deleted records retired by a separate unsharded reconcile job.

    MAESN_SHARD_COUNT=4 dagster job execute -f orchestration/dagster/definitions.py -c run.yaml
    MAESN_SHARD_COUNT=4 dagster dev -f orchestration/dagster/definitions.py   # the UI

Job ``maesn_qonto_shards`` has one op per shard, ``shard_0`` … ``shard_<N-1>``, with no
dependencies between them, run in parallel by the multiprocess executor. Op ``shard_<i>`` runs

    meltano run --state-id-suffix=shard-<i> tap-maesn-qonto <target>

in the Meltano project with ``TAP_MAESN_QONTO_SHARD_INDEX=<i>`` and
``TAP_MAESN_QONTO_SHARD_COUNT=<N>`` added to its environment, so each shard reads the
accounts whose label hashes to it and keeps its own Meltano state id
(``<environment>:tap-maesn-qonto-to-<target>:shard-<i>``).

Secrets never appear on a command line or in the run config (which the UI shows): the
``meltano`` process inherits the environment of the Dagster process, where the deployment puts
``TAP_MAESN_QONTO_API_KEY``, ``TAP_MAESN_QONTO_ACCOUNTS`` (or ``TAP_MAESN_QONTO_ACCOUNTS_FILE``),
the target's password and the state backend's credentials (for S3:
``MELTANO_STATE_BACKEND_URI=s3://bucket/prefix`` with ``AWS_*`` or
``MELTANO_STATE_BACKEND_S3_*`` variables). The run config holds only non-secret settings
(resource ``meltano`` below).

Job ``maesn_qonto_reconcile`` has one op, ``reconcile``, which runs

    meltano run --state-id-suffix=reconcile tap-maesn-qonto <target>

over every account (``TAP_MAESN_QONTO_SHARD_COUNT=1``) with
``TAP_MAESN_QONTO_RECONCILE_INTERVAL_DAYS=0``: it reads every account whole and, if every read
was complete, sends ACTIVATE_VERSION, so the target retires the rows no longer listed,
whichever shard wrote them. Shards cannot do it: a shard's ACTIVATE_VERSION would retire the
rows of every other shard. Its schedule (weekly) is off until turned on, like the shards'.

The two jobs write the same tables and must never overlap: a shard's row written between the
reconcile's records and its ACTIVATE_VERSION carries an older version and would be retired
although live. Both jobs' runs carry the tag ``maesn-qonto/tables``; the instance's
``dagster.yaml`` (this folder's) limits runs with that tag to one at a time, so a run launched
while the other job runs waits in Dagster's queue. Runs that bypass the queue
(``dagster job execute``) are caught by the ops themselves: each op first looks for another
run with the tag in progress and, if there is one, fails without reading anything.

A shard whose ``meltano run`` exits non-zero is a failed step (``dagster.Failure``) whose
description and metadata name the failed accounts; the other shards run to the end. The tap
exits 1 when some accounts failed after reading every other one, and Meltano has by then
stored the state the target confirmed, so the healthy accounts resume incrementally on the
next run and the failed ones from the bookmark they had.

Shards running at the same time in one project directory (as here, on one machine) each get
their own Meltano system directory (``isolate_shards``), linked to the installed plugins:
every ``meltano run`` writes the state it hands the tap, and the catalog, to
``.meltano/run/<extractor>/``, which concurrent runs would otherwise share.

Only ``dagster`` is needed (plus ``dagster-webserver`` for ``dagster dev``); Meltano is a
separate executable (``meltano_bin``), installed with ``meltano[s3]`` for an S3 state backend.
"""

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from dagster import (
    ConfigurableResource,
    DagsterRunStatus,
    DefaultScheduleStatus,
    Definitions,
    Failure,
    MetadataValue,
    OpDefinition,
    OpExecutionContext,
    RunsFilter,
    ScheduleDefinition,
    in_process_executor,
    job,
    multiprocess_executor,
    op,
)

#: The number of shards: the job's shape, so it is read when the definitions load. Every op
#: passes it as TAP_MAESN_QONTO_SHARD_COUNT, so the ops and the tap always agree.
SHARD_COUNT = int(os.environ.get("MAESN_SHARD_COUNT", "2"))
#: How many shards run at once (default: all of them).
MAX_PARALLEL = int(os.environ.get("MAESN_MAX_PARALLEL_SHARDS", str(SHARD_COUNT)))
#: The Meltano project: this repository unless MELTANO_PROJECT_ROOT says otherwise.
DEFAULT_PROJECT = os.environ.get("MELTANO_PROJECT_ROOT", str(Path(__file__).resolve().parents[2]))
#: Where Meltano installs plugins, inside its system directory (``.meltano``).
PLUGIN_DIRS = (
    "extractors",
    "loaders",
    "mappers",
    "utilities",
    "transformers",
    "orchestrators",
    "files",
)

# The tap's lines that matter in the orchestrator (found inside Meltano's log prefix/suffix):
# its last line, `run summary: {json}`, and one line per failed read.
RUN_SUMMARY = re.compile(r"run summary: (\{.*?\})(?:\s{2,}\w+=.*)?$")
ACCOUNT_FAILED = re.compile(r"\baccount (\S+) failed: (.*?)(?:\s{2,}\w+=.*)?$")

#: The run tag of both jobs: they write the same tables, so at most one of their runs may be
#: in progress at a time (dagster.yaml's tag_concurrency_limits; the ops check it too).
TABLES_TAG = {"maesn-qonto/tables": "qonto"}
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


@dataclass(frozen=True)
class Part:
    """What one op reads: a shard, or every account for the reconcile."""

    name: str  # in logs and failures: "shard 1", "reconcile"
    suffix: str  # the Meltano state id suffix
    placeholder: str  # what {shard} becomes in shard_env and shard_sys_dir
    tap_env: dict[str, str] = field(default_factory=dict)


def shard_part(shard: int) -> Part:
    return Part(
        f"shard {shard}",
        f"shard-{shard}",
        str(shard),
        {
            "TAP_MAESN_QONTO_SHARD_INDEX": str(shard),
            "TAP_MAESN_QONTO_SHARD_COUNT": str(SHARD_COUNT),
        },
    )


RECONCILE = Part(
    "reconcile",
    "reconcile",
    "reconcile",
    {
        "TAP_MAESN_QONTO_SHARD_INDEX": "0",
        "TAP_MAESN_QONTO_SHARD_COUNT": "1",
        "TAP_MAESN_QONTO_RECONCILE_INTERVAL_DAYS": "0",
    },
)


class MeltanoShards(ConfigurableResource):
    """Where and how the shards run ``meltano run``: non-secret settings only."""

    project_dir: str = DEFAULT_PROJECT
    meltano_bin: str = "meltano"
    extractor: str = "tap-maesn-qonto"
    target: str = "target-postgres"
    #: Meltano environment (``--environment``); empty: the project's default one.
    environment: str = ""
    #: Extra non-secret variables per shard; ``{shard}`` is replaced by the shard index (by
    #: ``reconcile`` in the reconcile job), e.g.
    #: ``{"TARGET_JSONL_DESTINATION_PATH": "/data/jsonl/shard-{shard}"}``.
    shard_env: dict[str, str] = {}  # noqa: RUF012  (pydantic copies the default)
    #: Give each shard its own Meltano system directory, sharing the installed plugins. Needed
    #: whenever shards run at the same time in one project directory (this job's multiprocess
    #: executor): every ``meltano run`` writes the state it passes to the tap, and the catalog,
    #: to ``.meltano/run/<extractor>/``, so concurrent runs would read each other's files.
    isolate_shards: bool = True
    #: That directory (``{shard}`` replaced); default ``<.meltano>/shards/shard-{shard}``
    #: (``<.meltano>/shards/reconcile`` for the reconcile). It also holds the shard's system
    #: database unless MELTANO_DATABASE_URI says otherwise.
    shard_sys_dir: str = ""
    #: Seconds to wait for ``meltano`` to stop after SIGTERM when the run is cancelled.
    stop_grace_seconds: int = 120

    def command(self, part: Part) -> list[str]:
        environment = [f"--environment={self.environment}"] if self.environment else []
        return [
            self.meltano_bin,
            *environment,
            "run",
            f"--state-id-suffix={part.suffix}",
            self.extractor,
            self.target,
        ]

    def env(self, part: Part) -> dict[str, str]:
        env = {
            **os.environ,  # the secrets live here, never on the command line
            **{
                name: value.replace("{shard}", part.placeholder)
                for name, value in self.shard_env.items()
            },
            **part.tap_env,
            "NO_COLOR": "1",  # plain log lines in Dagster's captured output
        }
        if self.isolate_shards:
            env["MELTANO_SYS_DIR_ROOT"] = str(self.sys_dir(part, env))
        return env

    def sys_dir(self, part: Part, env: dict[str, str]) -> Path:
        """The part's own Meltano system directory, linked to the installed plugins."""
        shared = Path(env.get("MELTANO_SYS_DIR_ROOT") or Path(self.project_dir) / ".meltano")
        template = self.shard_sys_dir or str(shared / "shards" / part.suffix)
        own = Path(template.replace("{shard}", part.placeholder))
        own.mkdir(parents=True, exist_ok=True)
        for name in PLUGIN_DIRS:
            link, target = own / name, (shared / name).resolve()
            if target.is_dir() and not link.is_symlink() and not link.exists():
                link.symlink_to(target, target_is_directory=True)
        return own


def _check_alone(context: OpExecutionContext, part: Part) -> None:
    """Fail before reading anything if another run writing the same tables is in progress.

    Each run is marked in progress before its ops start, and each op looks after that: of two
    runs started at once, at least the second sees the first (both may fail; none reads)."""
    others = [
        f"{record.dagster_run.job_name} (run {record.dagster_run.run_id})"
        for record in context.instance.get_run_records(
            RunsFilter(statuses=IN_PROGRESS, tags=TABLES_TAG)
        )
        if record.dagster_run.run_id != context.run_id
    ]
    if others:
        raise Failure(
            description=(
                f"{part.name}: not started, another run writing the same tables is in progress: "
                f"{', '.join(others)}. Launch runs through Dagster's queue with this folder's "
                "dagster.yaml (tag_concurrency_limits) so they wait instead."
            ),
            allow_retries=False,
        )


def _run_meltano(context: OpExecutionContext, meltano: MeltanoShards, part: Part) -> dict:
    _check_alone(context, part)
    command = meltano.command(part)
    env = meltano.env(part)
    context.log.info(f"{part.name}: {' '.join(command)}")
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603  (a list, no shell; no secret in it)
        command,
        cwd=meltano.project_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
    )
    summary: dict[str, t.Any] = {}
    summary_line, failed, tail = "", {}, []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stderr.write(line)  # the whole log: the step's captured stderr in the UI
            tail = [*tail[-39:], line.rstrip()]
            if match := RUN_SUMMARY.search(line.rstrip()):
                summary_line = match.group(0)
                summary = json.loads(match.group(1))
                context.log.info(summary_line)
            elif match := ACCOUNT_FAILED.search(line.rstrip()):
                failed[match.group(1)] = match.group(2).strip()
                context.log.error(f"account {match.group(1)} failed: {match.group(2).strip()}")
        code = process.wait()
    except BaseException:  # the run was cancelled: let meltano and the tap save their state
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(meltano.stop_grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
        raise
    metadata: dict[str, object] = {
        "state_id_suffix": part.suffix,
        **{name.lower(): int(value) for name, value in part.tap_env.items()},
        "exit_code": code,
        **{k: v for k, v in summary.items() if isinstance(v, int | float | str)},
        "seconds": round(time.monotonic() - started, 1),
    }
    for label in summary.get("accounts_failed") or []:
        failed.setdefault(label, "see the log")
    reconciled = list(summary.get("reconciled") or [])
    what = ""
    if failed:
        what = f"{len(failed)} account(s) failed ({', '.join(failed)})"
    elif code != 0:
        what = "meltano run failed (see log_tail)"
    elif part is RECONCILE and not reconciled:  # a deletion job that retires nothing fails
        what = "the tap did not reconcile (is TAP_MAESN_QONTO_RECONCILE_INTERVAL_DAYS passed?)"
    if part is RECONCILE:
        metadata["reconciled_streams"] = MetadataValue.json(reconciled)
    if what:
        metadata["failed_accounts"] = MetadataValue.json(failed)
        metadata["log_tail"] = MetadataValue.md("```\n" + "\n".join(tail) + "\n```")
        raise Failure(
            description=f"{part.name}: {what}; exit code {code}. {summary_line}".strip(),
            metadata=metadata,
            allow_retries=False,  # a rejected key does not fix itself; the next run retries
        )
    context.add_output_metadata(metadata)
    return {"part": part.suffix, **summary}


def shard_op(shard: int) -> OpDefinition:
    @op(
        name=f"shard_{shard}",
        description=f"meltano run --state-id-suffix=shard-{shard}: the accounts of shard {shard}",
        tags={"kind": "meltano"},
    )
    def run_shard(context: OpExecutionContext, meltano: MeltanoShards) -> dict:
        return _run_meltano(context, meltano, shard_part(shard))

    return run_shard


SHARD_OPS = [shard_op(shard) for shard in range(SHARD_COUNT)]
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


@job(
    description=f"tap-maesn-qonto in {SHARD_COUNT} parallel shards, one Meltano state id each",
    tags=TABLES_TAG,
    # forkserver where there is one: each step process forks from one that has imported
    # Dagster, instead of starting a fresh interpreter per shard (spawn, Dagster's default).
    executor_def=multiprocess_executor.configured(
        {"max_concurrent": MAX_PARALLEL, "start_method": {START_METHOD: {}}}
    ),
)
def maesn_qonto_shards() -> None:
    for shard_definition in SHARD_OPS:
        shard_definition()


@op(
    description="meltano run --state-id-suffix=reconcile: every account read whole, rows "
    "deleted at the source retired in the target (ACTIVATE_VERSION)",
    tags={"kind": "meltano"},
)
def reconcile(context: OpExecutionContext, meltano: MeltanoShards) -> dict:
    return _run_meltano(context, meltano, RECONCILE)


@job(
    description="tap-maesn-qonto over every account, unsharded: retires deleted rows",
    tags=TABLES_TAG,
    executor_def=in_process_executor,  # one op: no step process to start
)
def maesn_qonto_reconcile() -> None:
    reconcile()


defs = Definitions(
    jobs=[maesn_qonto_shards, maesn_qonto_reconcile],
    schedules=[
        ScheduleDefinition(
            job=maesn_qonto_shards,
            cron_schedule="0 * * * *",
            default_status=DefaultScheduleStatus.STOPPED,  # turn it on in the UI
        ),
        ScheduleDefinition(
            job=maesn_qonto_reconcile,
            cron_schedule="30 3 * * 0",  # Sundays 03:30 UTC, between two shard runs
            default_status=DefaultScheduleStatus.STOPPED,
        ),
    ],
    resources={"meltano": MeltanoShards()},
)
