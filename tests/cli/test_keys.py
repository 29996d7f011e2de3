"""Which key Maesn rejected, and what ``sandbox`` promises: the command line.

The tap runs as a user runs it (``python -m tap_maesn_qonto``) against the emulator on
loopback. After a 401/403 it asks ``GET /auth/{TARGET_SYSTEM}`` with ``X-API-KEY`` only
(keycheck.py) and names the wrong key. Meltano itself runs in
``tests/e2e/readme.py`` (CI); tests/unit/test_readme.py checks that the
script finds every README block it runs, and that the README's extractor block matches
the Hub's.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
import typing as t
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.settings import DEFAULT_MAX_CONCURRENCY
from tests.support.configs import ACCOUNT_KEY, API_KEY, SANDBOX_ACCOUNT_KEY, tap_config
from tests.support.servers import QuietHandler, send_json, serving
from tests.support.tap import parse_messages, run_cli, structured_logging

if t.TYPE_CHECKING:
    from collections.abc import Iterator

WRONG_TENANT_KEY = "tenant-key-not-known-to-maesn-4f1e"
WRONG_ACCOUNT_KEY = "account-key-not-known-to-maesn-9c2a"
COUNTS = {"invoices": 7, "bills": 5, "bookingProposals": 3}


def _error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if "| ERROR" in line]


def _one_error(stderr: str) -> str:
    errors = _error_lines(stderr)
    assert len(errors) == 1, "\n".join(errors) or stderr[-3000:]
    return errors[0]


def _accounts_config(
    emulator: Emulator, accounts: list[dict[str, t.Any]], **overrides: t.Any
) -> dict[str, t.Any]:
    config = tap_config(emulator, accounts=accounts, **overrides)
    del config["account_key"]
    return config


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    # Error bodies echo the request headers: a key in them must still never reach the log.
    with Emulator(counts=COUNTS, echo_headers_in_errors=True) as emu:
        yield emu


def _assert_no_key(result: t.Any, *keys: str) -> None:
    for key in (API_KEY, ACCOUNT_KEY, SANDBOX_ACCOUNT_KEY, *keys):
        assert key not in result.stdout
        assert key not in result.stderr


# --------------------------------------------------------------------------- which key


def test_a_wrong_api_key_is_named_after_one_tenant_key_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    config = tap_config(emulator, api_key=WRONG_TENANT_KEY)
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    line = _one_error(result.stderr)
    assert "api_key (your Maesn tenant key) is wrong" in line
    assert "GET /auth/qonto, which needs only X-API-KEY, answered 401 Unauthorized" in line
    assert "account_key of account" not in line  # the account key is not blamed
    assert emulator.stats()["auth_requests"] == {"qonto": 1}
    assert parse_messages(result.stdout).records("invoices") == []
    _assert_no_key(result, WRONG_TENANT_KEY)


def test_a_wrong_account_key_is_named_with_its_label(emulator: Emulator, tmp_path: Path) -> None:
    config = tap_config(emulator, account_key=WRONG_ACCOUNT_KEY, account_label="acme-sas")
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    line = _one_error(result.stderr)
    assert (
        "account_key of account acme-sas is not valid for this tenant (or its Qonto "
        "connection expired: re-link)"
    ) in line
    assert "api_key is valid (GET /auth/qonto, which needs only X-API-KEY, answered 200 OK)" in line
    assert "api_key (your Maesn tenant key) is wrong" not in line
    assert emulator.stats()["auth_requests"] == {"qonto": 1}
    _assert_no_key(result, WRONG_ACCOUNT_KEY)


def test_an_expired_qonto_connection_is_the_account_keys_problem(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Maesn accepts both keys as such, but Qonto refused: a 401 on the data endpoint only.
    emulator.configure(failing_accounts={ACCOUNT_KEY: "401"})
    result = run_cli(config=tap_config(emulator), tmp_path=tmp_path)
    assert result.returncode == 1
    line = _one_error(result.stderr)
    assert "account_key of account default is not valid for this tenant" in line
    assert "re-link" in line


def test_an_inactive_end_user_is_the_account_keys_problem(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.configure(inactive_accounts=[ACCOUNT_KEY])
    result = run_cli(config=tap_config(emulator), tmp_path=tmp_path)
    assert result.returncode == 1
    line = _one_error(result.stderr)
    assert "403 Forbidden" in line
    assert "api_key is valid" in line
    assert "inactive" in line
    assert "account default" in line


def test_a_sandbox_account_is_checked_on_the_sandbox_auth_endpoint(
    emulator: Emulator, tmp_path: Path
) -> None:
    config = tap_config(emulator, api_key=WRONG_TENANT_KEY, sandbox=True)
    config["account_key"] = SANDBOX_ACCOUNT_KEY
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "GET /auth/qonto-sandbox, which needs only X-API-KEY" in _one_error(result.stderr)
    assert emulator.stats()["auth_requests"] == {"qonto-sandbox": 1}


def test_a_healthy_run_makes_no_key_check(emulator: Emulator, tmp_path: Path) -> None:
    result = run_cli(config=tap_config(emulator), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert emulator.stats()["auth_requests"] == {}


def test_a_wrong_api_key_stops_a_run_of_several_accounts_at_once_in_one_line(
    tmp_path: Path,
) -> None:
    keys = {f"emulator-account-{n:04d}": "qonto" for n in range(1, 41)}
    keys["emulator-account-sandbox"] = "qonto-sandbox"
    with Emulator(counts=COUNTS, accounts=keys) as emu:
        accounts = [
            {"label": f"company-{n:02d}", "account_key": key, "sandbox": system != "qonto"}
            for n, (key, system) in enumerate(keys.items())
        ]
        config = _accounts_config(emu, accounts, api_key=WRONG_TENANT_KEY)
        started = time.monotonic()
        result = run_cli(config=config, tmp_path=tmp_path)
        seconds = time.monotonic() - started
        stats = emu.stats()
    assert result.returncode == 1
    line = _one_error(result.stderr)  # no "account ... failed" line per account
    assert "api_key (your Maesn tenant key) is wrong" in line
    assert "All 41 accounts would fail the same way, so the run stopped at once" in line
    # Not the check endpoint alone: two other accounts' list requests agreed (keycheck.py).
    assert re.search(
        r"answered 401 Unauthorized too, as did GET /accounting/invoices\?limit=1 with the key "
        r"of account\(s\) company-\d\d, company-\d\d\.",
        line,
    ), line
    assert "failed and is skipped" not in result.stderr
    assert sum(stats["auth_requests"].values()) == 1  # one check serves every account
    # Stopped at the first refusal: only the first requests fetched ahead were sent
    # (2 x max_concurrency, a few more as they are taken), not 41 accounts x 3 streams.
    assert stats["requests"] <= 3 * DEFAULT_MAX_CONCURRENCY, stats
    assert seconds < 30
    assert parse_messages(result.stdout).records("invoices") == []
    _assert_no_key(result, WRONG_TENANT_KEY, *keys)


def test_with_several_accounts_a_wrong_account_key_fails_only_that_account(
    emulator: Emulator, tmp_path: Path
) -> None:
    accounts: list[dict[str, t.Any]] = [
        {"label": "acme", "account_key": ACCOUNT_KEY},
        {"label": "globex", "account_key": WRONG_ACCOUNT_KEY},
        {"label": "initech", "account_key": SANDBOX_ACCOUNT_KEY, "sandbox": True},
    ]
    result = run_cli(config=_accounts_config(emulator, accounts), tmp_path=tmp_path)
    assert result.returncode == 1
    messages = parse_messages(result.stdout)
    labels = {record["account_label"] for record in messages.records("invoices")}
    assert labels == {"acme", "initech"}
    errors = "\n".join(_error_lines(result.stderr))
    assert "account globex failed: Maesn rejected the account key" in errors
    assert "account_key of account globex is not valid for this tenant" in errors
    assert "1 of 3 accounts failed (globex)" in errors
    # At most one check: a 2xx with the same api_key earlier in the run makes it needless.
    assert sum(emulator.stats()["auth_requests"].values()) <= 1
    _assert_no_key(result, WRONG_ACCOUNT_KEY)


@contextlib.contextmanager
def _maesn_that_cannot_tell(auth_status: int) -> Iterator[str]:
    """401 on every data request; ``auth_status`` on GET /auth/... (a Maesn JSON error)."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            status = auth_status if self.path.startswith("/auth/") else 401
            send_json(self, json.dumps({"statusCode": status, "message": "no"}).encode(), status)

    with serving(Handler) as url:
        yield url


