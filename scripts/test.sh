#!/usr/bin/env bash
# The test command: lint, types, then the whole pytest suite (loopback only).
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
uv run --locked ruff check .
uv run --locked ruff format --check .
uv run --locked mypy
uv run --locked pytest -n 2 "$@"
