"""Every reliability scenario against the Maesn emulator: nothing lost, nothing doubled.

The e2e tier runs each scenario at reduced size (1 200 records); the README's table comes
from the full size, printed by tests/e2e/reliability.py:

    uv run --locked python -m tests.e2e.reliability          # full: >= 20 000 records each
    uv run --locked python -m tests.e2e.reliability --quick  # reduced, as the tests run them

Each scenario runs the real tap CLI (``python -m tap_maesn_qonto``) as a subprocess
against an in-process emulator, possibly several times (a follow-up incremental run,
a resume after SIGKILL or after a failure), and compares the union of what it emitted
with the emulator's truth at the end:

* expected   records that exist at the end (all three streams)
* received   distinct ids emitted over all runs of the scenario
* lost       expected ids never emitted (must be 0)
* duplicates the same record version (id and updatedDate) emitted twice in one run
* stale      record versions older than a run's final bookmark that the run did not
             emit (resuming from that bookmark would skip them for good; must be 0)
* retries    retries the tap reported in its per-stream summary lines
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.timestamps import normalize_timestamp
from tests.support.configs import tap_config
from tests.support.tap import TapProcess

#: The streams read from Maesn (their line-item streams are checked in tests/).
PARENT_STREAMS = frozenset({"invoices", "bills", "booking_proposals"})
RESOURCES = {"invoices": "invoices", "bills": "bills", "booking_proposals": "bookingProposals"}
RETRY_LINE = re.compile(r"; retry \d+ in ")


@dataclass
class TapRun:
    """What one tap process emitted before it ended (or was killed)."""

    records: list[tuple[str, str, str | None]] = field(
        default_factory=list
    )  # stream, id, updatedDate
    last_state: dict | None = None
    #: Truth right after the run: (stream, id) -> normalized updatedDate.
    versions_after: dict[tuple[str, str], str | None] = field(default_factory=dict)
    exit_code: int = 0
    retries: int = 0
    seconds: float = 0.0
    stop_seconds: float | None = None  # from the signal to the process's exit
    stderr: str = ""


@dataclass
class Outcome:
    scenario: str
    expected: int
    received: int
    lost: int
    duplicates: int
    stale: int
    retries: int
    result: str
    note: str = ""


def run_tap(
    config: dict,
    state: dict | None,
    workdir: Path,
    *,
    kill_after_records: int | None = None,
    kill_on_log: str | None = None,
    kill_signal: signal.Signals = signal.SIGKILL,
    emulator: Emulator | None = None,
) -> TapRun:
    """Run the tap CLI; optionally send it a signal after that many RECORD messages, or
    once a log line contains ``kill_on_log``.

    After a SIGKILL, only what was read before the signal counts. With ``emulator``, the
    truth right after the run is kept for the bookmark check.
    """
    parents = 0

    def enough_records(message: dict[str, Any], _: int) -> bool:
        nonlocal parents
        parents += message.get("type") == "RECORD" and message.get("stream") in PARENT_STREAMS
        return kill_after_records is not None and parents == kill_after_records

    run = TapRun()
    with TapProcess(
        config,
        workdir,
        state=state,
        signal_when=enough_records,
        signal_on_log=kill_on_log,
        signum=kill_signal,
    ) as tap:
        run.exit_code = tap.wait(timeout=600)
    read = tap.messages
    if kill_signal == signal.SIGKILL and tap.lines_at_signal is not None:
        read = read[: tap.lines_at_signal]
    for message in read:
        if message["type"] == "RECORD" and message["stream"] in PARENT_STREAMS:
            record = message["record"]
            run.records.append((message["stream"], record["id"], record["updatedDate"]))
        elif message["type"] == "STATE":
            run.last_state = message["value"]
    run.stop_seconds = tap.stop_seconds
    run.stderr = tap.stderr
    (workdir / "stderr.log").write_text(run.stderr)
    assert tap.exited_at is not None
    run.seconds = tap.exited_at - tap.started
    run.retries = len(RETRY_LINE.findall(run.stderr))
    if emulator is not None:
        run.versions_after = versions(emulator)
    return run


def versions(emulator: Emulator) -> dict[tuple[str, str], str | None]:
    """(stream, id) -> normalized updatedDate of every record the emulator holds now."""
    return {
        (stream, record_id): normalize(record["updatedDate"])
        for stream, resource in RESOURCES.items()
        for record_id, record in emulator.truth(resource).items()
    }


def normalize(value: str | None) -> str | None:
    return None if value is None else normalize_timestamp(value)


def stale_versions(runs: list[TapRun]) -> int:
    """Versions older than a run's final bookmark that no run up to it emitted.

    Resuming from that bookmark would skip them for good: the bookmark says "every
    record version before me has reached the target".
    """
    emitted: set[tuple[str, str, str | None]] = set()
    stale = 0
    for run in runs:
        emitted.update(run.records)
        if not run.versions_after or not run.last_state:
            continue
        for stream in RESOURCES:
            stream_state = run.last_state.get("bookmarks", {}).get(stream, {})
            marks = [
                p["replication_key_value"]
                for p in stream_state.get("partitions", [])
                if "replication_key_value" in p
            ]
            if not marks:
                continue
            stale += sum(
                1
                for (s, record_id), updated in run.versions_after.items()
                if s == stream
                and updated is not None
                and updated < marks[0]
                and (s, record_id, updated) not in emitted
            )
    return stale


def judge(
    name: str, emulator: Emulator, runs: list[TapRun], note: str = "", ok: bool = True
) -> Outcome:
    """Compare the union of all runs with the emulator's truth at the end."""
    expected = {(s, i) for s, r in RESOURCES.items() for i in emulator.truth(r)}
    received = {(s, i) for run in runs for s, i, _ in run.records}
    duplicates = sum(n - 1 for run in runs for n in Counter(run.records).values() if n > 1)
    lost = len(expected - received)
    invented = len(received - expected - deleted_ids(emulator))
    stale = stale_versions(runs)
    passed = ok and lost == 0 and duplicates == 0 and stale == 0 and invented == 0
    if invented:
        note = f"{note}; {invented} ids that never existed".lstrip("; ")
    return Outcome(
        scenario=name,
        expected=len(expected),
        received=len(received & expected),
        lost=lost,
        duplicates=duplicates,
        stale=stale,
        retries=sum(run.retries for run in runs),
        result="PASS" if passed else "FAIL",
        note=note,
    )


