"""The tap's settings: their JSON schema and the checks JSON schema cannot express.

singer-sdk validates config without format checking and ignores unknown keys, so
``start_date: "yesterday-ish"`` or a typo like ``acount_key`` would pass silently.
:func:`find_problems` catches those before the first request, naming the setting.
"""

from __future__ import annotations

import decimal
import difflib
import importlib.util
import ipaddress
import json
import math
import re
import typing as t
from urllib.parse import urlsplit

from singer_sdk import typing as th

from tap_maesn_qonto.timestamps import parse_timestamp

DEFAULT_API_URL = "https://api.maesn.dev"
#: Requests in flight at most. Qonto allows 1 000 requests per 10 s per IP (Maesn's IPs,
#: shared by its tenants); 8 in flight peak at 8 / round trip, under 80 requests/s for any
#: Maesn-to-Qonto round trip of 100 ms or more, and about 25/s at a typical 300 ms. A 429
#: pauses every worker for its Retry-After and halves this limit for the run (throttle.py).
#: Qonto's 10 000 per 10 min is a rate: max_requests_per_second (README, shard sizing).
DEFAULT_MAX_CONCURRENCY = 8
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
        secret=True,
        title="Maesn account key",
        description=(
            "The connected end user's account key for Qonto (from Maesn's auth flow), "
            "sent as X-ACCOUNT-KEY. It is bound to one target system: qonto or "
            "qonto-sandbox. For several accounts use accounts or accounts_file instead."
        ),
    ),
    th.Property(
        "accounts",
        th.ArrayType(
            th.ObjectType(
                th.Property("label", th.StringType, required=True),
                th.Property("account_key", th.StringType, required=True, secret=True),
                th.Property("sandbox", th.BooleanType),
            )
        ),
        secret=True,  # it holds the account keys
        title="Accounts",
        description=(
            'Several connected companies in one run: a list of {"label", "account_key", '
            '"sandbox"}. Labels (letters, digits, -, _, .) are unique and non-secret: they '
            "key the state and are written to every record as account_label. Accounts are "
            "read in parallel within max_concurrency; one that fails is named and skipped, "
            "the others complete, and the run exits 1."
        ),
    ),
    th.Property(
        "accounts_file",
        th.StringType(min_length=1),
        title="Accounts file",
        description=(
            "Path to a JSON file holding the accounts list (as the accounts setting), for "
            "when a secret manager writes the keys. Read once at start, never logged."
        ),
    ),
    th.Property(
        "shard_count",
        th.IntegerType(minimum=1),
        default=1,
        title="Shard count",
        description=(
            "Split the accounts over this many runs (e.g. parallel orchestrator tasks); "
            "each reads the accounts whose label hashes to its shard_index."
        ),
    ),
    th.Property(
        "shard_index",
        th.IntegerType(minimum=0),
        default=0,
        title="Shard index",
        description="Which shard this run reads, 0 to shard_count - 1.",
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
            "A label, not a switch: true writes target_system qonto-sandbox on every "
            "record (false: qonto), so sandbox rows are not mistaken for production rows. "
            "It changes no data request (Maesn binds the target system to the account "
            "key: same api_url, same endpoints) and cannot be checked: no Maesn endpoint "
            "says which system a key belongs to, so a production account_key with sandbox "
            "true is read from production Qonto and its rows are labelled qonto-sandbox. "
            "Set it to true exactly when the key came from GET /auth/qonto-sandbox. "
            "(After a 401/403 the tap's tenant-key check asks that endpoint instead of "
            "GET /auth/qonto.)"
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
        "reconcile_interval_days",
        th.IntegerType(minimum=-1),
        title="Reconcile interval (days)",
        description=(
            "Turns reconciles on: every this many days each stream is read whole for every "
            "account, and rows this pipeline loaded that are no longer listed at the "
            "source are retired in the target (Singer ACTIVATE_VERSION), only if every "
            "read proves them gone. 0 = every run; unset or -1 = never. Set it only where "
            "this pipeline alone loads its tables. Refused with shard_count > 1 (shards "
            "reconcile through one unsharded run)."
        ),
    ),
    th.Property(
        "fetch_details",
        th.StringType(allowed_values=["auto", "always", "never"]),
        default="auto",
        title="Fetch details",
        description=(
            "When to read a record's detail endpoint (GET /accounting/<resource>/{id}) "
            "for its line items: auto = when the list left lineItems out and line "
            "items are selected, always = for every record, never = not at all."
        ),
    ),
    th.Property(
        "max_concurrency",
        th.IntegerType(minimum=1, maximum=32),
        default=DEFAULT_MAX_CONCURRENCY,
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


def _check_faker(config: t.Mapping[str, t.Any]) -> str | None:
    """A stream map that calls ``fake`` needs Faker, which only the [faker] extra installs."""
    uses_fake = re.search(r"\bfake\.", json.dumps(config.get("stream_maps") or {}, default=str))
    if uses_fake is None or importlib.util.find_spec("faker") is not None:
        return None
    return (
        "stream_maps call fake (Faker), which is not installed: install the tap with its "
        'faker extra (pip install "tap-maesn-qonto[faker]"; in meltano.yml, pip_url: '
        "tap-maesn-qonto[faker])"
    )


def _check_activate_version(config: t.Mapping[str, t.Any]) -> str | None:
    # singer-sdk 0.55 offers this to every tap that sends ACTIVATE_VERSION; this one sends
    # it only after a reconcile that proved rows gone (reconcile.py).
    if config.get("emit_activate_version_messages") is not True:
        return None
    return (
        "emit_activate_version_messages is true, but this tap sends ACTIVATE_VERSION only "
        "after a reconcile that proved rows gone: set reconcile_interval_days instead"
    )


def _check_batch(config: t.Mapping[str, t.Any]) -> str | None:
    if config.get("batch_config") is None:
        return None
    return (
        "batch_config is set, but this tap writes RECORD messages only (its BATCH files "
        "would not keep money exact); remove batch_config"
    )


def find_problems(config: t.Mapping[str, t.Any], known_settings: t.Iterable[str]) -> list[str]:
    """Return one readable line per setting whose value has the wrong shape."""
    problems = _check_unknown_keys(config, known_settings) + _check_nulls(config)
    for problem in (
        _check_start_date(config.get("start_date")),
        _check_api_url(
            config.get("api_url", DEFAULT_API_URL),
            allow_insecure_http=bool(config.get("allow_insecure_http")),
        ),
        _check_reconcile(config),
        _check_batch(config),
        _check_faker(config),
        _check_activate_version(config),
    ):
        if problem:
            problems.append(problem)
    return problems


def _check_reconcile(config: t.Mapping[str, t.Any]) -> str | None:
    days, shards = config.get("reconcile_interval_days"), config.get("shard_count", 1)
    if isinstance(days, int) and days >= 0 and isinstance(shards, int) and shards > 1:
        return (
            f"reconcile_interval_days is {days} with shard_count {shards}: a reconcile "
            "retires every row of a table its run did not send again, so one shard's "
            "would retire the other shards' rows. Leave reconcile_interval_days unset "
            "when sharding, and reconcile with one unsharded run over every account "
            "(orchestration/dagster)."
        )
    return None


# --------------------------------------------------------------------------- value types
#
# The same setting reaches the tap in three forms, and only one is the Python type its
# JSON type promises:
# * a JSON config file: singer-sdk reads it with ``parse_float=Decimal``, so 1.25 arrives
#   as Decimal("1.25") (and ``1.0 / Decimal`` raises TypeError);
# * an environment variable (``--config ENV``): text. singer-sdk converts integers with a
#   bare ``int()`` (a traceback for "abc"), booleans by "is it one of true/1/yes/on" (so
#   "flase" silently means false) and leaves numbers as text, which then fail validation;
# * Meltano: its config file. Meltano 4.4's ``kind: decimal`` casts an environment value to
#   Decimal and then cannot write that file (TypeError: Decimal is not JSON serializable),
#   so number settings are ``kind: string`` and arrive as text: "1.25".
# :func:`coerce_types` gives every boolean, integer and number setting its Python type
# (bool, int, float) when the value unambiguously is one; anything else is left as given,
# for the schema validation to name in one line.

_SCALAR_TYPES = ("boolean", "integer", "number")
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_INTEGER_TEXT = re.compile(r"[+-]?\d+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def scalar_type(prop: t.Mapping[str, t.Any]) -> str | None:
    """``"boolean"``, ``"integer"`` or ``"number"`` if that is the setting's one JSON type."""
    types = prop.get("type")
    found = {types} if isinstance(types, str) else set(types or ()) - {"null"}
    return found.pop() if len(found) == 1 and found <= set(_SCALAR_TYPES) else None


def coerce_value(json_type: str, value: t.Any, *, text: bool) -> t.Any:
    """``value`` as the Python type of ``json_type`` if it unambiguously is one, else as is.

    ``text`` says the value came as text (an environment variable): then "50", "true" and
    "1.25" are read as integer, boolean and number. In a JSON file only a number setting
    reads text ("1.25", as Meltano writes its ``kind: string``); ``"page_size": "100"`` or
    ``"sandbox": "yes"`` there is a mistake the validation reports.
    """
    if isinstance(value, bool) or value is None:
        return value
    read = {"number": _as_number, "integer": _as_integer, "boolean": _as_boolean}[json_type]
    return read(value, text=text)


def _as_number(value: t.Any, *, text: bool) -> t.Any:
    del text  # a number setting reads text from a JSON file too (Meltano's kind: string)
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        return _finite_float(value.strip(), value)
    if isinstance(value, int | float | decimal.Decimal):
        return _finite_float(value, value)
    return value


def _finite_float(number: t.Any, otherwise: t.Any) -> t.Any:
    """``float(number)``, or ``otherwise`` if that is not a finite float ("1e999")."""
    try:
        result = float(number)
    except OverflowError:
        return otherwise
    return result if math.isfinite(result) else otherwise


def _as_integer(value: t.Any, *, text: bool) -> t.Any:
    if isinstance(value, float | decimal.Decimal) and math.isfinite(value):
        # 50.0 is the integer 50 in JSON Schema; 1.5 becomes a float, so the validation's
        # message shows 1.5, not Decimal('1.5').
        return int(value) if value == int(value) else float(value)
    if text and isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    return value


def _as_boolean(value: t.Any, *, text: bool) -> t.Any:
    word = value.strip().lower() if text and isinstance(value, str) else None
    if word in _TRUE_WORDS or word in _FALSE_WORDS:
        return word in _TRUE_WORDS
    return value


def coerce_types(
    config: t.MutableMapping[str, t.Any],
    properties: t.Mapping[str, t.Any],
    *,
    text: bool = False,
) -> t.MutableMapping[str, t.Any]:
    """Give every boolean, integer and number setting of ``config`` its Python type, in place."""
    for name, prop in properties.items():
        json_type = scalar_type(prop) if isinstance(prop, dict) else None
        if json_type and name in config:
            value = coerce_value(json_type, config[name], text=text)
            if value is not config[name]:
                config[name] = value
    return config