def test_when_the_check_is_inconclusive_both_keys_are_named_and_it_says_so(
    tmp_path: Path,
) -> None:
    with _maesn_that_cannot_tell(503) as url:
        config = {"api_key": API_KEY, "account_key": ACCOUNT_KEY, "api_url": url}
        result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    line = _one_error(result.stderr)
    assert "Check api_key" in line
    assert "account_key of account default" in line
    assert (
        "(The tap could not tell which key: GET /auth/qonto, which needs only X-API-KEY, "
        "answered 503 Service Unavailable.)"
    ) in line


# --------------------------------------------------------------------------- api_url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_nothing_listening_fails_fast_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"  # bound, then released: nothing listens there
    config = {"api_key": API_KEY, "account_key": ACCOUNT_KEY, "api_url": url}
    started = time.monotonic()
    result = run_cli(config=config, tmp_path=tmp_path)
    seconds = time.monotonic() - started
    assert result.returncode == 1
    line = _one_error(result.stderr)
    assert f"Nothing answered at api_url ({url}): connection refused 3 times" in line
    # Two quick retries (0.5 s, then 1 s), then the line: seconds, not max_retry_seconds.
    assert seconds < 10, f"took {seconds:.1f} s"


# --------------------------------------------------------------------------- sandbox


def test_the_sandbox_setting_says_it_is_only_a_label(tmp_path: Path) -> None:
    about = run_cli("--about", "--format=json", tmp_path=tmp_path)
    assert about.returncode == 0, about.stderr
    description = json.loads(about.stdout)["settings"]["properties"]["sandbox"]["description"]
    for phrase in ("A label, not a switch", "cannot be checked", "GET /auth/qonto-sandbox"):
        assert phrase in description


