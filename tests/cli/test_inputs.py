"""The tap's inputs as users really give them: pipes, empty or odd state, odd keys, odd times.

Every test runs the real tap (its CLI as a subprocess, or in process) against the
emulator, and checks the exit code, the single error line and that no key leaks.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from tap_maesn_qonto import cli
from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.errors import InvalidConfigError
from tap_maesn_qonto.settings import CONFIG_SCHEMA
from tap_maesn_qonto.state import check_state
from tap_maesn_qonto.tap import TapMaesnQonto
from tap_maesn_qonto.timestamps import format_timestamp, normalize_timestamp, parse_timestamp
from tests.support.configs import ACCOUNT_KEY, API_KEY, STREAM_RESOURCES, tap_config
from tests.support.tap import bookmark, parse_messages, state_at, sync

COUNT = 12
COUNTS = dict.fromkeys(STREAM_RESOURCES.values(), COUNT)
STREAMS = set(STREAM_RESOURCES)
LOGGER = logging.getLogger("tests.test_inputs")


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


class _TapWithAnotherSecret(TapMaesnQonto):
    """The tap with one more setting marked secret, as a future setting would be."""

    config_jsonschema: t.ClassVar[dict] = {
        **CONFIG_SCHEMA,
        "properties": {
            **CONFIG_SCHEMA["properties"],
            "proxy_password": {"type": ["string", "null"], "minLength": 12, "secret": True},
        },
    }


@pytest.mark.parametrize("value", ["pw-short", 424242424242])
def test_any_setting_marked_secret_is_named_without_its_value(value: object) -> None:
    config = {"api_key": API_KEY, "account_key": ACCOUNT_KEY, "proxy_password": value}
    with pytest.raises(InvalidConfigError) as info:
        _TapWithAnotherSecret(config=config)
    message = str(info.value)
    assert "'proxy_password'" in message
    assert str(value) not in message


# --- 4. valid timestamps that datetime cannot hold -----------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000000Z"),
        ("2016-12-31T23:59:60.250Z", "2017-01-01T00:00:00.250000Z"),
        ("2015-06-30T23:59:60+00:00", "2015-07-01T00:00:00.000000Z"),
        ("2017-01-01T05:29:60+05:30", "2017-01-01T00:00:00.000000Z"),
        ("20161231T235960Z", "2017-01-01T00:00:00.000000Z"),
        ("2026-02-28T24:00:00Z", "2026-03-01T00:00:00.000000Z"),
        ("2026-12-31T24:00:00.000+02:00", "2026-12-31T22:00:00.000000Z"),
        ("2026-01-01T24:00Z", "2026-01-02T00:00:00.000000Z"),
        ("0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00.000000Z"),
        ("0001-01-01T00:59:59.999+01:00", "0001-01-01T00:00:00.000000Z"),
        ("0001-01-01T24:00:00+01:00", "0001-01-01T23:00:00.000000Z"),
        ("9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T23:59:60Z", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T24:00:00Z", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T24:00:00+01:00", "9999-12-31T23:00:00.000000Z"),
        # Unchanged: the ordinary forms.
        ("2026-05-01T10:00:00+02:00", "2026-05-01T08:00:00.000000Z"),
        ("2026-05-01", "2026-05-01T00:00:00.000000Z"),
    ],
)
def test_valid_timestamps_at_the_edges_are_normalized_not_lost(value: str, expected: str) -> None:
    assert normalize_timestamp(value) == expected
    moment = parse_timestamp(value)
    assert moment.tzinfo == dt.UTC
    assert format_timestamp(moment) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T24:00:01Z",
        "2026-01-01T24:00:00.5Z",
        "2026-01-01T23:59:61Z",
        "2026-01-01T23:60Z",
        "2026-13-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "not a date",
        "",
        "2026-01-01T23:59:60+25:00",
    ],
)
def test_invalid_timestamps_are_still_refused(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the only contract is ValueError
        normalize_timestamp(value)


def test_a_leap_second_bookmark_is_resumed_from_the_next_second() -> None:
    leap = {
        "bookmarks": {
            stream: {"partitions": [_partitioned("default", "2025-06-30T23:59:60Z")]}
            for stream in STREAM_RESOURCES
        }
    }
    with Emulator(counts=COUNTS) as emulator:
        resumed = sync(tap_config(emulator, lookback_window=0), state=leap)
    for stream in STREAM_RESOURCES:
        records = resumed.records(stream)
        assert len(records) < COUNT, "the leap-second bookmark was not used"
        assert all(
            r["updatedDate"] >= "2025-07-01T00:00:00.000000Z" for r in records if r["updatedDate"]
        )


def test_a_start_date_before_year_1_in_utc_reads_everything() -> None:
    with Emulator(counts=COUNTS) as emulator:
        result = sync(tap_config(emulator, start_date="0001-01-01T00:00:00+01:00"))
    for stream in STREAM_RESOURCES:
        assert len(result.records(stream)) == COUNT


# --- 5. state in another shape --------------------------------------------------------


def _plain_state(value: str, streams: t.Iterable[str] = STREAM_RESOURCES) -> dict[str, t.Any]:
    return {
        "bookmarks": {
            stream: {"replication_key": "updatedDate", "replication_key_value": value}
            for stream in streams
        }
    }


def _partitioned(label: str, value: str) -> dict[str, t.Any]:
    return {
        "context": {"account_label": label},
        "replication_key": "updatedDate",
        "replication_key_value": value,
    }


def _middle(emulator: Emulator) -> str:
    """A bookmark with records on both sides of it in every stream."""
    moments = sorted(m for r in STREAM_RESOURCES.values() for m in _sorted_moments(emulator, r))
    return format_timestamp(moments[len(moments) // 2].replace(microsecond=0))


def _messages(caplog: pytest.LogCaptureFixture, level: int, phrase: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == level and phrase in r.getMessage()
    ]


@pytest.mark.parametrize("label", [None, "acme"])
def test_a_plain_stream_bookmark_is_moved_into_the_account_partition(
    caplog: pytest.LogCaptureFixture, label: str | None
) -> None:
    caplog.set_level(logging.INFO)
    overrides: dict[str, t.Any] = {"lookback_window": 0}
    if label is not None:
        overrides["account_label"] = label
    with Emulator(counts=COUNTS) as emulator:
        mark = _middle(emulator)
        result = sync(tap_config(emulator, **overrides), state=_plain_state(mark))
    moved = _messages(caplog, logging.INFO, "directly under the stream")
    assert len(moved) == 1, caplog.text
    assert repr(label or "default") in moved[0]
    total = 0
    for stream in STREAM_RESOURCES:
        records = result.records(stream)
        total += len(records)
        assert all(r["updatedDate"] >= mark for r in records if r["updatedDate"]), stream
        stream_state = result.final_state["bookmarks"][stream]
        assert "replication_key_value" not in stream_state, "the plain bookmark stayed"
        assert bookmark(result.final_state, stream)["context"] == {
            "account_label": label or "default"
        }
    assert total < COUNT * len(STREAM_RESOURCES), "the plain bookmark was ignored"


def test_a_partition_bookmark_wins_over_a_plain_one(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with Emulator(counts=COUNTS) as emulator:
        mark = _middle(emulator)
        state = _plain_state("2020-01-01T00:00:00Z")
        for stream_state in state["bookmarks"].values():
            stream_state["partitions"] = [_partitioned("default", mark)]
        result = sync(tap_config(emulator, lookback_window=0), state=state)
    assert not _messages(caplog, logging.INFO, "directly under the stream")
    for stream in STREAM_RESOURCES:
        assert all(r["updatedDate"] >= mark for r in result.records(stream) if r["updatedDate"])


def test_bookmarks_only_under_another_account_label_are_named_in_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with Emulator(counts=COUNTS) as emulator:
        mark = _middle(emulator)
        state = {
            "bookmarks": {
                stream: {"partitions": [_partitioned("old-name", mark)]}
                for stream in STREAM_RESOURCES
            }
        }
        result = sync(tap_config(emulator, account_label="new-name"), state=state)
    warnings = _messages(caplog, logging.WARNING, "'old-name'")
    assert len(warnings) == 1, caplog.text
    assert "'new-name'" in warnings[0]
    assert "start_date" in warnings[0]
    assert all(stream in warnings[0] for stream in STREAM_RESOURCES)
    for stream in STREAM_RESOURCES:  # read from start_date, as the warning says
        assert len(result.records(stream)) == COUNT


def test_check_state_takes_several_account_labels(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    state = _plain_state("2025-01-01T00:00:00Z", ["invoices"])
    state["bookmarks"]["bills"] = {
        "partitions": [
            _partitioned("a", "2025-02-01T00:00:00Z"),
            _partitioned("old", "2025-03-01T00:00:00Z"),
        ]
    }
    checked = check_state(state, STREAMS, LOGGER, account_labels=["a", "b"])
    # Several labels: the plain bookmark cannot be given to one of them, and stays.
    assert checked["bookmarks"]["invoices"] == {
        "replication_key": "updatedDate",
        "replication_key_value": "2025-01-01T00:00:00.000000Z",
    }
    assert len(_messages(caplog, logging.WARNING, "several account labels")) == 1
    renamed = _messages(caplog, logging.WARNING, "'old'")
    assert len(renamed) == 1
    assert "'b'" in renamed[0]
    assert "'a'" not in renamed[0]  # 'a' has its own bookmark
    assert not _messages(caplog, logging.INFO, "directly under the stream")
    # One label, given as a plain string, migrates.
    one = check_state(state, STREAMS, LOGGER, account_labels="a")
    assert one["bookmarks"]["invoices"]["partitions"] == [
        _partitioned("a", "2025-01-01T00:00:00.000000Z")
    ]


@pytest.mark.parametrize(
    "partitions",
    [
        [{"replication_key_value": "2025-01-01T00:00:00Z"}],
        [_partitioned("default", "2025-01-01T00:00:00Z")] * 2,
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
