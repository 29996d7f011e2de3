"""Every command and YAML block of README.md, run as written, in a fresh Meltano project.

    uv run --locked python -m tests.e2e.readme [--meltano PATH] [--keep]

The blocks are read from README.md (never retyped here) and handled by their fence, in
README order:

* ```yaml is pasted into the project's ``meltano.yml``, as a user pastes it: each top-level
  key merged, plugin lists appended (a plugin that is already there fails the check);
* ```bash runs as one bash script (``set -e``, each line echoed), in the project directory;
* ```sql runs with psql against the check's PostgreSQL server (the README's warehouse);
* ```text is output, not a command: not run. A ``run summary:`` line shown there must have
  the keys of the summary the tap really logged under Meltano;
* the one bash block of "## Quick start" is not run here: CI runs those two commands
  itself (.ci/run steps 1 and 3). The check fails unless .ci/run runs exactly them.

Any other fence (```json, ```python, a bare ```) fails the check: nothing in the README
escapes it unless it is plainly output.

What is not the README's, and why:

* the project: ``meltano init`` in a temporary directory, as the README says to make one;
* the services the README points at, through the environment a deployment sets them in:
  the Maesn emulator (``TAP_MAESN_QONTO_API_URL``; its keys as ``MAESN_API_KEY`` and
  ``MAESN_ACCOUNT_KEY``, the variables the README's commands use) and a PostgreSQL server
  on 127.0.0.1 (``TARGET_POSTGRES_PORT``, and ``TARGET_POSTGRES_PASSWORD`` as the README
  says to give it; the server from tests/support/tools.py's ``default_pg_bin_dir``);
* where the tap comes from: GitHub is not reachable from CI and the tap under test is this
  checkout, so one substring is rewritten, and printed: the README's source
  ``git+https://github.com/tap-maesn-qonto/tap-maesn-qonto.git`` becomes the ``file://``
  URL of a wheel built from this checkout (``uv build``). Every other string runs as written;
* ``uv tool install`` installs into the temporary directory (``UV_TOOL_DIR``,
  ``UV_TOOL_BIN_DIR``, first on ``PATH``), never into the user's tools.

Checks on what the blocks did, one PASS or FAIL line each (exit 1 if any fails):

1. every bash line exits 0; ``meltano config test`` passes, ``select --list`` shows the six
   streams, each ``meltano run`` logs the tap's run summary through Meltano with outcome
   ``complete``; the direct run's catalog has the six streams and its output records of the
   three parent streams; the Deletions block's run reconciles and retires exactly the
   records the check deleted in the emulator just before it;
2. the project's ``meltano.yml`` lists every plugin once (``meltano add extractor X
   --from-ref`` in Meltano 4.4.1 would add X twice, as an extractor and a utility);
3. what the README says Meltano shows: with nothing listening at ``api_url``, ``meltano
   config test`` fails fast naming it; a wrong key is named under ``config test`` and
   ``run`` and never printed; ``meltano run`` turns the tap's exit codes 3, 130 and 143 into
   1 and keeps the state, and itself exits 143 on SIGTERM and 1 on Ctrl-C (a stand-in tap
   that exits with each code, in a second project).

The meltano executable: --meltano, else .quickstart/meltano/bin/meltano when present, else
the quick start's pin (meltano==4.4.1) in uv's cached tool environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support import pg as pg_server
from tests.support.tools import MELTANO, default_pg_bin_dir, uvx_executable

ROOT = Path(__file__).resolve().parents[2]

README = ROOT / "README.md"
#: The README's source of the tap; the one string the check rewrites (to a local wheel).
GIT_SOURCE = "git+https://github.com/tap-maesn-qonto/tap-maesn-qonto.git"
EMULATOR_KEYS = {"MAESN_API_KEY": "emulator-api-key", "MAESN_ACCOUNT_KEY": "emulator-account-qonto"}
EMULATOR_COUNTS = ("--invoices", "120", "--bills", "80", "--booking-proposals", "60")
PARENTS = ("invoices", "bills", "booking_proposals")
STREAMS = (*PARENTS, "invoice_line_items", "bill_line_items", "booking_proposal_line_items")
#: Records the check deletes in the emulator before the README's reconcile run.
DELETED = 2
#: ``meltano config test`` with nothing listening: Meltano's start and discovery plus the
#: tap's 3 attempts 0.5 s and 1 s apart.
FAST_FAIL_SECONDS = 30.0
FAST_FAIL_RUNS = 2
WRONG = "wrong-key-0123456789abcdef"
PLAIN_ENV = {
    "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
    "NO_COLOR": "1",
}
#: Meltano's console line for one of the tap's log lines (structured logging, parsed).
SUMMARY_UNDER_MELTANO = re.compile(r"\[info\s*\] tap-maesn-qonto\s+run summary: (\{.*\})$", re.M)
RUN_FENCES = {"bash", "yaml", "sql"}
SHOWN_FENCES = {"text"}


# --------------------------------------------------------------------------- the README


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    language: str
    text: str
    line: int  # of its opening fence, 1-based
    section: str  # the "## " heading it is under

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.section}, ```{self.language})"


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README, in order."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks, section, index = [], "", 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("```"):
            end = next(
                (i for i in range(index + 1, len(lines)) if lines[i].startswith("```")), None
            )
            if end is None:
                raise SystemExit(f"README.md:{index + 1}: a fence that never closes")
            body = "\n".join(lines[index + 1 : end]) + "\n"
            blocks.append(Block(line[3:].strip(), body, index + 1, section))
            index = end
        index += 1
    return blocks


def command_lines(block: Block) -> list[str]:
    """A bash block's commands, trailing comments and comment lines dropped."""
    commands = []
    for raw in block.text.splitlines():
        line = re.sub(r"\s+#\s.*$", "", raw).strip()
        if line and not line.startswith("#"):
            commands.append(line)
    return commands


