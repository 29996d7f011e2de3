"""The tap's inputs as users really give them: pipes, empty or odd state, odd keys.

Every test runs the real tap's command line as a subprocess against the emulator, and
checks the exit code, the single error line and that no key leaks. Timestamps at the
edges: tests/unit/test_timestamps.py; a state in another shape: tests/sync/test_state.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.timestamps import format_timestamp, parse_timestamp
from tests.support.configs import ACCOUNT_KEY, API_KEY, STREAM_RESOURCES, tap_config
from tests.support.states import partitioned
from tests.support.tap import parse_messages, state_at

COUNT = 12
COUNTS = dict.fromkeys(STREAM_RESOURCES.values(), COUNT)
STREAMS = set(STREAM_RESOURCES)


# --- running the CLI ---------------------------------------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    """The environment of a run whose temporary files all land in ``tmp_path/tmp``."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(private_tmp)}


def _run(
    argv: list[str], tmp_path: Path, *, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(tmp_path), **(env or {})},
        check=False,
    )


def _tap(*args: str) -> list[str]:
    return [sys.executable, "-m", "tap_maesn_qonto", *args]


def _bash(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in bash, for its process substitution (``--config <(...)``)."""
    return _run(["bash", "-c", script], tmp_path, env={"PYTHON": sys.executable, **env})


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line or "| CRITICAL" in line]


def _assert_one_error(result: subprocess.CompletedProcess[str], *phrases: str) -> str:
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr, result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], f"{phrase!r} not in {lines[0]!r}"
    return lines[0]


def _assert_no_secret(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    for secret in (API_KEY, ACCOUNT_KEY, *secrets):
        assert secret not in result.stdout
        assert secret not in result.stderr


def _assert_nothing_left_on_disk(tmp_path: Path) -> None:
    assert list((tmp_path / "tmp").rglob("*")) == [], "a copy of an input was left on disk"


def _write(tmp_path: Path, name: str, content: t.Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _record_counts(stdout: str) -> dict[str, int]:
    messages = parse_messages(stdout)
    return {stream: len(messages.ids(stream)) for stream in STREAM_RESOURCES}


def _sorted_moments(emulator: Emulator, resource: str) -> list[dt.datetime]:
    return sorted(
        parse_timestamp(r["updatedDate"])
        for r in emulator.truth(resource).values()
        if r.get("updatedDate")
    )


# --- 1. --config, --state and --catalog from pipes ----------------------------------


@pytest.mark.parametrize("form", ["space", "equals"])
def test_a_config_piped_on_stdin_is_read_once_and_works(tmp_path: Path, form: str) -> None:
    args = ["--config", "/dev/stdin"] if form == "space" else ["--config=/dev/stdin"]
    with Emulator(counts=COUNTS) as emulator:
        result = _run(_tap(*args), tmp_path, stdin=json.dumps(tap_config(emulator)))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert _record_counts(result.stdout) == dict.fromkeys(STREAM_RESOURCES, COUNT)
    _assert_no_secret(result)
    _assert_nothing_left_on_disk(tmp_path)


def test_config_state_and_catalog_from_process_substitution(tmp_path: Path) -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = tap_config(emulator, lookback_window=0)
        catalog = _run(
            _tap("--config", _write(tmp_path, "config.json", config), "--discover"), tmp_path
        )
        assert catalog.returncode == 0, catalog.stderr
        document = json.loads(catalog.stdout)
        for entry in document["streams"]:  # select invoices only: proves the catalog is read
            for metadata in entry["metadata"]:
                if metadata["breadcrumb"] == []:
                    metadata["metadata"]["selected"] = entry["tap_stream_id"] == "invoices"
        mark = _sorted_moments(emulator, "invoices")[COUNT // 2].replace(microsecond=0)
        state = state_at(format_timestamp(mark), ["invoices"])
        result = _bash(
            '"$PYTHON" -m tap_maesn_qonto --config <(printf %s "$CONFIG") '
            '--state=<(printf %s "$STATE") --catalog <(printf %s "$CATALOG")',
            tmp_path,
            CONFIG=json.dumps(config),
            STATE=json.dumps(state),
            CATALOG=json.dumps(document),
        )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    counts = _record_counts(result.stdout)
    assert counts["bills"] == counts["booking_proposals"] == 0
    invoices = parse_messages(result.stdout).records("invoices")
    assert 0 < len(invoices) < COUNT, "the state was not used"
    assert all(r["updatedDate"] >= format_timestamp(mark) for r in invoices if r["updatedDate"])
    _assert_no_secret(result)
    _assert_nothing_left_on_disk(tmp_path)


@pytest.mark.parametrize("pipe_first", [True, False], ids=["pipe-then-file", "file-then-pipe"])
def test_repeated_config_files_and_pipes_merge_left_to_right(
    tmp_path: Path, pipe_first: bool
) -> None:
    with Emulator(counts=COUNTS) as emulator:
        file_config = _write(tmp_path, "base.json", tap_config(emulator, account_label="file"))
        piped = json.dumps({"account_label": "pipe"})
        args = (
            ["--config=/dev/stdin", "--config", file_config]
            if pipe_first
            else ["--config", file_config, "--config", "/dev/stdin"]
        )
        result = _run(_tap(*args), tmp_path, stdin=piped)
    assert result.returncode == 0, result.stderr
    labels = {r["account_label"] for r in parse_messages(result.stdout).records("invoices")}
    assert labels == {"file" if pipe_first else "pipe"}
    _assert_nothing_left_on_disk(tmp_path)


# Without memfd (not Linux, or no /proc), the copy goes to a private temporary file.
_WITHOUT_MEMFD = """
import os, sys, tempfile
os.__dict__.pop("memfd_create", None)
real_mkstemp = tempfile.mkstemp
def spying_mkstemp(*args, **kwargs):
    fd, path = real_mkstemp(*args, **kwargs)
    modes = oct(os.stat(path).st_mode & 0o777), oct(os.stat(os.path.dirname(path)).st_mode & 0o777)
    sys.stderr.write(f"COPY {path} {modes[0]} {modes[1]}\\n")
    return fd, path
tempfile.mkstemp = spying_mkstemp
from tap_maesn_qonto.cli import main
main()
"""


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_without_memfd_the_copy_is_private_and_deleted_at_exit(
    tmp_path: Path, outcome: str
) -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = tap_config(emulator, **({"page_size": 7} if outcome == "failure" else {}))
        result = _run(
            [sys.executable, "-c", _WITHOUT_MEMFD, "--config", "/dev/stdin"],
            tmp_path,
            stdin=json.dumps(config),
        )
    copies = [line.split() for line in result.stderr.splitlines() if line.startswith("COPY ")]
    assert len(copies) == 1, result.stderr
    _, path, file_mode, dir_mode = copies[0]
    assert Path(path).is_relative_to(tmp_path / "tmp")
    assert (file_mode, dir_mode) == ("0o600", "0o700")
    if outcome == "success":
        assert result.returncode == 0, result.stderr
        assert _record_counts(result.stdout) == dict.fromkeys(STREAM_RESOURCES, COUNT)
    else:
        _assert_one_error(result, "Invalid config", "page_size")
    _assert_no_secret(result)
    _assert_nothing_left_on_disk(tmp_path)


def test_a_missing_or_unreadable_input_is_named(tmp_path: Path) -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = _write(tmp_path, "config.json", tap_config(emulator))
        missing = _run(_tap("--config", config, "--catalog", str(tmp_path / "nope.json")), tmp_path)
        directory = _run(_tap("--config", config, f"--state={tmp_path}"), tmp_path)
        (tmp_path / "latin1.json").write_bytes(b'{"bookmarks": "\xe9"}')
        latin1 = _run(_tap("--config", config, "--state", str(tmp_path / "latin1.json")), tmp_path)
    _assert_one_error(missing, "Cannot read the catalog file", "No such file")
    _assert_one_error(directory, "Cannot read the state file", "Is a directory")
    _assert_one_error(latin1, "latin1.json is not UTF-8 text")


# --- 2. empty state, state that is not an object -------------------------------------


@pytest.mark.parametrize(
    ("source", "content"),
    [("file", ""), ("file", " \n\t\n"), ("file", "null"), ("pipe", ""), ("pipe", "\n")],
)
def test_an_empty_state_means_no_state(tmp_path: Path, source: str, content: str) -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = _write(tmp_path, "config.json", tap_config(emulator))
        if source == "file":
            state = _write(tmp_path, "state.json", content)
            result = _run(_tap("--config", config, "--state", state), tmp_path)
        else:
            result = _run(
                _tap("--config", config, "--state", "/dev/stdin"), tmp_path, stdin=content
            )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert _record_counts(result.stdout) == dict.fromkeys(STREAM_RESOURCES, COUNT)
    final = parse_messages(result.stdout).final_state
    assert {name for name, value in final["bookmarks"].items() if value} == STREAMS


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ("[]", "an array"),
        ('[{"bookmarks": {}}]', "an array"),
        ('"bookmarks"', "a string"),
        ("42", "a number"),
        ("1.5", "a number"),
        ("true", "a boolean"),
    ],
)
def test_a_state_that_is_not_an_object_is_named_in_one_line(
    tmp_path: Path, content: str, kind: str
) -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = _write(tmp_path, "config.json", tap_config(emulator))
        state = _write(tmp_path, "state.json", content)
        result = _run(_tap("--config", config, f"--state={state}"), tmp_path)
    _assert_one_error(
        result, f"The state file {state} holds {kind}, not a JSON object", "meltano state get"
    )


@pytest.mark.parametrize("option", ["--config", "--catalog"])
def test_a_config_or_catalog_that_is_not_an_object_is_named(tmp_path: Path, option: str) -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = _write(tmp_path, "config.json", tap_config(emulator))
        bad = _write(tmp_path, "bad.json", "[1, 2]")
        args = ["--config", bad] if option == "--config" else ["--config", config, option, bad]
        result = _run(_tap(*args), tmp_path)
    _assert_one_error(result, f"The {option[2:]} file {bad} holds an array, not a JSON object")


def test_nan_in_a_state_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = _write(tmp_path, "config.json", tap_config(emulator))
        state = _write(tmp_path, "state.json", '{"bookmarks": {"invoices": {"x": NaN}}}')
        result = _run(_tap("--config", config, "--state", state), tmp_path)
    _assert_one_error(result, f"The state file {state} is not valid JSON", "NaN")


# --- 3. no secret value in any error line --------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "leaks"),
    [
        ("api_key", 12345678901, ["12345678901"]),
        ("account_key", 98765432109.5, ["98765432109"]),
        ("account_key", ["list-secret-4f1c"], ["list-secret-4f1c"]),
        ("api_key", {"nested": "dict-secret-9a2b"}, ["dict-secret-9a2b"]),
        ("api_key", True, []),
    ],
    ids=["int", "float", "list", "object", "bool"],
)
@pytest.mark.parametrize("mode", ["sync", "discover"])
def test_a_key_of_the_wrong_type_is_named_without_its_value(
    tmp_path: Path, setting: str, value: object, leaks: list[str], mode: str
) -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = _write(tmp_path, "config.json", tap_config(emulator, **{setting: value}))
        args = ["--config", config] + (["--discover"] if mode == "discover" else [])
        result = _run(_tap(*args), tmp_path)
    line = _assert_one_error(result, "Invalid config", f"'{setting}' must be a string")
    assert "secret" in line
    _assert_no_secret(result, *leaks)


def test_a_key_that_is_too_short_is_named_without_its_value(tmp_path: Path) -> None:
    config = {"api_key": "", "account_key": ACCOUNT_KEY, "page_size": 7}
    result = _run(_tap("--config", _write(tmp_path, "config.json", config)), tmp_path)
    _assert_one_error(result, "'api_key' is empty", "7 is not one of [5, 10, 20, 50, 100]")


@pytest.mark.parametrize(
    "partitions",
    [
        [{"replication_key_value": "2025-01-01T00:00:00Z"}],
        [partitioned("default", "2025-01-01T00:00:00Z")] * 2,
    ],
    ids=["no-context", "duplicate-context"],
)
def test_malformed_partitions_are_named_in_one_line(tmp_path: Path, partitions: list) -> None:
    with Emulator(counts=COUNTS) as emulator:
        config = _write(tmp_path, "config.json", tap_config(emulator))
        state = _write(
            tmp_path, "state.json", {"bookmarks": {"invoices": {"partitions": partitions}}}
        )
        result = _run(_tap("--config", config, "--state", state), tmp_path)
    _assert_one_error(result, "stream 'invoices'", "meltano state clear")
