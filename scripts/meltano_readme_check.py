"""The README's Meltano commands, run as written, and what Meltano shows when a key is wrong.

    uv run python scripts/meltano_readme_check.py [--meltano PATH] [--keep]

The commands are read from README.md ("Using it" -> "With Meltano"): its first bash block
(your own project) and its second (this repository, against the emulator). Everything runs
in a copy of this checkout (its tracked and new files: no .meltano, no .env), so nothing
here changes. Checks, one PASS line each; exit 1 if any fails:

1. The repository block, line by line through bash, as a user pastes it (it starts the
   emulator on 8787 in the background, installs the tap and target-jsonl, and stops the
   emulator): every line exits 0, `select --list` shows the three streams, `meltano run`
   writes their records.
2. Nothing listening at 127.0.0.1:8787 (meltano.yml's emulator URL), plugins installed:
   `meltano --environment=emulator config test tap-maesn-qonto` fails within
   FAST_FAIL_SECONDS and says "Nothing answered at api_url (http://127.0.0.1:8787)"; the
   times of FAST_FAIL_RUNS runs are printed, and how Meltano showed the line.
3. Wrong keys under Meltano, with the emulator up: `config test` names the wrong one
   ("api_key (your Maesn tenant key) is wrong" / "account_key of account default is not
   valid"), in `meltano config test` (the tap's last line, as Meltano prints it) and in
   `meltano run` (parsed by Meltano: `[error    ] tap-maesn-qonto <the sentence>`), and
   no key appears in either.
4. The own-project block, as written, in the copy: `config set` (into the copy's .env),
   `config test`, `select`, `run`; the one difference from a real project is api_url,
   pointed at the emulator (TAP_MAESN_QONTO_API_URL) with its keys as MAESN_API_KEY and
   MAESN_ACCOUNT_KEY.

The meltano executable: --meltano, else .quickstart/meltano/bin/meltano when present, else
the quick start's pin (meltano==4.4.1) in uv's cached tool environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from meltano_e2e import MELTANO, uvx_executable  # noqa: E402  (the quick start's pin)

EMULATOR_URL = "http://127.0.0.1:8787"  # meltano.yml's `emulator` environment
EMULATOR_KEYS = {"MAESN_API_KEY": "emulator-api-key", "MAESN_ACCOUNT_KEY": "emulator-account-qonto"}
STREAMS = ("invoices", "bills", "booking_proposals")
#: `meltano config test` with nothing listening: Meltano's start and discovery (~3-5 s on
#: the 2-core dev machine) plus the tap's 3 attempts 0.5 s and 1 s apart.
FAST_FAIL_SECONDS = 30.0
FAST_FAIL_RUNS = 3
WRONG = "wrong-key-0123456789abcdef"
PLAIN_ENV = {
    "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
    "NO_COLOR": "1",
}


def readme_blocks() -> tuple[list[str], list[str]]:
    """The command lines of the two bash blocks of "### With Meltano" (comments dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n### With Meltano\n", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    if len(blocks) < 2:
        raise SystemExit('README.md: "### With Meltano" needs two bash blocks')
    return _lines(blocks[0]), _lines(blocks[1])


def _lines(block: str) -> list[str]:
    lines = []
    for raw in block.splitlines():
        line = re.sub(r"\s+#\s.*$", "", raw).strip()  # a trailing comment
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def meltano_executable(given: str | None) -> str:
    if given:
        return str(Path(given).resolve())
    local = ROOT / ".quickstart" / "meltano" / "bin" / "meltano"
    if local.exists():
        return str(local)
    return uvx_executable(MELTANO, "meltano")


def copy_checkout(destination: Path) -> None:
    """This checkout's tracked and new (not ignored) files, as a fresh clone would have."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Project:
    """The copy, with `meltano` and `python3` (this interpreter) first on PATH."""

    def __init__(self, path: Path, meltano: str) -> None:
        self.path = path
        bin_dir = path / ".readme-check-bin"
        bin_dir.mkdir()
        (bin_dir / "meltano").symlink_to(meltano)
        for name in ("python", "python3"):
            (bin_dir / name).symlink_to(sys.executable)
        self.env = {
            **os.environ,
            **PLAIN_ENV,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        for name in list(self.env):  # the caller's own tap settings would change the result
            if name.startswith("TAP_MAESN_QONTO_") or name in EMULATOR_KEYS:
                del self.env[name]

    def bash(self, line: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "-c", line],
            cwd=self.path,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        return done, time.monotonic() - started

    def script(self, lines: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        """The lines as one bash script (a background `&` and `kill %1` work as pasted)."""
        body = "set -e\n" + "".join(f"echo '+ {line}' >&2\n{line}\n" for line in lines)
        return self.bash(body, **env)[0]


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def meltano_log_seconds(output: str) -> float:
    """From Meltano's first log line to its last (its own start-up before that excluded)."""
    stamps = re.findall(r"^(\S+Z) \[", output, flags=re.MULTILINE)
    moments = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps]
    return (moments[-1] - moments[0]).total_seconds()


def shown_as(line: str) -> str:
    """A line of Meltano's output, and whether it is the SDK's JSON record or a sentence."""
    if line.startswith("{"):
        return f"a JSON record, its message {json.loads(line)['message'][:90]!r}"
    return repr(line[:150])


