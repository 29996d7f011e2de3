"""The retry policy's answer to a network failure (retries.py), fed failures directly.

Before the API has answered at all, a host name that does not resolve is a setting to fix:
two tries, then one line naming the cause, the URL's user and password never shown. Once
the API has answered, the same error is a blip with the whole retry budget, and the final
message still names it. The command line, timed: tests/cli/test_network_errors.py.
"""

from __future__ import annotations

import typing as t

import pytest
import requests

from tap_maesn_qonto.errors import WrongApiUrlError
from tap_maesn_qonto.retries import RetryPolicy, gave_up
from tap_maesn_qonto.runtime import RunContext
from tests.support.network import UNRESOLVABLE, failure

# --------------------------------------------------------------------------- after an answer


@pytest.fixture(scope="module")
def dns_failure() -> requests.RequestException:
    return failure(f"https://{UNRESOLVABLE}/accounting/invoices")


class _NoWaiting:
    """A stop event that is never set and does not sleep: the waits are only counted."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False

    def is_set(self) -> bool:
        return False


def _retries(
    exception: BaseException, *, reached_api: bool, failures: int
) -> tuple[int, BaseException | None]:
    """Feed ``failures`` failures of one request to the wait generator.

    Returns how many it accepted to retry, and what it raised instead, if anything.
    """
    run = RunContext(api_url=f"https://user:pw@{UNRESOLVABLE}", max_concurrency=1)
    run.reached_api = reached_api
    run.stop = _NoWaiting()  # type: ignore[assignment]
    waits = RetryPolicy(max_retries=8, max_retry_seconds=300).waits(
        run, "invoices", lambda: "GET /accounting/invoices (page 1)", _quiet_logger()
    )
    next(waits)
    retried = 0
    try:
        for _ in range(failures):
            waits.send(exception)
            retried += 1
    except Exception as exc:  # what the generator raised is the result
        return retried, exc
    return retried, None


def _quiet_logger() -> t.Any:
    import logging  # noqa: PLC0415

    logger = logging.getLogger("tests.network_errors")
    logger.disabled = True
    return logger


def test_before_any_answer_a_dns_failure_is_tried_twice(
    dns_failure: requests.RequestException,
) -> None:
    retried, raised = _retries(dns_failure, reached_api=False, failures=5)

    assert retried == 1  # the first failure is retried, the second ends the run
    assert isinstance(raised, WrongApiUrlError)
    assert f"the host name {UNRESOLVABLE} does not resolve" in str(raised)
    assert "user" not in str(raised)
    assert "pw" not in str(raised)  # the URL's user:password is never shown


def test_after_an_answer_a_dns_failure_has_the_whole_retry_budget(
    dns_failure: requests.RequestException,
) -> None:
    # A blip mid-run: the API answered before, so it is not api_url that is wrong.
    retried, raised = _retries(dns_failure, reached_api=True, failures=8)

    assert (retried, raised) == (8, None)


def test_the_final_message_after_an_answer_names_the_cause(
    dns_failure: requests.RequestException,
) -> None:
    message = str(gave_up("GET /accounting/invoices (page 1)", 9, 61.0, dns_failure))

    assert "still failed after 9 attempts over 61 s" in message
    assert "last error: name resolution failed" in message
    assert "The network between here and api_url failed" in message
    assert "unavailable or rate-limiting" not in message