def deleted_ids(emulator: Emulator) -> set[tuple[str, str]]:
    return {(s, i) for s, r in RESOURCES.items() for i in emulator.deleted_ids(r)}


def stop_after_burst(emulator: Emulator, requests: int) -> None:
    """Turn the emulator's automatic changes off once it has served ``requests`` lists."""

    def watch() -> None:
        while sum(emulator.stats()["list_requests"].values()) < requests:
            time.sleep(0.01)
        emulator.configure(mutate_every_requests=0)

    threading.Thread(target=watch, daemon=True).start()


def config_for(emulator: Emulator, **overrides: object) -> dict:
    """A config for ``emulator``, a minute of retries; an override of None removes that setting."""
    return tap_config(emulator, **{"max_retry_seconds": 60, **overrides})


#: The scenarios' test ids, in the order of :meth:`Scenarios.all` (and of the report).
NAMES = [
    "clean",
    "burst_then_quiet",
    "updates_creates",
    "deletes",
    "ignored_order",
    "ignored_filter_and_order",
    "old_records_edited_and_deleted",
    "edits_all_run_long_whole_list",
    "lagging_server_clock",
    "faults",
    "transient_4xx",
    "sigkill",
    "sigterm",
    "never_clears",
    "past_last_page",
    "broken_page_then_resume",
    "not_maesn",
    "sorts_only_each_page",
    "order_dir_ignored",
    "bookmarked_404_once",
    "records_ahead_of_the_clock",
    "id_listed_twice_reconciled",
]


