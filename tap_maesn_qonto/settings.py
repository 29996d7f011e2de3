"""The tap's settings: their JSON schema and the checks JSON schema cannot express.

singer-sdk validates config without format checking and ignores unknown keys, so
``start_date: "yesterday-ish"`` or a typo like ``acount_key`` would pass silently.
:func:`find_problems` catches those before the first request, naming the setting.
"""

from __future__ import annotations

import decimal
import difflib
import functools
import ipaddress
import json
import math
import re
import typing as t
from urllib.parse import urlsplit

from singer_sdk import typing as th
from singer_sdk.configuration._dict_config import parse_environment_config

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
            "Every this many days each stream is read whole for every account and rows "
            "no longer listed at the source are retired in the target (Singer "
            "ACTIVATE_VERSION). Unset = 7; 0 = every run; -1 = never. Off when "
            "shard_count > 1 (each shard's retirement would hit the other shards' rows)."
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

KNOWN_SETTINGS = frozenset(CONFIG_SCHEMA["properties"])
#: Settings whose values never appear in a message (the keys, and any marked secret).
ALWAYS_SECRET = frozenset({"api_key", "account_key"})
_JSON_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
# Shorter values are not masked inside messages (they would shred ordinary words);
# a secret that short is still never quoted, as every message about it is rewritten.
_MIN_MASKED_LENGTH = 4


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
        _check_reconcile(config),
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
            "would retire the other shards' rows. Set reconcile_interval_days: -1 (or "
            "leave it unset) when sharding."
        )
    return None


def secret_settings(properties: t.Mapping[str, t.Any]) -> frozenset[str]:
    """Names of the settings whose values must never be shown: the keys, and ``secret: true``."""
    return ALWAYS_SECRET | {
        name for name, prop in properties.items() if isinstance(prop, dict) and prop.get("secret")
    }


def _json_type_of(value: t.Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | decimal.Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list | tuple) else "object"


def _type_mismatch(value: t.Any, prop: t.Mapping[str, t.Any]) -> str | None:
    """``"a string"`` (what is expected) if ``value`` is not of the schema's type, else None."""
    types = prop.get("type")
    if not types:
        return None
    expected = [types] if isinstance(types, str) else list(types)
    actual = _json_type_of(value)
    if actual in expected or (actual == "integer" and "number" in expected):
        return None
    return " or ".join(_JSON_TYPE_NAMES.get(k, k) for k in expected if k != "null")


def secret_problem(name: str, value: t.Any, prop: t.Mapping[str, t.Any]) -> str:
    """Say what is wrong with secret setting ``name`` without showing its value."""
    if wanted := _type_mismatch(value, prop):
        actual = _JSON_TYPE_NAMES[_json_type_of(value)]
        return (
            f"'{name}' must be {wanted}, but is {actual} (value not shown: the setting is secret)"
        )
    if isinstance(value, str) and len(value) < int(prop.get("minLength", 0)):
        return f"'{name}' is empty; give the key itself"
    return f"'{name}' does not have the expected form (value not shown: the setting is secret)"


def wrongly_typed_secrets(
    config: t.Mapping[str, t.Any], properties: t.Mapping[str, t.Any]
) -> list[str]:
    """One line per secret setting given with a value of the wrong JSON type."""
    return [
        secret_problem(name, config[name], properties.get(name) or {})
        for name in sorted(secret_settings(properties))
        if name in config and _type_mismatch(config[name], properties.get(name) or {})
    ]


def _secret_texts(value: t.Any) -> t.Iterator[str]:
    """Every way a secret value could be quoted inside a message."""
    if isinstance(value, str):
        yield value
        yield repr(value)
        yield json.dumps(value)
    elif isinstance(value, dict):
        yield repr(value)
        for item in value.values():
            yield from _secret_texts(item)
    elif isinstance(value, list | tuple):
        yield repr(value)
        for item in value:
            yield from _secret_texts(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)
        yield repr(value)


def hide_secret_values(
    errors: t.Iterable[str], config: t.Mapping[str, t.Any], properties: t.Mapping[str, t.Any]
) -> list[str]:
    """Rewrite config validation messages so that no secret setting's value appears.

    singer-sdk's messages come from jsonschema, which quotes the value
    (``12345678901 is not of type 'string' in config['api_key']``). A message about a
    secret setting is replaced by one naming the setting and the problem; any other
    message that still contains a secret value has the value masked.
    """
    secrets = secret_settings(properties)
    rewritten: list[str] = []
    for error in errors:
        # singer-sdk appends where the error is: " in config['api_key']" (then "[0]"...).
        name = next((n for n in sorted(secrets) if f" in config[{n!r}]" in error), None)
        line = (
            error
            if name is None
            else secret_problem(name, config.get(name), properties.get(name) or {})
        )
        if line not in rewritten:
            rewritten.append(line)
    texts = sorted(
        {
            text
            for name in secrets
            if name in config
            for text in _secret_texts(config[name])
            if len(text) >= _MIN_MASKED_LENGTH
        },
        key=len,
        reverse=True,
    )
    return [
        functools.reduce(lambda line, text: line.replace(text, "***"), texts, error)
        for error in rewritten
    ]


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


def environment_config(schema: t.Mapping[str, t.Any], prefix: str) -> dict[str, t.Any]:
    """The settings given as ``<prefix><NAME>`` environment variables (``--config ENV``).

    singer-sdk's reader (which also loads a ``.env`` file and parses arrays and objects),
    with boolean, integer and number settings taken as the text given and converted here:
    a value that is none of them stays text, and the validation names it in one line
    instead of a traceback ("abc") or a silent false ("flase").
    """
    properties = schema.get("properties", {})
    as_text = {
        name: {"type": ["string", "null"]} if scalar_type(prop) else prop
        for name, prop in properties.items()
    }
    config = parse_environment_config({**schema, "properties": as_text}, prefix)
    return dict(coerce_types(config, properties, text=True))
