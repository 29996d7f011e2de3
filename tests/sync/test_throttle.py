"""The request gate end to end: never more requests in flight than max_concurrency, and
Qonto-like rate limits lose nothing (e2e: real Retry-After waits). The gate itself, with a
fake clock: tests/unit/test_throttle.py."""

from __future__ import annotations

import pytest

from tap_maesn_qonto.emulator import Emulator
from tests.support.configs import STREAM_RESOURCES, tap_config
from tests.support.tap import sync


@pytest.mark.parametrize("max_concurrency", [1, 2, 4, 8])
def test_never_more_requests_in_flight_than_max_concurrency(max_concurrency: int) -> None:
    # The pager keeps one page more than max_concurrency coming (one is being decoded
    # while the others wait on the network); the in-flight limit still caps the requests.
    with Emulator(counts={"invoices": 600, "bills": 300, "bookingProposals": 0}) as emulator:
        emulator.configure(latency_ms=20)
        config = tap_config(emulator, page_size=20, max_concurrency=max_concurrency)
        del config["start_date"]  # whole-list reads: the concurrent path
        sync(config)
        most = emulator.stats()["most_in_flight"]
    assert most == max_concurrency


@pytest.mark.e2e  # slow: real Retry-After waits
def test_raising_max_concurrency_against_qonto_like_rate_limits_loses_nothing() -> None:
    # Qonto answers 429 beyond its per-IP budget (1 000 per 10 s). Scaled down: 30
    # requests per second against 90 pages read 8 at a time at 20 ms. Every 429 holds
    # every worker for its Retry-After and halves the in-flight limit, so the run slows
    # to the budget instead of failing or hammering: every record arrives exactly once.
    counts = {"invoices": 900, "bills": 450, "bookingProposals": 450}
    with Emulator(counts=counts) as emulator:
        emulator.configure(latency_ms=20, rate_limit=[30, 1])
        config = tap_config(emulator, page_size=20, max_concurrency=8)
        del config["start_date"]  # whole-list reads: the concurrent path
        result = sync(config)
        stats = emulator.stats()
        truth = {s: sorted(emulator.truth(r)) for s, r in STREAM_RESOURCES.items()}
    for stream, ids in truth.items():
        assert sorted(result.ids(stream)) == ids, stream
    refused = stats["faults"].get("rate_limit", 0)
    answered = stats["statuses"]["200"]
    assert refused > 0, "the budget was never reached: the test proves nothing"
    # A client that kept 8 in flight through the pauses would be refused about as often
    # as answered; the adaptive limit keeps refusals a small share of the answers.
    assert refused < answered / 4, stats