class Scenarios:
    """Each method builds an emulator, runs the tap one or more times, returns an Outcome."""

    def __init__(self, size: int, workdir: Path, rng: random.Random) -> None:
        self.size = size
        self.workdir = workdir
        self.rng = rng

    def counts(self, total: int | None = None) -> dict[str, int]:
        total = total or self.size
        # Uneven on purpose: not multiples of the page size.
        return {
            "invoices": total // 2 + 7,
            "bills": total // 4 + 3,
            "bookingProposals": total // 4 + 1,
        }

    def clean(self) -> Outcome:
        with Emulator(counts=self.counts()) as emulator:
            run = run_tap(config_for(emulator), None, self.workdir)
            return judge("clean sync", emulator, [run], ok=run.exit_code == 0)

    def changes_while_paging(
        self,
        name: str,
        batch: dict[str, int],
        burst_requests: int | None = None,
        config_overrides: dict[str, object] | None = None,
        **knobs: Any,
    ) -> Outcome:
        """Records change while run 1 pages; run 2 (incremental) follows.

        With ``burst_requests`` the changes stop after that many list requests, so the
        tap's re-read pass can settle within run 1; without, they go on all run long.
        """
        config_overrides = config_overrides or {}
        with Emulator(counts=self.counts(), **knobs) as emulator:
            present_before = {(s, i) for s, r in RESOURCES.items() for i in emulator.truth(r)}
            emulator.configure(mutate_every_requests=2, mutations_per_batch=batch)
            if burst_requests is not None:
                stop_after_burst(emulator, burst_requests)
            # Small pages and little prefetch: many page boundaries for records to slide across.
            config = config_for(emulator, page_size=10, max_concurrency=2, **config_overrides)
            first = run_tap(config, None, self.workdir)
            emulator.configure(mutate_every_requests=0)
            first.versions_after = versions(emulator)
            # Records changed after the first run started are the next run's to read.
            second = run_tap(config, first.last_state, self.workdir, emulator=emulator)
            mutations = sum(emulator.stats()["mutations"].values())
            repasses = first.stderr.count("Reading all pages again")
            unresolved = first.stderr.count("could not be proven read")
            still_there = {(s, i) for s, r in RESOURCES.items() for i in emulator.truth(r)}
            missed_by_run_1 = (present_before & still_there) - {(s, i) for s, i, _ in first.records}
            # Exit 3 (records may be missing, bookmark held) is honest only when run 1
            # really said so; the quiet run 2 must then complete.
            honest = first.exit_code == 0 or (first.exit_code == 3 and unresolved > 0)
            return judge(
                name,
                emulator,
                [first, second],
                note=(
                    f"{mutations} changes during run 1 (exit {first.exit_code}); "
                    f"{repasses} re-read passes, {unresolved} streams held their bookmark; "
                    f"{len(missed_by_run_1)} records changed before run 1 reached them "
                    "(read by run 2)"
                ),
                ok=honest and second.exit_code == 0,
            )

    def ignored_filter_and_order(self) -> Outcome:
        with Emulator(counts=self.counts(), honor_filters=False, honor_ordering=False) as emulator:
            first = run_tap(config_for(emulator), None, self.workdir)
            for resource in RESOURCES.values():
                emulator.mutate(resource, update=5, create=3, delete=1)
            second = run_tap(config_for(emulator), first.last_state, self.workdir)
            changed_ok = len(second.records) < len(first.records) / 2
            return judge(
                "server ignores filter+order",
                emulator,
                [first, second],
                note=f"run 2 emitted {len(second.records)} (filtered client side)",
                ok=changed_ok and first.exit_code == second.exit_code == 0,
            )

    def faults(self) -> Outcome:
        with Emulator(
            counts=self.counts(max(self.size, 2000)),
            fault_rate=0.10,
            retry_after=1,
            slow_seconds=2.0,
        ) as emulator:
            run = run_tap(config_for(emulator, request_timeout=1), None, self.workdir)
            faults = sum(emulator.stats()["faults"].values())
            return judge(
                "10% faults (429/5xx/reset/slow)",
                emulator,
                [run],
                note=f"{faults} faults injected, {run.seconds:.0f} s",
                ok=run.exit_code == 0 and run.retries >= faults,
            )

    def sigkill(self, kills: int = 3) -> Outcome:
        with Emulator(counts=self.counts()) as emulator:
            runs: list[TapRun] = []
            state: dict | None = None
            total = sum(len(emulator.truth(r)) for r in RESOURCES.values())
            for _ in range(kills):
                run = run_tap(
                    config_for(emulator, max_concurrency=4),
                    state,
                    self.workdir,
                    kill_after_records=self.rng.randint(1, total),
                )
                runs.append(run)
                state = run.last_state or state
            final = run_tap(config_for(emulator), state, self.workdir)
            runs.append(final)
            return judge(
                f"SIGKILL x{kills}, resume",
                emulator,
                runs,
                note=f"killed after {', '.join(str(len(r.records)) for r in runs[:-1])} records",
                ok=final.exit_code == 0,
            )

    def never_clears(self) -> Outcome:
        with Emulator(counts=self.counts(2000)) as emulator:
            first = run_tap(config_for(emulator), None, self.workdir)  # a good run first
            emulator.configure(fail_always="503")
            config = config_for(emulator, max_retries=3, max_retry_seconds=5)
            failing = run_tap(config, first.last_state, self.workdir)
            emulator.configure(fail_always=None)
            for resource in RESOURCES.values():
                emulator.mutate(resource, update=3, create=2)
            resumed = run_tap(
                config_for(emulator), failing.last_state or first.last_state, self.workdir
            )
            gave_up = failing.exit_code != 0 and failing.seconds < 30
            return judge(
                "fault never clears, then resume",
                emulator,
                [first, failing, resumed],
                note=f"gave up after {failing.seconds:.1f} s, exit {failing.exit_code}",
                ok=gave_up and resumed.exit_code == 0,
            )

    def past_last_page(self) -> Outcome:
        counts = {"invoices": 500, "bills": 300, "bookingProposals": 100}  # multiples of 100
        with Emulator(counts=counts, pagination_meta="null", past_last_page="422") as emulator:
            run = run_tap(config_for(emulator), None, self.workdir)
            return judge("422 past last page, no totals", emulator, [run], ok=run.exit_code == 0)

    def broken_page_then_resume(self) -> Outcome:
        with Emulator(counts=self.counts(2000)) as emulator:
            emulator.fail_next("truncated", count=1, resource="invoices")
            once = run_tap(config_for(emulator), None, self.workdir, emulator=emulator)
            # Every attempt of the first bills request (max_retries 2: three) is cut off.
            emulator.fail_next("truncated", count=3, resource="bills")
            broken = run_tap(config_for(emulator, max_retries=2), once.last_state, self.workdir)
            resumed = run_tap(
                config_for(emulator), broken.last_state or once.last_state, self.workdir
            )
            return judge(
                "truncated JSON: once, then always",
                emulator,
                [once, broken, resumed],
                note=(
                    f"once: exit {once.exit_code} (retried); always: exit {broken.exit_code}; "
                    f"resumed: exit {resumed.exit_code}"
                ),
                ok=once.exit_code == 0 and broken.exit_code == 1 and resumed.exit_code == 0,
            )

    def sigterm(self, stops: int = 2) -> Outcome:
        """SIGTERM mid-sync while fetch-ahead workers wait out a 60 s Retry-After.

        The signal goes out when the tap says it waits (its "retry 1 in 60.0 s" line), so
        it lands inside the wait it is meant to cut short.
        """
        with Emulator(counts=self.counts(), retry_after=60) as emulator:
            config = config_for(
                emulator,
                page_size=100,
                max_concurrency=4,
                start_date=None,
                max_retry_seconds=120,  # the 60 s wait is waited for, not given up on
            )
            runs: list[TapRun] = []
            state: dict | None = None
            for _ in range(stops):
                emulator.fail_next("429", count=1, resource="invoices", page=3)
                run = run_tap(
                    config,
                    state,
                    self.workdir,
                    kill_on_log="retry 1 in 60.0 s",
                    kill_signal=signal.SIGTERM,
                    emulator=emulator,
                )
                runs.append(run)
                state = run.last_state or state
            emulator.configure(retry_after=1)
            final = run_tap(config, state, self.workdir, emulator=emulator)
            runs.append(final)
            waits = [r.stop_seconds for r in runs[:-1] if r.stop_seconds is not None]
            codes = [r.exit_code for r in runs[:-1]]
            return judge(
                f"SIGTERM x{stops} (workers in a 60 s backoff), resume",
                emulator,
                runs,
                note=(
                    f"exit codes {codes}, each stopped within "
                    f"{max(waits, default=float('nan')):.2f} s of the signal"
                ),
                ok=len(waits) == stops
                and max(waits) < 5
                and all(code == 143 for code in codes)
                and final.exit_code == 0,
            )

    def transient_4xx(self) -> Outcome:
        """A 404 and a 422 inside the reported pages: retried, not taken as the end."""
        with Emulator(counts=self.counts()) as emulator:
            emulator.fail_next("404", count=1, resource="invoices", page=3)
            emulator.fail_next("422", count=2, resource="bills", page=2)
            config = config_for(emulator, page_size=20)
            config.pop("start_date")  # the whole list: page numbers
            run = run_tap(config, None, self.workdir, emulator=emulator)
            return judge(
                "transient 404 and 422 mid-stream",
                emulator,
                [run],
                note=f"exit {run.exit_code}",
                ok=run.exit_code == 0 and run.retries >= 3,
            )

    def lagging_server_clock(self) -> Outcome:
        """The server stamps changes hours behind this machine's clock."""
        return self.changes_while_paging(
            "server clock 3 h behind, changes while paging",
            {"update": 4, "create": 1, "delete": 1},
            updated_lag_seconds=3 * 3600,
        )

    def not_maesn(self) -> Outcome:
        with Emulator(counts=self.counts(100), not_maesn=True) as emulator:
            run = run_tap(config_for(emulator), None, self.workdir)
            said = "does not point at the Maesn API" in run.stderr
            outcome = judge(
                "api_url is a web server, not Maesn",
                emulator,
                [run],
                note=f"exit {run.exit_code}, {len(run.records)} records, one clear line: {said}",
                ok=run.exit_code == 1 and said and not run.records,
            )
            # Nothing can be read there; what counts is the refusal, not the records.
            outcome.lost = 0
            outcome.expected = outcome.received = 0
            outcome.result = "PASS" if run.exit_code == 1 and said else "FAIL"
            return outcome

    def sorts_only_each_page(self) -> Outcome:
        """A target system that sorts each page it serves, not the list: window reads must
        notice (records left behind a moving window) and read the whole list instead."""
        with Emulator(counts=self.counts(), sort_scope="page") as emulator:
            first = run_tap(config_for(emulator, page_size=20), None, self.workdir)
            for resource in RESOURCES.values():
                emulator.mutate(resource, update=5, create=3)
            second = run_tap(
                config_for(emulator, page_size=20),
                first.last_state,
                self.workdir,
                emulator=emulator,
            )
            return judge(
                "server sorts only each page",
                emulator,
                [first, second],
                note=f"exits {first.exit_code}, {second.exit_code}",
                ok=first.exit_code == second.exit_code == 0,
            )

    def order_dir_ignored(self) -> Outcome:
        """orderDir ignored: the probes come back oldest first; a first run (whole list) and
        an incremental run (window) both read every record, and neither ends with exit 3."""
        with Emulator(counts=self.counts(), honor_order_dir=False) as emulator:
            config = config_for(emulator, page_size=20, start_date=None)
            first = run_tap(config, None, self.workdir)
            for resource in RESOURCES.values():
                emulator.mutate(resource, update=5, create=3, delete=1)
            second = run_tap(config, first.last_state, self.workdir, emulator=emulator)
            return judge(
                "server ignores orderDir",
                emulator,
                [first, second],
                note=f"exits {first.exit_code}, {second.exit_code}",
                ok=first.exit_code == second.exit_code == 0,
            )

    def bookmarked_404_once(self) -> Outcome:
        """One 404 on the first request of a partition read before: retried, not 'not available'."""
        with Emulator(counts=self.counts()) as emulator:
            first = run_tap(config_for(emulator), None, self.workdir)
            for resource in RESOURCES.values():
                emulator.mutate(resource, update=5, create=2)
            emulator.fail_next("404", count=1, resource="invoices", page=1)
            second = run_tap(
                config_for(emulator), first.last_state, self.workdir, emulator=emulator
            )
            return judge(
                "one 404 on a bookmarked first request",
                emulator,
                [first, second],
                note=f"exits {first.exit_code}, {second.exit_code}; {second.retries} retries",
                ok=first.exit_code == second.exit_code == 0 and second.retries >= 1,
            )

    def records_ahead_of_the_clock(self) -> Outcome:
        """Changes stamped 2 h ahead of the server's clock: the bookmark stays at the clock, the
        next run accepts the state and reads the edits made after it."""
        with Emulator(counts=self.counts()) as emulator:
            emulator.configure(updated_lag_seconds=-7200)
            for resource in RESOURCES.values():
                emulator.mutate(resource, update=5, create=2)
            emulator.configure(updated_lag_seconds=0)
            first = run_tap(config_for(emulator), None, self.workdir, emulator=emulator)
            for resource in RESOURCES.values():
                emulator.mutate(resource, update=5, create=2)
            second = run_tap(
                config_for(emulator), first.last_state, self.workdir, emulator=emulator
            )
            said = "ahead of the server's clock" in first.stderr
            return judge(
                "records stamped 2 h ahead of the clock",
                emulator,
                [first, second],
                note=f"exits {first.exit_code}, {second.exit_code}; named: {said}",
                ok=first.exit_code == second.exit_code == 0 and said,
            )

    def id_listed_twice_reconciled(self) -> Outcome:
        """An id listed twice: emitted once, the pass judged by the server's count, and the
        reconcile activates."""
        with Emulator(counts=self.counts(), duplicate_ids=1) as emulator:
            config = config_for(emulator, page_size=20, start_date=None, reconcile_interval_days=0)
            run = run_tap(config, None, self.workdir, emulator=emulator)
            activated = '"reconciled":["' in run.stderr
            return judge(
                "an id listed twice, reconciled",
                emulator,
                [run],
                note=f"exit {run.exit_code}; reconciled: {activated}",
                ok=run.exit_code == 0 and activated,
            )

    def all(self) -> dict[str, Callable[[], Outcome]]:
        """Every scenario, by its test id, in the report's order."""
        return dict(
            zip(
                NAMES,
                [
                    self.clean,
                    lambda: self.changes_while_paging(
                        "burst of changes, then quiet", {"update": 3, "create": 2, "delete": 2}, 60
                    ),
                    lambda: self.changes_while_paging(
                        "updates+creates while paging", {"update": 5, "create": 2}
                    ),
                    lambda: self.changes_while_paging(
                        "deletes while paging", {"update": 2, "create": 1, "delete": 2}
                    ),
                    lambda: self.changes_while_paging(
                        "changes, server ignores order",
                        {"update": 3, "create": 2, "delete": 2},
                        honor_ordering=False,
                    ),
                    self.ignored_filter_and_order,
                    lambda: self.changes_while_paging(
                        "old records edited + others deleted (filtered)",
                        {"update": 10, "delete": 5},
                    ),
                    lambda: self.changes_while_paging(
                        "edits all run long, whole-list read",
                        {"update": 3, "create": 1, "delete": 1},
                        config_overrides={"start_date": None},
                    ),
                    self.lagging_server_clock,
                    self.faults,
                    self.transient_4xx,
                    self.sigkill,
                    self.sigterm,
                    self.never_clears,
                    self.past_last_page,
                    self.broken_page_then_resume,
                    self.not_maesn,
                    self.sorts_only_each_page,
                    self.order_dir_ignored,
                    self.bookmarked_404_once,
                    self.records_ahead_of_the_clock,
                    self.id_listed_twice_reconciled,
                ],
                strict=True,
            )
        )


QUICK_SIZE = 1200  # records per scenario in the test tier (the report's full size: 20 000)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_loses_nothing_and_duplicates_nothing(tmp_path: Path, name: str) -> None:
    seed = 7 + NAMES.index(name)
    outcome = Scenarios(QUICK_SIZE, tmp_path, random.Random(seed)).all()[name]()  # noqa: S311
    assert outcome.lost == 0, outcome
    assert outcome.duplicates == 0, outcome
    assert outcome.stale == 0, outcome
    assert outcome.received == outcome.expected, outcome
    assert outcome.result == "PASS", outcome
