"""Which key Maesn rejected: after a 401/403, one request that needs only the tenant key.

A 401 or 403 on ``/accounting/*`` does not say whether ``X-API-KEY`` (the tenant key,
setting ``api_key``) or ``X-ACCOUNT-KEY`` (the end user's key, ``account_key``) was
refused. ``GET /auth/{TARGET_SYSTEM}`` tells them apart: it is the first step of Maesn's
end-user auth flow, made before any account key exists, so it takes ``X-API-KEY`` alone
(Maesn's authentication guide calls it with that header only; the vendored OpenAPI spec
declares both headers optional on every operation, so it cannot say more, and has no
other required input for this one than the path). Its answer decides:

* 401/403: the tenant key itself seems refused. Before the run stops on it, the data
  path is asked too, where it can speak: a 2xx that another request of the run got in
  the meantime, or one list request (``limit=1``) with the keys of up to two other
  accounts. A 2xx there proves ``api_key`` good (the check endpoint is wrong, not the
  key: Maesn has answered 401 there to keys its data endpoints accept), so only the
  refused account fails. Refused there too, every account would fail the same way:
  :class:`ApiKeyRejectedError` (a :class:`WrongApiUrlError`, which no per-account
  isolation catches) stops the whole run with one line.
* 2xx (or a 2xx on a data request earlier in the run, which makes the check
  unnecessary): the tenant key is good, so the account key is the one to fix (or re-link): an
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
    from tap_maesn_qonto.runtime import RunContext

#: The check is advice for an error message: it never waits long.
CHECK_TIMEOUT_SECONDS = 10.0
#: The list the data path is asked on when the check refuses the tenant key.
LIST_PATH = "/accounting/invoices"
#: The check's request and answer when a data request of the run was answered 2xx.
ACCEPTED_BY_THE_RUN = ("this run's data requests", "were answered 2xx with the same api_key")


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
    #: Other requests that agreed with a refusal, for messages (module docstring).
    agreed: tuple[str, ...] = ()


# One result per run (its session lives exactly as long) and target system.
_results: weakref.WeakKeyDictionary[requests.Session, dict[str, TenantKeyCheck]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def check_tenant_key(
    run: RunContext, api_key: str, refused: Account | None, timeout: float
) -> TenantKeyCheck:
    """Ask Maesn whether it accepts ``api_key``; once per run and target system.

    Concurrent callers (several accounts refused at once) wait for the one answer.
    """
    target_system = refused.target_system if refused is not None else "qonto"
    with _lock:  # held across the request: the others want its answer, not their own
        results = _results.setdefault(run.session, {})
        # The tenant key is the tenant's, whatever the target system: one clear answer
        # serves every account; an unclear one is asked again for another system only.
        known = next((r for r in results.values() if r.verdict is not Verdict.UNKNOWN), None)
        if known is not None:
            return known
        if target_system not in results:
            check = _ask(run, api_key, target_system, timeout)
            if check.verdict is Verdict.REJECTED:
                check = _confirmed(run, api_key, refused, timeout, check)
            results[target_system] = check
        return results[target_system]


def _confirmed(
    run: RunContext, api_key: str, refused: Account | None, timeout: float, check: TenantKeyCheck
) -> TenantKeyCheck:
    """The check's REJECTED, unless the data path accepts ``api_key`` (module docstring)."""
    if run.api_key_accepted:  # a data request answered 2xx while the check was out
        return TenantKeyCheck(Verdict.ACCEPTED, *ACCEPTED_BY_THE_RUN)
    others = [
        account
        for label, account in run.accounts.items()
        if label not in run.failed and (refused is None or label != refused.label)
    ][:2]
    agreed = []
    for account in others:
        request = f"GET {LIST_PATH}?limit=1 with account {account.label}'s key"
        headers = {"X-API-KEY": api_key, "X-ACCOUNT-KEY": account.key}
        try:
            status, answer = _get(run, LIST_PATH, headers, timeout, params={"page": 1, "limit": 1})
        except requests.exceptions.RequestException as exc:
            status, answer = 0, f"got no answer ({type(exc).__name__})"
        if 200 <= status < 300:
            return TenantKeyCheck(Verdict.ACCEPTED, request, answer)
        if status not in {401, 403}:
            return TenantKeyCheck(
                Verdict.UNKNOWN, f"{request} (after {check.request} {check.answer})", answer
            )
        agreed.append(account.label)
    if not agreed:
        return check
    also = f"GET {LIST_PATH}?limit=1 with the key of account(s) {', '.join(agreed)}"
    return TenantKeyCheck(check.verdict, check.request, check.answer, (also,))


