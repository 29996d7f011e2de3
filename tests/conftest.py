"""Fixtures shared by every tier (the runners and configs are in tests/support/)."""

from __future__ import annotations

import typing as t

import pytest

from tests.support import tap


@pytest.fixture
def fast_retries() -> t.Iterator[None]:
    """Retries in this test's process wait milliseconds (``tests.support.tap.fast_retries``)."""
    with tap.fast_retries():
        yield