def is_quick_start(block: Block) -> bool:
    return block.section == "Quick start" and block.language == "bash"


def rewrite_source(text: str, wheel_url: str) -> str:
    """The README text with the tap's source (and nothing else) pointed at the wheel."""
    return text.replace(GIT_SOURCE, wheel_url)


# --------------------------------------------------------------------------- the machinery


class Failed(AssertionError):
    """A check that did not hold."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise Failed(message)


def meltano_executable(given: str | None) -> str:
    if given:
        return str(Path(given).resolve())
    local = ROOT / ".quickstart" / "meltano" / "bin" / "meltano"
    if local.exists():
        return str(local)
    return uvx_executable(MELTANO, "meltano")


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def emulator(directory: Path, env: dict[str, str]) -> Iterator[str]:
    """The Maesn emulator on a free loopback port; yields its URL."""
    url_file = directory / "emulator.url"
    command = [sys.executable, "-m", "tap_maesn_qonto.emulator", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--url-file", str(url_file), *EMULATOR_COUNTS],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if url_file.exists() and url_file.read_text().strip():
                break
            time.sleep(0.05)
        yield url_file.read_text().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


def emulator_call(url: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    method = "POST" if data else "GET"
    request = urllib.request.Request(f"{url}{path}", data=data, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the emulator
        return json.loads(answer.read())


@dataclass
class Project:
    """The fresh Meltano project, and the environment every README block runs in."""

    path: Path
    env: dict[str, str]
    pg: pg_server.Server
    emulator_url: str
    wheel_url: str
    summaries: list[dict[str, Any]] = field(default_factory=list)

    def bash(
        self, script: str, timeout: float = 900, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", script],
            cwd=self.path,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def script(self, lines: list[str]) -> subprocess.CompletedProcess[str]:
        """The lines as one bash script, each echoed first, stopping at the first failure."""
        body = "set -e\n" + "".join(f"echo {_quoted('+ ' + line)} >&2\n{line}\n" for line in lines)
        return self.bash(body)

    def meltano_yml(self) -> dict[str, Any]:
        loaded = yaml.safe_load((self.path / "meltano.yml").read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else {}


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def isolated_env(work: Path, meltano: str) -> dict[str, str]:
    """The caller's environment without its own tap, target or key settings."""
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "meltano").symlink_to(meltano)
    for name in ("python", "python3"):
        (bin_dir / name).symlink_to(sys.executable)
    tool_bin = work / "tools" / "bin"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TAP_MAESN_QONTO_", "TARGET_POSTGRES_", "MAESN_", "MELTANO_"))
    }
    env.update(PLAIN_ENV)
    env["PATH"] = os.pathsep.join([str(tool_bin), str(bin_dir), env.get("PATH", "")])
    env["UV_TOOL_DIR"] = str(work / "tools" / "envs")
    env["UV_TOOL_BIN_DIR"] = str(tool_bin)
    return env


