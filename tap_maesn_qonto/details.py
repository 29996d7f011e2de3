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
        """The page with every record that needs it given its detail's lineItems."""
        todo = [record for record in page.records if self.needs(record)]
        if not todo:
            return page
        workers = min(self.max_concurrency, len(todo))
        with concurrent.futures.ThreadPoolExecutor(workers, self.thread_name) as pool:
            details = list(pool.map(self.fetch_one, todo))
        self.fetched += len(todo)
        for detail in details:
            has_lines = bool(detail and detail.get("lineItems"))
            self.verdict.empty_in_a_row = 0 if has_lines else self.verdict.empty_in_a_row + 1
        by_id = {id(record): detail for record, detail in zip(todo, details, strict=True)}
        return replace(page, records=[self._merged(r, by_id.get(id(r))) for r in page.records])

    @staticmethod
    def _merged(record: dict, detail: dict | None) -> dict:
        if detail is None or detail.get("lineItems") is None:
            return record
        return {**record, "lineItems": detail["lineItems"]}
