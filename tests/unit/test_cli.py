"""The tap's inputs as users really give them: pipes, empty or odd state, odd keys, odd times.

Every test runs the real tap (its CLI as a subprocess, or in process) against the
emulator, and checks the exit code, the single error line and that no key leaks.
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
