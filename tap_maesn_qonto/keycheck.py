"""Which key Maesn rejected: after a 401/403, one request that needs only the tenant key.

A 401 or 403 on ``/accounting/*`` does not say whether ``X-API-KEY`` (the tenant key,
setting ``api_key``) or ``X-ACCOUNT-KEY`` (the end user's key, ``account_key``) was
refused. ``GET /auth/{TARGET_SYSTEM}`` tells them apart: it is the first step of Maesn's
end-user auth flow, made before any account key exists, so it takes ``X-API-KEY`` alone
(Maesn's authentication guide calls it with that header only; the vendored OpenAPI spec
declares both headers optional on every operation, so it cannot say more, and has no
other required input for this one than the path). Its answer decides:

* 401/403: the tenant key itself is refused. Every account of the run would fail the
  same way, so :class:`ApiKeyRejectedError` (a :class:`WrongApiUrlError`, which no
  per-account isolation catches) stops the whole run with one line.
* 2xx: the tenant key is good, so the account key is the one to fix (or re-link): an
  ordinary :class:`AuthError`, isolated to that account when there are several.
* anything else, or no answer: the tap cannot tell, and says so.

The check is made only after a 401/403 (a healthy run never makes it), once per run
however many accounts fail at once (again for another target system only if the first
answer was unclear), through the run's session (keys never leave ``api_url``'s origin;
no redirect is followed), throttle and in-flight slots, without retries and without
``X-ACCOUNT-KEY``. It returns a login URL that nobody opens.

The spec has no endpoint that returns the target system an account key belongs to
(``/user/user-info`` returns ``id``, ``account_id``, ``family_name`` and ``name``;
``/auth/environments`` and ``/auth/companies`` no system either; ``/accounting/profile``
and ``/tenants/*`` an untyped ``data``), so the ``sandbox`` setting cannot be checked
against the key: it only labels the rows (see ``settings.py``).
"""

from __future__ import annotations

import enum
import threading
import typing as t
import weakref
from dataclasses import dataclass

import requests

from tap_maesn_qonto.errors import AuthError, MaesnAPIError, WrongApiUrlError

if t.TYPE_CHECKING:
    from tap_maesn_qonto.accounts import Account
    from tap_maesn_qonto.client import MaesnStream
    from tap_maesn_qonto.runtime import RunContext

#: The check is advice for an error message: it never waits long.
CHECK_TIMEOUT_SECONDS = 10.0


class ApiKeyRejectedError(WrongApiUrlError):
    """Maesn refused the tenant key itself: every account would fail, so the run stops."""


class Verdict(enum.Enum):
    """What the tenant-key request said about ``api_key``."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TenantKeyCheck:
    """The answer to ``GET /auth/{target_system}`` with ``X-API-KEY`` only."""

    verdict: Verdict
    #: The request, for messages: ``GET /auth/qonto``.
    request: str
    #: What came back, for messages: ``answered 200 OK``, ``got no answer (ReadTimeout)``.
    answer: str


# One result per run (its session lives exactly as long) and target system.
_results: weakref.WeakKeyDictionary[requests.Session, dict[str, TenantKeyCheck]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def check_tenant_key(
    run: RunContext, api_key: str, target_system: str, timeout: float
) -> TenantKeyCheck:
    """Ask Maesn whether it accepts ``api_key`` alone; once per run and target system.

    Concurrent callers (several accounts refused at once) wait for the one request.
    """
    with _lock:  # held across the request: the others want its answer, not their own
        results = _results.setdefault(run.session, {})
        # The tenant key is the tenant's, whatever the target system: one clear answer
        # serves every account; an unclear one is asked again for another system only.
        known = next((r for r in results.values() if r.verdict is not Verdict.UNKNOWN), None)
        if known is not None:
            return known
        if target_system not in results:
            results[target_system] = _ask(run, api_key, target_system, timeout)
        return results[target_system]


def _ask(run: RunContext, api_key: str, target_system: str, timeout: float) -> TenantKeyCheck:
    path = f"/auth/{target_system}"
    request = f"GET {path}"
    try:
        response = run.send(
            lambda: run.session.get(
                run.api_url.rstrip("/") + path,
                headers={"X-API-KEY": api_key, "Accept": "text/html, application/json"},
                timeout=min(timeout, CHECK_TIMEOUT_SECONDS),
                allow_redirects=False,
            )
        )
    except requests.exceptions.RequestException as exc:
        return TenantKeyCheck(Verdict.UNKNOWN, request, f"got no answer ({type(exc).__name__})")
    answer = f"answered {response.status_code} {response.reason}".rstrip()
    response.close()
    if 200 <= response.status_code < 300:
        return TenantKeyCheck(Verdict.ACCEPTED, request, answer)
    if response.status_code in {401, 403}:
        return TenantKeyCheck(Verdict.REJECTED, request, answer)
    return TenantKeyCheck(Verdict.UNKNOWN, request, answer)


def auth_error(stream: MaesnStream, status: int) -> MaesnAPIError:
    """The error for a 401/403 the stream just received, naming the key to fix."""
    account = _current_account(stream)
    target_system = account.target_system if account is not None else "qonto"
    check = check_tenant_key(
        stream.run,
        str(stream.config["api_key"]),
        target_system,
        float(stream.config["request_timeout"]),
    )
    message = stream._auth_message(status, account, check)
    if check.verdict is Verdict.REJECTED:
        return ApiKeyRejectedError(message)
    return AuthError(message)


def _current_account(stream: MaesnStream) -> Account | None:
    """The account whose request was refused (the stream records it per thread)."""
    label = getattr(stream._where, "label", None)
    accounts = stream.run.accounts
    if label in accounts:
        return accounts[label]
    return next(iter(accounts.values())) if len(accounts) == 1 else None
