"""The quick start stopped with Ctrl-C: one line saying so, exit 130, no traceback, nothing left.

CI runs the quick start whole (.ci/run step 4); this is what a user sees who presses Ctrl-C
in the middle of it: the SIGINT reaches every process of the terminal's foreground group
(the script, Meltano, the tap, the target), as a terminal sends it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from tests.support.meltano import project_lock
from tests.support.tap import REPO_ROOT

#: How long the quick start may take until the tap reads (installs included).
STARTUP_SECONDS = 300


def test_ctrl_c_in_the_quick_start_says_so_in_one_line_and_exits_130() -> None:
    with (
        project_lock(),  # the quick start uses this checkout's Meltano project
        subprocess.Popen(
            ["bash", "scripts/quickstart.sh"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        ) as process,
    ):
        assert process.stdout is not None
        lines: list[str] = []
        running = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if "Beginning sync of" in line:  # the tap reads (installs are done)
                    running.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert running.wait(STARTUP_SECONDS), "".join(lines[-40:])
            time.sleep(0.5)  # inside `meltano run`
            os.killpg(process.pid, signal.SIGINT)
            code = process.wait(120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        reader.join(10)
        # Nothing left (checked while the project is still this test's): Meltano stopped
        # the tap and the target, the script its emulator.
        left = _left_running(str(REPO_ROOT / ".meltano"), "--url-file .quickstart/emulator.url")
    output = "".join(lines)
    assert code == 130, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "Quick start stopped (Ctrl-C)" in output, output[-3000:]
    assert not left, left


def _left_running(*marks: str, grace_seconds: float = 5.0) -> list[str]:
    """Processes whose command line holds one of ``marks``, once ``grace_seconds`` passed
    (a process told to stop may take a moment to end)."""
    deadline = time.monotonic() + grace_seconds
    while (found := _running(marks)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def _running(marks: tuple[str, ...]) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                line = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if any(mark in line for mark in marks):
            found.append(line.strip())
    return found
