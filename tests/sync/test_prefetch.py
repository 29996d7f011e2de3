"""Requests fetched ahead of their turn, end to end: the tap in process against the
emulator. The overlap of streams costs no request and changes no record; a first run's
guessed probe wastes no request and, failing, loses nothing. The planner itself:
tests/unit/test_prefetch.py.
"""

from __future__ import annotations

import math

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.tap import TapMaesnQonto
from tests.support.configs import STREAM_RESOURCES, tap_config
from tests.support.tap import CollectingWriter


def _sync_three_streams(
    records: int, page_size: int, concurrency: int, *, start_date: bool, fault: str | None = None
) -> tuple[TapMaesnQonto, dict, int]:
    """One in-process run over three streams of ``records``; every record arrived once.

    ``fault``: the first page-1 request of each stream fails so. Returns the tap, the
    emulator's request statistics and the pages of each list.
    """
    counts = dict.fromkeys(STREAM_RESOURCES.values(), records)
    with Emulator(counts=counts) as emulator:
        if fault is not None:
            for resource in counts:
                emulator.fail_next(fault, count=1, resource=resource, page=1)
        config = tap_config(emulator, page_size=page_size, max_concurrency=concurrency)
        if not start_date:
            config.pop("start_date")
        writer = CollectingWriter()
        tap = TapMaesnQonto(config=config, message_writer=writer)
        tap.sync_all()
        stats = emulator.stats()
        truth = {s: sorted(emulator.truth(r)) for s, r in STREAM_RESOURCES.items()}
    messages = [m for m in writer.messages if m["type"] == "RECORD"]
    for stream, ids in truth.items():
        emitted = [m["record"]["id"] for m in messages if m["stream"] == stream]
        assert sorted(emitted) == ids, stream
    assert stats["most_in_flight"] <= concurrency
    return tap, stats, math.ceil(records / page_size)


def test_streams_overlap_without_an_extra_request_or_a_changed_record() -> None:
    # Three streams of 13 pages each, read whole (first run, no start_date): each stream's
    # probe and opening pages are fetched while the stream before it is emitted.
    tap, stats, pages = _sync_three_streams(250, 20, 4, start_date=False)
    # Every page once, plus the pass's two probes (fullread.py): nothing fetched ahead was
    # wasted or sent twice.
    assert stats["list_requests"] == dict.fromkeys(STREAM_RESOURCES.values(), pages + 2)
    served = tap.run.ahead.served
    sync_order = [s.name for s in tap.streams.values() if s.name in STREAM_RESOURCES]
    for stream in sync_order[1:]:
        # The probe and at least one opening page were there before the stream's turn.
        assert served[stream] >= 2, (stream, dict(served))


def test_a_first_run_guesses_each_probe_and_wastes_no_request_on_a_long_window() -> None:
    # A first run with an early start_date: each stream's window is long, so the whole
    # list is read, and its probe, guessed beside the window's first page, was needed.
    _, stats, pages = _sync_three_streams(250, 20, 4, start_date=True)
    # Each stream: the window's first page, the probe, every page of the whole list, and
    # the probe that closes the pass (fullread.py).
    assert stats["list_requests"] == dict.fromkeys(STREAM_RESOURCES.values(), 1 + 2 + pages)


def test_a_first_run_whose_guessed_probe_fails_reads_everything_once() -> None:
    # The fault hits the guess or the window's first page, whichever goes first: either
    # way every record arrives once (the helper checks) and the run is unchanged.
    _sync_three_streams(250, 20, 4, start_date=True, fault="reset")
