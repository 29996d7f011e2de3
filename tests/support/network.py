"""Real network failures, for the tests of how a failed request is described."""

from __future__ import annotations

import typing as t

import requests

UNRESOLVABLE = "does-not-exist.invalid"  # .invalid never resolves (RFC 6761)


def failure(url: str, **kwargs: t.Any) -> requests.RequestException:
    """What ``requests`` raises for ``url`` (which must not answer)."""
    try:
        requests.get(url, timeout=5, **kwargs)
    except requests.RequestException as exc:
        return exc
    raise AssertionError(f"{url} answered")
