"""The tap's settings: their JSON schema and the checks JSON schema cannot express.

singer-sdk validates config without format checking and ignores unknown keys, so
``start_date: "yesterday-ish"`` or a typo like ``acount_key`` would pass silently.
:func:`find_problems` catches those before the first request, naming the setting.
"""

from __future__ import annotations

import difflib
import ipaddress
import typing as t
from urllib.parse import urlsplit

from singer_sdk import typing as th

from tap_maesn_qonto.timestamps import parse_timestamp

DEFAULT_API_URL = "https://api.maesn.dev"
PAGE_SIZES = (5, 10, 20, 50, 100)

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "api_key",
        th.StringType(min_length=1),
        required=True,
        secret=True,
        title="Maesn API key",
        description="Your Maesn tenant key, sent as X-API-KEY on every request.",
    ),
    th.Property(
        "account_key",
        th.StringType(min_length=1),
        required=True,
        secret=True,
        title="Maesn account key",
        description=(
            "The connected end user's account key for Qonto (from Maesn's auth flow), "
            "sent as X-ACCOUNT-KEY. It is bound to one target system: qonto or "
            "qonto-sandbox."
        ),
    ),
    th.Property(
        "account_label",
        th.StringType(min_length=1),
        default="default",
        title="Account label",
        description=(
            "Non-secret name for the connected account. It keys the state (one bookmark "
            "per account) and is written to every record as account_label, so rows of "
            "several accounts can share a table. Never put a key here."
        ),
    ),
    th.Property(
        "sandbox",
        th.BooleanType,
        default=False,
        title="Sandbox",
        description=(
            "Set to true when account_key belongs to Maesn's qonto-sandbox target "
            "system. Every record carries target_system (qonto or qonto-sandbox) so "
            "sandbox rows are never mistaken for production rows."
        ),
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description=(
            "ISO 8601 date or date-time. Only records updated at or after it are "
            "extracted on the first run; later runs start from the bookmark."
        ),
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        title="API URL",
        description="Base URL of the Maesn Unified API (change it only for a proxy or emulator).",
    ),
    th.Property(
        "page_size",
        th.IntegerType,
        default=100,
        allowed_values=list(PAGE_SIZES),
        title="Page size",
        description="Records per request (Maesn's limit): 5, 10, 20, 50 or 100.",
    ),
    th.Property(
        "request_timeout",
        th.IntegerType(minimum=1),
        default=60,
        title="Request timeout",
        description="Seconds to wait for one HTTP response before retrying it.",
    ),
    th.Property(
        "lookback_window",
        th.IntegerType(minimum=0),
        default=600,
        title="Lookback window",
        description=(
            "Seconds re-read before the bookmark on each incremental run, to catch "
            "updates that reach Maesn late and clock skew between Maesn and this "
            "machine. Records read twice are merged by primary key in the target."
        ),
    ),
    th.Property(
        "max_concurrency",
        th.IntegerType(minimum=1, maximum=32),
        default=4,
        title="Max concurrency",
        description=(
            "Pages fetched at the same time once the first page has told how many "
            "there are. Records still leave the tap in page order. 1 = sequential."
        ),
    ),
    th.Property(
        "max_requests_per_second",
        th.NumberType(minimum=0.1),  # type: ignore[arg-type]  # the SDK annotates int
        title="Max requests per second",
        description="Cap on the request rate across all streams (unset = no cap).",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0),
        default=8,
        title="Max retries",
        description=(
            "Retries of one request after a 429, a 5xx, a timeout or a dropped "
            "connection, with exponential backoff and jitter, honouring Retry-After."
        ),
    ),
    th.Property(
        "max_retry_seconds",
        th.IntegerType(minimum=1),
        default=300,
        title="Max retry seconds",
        description="Longest total time spent retrying one request before giving up.",
    ),
    th.Property(
        "allow_insecure_http",
        th.BooleanType,
        default=False,
        title="Allow insecure HTTP",
        description=(
            "Allow an http:// api_url on a non-loopback host. Off by default: the keys "
            "would travel in clear text."
        ),
    ),
).to_dict()

KNOWN_SETTINGS = frozenset(CONFIG_SCHEMA["properties"])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_start_date(value: t.Any) -> str | None:
    if value is None:
        return None
    try:
        parse_timestamp(str(value))
    except ValueError:
        return (
            f"start_date {value!r} is not an ISO 8601 date or date-time; "
            "use e.g. 2024-01-01 or 2024-01-01T00:00:00Z"
        )
    return None


def _check_api_url(value: t.Any, *, allow_insecure_http: bool) -> str | None:
    if not isinstance(value, str):
        return None  # the JSON schema check reports the type
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return f"api_url {value!r} is not an http(s) URL; use e.g. {DEFAULT_API_URL}"
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not allow_insecure_http:
        return (
            f"api_url {value!r} uses plain http to a non-loopback host, which would send "
            "the keys in clear text; use https, or set allow_insecure_http: true if you "
            "really mean it"
        )
    return None


def _check_unknown_keys(config: t.Mapping[str, t.Any], known: t.Iterable[str]) -> list[str]:
    known = set(known)
    problems = []
    for key in sorted(set(config) - known):
        if close := difflib.get_close_matches(key, known, n=1, cutoff=0.8):
            problems.append(
                f"{key!r} is not a setting of tap-maesn-qonto; did you mean {close[0]!r}?"
            )
    return problems


def _check_nulls(config: t.Mapping[str, t.Any]) -> list[str]:
    # JSON schema lets every optional setting be null, but these need a value.
    return [
        f"'{name}' is null; remove it to use the default ({prop['default']!r}) or give a value"
        for name, prop in CONFIG_SCHEMA["properties"].items()
        if name in config and config[name] is None and "default" in prop
    ]


def find_problems(config: t.Mapping[str, t.Any], known_settings: t.Iterable[str]) -> list[str]:
    """Return one readable line per setting whose value has the wrong shape."""
    problems = _check_unknown_keys(config, known_settings) + _check_nulls(config)
    for problem in (
        _check_start_date(config.get("start_date")),
        _check_api_url(
            config.get("api_url", DEFAULT_API_URL),
            allow_insecure_http=bool(config.get("allow_insecure_http")),
        ),
    ):
        if problem:
            problems.append(problem)
    return problems
