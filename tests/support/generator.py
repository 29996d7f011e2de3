"""scripts/generate_schemas.py, run as a maintainer runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GENERATOR = Path(__file__).resolve().parents[2] / "scripts" / "generate_schemas.py"


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    """scripts/generate_schemas.py, run as a maintainer runs it."""
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
