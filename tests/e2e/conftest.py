"""The end-to-end tier: everything under tests/e2e/ is marked ``e2e``.

The default test command (scripts/test.sh) runs ``-m "not e2e"``; CI (.ci/run) runs this
tier on its own with ``pytest -n 2 -m e2e``. Its tests are slow or need what the default
tier does not: Meltano and the targets, PostgreSQL, Dagster and moto, each from uv's tool
cache; the reliability scenarios; the soak; the read-path property test at scale.

Tests that share one Meltano project (this repository's: its ``.meltano`` directory and
``output/``) are in xdist group ``meltano-project`` (``--dist loadgroup``, set in
pyproject.toml), so that two workers never install or run in it at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)
