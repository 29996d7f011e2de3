"""Dagster definitions: tap-maesn-qonto's connected companies read by N parallel shards.

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

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster import (
    ConfigurableResource,
    DefaultScheduleStatus,
    Definitions,
    Failure,
    MetadataValue,
    OpDefinition,
    OpExecutionContext,
    ScheduleDefinition,
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

# The tap's lines that matter in the orchestrator (found inside Meltano's log prefix/suffix).
SUMMARY = re.compile(
    r"accounts: (\d+) read, (\d+) failed; (\d+) records, (\d+) pages, (\d+) retries, ([\d.]+) s"
)
ACCOUNT_FAILED = re.compile(r"\baccount (\S+) failed: (.*?)(?:\s{2,}\w+=.*)?$")


class MeltanoShards(ConfigurableResource):
    """Where and how the shards run ``meltano run``: non-secret settings only."""

    project_dir: str = DEFAULT_PROJECT
    meltano_bin: str = "meltano"
    extractor: str = "tap-maesn-qonto"
    target: str = "target-postgres"
    #: Meltano environment (``--environment``); empty: the project's default one.
    environment: str = ""
    #: Extra non-secret variables per shard; ``{shard}`` is replaced by the shard index, e.g.
    #: ``{"TARGET_JSONL_DESTINATION_PATH": "/data/jsonl/shard-{shard}"}``.
    shard_env: dict[str, str] = {}  # noqa: RUF012  (pydantic copies the default)
    #: Give each shard its own Meltano system directory, sharing the installed plugins. Needed
    #: whenever shards run at the same time in one project directory (this job's multiprocess
    #: executor): every ``meltano run`` writes the state it passes to the tap, and the catalog,
    #: to ``.meltano/run/<extractor>/``, so concurrent runs would read each other's files.
    isolate_shards: bool = True
    #: That directory (``{shard}`` replaced); default ``<.meltano>/shards/shard-{shard}``. It
    #: also holds the shard's system database unless MELTANO_DATABASE_URI says otherwise.
    shard_sys_dir: str = ""
    #: Seconds to wait for ``meltano`` to stop after SIGTERM when the run is cancelled.
    stop_grace_seconds: int = 120

    def command(self, shard: int) -> list[str]:
        environment = [f"--environment={self.environment}"] if self.environment else []
        return [
            self.meltano_bin,
            *environment,
            "run",
            f"--state-id-suffix=shard-{shard}",
            self.extractor,
            self.target,
        ]

    def env(self, shard: int) -> dict[str, str]:
        env = {
            **os.environ,  # the secrets live here, never on the command line
            **{
                name: value.replace("{shard}", str(shard)) for name, value in self.shard_env.items()
            },
            "TAP_MAESN_QONTO_SHARD_INDEX": str(shard),
            "TAP_MAESN_QONTO_SHARD_COUNT": str(SHARD_COUNT),
            "NO_COLOR": "1",  # plain log lines in Dagster's captured output
        }
        if self.isolate_shards:
            env["MELTANO_SYS_DIR_ROOT"] = str(self.sys_dir(shard, env))
        return env

    def sys_dir(self, shard: int, env: dict[str, str]) -> Path:
        """The shard's own Meltano system directory, linked to the installed plugins."""
        shared = Path(env.get("MELTANO_SYS_DIR_ROOT") or Path(self.project_dir) / ".meltano")
        template = self.shard_sys_dir or str(shared / "shards" / "shard-{shard}")
        own = Path(template.replace("{shard}", str(shard)))
        own.mkdir(parents=True, exist_ok=True)
        for name in PLUGIN_DIRS:
            link, target = own / name, (shared / name).resolve()
            if target.is_dir() and not link.is_symlink() and not link.exists():
                link.symlink_to(target, target_is_directory=True)
        return own


def _run_shard(context: OpExecutionContext, meltano: MeltanoShards, shard: int) -> dict:
    command = meltano.command(shard)
    env = meltano.env(shard)
    context.log.info(f"shard {shard} of {SHARD_COUNT}: {' '.join(command)}")
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
    summary: dict[str, float] = {}
    summary_line, failed, tail = "", {}, []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stderr.write(line)  # the whole log: the step's captured stderr in the UI
            tail = [*tail[-39:], line.rstrip()]
            if match := SUMMARY.search(line):
                summary_line = match.group(0)
                keys = ("accounts_read", "accounts_failed", "records", "pages", "retries")
                summary = {
                    key: int(value) for key, value in zip(keys, match.groups(), strict=False)
                }
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
        "shard": shard,
        "shard_count": SHARD_COUNT,
        "exit_code": code,
        "state_id_suffix": f"shard-{shard}",
        **summary,
        "seconds": round(time.monotonic() - started, 1),
    }
    if code != 0:
        metadata["failed_accounts"] = MetadataValue.json(failed)
        metadata["log_tail"] = MetadataValue.md("```\n" + "\n".join(tail) + "\n```")
        if failed:
            what = f"{len(failed)} account(s) failed ({', '.join(failed)})"
        else:
            what = "meltano run failed (see log_tail)"
        raise Failure(
            description=f"shard {shard}: {what}; exit code {code}. {summary_line}".strip(),
            metadata=metadata,
            allow_retries=False,  # a rejected key does not fix itself; the next run retries
        )
    context.add_output_metadata(metadata)
    return {"shard": shard, **summary}


def shard_op(shard: int) -> OpDefinition:
    @op(
        name=f"shard_{shard}",
        description=f"meltano run --state-id-suffix=shard-{shard}: the accounts of shard {shard}",
        tags={"kind": "meltano"},
    )
    def run_shard(context: OpExecutionContext, meltano: MeltanoShards) -> dict:
        return _run_shard(context, meltano, shard)

    return run_shard


SHARD_OPS = [shard_op(shard) for shard in range(SHARD_COUNT)]
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


@job(
    description=f"tap-maesn-qonto in {SHARD_COUNT} parallel shards, one Meltano state id each",
    # forkserver where there is one: each step process forks from one that has imported
    # Dagster, instead of starting a fresh interpreter per shard (spawn, Dagster's default).
    executor_def=multiprocess_executor.configured(
        {"max_concurrent": MAX_PARALLEL, "start_method": {START_METHOD: {}}}
    ),
)
def maesn_qonto_shards() -> None:
    for shard_definition in SHARD_OPS:
        shard_definition()


defs = Definitions(
    jobs=[maesn_qonto_shards],
    schedules=[
        ScheduleDefinition(
            job=maesn_qonto_shards,
            cron_schedule="0 * * * *",
            default_status=DefaultScheduleStatus.STOPPED,  # turn it on in the UI
        )
    ],
    resources={"meltano": MeltanoShards()},
)
