"""The command line (cli.py), in this process: what it leaves the interpreter in.

The command line itself, as a subprocess: tests/cli/.
"""

from __future__ import annotations

import gc
import sys

import pytest

from tap_maesn_qonto import cli


def test_the_command_line_collects_garbage_again_once_the_tap_is_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # cli.py turns the collector off for the SDK's import only: a run without it would
    # keep every reference cycle its records make.
    monkeypatch.setattr(sys, "argv", ["tap-maesn-qonto", "--about"])
    try:
        assert cli.run() == 0
        assert gc.isenabled()
    finally:
        gc.enable()
