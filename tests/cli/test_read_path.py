"""Regression tests for the rebuilt read path (issue 9) whose guarantee is what the
command line says and how it ends: a 404, 422 or errors-200 that persists, an api_url that
is not Maesn or where nothing listens, a redirect to another host, a Retry-After date
without a zone, the give-up message's count of attempts (e2e: a real 3 s budget).

The tap runs as a user runs it, against the emulator (or a tiny non-Maesn server). The
items checked in process: tests/sync/test_read_path.py.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from tap_maesn_qonto.emulator import Emulator
from tests.support.checks import (
    KEYS,
    assert_a_clean_run_read_every_id,
    assert_no_key_leaked,
    assert_one_clear_error,
    bookmark_value,
    counts,
    invoices,
    utc,
    whole_list,
)
from tests.support.configs import ACCOUNT_KEY, API_KEY, STREAM_RESOURCES, tap_config
from tests.support.servers import header_recorder, static_server
from tests.support.tap import (
    parse_messages,
    run_cli,
)


def _free_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_404_that_persists_mid_stream_fails_without_advancing_the_state(
    tmp_path: Path,
) -> None:
    # issue 9, item 1
    with Emulator(counts=invoices(203)) as emulator:
        emulator.fail_next("404", count=1000, resource="invoices", page=3)
        config = whole_list(tap_config(emulator, page_size=20, max_concurrency=1))
        result = run_cli(config=config, tmp_path=tmp_path, quick_retries=True)
        truth = emulator.truth("invoices")
    assert result.returncode == 1, result.stderr
    assert_one_clear_error(result.stderr, "/accounting/invoices (page 3)", "404")
    assert_no_key_leaked(result.stdout, result.stderr)
    messages = parse_messages(result.stdout)
    unread = set(truth) - set(messages.ids("invoices"))
    assert unread, "the failing page was read after all"
    oldest_unread = min(utc(truth[i]["updatedDate"]) or "" for i in unread)
    assert messages.states, "no STATE was emitted"
    for state in messages.states:
        value = bookmark_value(state, "invoices")
        assert value is None or value <= oldest_unread, (value, oldest_unread)


# --- item 2: other 4xx after a full page ----------------------------------------------


def test_a_422_that_persists_within_the_reported_pages_is_fatal(tmp_path: Path) -> None:
    # issue 9, item 2
    with Emulator(counts=invoices(60)) as emulator:
        emulator.fail_next("422", count=1000, resource="invoices", page=3)
        config = whole_list(tap_config(emulator, page_size=10, max_concurrency=1))
        result = run_cli(config=config, tmp_path=tmp_path, quick_retries=True)
    assert result.returncode == 1, result.stderr
    assert_one_clear_error(result.stderr, "/accounting/invoices (page 3)", "422")
    assert_no_key_leaked(result.stdout, result.stderr)


def test_a_200_carrying_errors_every_time_is_fatal(tmp_path: Path) -> None:
    # issue 9, item 8
    with Emulator(counts=invoices(20)) as emulator:
        emulator.fail_next("errors_200", count=1000, resource="invoices")
        config = tap_config(emulator, page_size=5, max_retries=2)
        result = run_cli(config=config, tmp_path=tmp_path, quick_retries=True)
    assert result.returncode == 1, result.stderr
    assert_one_clear_error(result.stderr, "/accounting/invoices", "after 3 attempts")
    assert_no_key_leaked(result.stdout, result.stderr)
    assert parse_messages(result.stdout).ids("invoices") == []


# --- item 10: api_url is not Maesn ----------------------------------------------------------


@pytest.mark.parametrize("server", ["not_maesn", "v1_suffix", "static_web_server"])
def test_an_api_url_that_is_not_maesn_fails_in_one_line(tmp_path: Path, server: str) -> None:
    # issue 9, item 10
    with Emulator(counts=counts(10), not_maesn=server == "not_maesn") as emulator:
        config = tap_config(emulator)
        if server == "v1_suffix":
            config["api_url"] = emulator.url + "/v1"
        if server == "static_web_server":
            (tmp_path / "site").mkdir()
            with static_server(tmp_path / "site") as url:
                config["api_url"] = url
                result = run_cli(config=config, tmp_path=tmp_path)
        else:
            result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1, result.stderr
    assert_one_clear_error(result.stderr, "api_url")
    assert_no_key_leaked(result.stdout, result.stderr)
    assert not [m for m in parse_messages(result.stdout).messages if m["type"] == "RECORD"]


# --- item 11: Retry-After as an HTTP date without a real zone -------------------------------


@pytest.mark.parametrize("style", ["http_date_minus0000", "http_date_no_zone"])
def test_a_retry_after_date_without_a_zone_is_honoured(tmp_path: Path, style: str) -> None:
    # issue 9, item 11
    with Emulator(counts=counts(10), retry_after=1, retry_after_format=style) as emulator:
        emulator.fail_next("429", count=1)
        result = run_cli(config=tap_config(emulator), tmp_path=tmp_path)
        truth = {s: set(emulator.truth(r)) for s, r in STREAM_RESOURCES.items()}
        faults = emulator.stats()["faults"]
    assert faults == {"429": 1}
    assert_a_clean_run_read_every_id(result, truth)


# --- item 13: nothing listening --------------------------------------------------------------


def test_nothing_listening_at_api_url_fails_quickly_in_one_line(tmp_path: Path) -> None:
    # issue 9, item 13
    config = {
        "api_key": API_KEY,
        "account_key": ACCOUNT_KEY,
        "api_url": f"http://127.0.0.1:{_free_port()}",
        "start_date": "2020-01-01T00:00:00Z",
    }
    started = time.monotonic()
    result = run_cli(config=config, tmp_path=tmp_path, timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert elapsed < 15, f"{elapsed:.0f} s before giving up"
    assert_one_clear_error(result.stderr, "api_url")
    assert_no_key_leaked(result.stdout, result.stderr)


# --- item 14: a redirect to another host -------------------------------------------------


def test_a_redirect_to_another_host_never_carries_the_keys(tmp_path: Path) -> None:
    # issue 9, item 14
    with header_recorder() as recorder, Emulator(counts=counts(5)) as emulator:
        port = recorder.url.rsplit(":", 1)[1]
        emulator.configure(redirect_api_to=f"http://localhost:{port}")
        result = run_cli(config=tap_config(emulator), tmp_path=tmp_path)
    assert "x-api-key" not in recorder.header_names()
    assert "x-account-key" not in recorder.header_names()
    for value in recorder.header_values():
        for key in KEYS:
            assert key not in value
    assert result.returncode == 1, result.stderr
    assert_one_clear_error(result.stderr, "redirected to another host")
    assert_no_key_leaked(result.stdout, result.stderr)


# --- item 16: the give-up message counts the attempts made -----------------------------------


@pytest.mark.e2e  # slow: 3 s of real backoff per stream, by design
def test_the_give_up_message_counts_the_attempts_really_made(tmp_path: Path) -> None:
    # issue 9, item 16
    with Emulator(counts=counts(10), fail_always="503") as emulator:
        # One at a time: no guessed probe of the whole list beside each page 1.
        config = tap_config(emulator, max_retries=50, max_retry_seconds=3, max_concurrency=1)
        result = run_cli(config=config, tmp_path=tmp_path)
        requests = emulator.stats()["list_requests"]
    assert result.returncode == 1, result.stderr
    assert_one_clear_error(result.stderr, "still failed after", "HTTP 503")
    match = re.search(
        r"GET /accounting/(\w+) \(page 1\) still failed after (\d+) attempts", result.stderr
    )
    assert match, result.stderr
    resource, attempts = match.group(1), int(match.group(2))
    assert requests[resource] == attempts  # every request of that endpoint was its page 1
    assert attempts < 51
