"""Tap configs for tests: one builder, and the few ways tests vary it.

Every test config comes from :func:`tap_config`: the emulator's keys, its URL (or any
server's), a start date before all seeded data, and a retry budget short enough for a
test. A test states what it needs differently as overrides; an override of ``None``
removes the setting (a run without ``start_date`` reads the whole list).
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from tap_maesn_qonto.emulator import Emulator

#: The emulator's tenant key and its default accounts' keys.
API_KEY = "emulator-api-key"
ACCOUNT_KEY = "emulator-account-qonto"
SANDBOX_ACCOUNT_KEY = "emulator-account-sandbox"
#: Stream name -> the emulator's resource (the Maesn path) for each parent stream.
STREAM_RESOURCES = {
    "invoices": "invoices",
    "bills": "bills",
    "booking_proposals": "bookingProposals",
}
#: Parent stream -> (its line-item stream, the column naming the parent).
LINE_STREAMS = {
    "invoices": ("invoice_line_items", "invoice_id"),
    "bills": ("bill_line_items", "bill_id"),
    "booking_proposals": ("booking_proposal_line_items", "booking_proposal_id"),
}
#: The accounts of the ``many_accounts_emulator`` fixture (tests/conftest.py), and each
#: one's records.
MANY_ACCOUNTS = 200
PER_ACCOUNT = {"invoices": 4, "bills": 3, "bookingProposals": 2}
START_DATE = "2020-01-01T00:00:00Z"  # before every seeded record (they start in 2024)


def tap_config(server: Emulator | str, **overrides: t.Any) -> dict[str, t.Any]:
    """A config for the emulator (or any server, by URL), fast to fail in tests.

    An override of ``None`` removes that setting.
    """
    config = {
        "api_key": API_KEY,
        "account_key": ACCOUNT_KEY,
        "api_url": server if isinstance(server, str) else server.url,
        "start_date": START_DATE,
        "max_retry_seconds": 30,
        **overrides,
    }
    return {name: value for name, value in config.items() if value is not None}


def stub_config(url: str, **overrides: t.Any) -> dict[str, t.Any]:
    """A config for a stub server at ``url`` (not the emulator): no start date, and the
    tap's own retry budget."""
    return tap_config(url, start_date=None, max_retry_seconds=None, **overrides)


def whole_list(config: dict[str, t.Any]) -> dict[str, t.Any]:
    """``config`` without start_date: a first run reads each partition's whole list."""
    config.pop("start_date", None)
    return config


def with_accounts(config: dict[str, t.Any], labels: dict[str, str]) -> dict[str, t.Any]:
    """``config`` reading several accounts (label -> account key) instead of account_key."""
    config.pop("account_key", None)
    config["accounts"] = [{"label": label, "account_key": key} for label, key in labels.items()]
    return config


def company_labels(keys: Iterable[str]) -> dict[str, str]:
    """Labels for account keys, as the accounts tests name them: company-0000, company-0001..."""
    return {f"company-{i:04d}": key for i, key in enumerate(keys)}


def accounts_config(emulator: Emulator, **overrides: t.Any) -> dict[str, t.Any]:
    """A config reading every account of ``emulator`` (sorted keys, labelled
    company-0000...), one retry within two seconds."""
    labels = company_labels(sorted(emulator.settings.accounts))
    config = tap_config(emulator, **{"max_retries": 1, "max_retry_seconds": 2, **overrides})
    return with_accounts(config, labels)


def counts(n: int, resources: Iterable[str] = STREAM_RESOURCES.values()) -> dict[str, int]:
    """Emulator ``counts``: ``n`` records of each of ``resources``, none of the others."""
    wanted = set(resources)
    return {resource: n if resource in wanted else 0 for resource in STREAM_RESOURCES.values()}


def only(invoices: int = 0, bills: int = 0, booking_proposals: int = 0) -> dict[str, int]:
    """Emulator ``counts``: small, and zero for the resources a scenario does not need."""
    return {"invoices": invoices, "bills": bills, "bookingProposals": booking_proposals}
