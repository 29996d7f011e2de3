"""The quick start's Meltano pin and PostgreSQL binaries, for scripts/meltano_readme_check.py.

The end-to-end checks that lived here are tests/e2e/test_meltano.py (the ``e2e`` test tier,
run by .ci/run); the pin and the uv tool-cache lookup are tests/support/tools.py. This file
only keeps ``from meltano_e2e import MELTANO, default_pg_bin_dir, uvx_executable`` in
meltano_readme_check.py working until that script imports them from tests.support.tools.
"""

import sys
from pathlib import Path

# Imported from scripts/ (meltano_readme_check.py puts it on sys.path): the repository root
# makes tests.support importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.tools import MELTANO, default_pg_bin_dir, uvx_executable

__all__ = ["MELTANO", "default_pg_bin_dir", "uvx_executable"]
