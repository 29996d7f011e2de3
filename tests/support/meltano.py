"""Meltano, run in this repository's project (meltano.yml) against an emulator.

The end-to-end tests that use this project (tests/e2e/test_meltano.py, test_deletions.py,
test_orchestration.py) share its ``.meltano`` directory (the installed plugins, the system
database, the catalog cache) and ``output/``: each module holds :func:`project_lock` while
it runs, so that two xdist workers never use the project at once. (xdist's ``loadgroup``
would say so more simply; with pytest 9.2 it silently does not group: pytest-xdist#1386.)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import tempfile
import typing as t
from pathlib import Path

from tests.support.tap import REPO_ROOT

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_maesn_qonto.emulator import Emulator

#: What Meltano's own chatter would add to every run (and the network it would use).
QUIET = {
    "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
}


@contextlib.contextmanager
def project_lock() -> Iterator[None]:
    """This checkout's Meltano project, for this process alone until the block ends (an
    exclusive lock other processes wait for)."""
    checkout = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"tap-maesn-qonto-meltano-{checkout}.lock"
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Meltano:
    """``meltano`` with the emulator's URL for the tap (``TAP_MAESN_QONTO_API_URL``)."""

    def __init__(self, executable: str, emulator: Emulator) -> None:
        self.executable = str(Path(executable).resolve())  # also run from other projects
        self.env = {**os.environ, "TAP_MAESN_QONTO_API_URL": emulator.url, **QUIET}

    def __call__(
        self, *args: str, cwd: Path = REPO_ROOT, **env: str
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
