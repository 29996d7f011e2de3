"""Bad input and failing servers get one clear line, a non-zero exit and no secret.

These tests run the tap as a user does (``python -m tap_maesn_qonto``) and read
its exit code, stdout and stderr.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tests.support.configs import STREAM_RESOURCES, tap_config
from tests.support.tap import parse_messages, run_cli, state_at

TENANT_SECRET = "tenant-key-7c1d0e5a9f3b4d2e8a6c"
ACCOUNT_SECRET = "account-key-2b9e4f6a1c8d3e7f5a0b"
SECRETS = (TENANT_SECRET, ACCOUNT_SECRET)


def _counts(n: int) -> dict[str, int]:
    return dict.fromkeys(STREAM_RESOURCES.values(), n)


def _assert_one_clear_error(stderr: str, *phrases: str) -> None:
    assert "Traceback" not in stderr, stderr
    error_lines = [line for line in stderr.splitlines() if "ERROR" in line or "CRITICAL" in line]
    assert error_lines, stderr
    joined = "\n".join(error_lines)
    for phrase in phrases:
        assert phrase in joined, f"{phrase!r} not in:\n{joined}"


@pytest.mark.parametrize(
    ("setting", "value", "phrase"),
    [
        ("start_date", "yesterday-ish", "start_date 'yesterday-ish' is not an ISO 8601"),
        ("page_size", 7, "7 is not one of [5, 10, 20, 50, 100]"),
        ("api_url", "ftp://api.maesn.dev", "api_url 'ftp://api.maesn.dev' is not an http(s) URL"),
        ("api_url", "http://api.maesn.dev", "plain http to a non-loopback host"),
        ("max_concurrency", 0, "0 is less than the minimum of 1"),
        ("request_timeout", "ten", "'ten' is not of type 'integer'"),
        (
            "acount_key",
            "x",
            "'acount_key' is not a setting of tap-maesn-qonto; did you mean 'account_key'?",
        ),
    ],
)
def test_a_setting_of_the_wrong_shape_stops_the_tap_naming_it(
    tmp_path: Path, setting: str, value: object, phrase: str
) -> None:
    config = {"api_key": "k", "account_key": "a", setting: value}
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    _assert_one_clear_error(result.stderr, phrase)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    result = run_cli(config={}, tmp_path=tmp_path)
    assert result.returncode == 1
    _assert_one_clear_error(result.stderr, "'api_key' is a required property")


def test_wrong_keys_say_which_key_to_check(tmp_path: Path) -> None:
    with Emulator(counts=_counts(5)) as emulator:
        config = tap_config(emulator, api_key=TENANT_SECRET, account_key=ACCOUNT_SECRET)
        result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    _assert_one_clear_error(result.stderr, "401 Unauthorized", "api_key", "account_key", "re-link")


@pytest.mark.parametrize("fault", ["401", "503", "422", "html"])
def test_no_secret_appears_anywhere_even_at_debug_level(tmp_path: Path, fault: str) -> None:
    # The emulator echoes the request headers (with the keys) in every error body.
    with Emulator(
        counts=_counts(5),
        api_keys=[TENANT_SECRET],
        accounts={ACCOUNT_SECRET: "qonto"},
        echo_headers_in_errors=True,
    ) as emulator:
        emulator.fail_next(fault, count=3)
        config = tap_config(
            emulator, api_key=TENANT_SECRET, account_key=ACCOUNT_SECRET, max_retries=2
        )
        state = _state_file(tmp_path, "{}")
        result = run_cli(
            "--state",
            state,
            config=config,
            tmp_path=tmp_path,
            env={"TAP_MAESN_QONTO_LOGLEVEL": "debug"},
            quick_retries=True,
        )
    assert "DEBUG" in result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout, "a key reached the Singer output"
        assert secret not in result.stderr, "a key reached the log"


def test_inactive_account_gets_the_403_advice(tmp_path: Path) -> None:
    with Emulator(counts=_counts(5), inactive_accounts=["emulator-account-qonto"]) as emulator:
        result = run_cli(config=tap_config(emulator), tmp_path=tmp_path)
    assert result.returncode == 1
    _assert_one_clear_error(result.stderr, "403 Forbidden", "inactive")


@pytest.mark.parametrize(
    ("kind", "phrase"),
    [
        ("html", "HTML page instead of JSON"),
        ("data_not_list", "'data' that is not a list"),
    ],
)
def test_a_200_that_is_not_the_json_envelope_is_a_clear_error(
    tmp_path: Path, kind: str, phrase: str
) -> None:
    with Emulator(counts=_counts(5)) as emulator:
        # Two: the first page and the probe guessed beside it go out together (prefetch.py).
        emulator.fail_next(kind, count=2, resource="invoices")
        result = run_cli(config=tap_config(emulator), tmp_path=tmp_path)
    assert result.returncode == 1
    _assert_one_clear_error(result.stderr, phrase, "/accounting/invoices")


@pytest.mark.parametrize(("kind", "phrase"), [("truncated", "not valid JSON")])
def test_a_cut_off_body_is_retried_and_fatal_only_when_it_persists(
    tmp_path: Path, kind: str, phrase: str
) -> None:
    with Emulator(counts=_counts(5)) as emulator:
        emulator.fail_next(kind, count=1, resource="invoices")
        once = run_cli(config=tap_config(emulator), tmp_path=tmp_path, quick_retries=True)
        truth = set(emulator.truth("invoices"))
        emulator.fail_next(kind, count=1000, resource="invoices")
        always = run_cli(
            config=tap_config(emulator, max_retries=2), tmp_path=tmp_path, quick_retries=True
        )
    assert once.returncode == 0, once.stderr
    assert set(parse_messages(once.stdout).ids("invoices")) == truth
    assert always.returncode == 1
    _assert_one_clear_error(always.stderr, phrase, "/accounting/invoices", "after 3 attempts")


def test_an_endpoint_missing_for_the_target_system_fails_its_reads_only(tmp_path: Path) -> None:
    # Maesn documents all three for Qonto: a missing one is not "nothing to read", so
    # the run ends non-zero, naming it, after reading every other stream.
    with Emulator(counts=_counts(12), unsupported=["bookingProposals"]) as emulator:
        result = run_cli(config=tap_config(emulator), tmp_path=tmp_path, quick_retries=True)
        truth_invoices = set(emulator.truth("invoices"))
    assert result.returncode == 1, result.stderr
    _assert_one_clear_error(
        result.stderr, "/accounting/bookingProposals", "not available for this account"
    )
    messages = parse_messages(result.stdout)
    assert set(messages.ids("invoices")) == truth_invoices
    assert messages.ids("booking_proposals") == []


def test_429_and_5xx_are_retried_and_counted(tmp_path: Path) -> None:
    with Emulator(counts=_counts(30), retry_after=1) as emulator:
        # One more each: a first run also guesses the list's probe beside its first page
        # (prefetch.py); the guess is tried once, and whichever goes first meets a fault.
        emulator.fail_next("429", count=3, resource="invoices")
        emulator.fail_next("503", count=2, resource="bills")
        emulator.fail_next("reset", count=2, resource="bookingProposals")
        result = run_cli(config=tap_config(emulator, page_size=10), tmp_path=tmp_path)
        truth = {s: set(emulator.truth(r)) for s, r in STREAM_RESOURCES.items()}
    assert result.returncode == 0, result.stderr
    messages = parse_messages(result.stdout)
    for stream, ids in truth.items():
        assert set(messages.ids(stream)) == ids
        assert len(messages.ids(stream)) == len(ids)
    assert (
        "invoices: HTTP 429 Too Many Requests on GET /accounting/invoices (page 1); retry 1"
        in result.stderr
    )
    assert "bills: HTTP 503" in result.stderr
    assert "invoices: sync summary: 30 records emitted" in result.stderr
    assert "2 retries" in result.stderr


def test_a_fault_that_never_clears_gives_up_in_bounded_time(tmp_path: Path) -> None:
    with Emulator(counts=_counts(30), fail_always="503") as emulator:
        config = tap_config(emulator, max_retries=3, max_retry_seconds=5)
        started = time.monotonic()
        result = run_cli(config=config, tmp_path=tmp_path, quick_retries=True)
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 30
    _assert_one_clear_error(
        result.stderr, "GET /accounting/bills (page 1) still failed", "HTTP 503"
    )


def test_timeouts_are_retried(tmp_path: Path) -> None:
    with Emulator(counts=_counts(10), slow_seconds=3.0) as emulator:
        # Two: the first page and the probe guessed beside it go out together (prefetch.py).
        emulator.fail_next("slow", count=2, resource="invoices")
        result = run_cli(config=tap_config(emulator, request_timeout=1), tmp_path=tmp_path)
        truth = set(emulator.truth("invoices"))
    assert result.returncode == 0, result.stderr
    assert "ReadTimeout" in result.stderr
    assert set(parse_messages(result.stdout).ids("invoices")) == truth


def _state_file(tmp_path: Path, content: str) -> str:
    path = tmp_path / "state.json"
    path.write_text(content)
    return str(path)


def test_a_corrupt_state_file_is_named_and_nothing_is_emitted(tmp_path: Path) -> None:
    with Emulator(counts=_counts(5)) as emulator:
        state = _state_file(tmp_path, '{"bookmarks": {"invoices": ')
        result = run_cli("--state", state, config=tap_config(emulator), tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    _assert_one_clear_error(result.stderr, "is not valid JSON", "meltano state")


def test_a_bookmark_in_the_future_stops_the_tap(tmp_path: Path) -> None:
    future = state_at("2999-01-01T00:00:00Z", ["invoices"])
    with Emulator(counts=_counts(5)) as emulator:
        state = _state_file(tmp_path, json.dumps(future))
        result = run_cli("--state", state, config=tap_config(emulator), tmp_path=tmp_path)
    assert result.returncode == 1
    _assert_one_clear_error(result.stderr, "'invoices'", "is in the future")


def test_a_bookmark_in_an_odd_format_is_normalized_and_resumed(tmp_path: Path) -> None:
    odd = state_at("2026-06-01 12:00:00+02:00", ["bills"])
    odd["bookmarks"]["some_other_taps_stream"] = {"replication_key_value": 17}
    with Emulator(counts=_counts(60)) as emulator:
        state = _state_file(tmp_path, json.dumps(odd))
        result = run_cli(
            "--state", state, config=tap_config(emulator, lookback_window=0), tmp_path=tmp_path
        )
    assert result.returncode == 0, result.stderr
    assert "some_other_taps_stream" in result.stderr
    emitted = parse_messages(result.stdout).records("bills")
    assert emitted
    assert all(
        r["updatedDate"] is None or r["updatedDate"] >= "2026-06-01T10:00:00.000000Z"
        for r in emitted
    )


WRONG_TYPES = {
    "api_key": 12345,
    "account_key": ["a", "list"],
    "account_label": "",
    "sandbox": "maybe",
    "start_date": 20240101,
    "api_url": {"host": "api.maesn.dev"},
    "page_size": "100",
    "request_timeout": 0,
    "lookback_window": -1,
    "max_concurrency": 33,
    "max_requests_per_second": 0,
    "max_retries": 1.5,
    "max_retry_seconds": None,
    "allow_insecure_http": "yes",
}


#: The default tier's share of the sweep below (one of each kind of mistake); e2e: all.
WRONG_TYPES_QUICK = {"api_key", "sandbox", "start_date", "page_size", "max_retries"}


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        pytest.param(
            setting,
            value,
            id=setting,
            marks=() if setting in WRONG_TYPES_QUICK else pytest.mark.e2e,
        )
        for setting, value in WRONG_TYPES.items()
    ],
)
def test_every_setting_of_the_wrong_type_is_named(
    tmp_path: Path, setting: str, value: object
) -> None:
    config = {
        "api_key": "emulator-api-key",
        "account_key": "emulator-account-qonto",
        setting: value,
    }
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    _assert_one_clear_error(
        result.stderr, "Invalid config", f"'{setting}'" if setting != "start_date" else "start_date"
    )


def test_a_corrupt_state_file_given_with_equals_is_named_too(tmp_path: Path) -> None:
    with Emulator(counts=_counts(5)) as emulator:
        state = _state_file(tmp_path, "{not json")
        result = run_cli(f"--state={state}", config=tap_config(emulator), tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    _assert_one_clear_error(result.stderr, "is not valid JSON")
