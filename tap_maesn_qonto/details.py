"""Line items from each record's detail endpoint, where a list leaves them out.

Maesn's own guides read ``GET /accounting/<resource>/{id}`` for a record's full
details, and for Qonto a list may serve ``lineItems`` null. ``fetch_details``:

* ``auto`` (default): a listed record without ``lineItems`` gets them from its detail,
  when anything selected needs them (a line-item stream, or the parent's lineItems),
  until the details of ``AUTO_GIVES_UP_AFTER`` such records in a row had none either
  (then a list's null means "no lines": the list endpoint behaves alike for every
  account of a target system, so no more are fetched for any account of it);
* ``always``: every listed record takes its detail's ``lineItems`` (for a list that
  trims them);
* ``never``: lists are taken as they are.

A page's details are fetched together, ``max_concurrency`` at a time, through the
same retries, throttle and in-flight limit as pages. Only ``lineItems`` is taken from
the detail: the record keeps the version the list served, so the read's ordering
and bookmark stay the list's. A record deleted since it was listed (404) keeps the
list's lineItems.
"""

from __future__ import annotations

import concurrent.futures
import typing as t
from dataclasses import dataclass, replace

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_maesn_qonto.envelope import Page


#: auto stops after this many details in a row that had no line items either.
AUTO_GIVES_UP_AFTER = 5


@dataclass
class AutoVerdict:
    """What auto has learnt of one stream's list on one target system, across accounts."""

    #: Details in a row that had no line items either (auto gives up at the limit).
    empty_in_a_row: int = 0
    #: Whether any detail had line items (then the list's nulls were omissions).
    seen_lines: bool = False

    @property
    def given_up(self) -> bool:
        return self.empty_in_a_row >= AUTO_GIVES_UP_AFTER

    def give_up(self) -> None:
        """Fetch no more details for this stream and target system."""
        self.empty_in_a_row = AUTO_GIVES_UP_AFTER


@dataclass
class Details:
    """Completes pages of one stream with their records' detail line items."""

    mode: str
    #: One record's detail, or None if it is gone.
    fetch_one: Callable[[dict], dict | None]
    max_concurrency: int
    thread_name: str
    verdict: AutoVerdict
    fetched: int = 0

    def needs(self, record: dict) -> bool:
        if self.mode == "always":
            return True
        return self.mode == "auto" and not self.verdict.given_up and record.get("lineItems") is None

    def complete(self, page: Page) -> Page:
        """The page with every record that needs it given its detail's lineItems.

        Details go out ``max_concurrency`` at a time; until auto has seen a detail with
        lines, no more at once than could still leave it undecided, so a list whose
        nulls mean "no lines" costs ``AUTO_GIVES_UP_AFTER`` details, not a page of them.
        """
        todo = [record for record in page.records if self.needs(record)]
        if not todo:
            return page
        details: dict[int, dict | None] = {}
        with concurrent.futures.ThreadPoolExecutor(
            min(self.max_concurrency, len(todo)), self.thread_name
        ) as pool:
            while todo and self.needs(todo[0]):  # auto may have given up meanwhile
                size = self._batch_size()
                batch, todo = todo[:size], todo[size:]
                for record, detail in zip(batch, pool.map(self.fetch_one, batch), strict=True):
                    details[id(record)] = detail
                    self._learn(detail)
        self.fetched += len(details)
        return replace(page, records=[self._merged(r, details.get(id(r))) for r in page.records])

    def _batch_size(self) -> int:
        if self.mode != "auto" or self.verdict.seen_lines:
            return self.max_concurrency
        left = AUTO_GIVES_UP_AFTER - self.verdict.empty_in_a_row
        return max(1, min(self.max_concurrency, left))

    def _learn(self, detail: dict | None) -> None:
        verdict = self.verdict
        if detail and detail.get("lineItems"):
            verdict.empty_in_a_row = 0
            verdict.seen_lines = True
        else:
            verdict.empty_in_a_row += 1

    @staticmethod
    def _merged(record: dict, detail: dict | None) -> dict:
        if detail is None or detail.get("lineItems") is None:
            return record
        return {**record, "lineItems": detail["lineItems"]}