def check_fast_failure(project: Project) -> str:
    check(not port_in_use(8787), "something listens on 127.0.0.1:8787: stop it first")
    phrase = f"Nothing answered at api_url ({EMULATOR_URL}): connection refused 3 times"
    walls, logged = [], []
    for _ in range(FAST_FAIL_RUNS):
        done, seconds = project.bash("meltano --environment=emulator config test tap-maesn-qonto")
        output = done.stdout + done.stderr
        check(done.returncode != 0, f"config test passed with nothing listening:\n{output[-2000:]}")
        check(seconds < FAST_FAIL_SECONDS, f"took {seconds:.1f} s (limit {FAST_FAIL_SECONDS} s)")
        check(phrase in output, f"{phrase!r} not in:\n{output[-2000:]}")
        walls.append(seconds)
        logged.append(meltano_log_seconds(output))
    shown = next(line for line in output.splitlines() if phrase in line)
    return (
        f"nothing listening: `config test` failed in {', '.join(f'{s:.1f}' for s in walls)} s "
        f"wall (Meltano's first to last log line: {', '.join(f'{s:.1f}' for s in logged)} s); "
        f"Meltano printed {shown_as(shown)}"
    )


def check_repository_block(project: Project, lines: list[str]) -> str:
    done = project.script(lines)
    output = done.stdout + done.stderr
    check(done.returncode == 0, f"the repository block failed:\n{output[-4000:]}")
    for stream in STREAMS:
        check(f"] {stream}.id" in done.stdout, f"{stream} missing from select --list")
    written = {
        stream: sum(
            1
            for path in (project.path / "output" / "jsonl").glob(f"{stream}*.jsonl")
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        )
        for stream in STREAMS
    }
    check(all(written.values()), f"target-jsonl wrote {written}")
    return f"repository block ({len(lines)} lines) as written: every line exit 0; records {written}"


def check_wrong_keys(project: Project) -> str:
    server = subprocess.Popen(
        [sys.executable, "-m", "tap_maesn_qonto.emulator", "--port", "8787"],
        cwd=project.path,
        env=project.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if port_in_use(8787):
                break
            time.sleep(0.1)
        cases = {
            "TAP_MAESN_QONTO_API_KEY": "api_key (your Maesn tenant key) is wrong",
            "TAP_MAESN_QONTO_ACCOUNT_KEY": "account_key of account default is not valid",
        }
        commands = {
            "config test": "meltano --environment=emulator config test tap-maesn-qonto",
            "run": "meltano run tap-maesn-qonto target-jsonl",
        }
        shown = []
        for variable, phrase in cases.items():
            for name, command in commands.items():
                done, _ = project.bash(command, **{variable: WRONG})
                output = done.stdout + done.stderr
                check(done.returncode != 0, f"{command} passed with a wrong {variable}")
                check(phrase in output, f"{phrase!r} not in {command}:\n{output[-3000:]}")
                check(WRONG not in output, f"the key reached Meltano's output ({command})")
                line = next(line for line in output.splitlines() if phrase in line)
                if name == "run":
                    check(
                        "[error    ] tap-maesn-qonto" in line,
                        f"`meltano run` did not show the tap's error as an error: {line}",
                    )
                shown.append(f"{name}, wrong {variable[16:].lower()}: {shown_as(line)}")
        return "wrong keys named under Meltano: " + "; ".join(shown)
    finally:
        server.terminate()
        server.wait(timeout=10)


def check_own_project_block(project: Project, lines: list[str]) -> str:
    emulator = subprocess.Popen(
        [sys.executable, "-m", "tap_maesn_qonto.emulator", "--port", "0", "--url-file", "url"],
        cwd=project.path,
        env=project.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url_file = project.path / "url"
        for _ in range(100):
            if url_file.exists() and url_file.read_text().strip():
                break
            time.sleep(0.1)
        done = project.script(
            lines, TAP_MAESN_QONTO_API_URL=url_file.read_text().strip(), **EMULATOR_KEYS
        )
        output = done.stdout + done.stderr
        check(done.returncode == 0, f"the own-project block failed:\n{output[-4000:]}")
        dotenv = (project.path / ".env").read_text(encoding="utf-8")
        check("TAP_MAESN_QONTO_API_KEY" in dotenv, f".env holds no api_key: {dotenv!r}")
        check("Plugin configuration is valid" in output, "config test did not pass")
        return f"own-project block ({len(lines)} lines) as written, api_url at the emulator: exit 0"
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--meltano", help="the meltano executable (default: see the docstring)")
    parser.add_argument("--keep", action="store_true", help="keep the project copy")
    args = parser.parse_args()
    own_project, repository = readme_blocks()
    meltano = meltano_executable(args.meltano)
    version = subprocess.run([meltano, "--version"], capture_output=True, text=True, check=True)
    print(f"{version.stdout.strip()} ({meltano})")
    work = Path(tempfile.mkdtemp(prefix="meltano-readme-check-"))
    failed = False
    try:
        copy_checkout(work)
        project = Project(work, meltano)
        checks: list[Callable[[], str]] = [
            lambda: check_repository_block(project, repository),  # installs the plugins
            lambda: check_fast_failure(project),
            lambda: check_wrong_keys(project),
            lambda: check_own_project_block(project, own_project),
        ]
        for step in checks:
            try:
                print(f"PASS {step()}", flush=True)
            except AssertionError as exc:
                failed = True
                print(f"FAIL {exc}", flush=True)
    finally:
        if args.keep:
            print(f"project copy kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
