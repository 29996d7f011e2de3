"""Meltano, run in this repository's project (meltano.yml) against an emulator.

The end-to-end tests that use this project (tests/e2e/test_meltano.py, test_deletions.py,
test_orchestration.py) share its ``.meltano`` directory (the installed plugins) and
``output/``: they are in one xdist group, so that they never run at the same time.
"""

from __future__ import annotations

import os
import subprocess
import typing as t
from pathlib import Path

from tests.support.tap import REPO_ROOT

if t.TYPE_CHECKING:
    from tap_maesn_qonto.emulator import Emulator

#: What Meltano's own chatter would add to every run (and the network it would use).
QUIET = {
    "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
}
#: The xdist group of the tests that use this repository's Meltano project.
PROJECT_GROUP = "meltano-project"


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