def build_wheel(work: Path) -> str:
    """A wheel of this checkout; its file:// URL replaces the README's git source."""
    out = work / "dist"
    subprocess.run(
        ["uv", "build", "--quiet", "--wheel", "--out-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = out.glob("tap_maesn_qonto-*.whl")
    return wheel.as_uri()


# --------------------------------------------------------------------------- the blocks


def paste_yaml(project: Project, block: Block) -> str:
    """Paste a YAML block into meltano.yml, as a user does; a plugin twice fails."""
    pasted = yaml.safe_load(rewrite_source(block.text, project.wheel_url))
    check(isinstance(pasted, dict), f"{block.where}: not a YAML mapping")
    config = project.meltano_yml()
    added = []
    for key, value in pasted.items():
        if key != "plugins":
            config[key] = value
            added.append(key)
            continue
        plugins = config.setdefault("plugins", {})
        for plugin_type, entries in value.items():
            have = plugins.setdefault(plugin_type, [])
            for entry in entries:
                names = [p["name"] for p in have]
                check(entry["name"] not in names, f"{block.where}: {entry['name']} already in")
                have.append(entry)
                added.append(f"{plugin_type} {entry['name']}")
    (project.path / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return f"pasted into meltano.yml: {', '.join(added)}"


def run_bash(project: Project, block: Block) -> str:
    """Run a bash block as written; then check what its commands promise."""
    commands = command_lines(block)
    reconciling = any("reconcile_interval_days" in c for c in commands)
    if reconciling:  # records gone at the source, for the reconcile to retire
        emulator_call(
            project.emulator_url,
            "/_emulator/mutate",
            {"resource": "invoices", "update": 0, "create": 0, "delete": DELETED},
        )
    done = project.script([rewrite_source(c, project.wheel_url) for c in commands])
    output = done.stdout + done.stderr
    check(done.returncode == 0, f"{block.where} failed (exit {done.returncode}):\n{output[-4000:]}")
    said = [f"{len(commands)} lines, every one exit 0"]
    for command in commands:
        for hook in HOOKS:
            if (note := hook(project, command, output)) is not None:
                said.append(note)
    if reconciling:
        said.append(check_retired(project, output))
    return "; ".join(said)


def on_config_test(project: Project, command: str, output: str) -> str | None:
    if not command.startswith("meltano config test"):
        return None
    check("Plugin configuration is valid" in output, f"`{command}` did not pass")
    return "config test passed"


def on_select_list(project: Project, command: str, output: str) -> str | None:
    if "select tap-maesn-qonto --list" not in command:
        return None
    missing = [s for s in STREAMS if f"] {s}." not in output]
    check(not missing, f"`{command}` does not show {missing}")
    return "select --list shows the six streams"


def on_meltano_run(project: Project, command: str, output: str) -> str | None:
    if not command.startswith("meltano run"):
        return None
    found = SUMMARY_UNDER_MELTANO.findall(output)
    check(found, f"`{command}`: no `tap-maesn-qonto run summary:` line in Meltano's log")
    summary = json.loads(found[-1])
    project.summaries.append(summary)
    check(summary["outcome"] == "complete", f"`{command}`: {summary}")
    return f"`{command}`: {summary['records']} records, outcome complete, shown by Meltano"


def on_discover(project: Project, command: str, output: str) -> str | None:
    if "--discover > catalog.json" not in command:
        return None
    catalog = json.loads((project.path / "catalog.json").read_text(encoding="utf-8"))
    names = sorted(s["tap_stream_id"] for s in catalog["streams"])
    check(names == sorted(STREAMS), f"catalog.json holds {names}")
    return "catalog.json has the six streams"


def on_direct_run(project: Project, command: str, output: str) -> str | None:
    if "> messages.jsonl" not in command:
        return None
    counts = dict.fromkeys(PARENTS, 0)
    for line in (project.path / "messages.jsonl").read_text(encoding="utf-8").splitlines():
        message = json.loads(line)
        if message.get("type") == "RECORD" and message["stream"] in counts:
            counts[message["stream"]] += 1
    check(all(counts.values()), f"messages.jsonl records: {counts}")
    return f"messages.jsonl records {counts}"


def on_about(project: Project, command: str, output: str) -> str | None:
    if "--about --format=markdown" not in command:
        return None
    check("reconcile_interval_days" in output, "--about --format=markdown lists no settings")
    return "--about lists the settings"


HOOKS: tuple[Callable[[Project, str, str], str | None], ...] = (
    on_config_test,
    on_select_list,
    on_meltano_run,
    on_discover,
    on_direct_run,
    on_about,
)


def check_retired(project: Project, output: str) -> str:
    """The reconcile retired exactly the invoices deleted at the source."""
    check("invoices: reconciling" in output, "the Deletions block's run did not reconcile")
    truth = emulator_call(project.emulator_url, "/_emulator/truth/invoices")
    schema = _loader_config(project).get("default_target_schema", "public")
    retired = project.pg.psql(
        f"select id from {schema}.invoices where _sdc_deleted_at is not null order by id"  # noqa: S608
    ).split()
    check(
        sorted(retired) == sorted(truth["deleted_ids"]) and len(retired) == DELETED,
        f"retired {retired}, deleted at the source {truth['deleted_ids']}",
    )
    return f"the reconcile retired exactly the {DELETED} invoices deleted at the source"


def _loader_config(project: Project) -> dict[str, Any]:
    loaders = project.meltano_yml().get("plugins", {}).get("loaders", [])
    postgres: dict[str, Any] = next((p for p in loaders if p["name"] == "target-postgres"), {})
    return dict(postgres.get("config") or {})


def run_sql(project: Project, block: Block) -> str:
    try:
        rows = project.pg.psql(block.text).splitlines()
    except subprocess.CalledProcessError as exc:
        raise Failed(f"{block.where}: psql failed: {exc.stderr}") from exc
    check(rows, f"{block.where}: returned no row")
    return f"psql: {len(rows)} rows"


def shown_text(project: Project, block: Block) -> str:
    shown = re.findall(r"run summary: (\{.*\})", block.text)
    if not shown:
        return "output, not run"
    check(project.summaries, "no run summary was logged to compare the README's with")
    readme_keys = set(json.loads(shown[0]))
    real_keys = set(project.summaries[-1])
    check(readme_keys == real_keys, f"README's run summary keys {readme_keys} != {real_keys}")
    return "output, not run; its run summary has the keys the tap logs"


def check_quick_start(blocks: list[Block]) -> str:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    quick = [b for b in blocks if is_quick_start(b)]
    check(len(quick) == 1, f"## Quick start needs one bash block, it has {len(quick)}")
    commands = command_lines(quick[0])
    check(
        all(c in ci for c in commands),
        f"{quick[0].where}: {commands} are not all run by .ci/run",
    )
    return f"{quick[0].where}: not run here, .ci/run runs {commands} itself"


def check_no_duplicate_plugins(project: Project) -> str:
    plugins = project.meltano_yml().get("plugins", {})
    names = [(t, p["name"]) for t, entries in plugins.items() for p in entries or []]
    counted = {n: [t for t, m in names if m == n] for _, n in names}
    twice = {n: ts for n, ts in counted.items() if len(ts) > 1}
    check(not twice, f"meltano.yml lists a plugin more than once: {twice}")
    return f"meltano.yml lists each plugin once: {', '.join(f'{t} {n}' for t, n in names)}"


# --------------------------------------------------------------------------- Meltano's side


def check_fast_failure(project: Project) -> str:
    port = free_port()
    dead = f"http://127.0.0.1:{port}"
    phrase = f"Nothing answered at api_url ({dead}): connection refused 3 times"
    walls = []
    for _ in range(FAST_FAIL_RUNS):
        started = time.monotonic()
        done = project.bash(
            "meltano config test tap-maesn-qonto", timeout=120, TAP_MAESN_QONTO_API_URL=dead
        )
        walls.append(time.monotonic() - started)
        output = done.stdout + done.stderr
        check(done.returncode != 0, f"config test passed with nothing listening:\n{output[-2000:]}")
        check(walls[-1] < FAST_FAIL_SECONDS, f"took {walls[-1]:.1f} s (limit {FAST_FAIL_SECONDS})")
        check(phrase in output, f"{phrase!r} not in:\n{output[-2000:]}")
    return f"nothing listening: config test failed in {', '.join(f'{s:.1f}' for s in walls)} s"


def check_wrong_keys(project: Project) -> str:
    cases = {
        "TAP_MAESN_QONTO_API_KEY": "api_key (your Maesn tenant key) is wrong",
        "TAP_MAESN_QONTO_ACCOUNT_KEY": "account_key of account default is not valid",
    }
    commands = {
        "config test": "meltano config test tap-maesn-qonto",
        "run": "meltano run tap-maesn-qonto target-postgres",
    }
    shown = []
    for variable, phrase in cases.items():
        for name, command in commands.items():
            done = project.bash(command, timeout=300, **{variable: WRONG})
            output = done.stdout + done.stderr
            check(done.returncode != 0, f"{command} passed with a wrong {variable}")
            check(phrase in output, f"{phrase!r} not in {command}:\n{output[-3000:]}")
            check(WRONG not in output, f"the key reached Meltano's output ({command})")
            if name == "run":
                check(done.returncode == 1, f"`{command}` exited {done.returncode}, not 1")
                lines = [line for line in output.splitlines() if phrase in line]
                check(
                    any("[error    ] tap-maesn-qonto" in line for line in lines),
                    f"not shown as an error: {lines}",
                )
            shown.append(f"{name}, wrong {variable[16:].lower()}")
    return "wrong keys named, never printed: " + "; ".join(shown)


STAND_IN_TAP = """\
import os, signal, sys, time
if "--discover" in sys.argv:
    print('{"streams": []}')
    sys.exit(0)
for line in (
    '{"type": "SCHEMA", "stream": "s", "schema": {"properties": {"id": {"type": "integer"}}}, "key_properties": ["id"]}',
    '{"type": "RECORD", "stream": "s", "record": {"id": 1}}',
    '{"type": "STATE", "value": {"bookmarks": {"s": {"n": 1}}}}',
):
    print(line, flush=True)
def stop(signum, frame):
    os._exit(128 + signum)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
open(os.environ["STAND_IN_STARTED"], "w").close()
if os.environ.get("STAND_IN_WAIT"):
    time.sleep(60)
sys.exit(int(os.environ.get("STAND_IN_EXIT", "0")))
"""
STAND_IN_TARGET = """\
import sys
for line in sys.stdin:
    if '"STATE"' in line:
        print(line.split('"value": ', 1)[1].rstrip()[:-1], flush=True)
"""


def check_meltano_exit_codes(work: Path, env: dict[str, str]) -> str:
    """What `meltano run` makes of the tap's exit codes, and of a signal to itself."""
    project = work / "exit-codes"
    subprocess.run(
        ["meltano", "init", "--no-usage-stats", str(project)],
        env=env,
        capture_output=True,
        check=True,
    )
    (project / "tap.py").write_text(STAND_IN_TAP)
    (project / "target.py").write_text(STAND_IN_TARGET)
    for name in ("tap", "target"):
        launcher = project / name
        launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{project / name}.py" "$@"\n')
        launcher.chmod(0o755)
    config = yaml.safe_load((project / "meltano.yml").read_text())
    config["plugins"] = {
        "extractors": [
            {
                "name": "tap-stand-in",
                "namespace": "tap_stand_in",
                "executable": str(project / "tap"),
            }
            | {"capabilities": ["state"]}
        ],
        "loaders": [
            {"name": "target-stand-in", "namespace": "target_stand_in"}
            | {"executable": str(project / "target")}
        ],
    }
    (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    started = project / "started"
    run_env = {**env, "STAND_IN_STARTED": str(started)}
    command = ["meltano", "run", "tap-stand-in", "target-stand-in"]
    state_id = "dev:tap-stand-in-to-target-stand-in"

    def state() -> str:
        got = subprocess.run(
            ["meltano", "state", "get", state_id],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return got.stdout.strip()

    def clear() -> None:
        subprocess.run(
            ["meltano", "state", "clear", "--force", state_id],
            cwd=project,
            env=env,
            capture_output=True,
            check=False,
        )

    seen = []
    for code in (3, 130, 143):
        clear()
        done = subprocess.run(
            command,
            cwd=project,
            env={**run_env, "STAND_IN_EXIT": str(code)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        check(done.returncode == 1, f"tap exit {code}: meltano run exited {done.returncode}")
        check(
            "Extractor failed" in done.stderr + done.stdout,
            f"tap exit {code}: no 'Extractor failed'",
        )
        check(
            '"n": 1' in state() or '"n":1' in state(), f"tap exit {code}: state not kept: {state()}"
        )
        seen.append(f"{code}->1")
    for sig, group, expected in ((signal.SIGTERM, False, 143), (signal.SIGINT, True, 1)):
        clear()
        started.unlink(missing_ok=True)
        process = subprocess.Popen(
            command,
            cwd=project,
            env={**run_env, "STAND_IN_WAIT": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        while '"n"' not in state() and time.monotonic() < deadline:  # the STATE is stored
            time.sleep(0.5)
        (os.killpg if group else os.kill)(process.pid, sig)
        code = process.wait(timeout=120)
        check(code == expected, f"meltano run got {sig.name}: exit {code}, not {expected}")
        check('"n"' in state(), f"meltano run got {sig.name}: state not kept: {state()}")
        seen.append(f"meltano {sig.name}{' (Ctrl-C)' if group else ''}->{code}")
    return "meltano run exit codes: " + ", ".join(seen) + "; state kept each time"


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--meltano", help="the meltano executable (default: see the docstring)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    started = time.monotonic()
    blocks = readme_blocks()
    meltano = meltano_executable(args.meltano)
    version = subprocess.run([meltano, "--version"], capture_output=True, text=True, check=True)
    print(f"{version.stdout.strip()} ({meltano}); {len(blocks)} blocks in README.md", flush=True)
    work = Path(tempfile.mkdtemp(prefix="meltano-readme-check-"))
    failures = 0

    def step(name: str, run: Callable[[], str]) -> None:
        nonlocal failures
        try:
            print(f"PASS {name}: {run()}", flush=True)
        except (
            Failed,
            subprocess.SubprocessError,
            yaml.YAMLError,
            OSError,
            ValueError,
            KeyError,
        ) as exc:
            failures += 1
            detail = getattr(exc, "stderr", None) or ""
            print(f"FAIL {name}: {exc} {detail}".rstrip(), flush=True)

    try:
        unknown = [b for b in blocks if b.language not in RUN_FENCES | SHOWN_FENCES]
        step("fences", lambda: _fences(unknown))
        step("quick start", lambda: check_quick_start(blocks))
        base_env = isolated_env(work, meltano)
        wheel_url = build_wheel(work)
        print(f"     rewrite (the only one): {GIT_SOURCE} -> {wheel_url}", flush=True)
        subprocess.run(
            ["meltano", "init", "--no-usage-stats", str(work / "project")],
            env=base_env,
            capture_output=True,
            check=True,
        )
        with (
            pg_server.Server(default_pg_bin_dir()) as pg,
            emulator(work, base_env) as url,
        ):
            env = {
                **base_env,
                **EMULATOR_KEYS,
                "TAP_MAESN_QONTO_API_URL": url,
                "TARGET_POSTGRES_PORT": str(pg.port),
                "TARGET_POSTGRES_PASSWORD": "postgres",  # the server trusts loopback
            }
            project = Project(work / "project", env, pg, url, wheel_url)
            handlers: dict[str, Callable[[Project, Block], str]] = {
                "yaml": paste_yaml,
                "bash": run_bash,
                "sql": run_sql,
                "text": shown_text,
            }
            for block in blocks:
                if is_quick_start(block) or block.language not in handlers:
                    continue
                step(block.where, lambda b=block: handlers[b.language](project, b))  # type: ignore[misc]
            step("duplicates", lambda: check_no_duplicate_plugins(project))
            step("fast failure", lambda: check_fast_failure(project))
            step("wrong keys", lambda: check_wrong_keys(project))
        step("exit codes", lambda: check_meltano_exit_codes(work, base_env))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'FAILED' if failures else 'passed'} in {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failures else 0


def _fences(unknown: list[Block]) -> str:
    check(not unknown, f"blocks neither run nor output: {[b.where for b in unknown]}")
    return "every block is ```bash, ```yaml, ```sql (run) or ```text (output)"


if __name__ == "__main__":
    sys.exit(main())
