#!/usr/bin/env bash
# The test command: lint, types, then the default pytest tier (loopback only; tests/unit,
# sync, cli and the rest; not tests/e2e, which CI runs: uv run --locked pytest -n 2 -m e2e).
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
uv run --locked ruff check .
uv run --locked ruff format --check .
uv run --locked mypy
# Three workers on two cores: most tests run the tap as a process and wait on it or on the
# emulator part of the time, so a third worker shortens the run (benchmarks.commands test).
uv run --locked pytest -n 3 -m "not e2e" "$@"