def _ask(run: RunContext, api_key: str, target_system: str, timeout: float) -> TenantKeyCheck:
    path = f"/auth/{target_system}"
    request = f"GET {path}"
    headers = {"X-API-KEY": api_key, "Accept": "text/html, application/json"}
    try:
        status, answer = _get(run, path, headers, timeout)
    except requests.exceptions.RequestException as exc:
        return TenantKeyCheck(Verdict.UNKNOWN, request, f"got no answer ({type(exc).__name__})")
    if 200 <= status < 300:
        return TenantKeyCheck(Verdict.ACCEPTED, request, answer)
    if status in {401, 403}:
        return TenantKeyCheck(Verdict.REJECTED, request, answer)
    return TenantKeyCheck(Verdict.UNKNOWN, request, answer)


def _get(
    run: RunContext,
    path: str,
    headers: dict[str, str],
    timeout: float,
    params: dict[str, int] | None = None,
) -> tuple[int, str]:
    """One GET on ``api_url``, through the run's session: its status and ``answered …``."""

    def send() -> requests.Response:
        return run.session.get(
            run.api_url.rstrip("/") + path,
            params=params,
            headers=headers,
            timeout=min(timeout, CHECK_TIMEOUT_SECONDS),
            allow_redirects=False,
        )

    response = run.send(send)
    response.close()
    return response.status_code, f"answered {response.status_code} {response.reason}".rstrip()


def auth_error(
    run: RunContext,
    *,
    api_key: str,
    timeout: float,
    account: Account | None,
    where: str,
    status: int,
) -> MaesnAPIError:
    """The error for a 401/403 on ``where``, naming the key to fix.

    A 2xx on a data request earlier in this run is evidence that beats a probe: the
    tenant key was accepted, so the account key is the one refused.
    """
    if run.api_key_accepted:
        check = TenantKeyCheck(Verdict.ACCEPTED, *ACCEPTED_BY_THE_RUN)
    else:
        check = check_tenant_key(run, api_key, account, timeout)
    text = message(status, account, check, where=where, accounts=len(run.accounts))
    if check.verdict is Verdict.REJECTED:
        return ApiKeyRejectedError(text)
    return AuthError(text)


def message(
    status: int, account: Account | None, check: TenantKeyCheck, *, where: str, accounts: int
) -> str:
    """The line for a 401/403 on ``where``, naming the key to fix when the check could."""
    answered = f"{status} {'Unauthorized' if status == 401 else 'Forbidden'}"
    probe = (
        f"{check.request}, which needs only X-API-KEY,"
        if check.request.startswith("GET /auth/")
        else check.request
    )
    label = account.label if account is not None else "(unknown)"
    auth_flow = f"GET /auth/{account.target_system if account is not None else 'qonto'}"
    if check.verdict is Verdict.REJECTED:
        return (
            f"Maesn refused the tenant key: {answered} on {where}, and {probe} "
            f"{check.answer} too"
            + "".join(f", as did {request}" for request in check.agreed)
            + ". api_key (your Maesn tenant key) is wrong"
            + (" or its Maesn tenant is not active" if status == 403 else "")
            + ": copy it again from the Maesn dashboard. "
            + (
                f"All {accounts} accounts would fail the same way, so the run stopped at once. "
                if accounts > 1
                else ""
            )
            + "account_key is checked once api_key is accepted (if Maesn refuses it "
            "then, re-link the end user)."
        )
    if check.verdict is Verdict.ACCEPTED:
        accepted = (
            f"api_key is valid ({probe} {check.answer})"
            if check.request.startswith("GET ")
            else f"api_key is valid ({check.request} {check.answer})"
        )
        if status == 401:
            return (
                f"Maesn rejected the account key: {answered} on {where}; {accepted}. "
                f"account_key of account {label} is not valid for this tenant (or its "
                "Qonto connection expired: re-link). To re-link, the end user opens a "
                f"new login URL from {auth_flow} and you use the account key Maesn "
                "then gives."
            )
        return (
            f"Maesn refused access: {answered} on {where} for account {label}; "
            f"{accepted}. The end user behind that account_key is inactive or does "
            "not belong to this tenant: check in Maesn that the user is active and "
            "that the account key was issued under this api_key's tenant."
        )
    unsure = f" (The tap could not tell which key: {probe} {check.answer}.)"
    if status == 401:
        return (
            f"Maesn rejected the keys (401 Unauthorized) on {where}. Check "
            "api_key (your Maesn tenant key, sent as X-API-KEY) and account_key of "
            f"account {label} (the end user's key for target system qonto or "
            "qonto-sandbox, sent as X-ACCOUNT-KEY). If the end user's Qonto connection "
            "expired, re-link them through Maesn's auth flow to get a new account "
            "key." + unsure
        )
    return (
        f"Maesn refused access (403 Forbidden) on {where} for account {label}. The "
        "end user may be inactive or not belong to this tenant: check in Maesn that "
        "the user is active and that api_key and account_key come from the same "
        "tenant." + unsure
    )
