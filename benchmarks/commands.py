"""How long the README's two commands take, each in a fresh clone, as a user runs them.

    python -m benchmarks.commands                          # quick start, then the test command
    python -m benchmarks.commands quick test e2e           # and the end-to-end tier CI runs
    python -m benchmarks.commands quick --empty-caches     # HOME, uv's cache empty: a new machine

Each command runs in a clone of this checkout's HEAD (``git clone``: what CI and a user
start from), once, in turn; the report gives its wall time, the CPU its processes used,
the load average when it began, and its exit code. The README's duration of the quick
start and docs/benchmarks.md's of the test tiers are this report's figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import measure
from benchmarks.measure import REPO_ROOT, Checkout, Report

#: The README's quick start, in its order: (name, command).
COMMANDS = (
    ("quick start", "bash scripts/quickstart.sh"),
    ("test command", "bash scripts/test.sh"),
)
#: The tier CI runs besides.
E2E = ("end-to-end tier", "source scripts/bootstrap.sh && uv run --locked pytest -n 2 -m e2e")
#: What each positional word times.
CHOICES = {"quick": COMMANDS[0], "test": COMMANDS[1], "e2e": E2E}


@dataclass(frozen=True)
class Timed:
    name: str
    command: str
    wall_s: float
    cpu_s: float
    load_before: str
    exit_code: int


def run_timed(name: str, command: str, cwd: Path, env: dict[str, str]) -> Timed:
    """Run ``command`` with bash in ``cwd``; its wall time and its processes' CPU."""
    load = measure.load_average()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    measure.note(f"{name}: {command}")
    log = cwd.parent / f"{name.replace(' ', '-')}.log"
    with log.open("wb") as out:
        done = subprocess.run(
            ["bash", "-c", command],
            check=False,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wall = time.monotonic() - started
    if done.returncode:  # what went wrong, before the scratch directory goes
        tail = log.read_text(errors="replace").splitlines()[-20:]
        measure.note(f"{name} exited {done.returncode}; its last lines:\n" + "\n".join(tail))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(name, command, wall, cpu, load, done.returncode)


def fresh_clone(into: Path) -> Path:
    clone = into / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    return clone


def environment(scratch: Path, *, empty_caches: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)  # the clone makes its own
    if empty_caches:
        home = scratch / "home"
        home.mkdir()
        env |= {"HOME": str(home), "UV_CACHE_DIR": str(scratch / "uv-cache")}
        # uv as a new machine has it: not yet installed (bootstrap.sh installs it).
        keep = [p for p in env.get("PATH", "").split(":") if not Path(p, "uv").exists()]
        env["PATH"] = ":".join(keep)
    return env


def format_runs(runs: Sequence[Timed], *, empty_caches: bool) -> str:
    caches = (
        "HOME and uv's cache empty, uv not on PATH"
        if empty_caches
        else "this machine's uv cache and tool environments warm"
    )
    columns = ("command", "wall s", "CPU s (its processes)", "load before", "exit code")
    cells = [
        [
            f"{run.name}: `{run.command}`",
            f"{run.wall_s:.1f}",
            f"{run.cpu_s:.1f}",
            run.load_before,
            f"{run.exit_code}",
        ]
        for run in runs
    ]
    return "\n".join(
        [
            f"Each command once, in turn, in a fresh `git clone` of this checkout ({caches}), "
            "installs included.",
            "",
            measure.render_table(columns, cells),
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.commands", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "commands",
        nargs="*",
        default=["quick", "test"],
        help=f"what to time, in turn: {', '.join(CHOICES)} (default: quick test)",
    )
    parser.add_argument(
        "--empty-caches", action="store_true", help="empty HOME and uv cache, uv not on PATH"
    )
    measure.add_report_arguments(parser)
    args = parser.parse_args(argv)
    if unknown := [word for word in args.commands if word not in CHOICES]:
        parser.error(f"unknown command(s) {', '.join(unknown)}: choose from {', '.join(CHOICES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report.from_args(args, "commands", "benchmarks.commands", argv, [Checkout.this()])
    commands = [CHOICES[word] for word in args.commands]
    with tempfile.TemporaryDirectory(prefix="tap-commands-") as scratch:
        clone = fresh_clone(Path(scratch))
        env = environment(Path(scratch), empty_caches=args.empty_caches)
        runs = [run_timed(name, command, clone, env) for name, command in commands]
    report.finish(format_runs(runs, empty_caches=args.empty_caches))
    return max(run.exit_code for run in runs)


if __name__ == "__main__":
    sys.exit(main())
