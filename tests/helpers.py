"""Helpers that run the tap for real (in-process or as a CLI) against the emulator."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import typing as t
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from singer_sdk.contrib.msgspec import MsgSpecWriter, decoder

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.tap import TapMaesnQonto

API_KEY = "emulator-api-key"
ACCOUNT_KEY = "emulator-account-qonto"
SANDBOX_ACCOUNT_KEY = "emulator-account-sandbox"
STREAM_RESOURCES = {
    "invoices": "invoices",
    "bills": "bills",
    "booking_proposals": "bookingProposals",
}
REPO_ROOT = Path(__file__).resolve().parent.parent


def tap_config(emulator: Emulator, **overrides: t.Any) -> dict[str, t.Any]:
    """A tap config pointing at ``emulator``, fast to fail in tests."""
    return {
        "api_key": API_KEY,
        "account_key": ACCOUNT_KEY,
        "api_url": emulator.url,
        "start_date": "2020-01-01T00:00:00Z",
        "max_retry_seconds": 30,
        **overrides,
    }


class CollectingWriter(MsgSpecWriter):
    """Keeps every message the tap writes, decoded exactly as a target would read it."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, t.Any]] = []

    def write_message(self, message: t.Any) -> None:
        self.messages.append(decoder.decode(bytes(self.format_message(message))))


@dataclass
class SyncResult:
    """The Singer messages of one run, with the questions tests ask of them."""

    messages: list[dict[str, t.Any]]

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def ids(self, stream: str) -> list[str]:
        return [r["id"] for r in self.records(stream)]

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, t.Any]:
        return self.states[-1]


def sync(
    config: dict[str, t.Any],
    state: dict | None = None,
    catalog: dict | None = None,
    *,
    expect: type[BaseException] | None = None,
) -> SyncResult:
    """Run a sync in this process and return every message written.

    With ``expect``, the run must end with that exception (checked here); the
    messages written until then are returned all the same.
    """
    writer = CollectingWriter()
    tap = TapMaesnQonto(config=config, state=state, catalog=catalog, message_writer=writer)
    try:
        tap.sync_all()
    except BaseException as exc:
        if expect is None or not isinstance(exc, expect):
            raise
        return SyncResult(writer.messages)
    assert expect is None, f"the run ended without {expect.__name__}"
    return SyncResult(writer.messages)


def catalog_selecting(config: dict[str, t.Any], streams: t.Iterable[str]) -> dict[str, t.Any]:
    """The tap's catalog with only ``streams`` selected (and their line items, if named)."""
    wanted = set(streams)
    catalog = TapMaesnQonto(config=config, validate_config=False).catalog.to_dict()
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in wanted
    return catalog


def state_at(
    value: str, streams: t.Iterable[str] = STREAM_RESOURCES, label: str = "default"
) -> dict[str, t.Any]:
    """A state with ``value`` as the bookmark of each of ``streams``, for account ``label``."""
    return {
        "bookmarks": {
            stream: {
                "partitions": [
                    {
                        "context": {"account_label": label},
                        "replication_key": "updatedDate",
                        "replication_key_value": value,
                    }
                ]
            }
            for stream in streams
        }
    }


def bookmark(state: dict[str, t.Any], stream: str) -> dict[str, t.Any]:
    """The single account partition's bookmark of ``stream``."""
    partitions = state["bookmarks"][stream]["partitions"]
    assert len(partitions) == 1, partitions
    return partitions[0]


def run_cli(
    *args: str,
    config: dict[str, t.Any] | None = None,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tap_maesn_qonto`` as a user would; config goes to a file."""
    argv = [sys.executable, "-m", "tap_maesn_qonto", *args]
    if config is not None:
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        argv += ["--config", str(config_path)]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def parse_messages(stdout: str) -> SyncResult:
    return SyncResult([json.loads(line) for line in stdout.splitlines() if line.strip()])


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (scripts are not a package) for its functions."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
