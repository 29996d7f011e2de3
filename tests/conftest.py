"""Fixtures shared by every tier (the runners and configs are in tests/support/)."""

from __future__ import annotations

import typing as t

import pytest

from tap_maesn_qonto.emulator import Emulator, many_accounts
from tests.support import tap
from tests.support.configs import MANY_ACCOUNTS, PER_ACCOUNT


@pytest.fixture
def fast_retries() -> t.Iterator[None]:
    """Retries in this test's process wait milliseconds (``tests.support.tap.fast_retries``)."""
    with tap.fast_retries():
        yield


@pytest.fixture(scope="module")
def many_accounts_emulator() -> t.Iterator[Emulator]:
    """An emulator serving ``MANY_ACCOUNTS`` (200) accounts, each with a few records of its own. A test that
    reconfigures it puts it back as it found it."""
    keys = many_accounts(MANY_ACCOUNTS)
    with Emulator(
        accounts=keys, account_counts=dict.fromkeys(keys, PER_ACCOUNT), counts=PER_ACCOUNT
    ) as running:
        yield running
