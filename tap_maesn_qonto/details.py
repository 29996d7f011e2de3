"""Line items from each record's detail endpoint, where a list leaves them out.

Maesn's own guides read ``GET /accounting/<resource>/{id}`` for a record's full
details, and for Qonto a list may serve ``lineItems`` null. ``fetch_details``:

* ``auto`` (default): a listed record without ``lineItems`` gets them from its detail,
  when anything selected needs them (a line-item stream, or the parent's lineItems).
  If the details of ``AUTO_GIVES_UP_AFTER`` such records in a row had no lines either,
  and no detail ever had lines where its list had none, the list's nulls mean "no
  lines" on that stream and target system, and no more details are fetched for it.
  One detail with lines where the list had none settles the other way for good (the
  partition's state keeps it for later runs): the list omits lines, and every null is
  completed from its detail;
* ``always``: every listed record takes its detail's ``lineItems`` (for a list that
  trims them);
* ``never``: lists are taken as they are.

A batch's details are fetched together, ``max_concurrency`` at a time, through the
same retries, throttle and in-flight limit as pages. A detail that fails after its
retries fails the read (the record's lines cannot be known); a record deleted since
it was listed (404) keeps the list's lineItems. Only ``lineItems`` is taken from the
detail: the record keeps the version the list served, so the read's ordering and
bookmark stay the list's. Details are fetched for the records a read emits, after it
has dropped the ones it already emitted, so none is fetched or counted twice.
"""

from __future__ import annotations

import concurrent.futures
import threading
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping


#: auto stops after this many details in a row that served no line items either.
AUTO_GIVES_UP_AFTER = 5
#: The partition state's note that its lists leave lines out, for later runs.
LISTS_OMIT_LINES = "lists_omit_line_items"


@dataclass
class AutoVerdict:
    """What auto has learnt of one stream's list on one target system (any thread)."""

    #: Details in a row that had no lines either, where the list had none.
    agreed_in_a_row: int = 0
    #: Whether a detail ever had lines where its list had none: then the list omits them.
    list_omits: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def given_up(self) -> bool:
        return not self.list_omits and self.agreed_in_a_row >= AUTO_GIVES_UP_AFTER

    def learn(self, detail: dict | None) -> None:
        """One detail's answer for a record listed without lines (None: it is gone)."""
        if detail is None:
            return
        with self._lock:
            if detail.get("lineItems"):
                self.list_omits = True
                self.agreed_in_a_row = 0
            elif not self.list_omits:
                self.agreed_in_a_row += 1

    @classmethod
    def learnt(cls, states: Iterable[Mapping[str, t.Any]]) -> AutoVerdict:
        """What earlier runs noted in these partitions' states (of one target system)."""
        return cls(list_omits=any(state.get(LISTS_OMIT_LINES) for state in states))

    def note(self, state: dict[str, t.Any]) -> None:
        """Keep in a partition's state what later runs must know."""
        if self.list_omits:
            state[LISTS_OMIT_LINES] = True

    def left_before_giving_up(self) -> int:
        with self._lock:
            if self.list_omits:
                return AUTO_GIVES_UP_AFTER
            return max(0, AUTO_GIVES_UP_AFTER - self.agreed_in_a_row)


@dataclass
class Details:
    """Completes batches of one read's records with their detail line items."""

    mode: str
    #: One record's detail, or None if it is gone.
    fetch_one: Callable[[dict], dict | None]
    max_concurrency: int
    thread_name: str
    verdict: AutoVerdict

    def needs(self, record: dict) -> bool:
        if self.mode == "always":
            return True
        return self.mode == "auto" and not self.verdict.given_up and record.get("lineItems") is None

    def complete(self, records: list[dict]) -> list[dict]:
        """``records`` with every one that needs it given its detail's lineItems.

        Until auto has seen a detail serve lines, no more go out at once than could
        still leave it undecided, so a target system that serves no lines costs
        ``AUTO_GIVES_UP_AFTER`` details, not a page of them.
        """
        todo = [record for record in records if self.needs(record)]
        if not todo:
            return records
        details: dict[int, dict | None] = {}
        with concurrent.futures.ThreadPoolExecutor(
            min(self.max_concurrency, len(todo)), self.thread_name
        ) as pool:
            while todo and self.needs(todo[0]):  # auto may have given up meanwhile
                size = self._batch_size()
                batch, todo = todo[:size], todo[size:]
                for record, detail in zip(batch, pool.map(self.fetch_one, batch), strict=True):
                    details[id(record)] = detail
                    self.verdict.learn(detail)
        return [self._merged(r, details.get(id(r))) for r in records]

    def _batch_size(self) -> int:
        if self.mode != "auto":
            return self.max_concurrency
        return max(1, min(self.max_concurrency, self.verdict.left_before_giving_up()))

    @staticmethod
    def _merged(record: dict, detail: dict | None) -> dict:
        if detail is None or detail.get("lineItems") is None:
            return record
        return {**record, "lineItems": detail["lineItems"]}