def test_sandbox_true_labels_the_rows_whatever_the_key_is(
    emulator: Emulator, tmp_path: Path
) -> None:
    # What the flag does not check, as the README says: a production key, labelled sandbox.
    result = run_cli(config=tap_config(emulator, sandbox=True), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    records = parse_messages(result.stdout).records("invoices")
    assert len(records) == COUNTS["invoices"]
    assert {record["target_system"] for record in records} == {"qonto-sandbox"}
    assert set(emulator.truth("invoices", account="qonto")) == {r["id"] for r in records}


def test_under_structured_logging_on_one_pipe_the_error_ends_as_a_plain_sentence(
    tmp_path: Path,
) -> None:
    # What `meltano config test` shows: the tap's stdout and stderr merged, its last line raw.
    config = {
        "api_key": "tenant-key-123",
        "account_key": "acct-key-456",
        "api_url": "http://127.0.0.1:9",
    }
    merged = run_cli(
        config=config,
        tmp_path=tmp_path,
        env=structured_logging(tmp_path),
        timeout=60,
        merge_stderr=True,
    )
    assert merged.returncode == 1
    lines = [line for line in merged.stdout.splitlines() if line.strip()]
    assert lines[-1].startswith("Nothing answered at api_url"), lines[-3:]
    # Before it, the JSON lines: the error, then the run summary (the run's last log line).
    error, summary = (json.loads(line) for line in lines[-3:-1])
    assert (error["level"], summary["level"]) == ("error", "info"), lines[-3:]
    assert error["message"].startswith("Nothing answered at api_url")
    assert summary["message"].startswith("run summary: ")
