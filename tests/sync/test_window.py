"""window.py's one-second overlap, held end to end: the tap in process against an emulator
that reads ``lastModifiedAt`` as ``>`` at second precision (``filter_semantics="gt_seconds"``).

window.py promises that W is sent "one second early, so a server that reads the filter as
``>`` or at second precision still returns every record at W". Three records share one
updatedDate second, T (a bulk edit: the seeded tie group), and a page boundary falls
between them: page 1 ends with two of them, so W moves to T. Such a server answers the next
query (W = T) without the third: only the one-second overlap brings it back. The second
test takes the overlap away and finds the record lost: the first test would catch a window
without it.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest

from tap_maesn_qonto import window
from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.timestamps import format_timestamp, normalize_timestamp, parse_timestamp
from tests.support.configs import only, tap_config
from tests.support.tap import catalog_selecting, sync

if t.TYPE_CHECKING:
    from collections.abc import Iterator

PAGE_SIZE = 5
SEED = 0  # its tie group of three is the 23rd to 25th of 30 invoices in updatedDate order


def _updated(record: dict[str, t.Any]) -> str:
    return normalize_timestamp(record["updatedDate"])


@pytest.fixture
def straddled() -> Iterator[tuple[Emulator, dict[str, t.Any], set[str], list[str]]]:
    """The emulator, a config whose window's first page ends inside the tie group, the ids
    that window must read, and the group's ids."""
    with Emulator(
        seed=SEED, counts=only(invoices=30), tie_group_size=3, filter_semantics="gt_seconds"
    ) as emulator:
        listed = sorted(emulator.truth("invoices").values(), key=lambda r: (_updated(r), r["id"]))
        times = [_updated(record) for record in listed]
        first = next(i for i, moment in enumerate(times) if times.count(moment) == 3)
        group = [record["id"] for record in listed[first : first + 3]]
        # The window starts three records before the group, in a second of its own (no
        # record sits at the start): page 1 = those three and two of the group's three; the
        # third is the first record of the next query, whose W is T.
        before = parse_timestamp(listed[first - 4]["updatedDate"]).replace(microsecond=0)
        start = format_timestamp(before + dt.timedelta(seconds=2))
        assert start < times[first - 3], "no second free between the records before the group"
        assert first + 3 < len(listed), "the group must not hold the newest updatedDate"
        config = tap_config(emulator, start_date=start, page_size=PAGE_SIZE, max_concurrency=1)
        wanted = {
            record["id"] for record in listed if _updated(record) >= normalize_timestamp(start)
        }
        assert [i for i, r in enumerate(listed) if r["id"] in wanted][:PAGE_SIZE] == list(
            range(first - 3, first + 2)
        ), "page 1 must end with two of the group's three"
        yield emulator, config, wanted, group


def _read(config: dict[str, t.Any]) -> set[str]:
    result = sync(config, catalog=catalog_selecting(config, ["invoices"]))
    return set(result.ids("invoices"))


def test_a_server_that_reads_the_filter_as_greater_at_second_precision_loses_nothing_at_w(
    straddled: tuple[Emulator, dict[str, t.Any], set[str], list[str]],
) -> None:
    _, config, wanted, group = straddled
    read = _read(config)
    assert set(group) <= read, "a record at W was lost"
    assert read == wanted


def test_without_the_one_second_overlap_that_server_loses_the_record_at_w(
    straddled: tuple[Emulator, dict[str, t.Any], set[str], list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, config, wanted, group = straddled
    monkeypatch.setattr(window, "_OVERLAP", dt.timedelta(0))
    read = _read(config)
    lost = wanted - read
    assert len(lost) == 1, f"the scenario no longer tests the overlap: {len(lost)} lost"
    assert lost <= set(group), "the record lost is not the one at W"
