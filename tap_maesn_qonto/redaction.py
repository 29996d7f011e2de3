"""Keep secrets out of everything the tap says: log lines, config messages, error lines.

The tap never formats a key into a message itself, but an HTTP error body can echo
request headers back, jsonschema quotes the value it refuses, and libraries log at
debug level. So:

* :func:`secret_values` lists every key of a config (tenant key, each account's);
* a filter on every log handler replaces them before anything is written
  (:func:`install`), and :func:`mask_everywhere` does the same for a line printed
  outside logging;
* config messages about a secret setting are rewritten to name the setting and the
  problem, never the value (:func:`hide_secret_values`).

One threshold for all of it: :data:`MIN_SECRET_LENGTH`.
"""

from __future__ import annotations

import decimal
import functools
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

MASK = "***"
#: Masking a one- or two-letter "key" would shred every log line; real keys are long. A
#: secret that short is still never quoted in a config message: those are rewritten.
MIN_SECRET_LENGTH = 6

_installed: list[SecretRedactingFilter] = []


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every secret value replaced by ``***``."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    return text


def mask_everywhere(text: str) -> str:
    """``text`` masked with the secrets of every filter installed in this process."""
    return redact(text, [secret for f in _installed for secret in f.secrets])


def secret_values(config: Mapping[str, Any]) -> list[str]:
    """The tenant key and every account key a config gives, however it gives them."""
    values = [str(config.get("api_key", "")), str(config.get("account_key", ""))]
    entries = config.get("accounts")
    if isinstance(entries, list):
        values += [str(e.get("account_key", "")) for e in entries if isinstance(e, dict)]
    path = config.get("accounts_file")
    if isinstance(path, str):
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
        except (OSError, ValueError):
            document = None
        if isinstance(document, dict):
            document = document.get("accounts")
        if isinstance(document, list):
            values += [str(e.get("account_key", "")) for e in document if isinstance(e, dict)]
    return [v for v in values if v]


class SecretRedactingFilter(logging.Filter):
    """A logging filter that masks the given secret values in every record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask secrets in the message, its arguments and any exception text."""
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info), self.secrets
            )
            record.exc_info = None
        return True


def every_handler() -> list[logging.Handler]:
    """Every handler of every logger the logging system knows now."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    return [handler for logger in loggers for handler in logger.handlers]


def install(secrets: Iterable[str]) -> SecretRedactingFilter:
    """Attach one redacting filter to every handler known to the logging system."""
    redactor = SecretRedactingFilter(secrets)
    _installed.append(redactor)
    for handler in every_handler():
        if not any(isinstance(f, SecretRedactingFilter) for f in handler.filters):
            handler.addFilter(redactor)
    return redactor


# --- config messages -----------------------------------------------------------------

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


def secret_settings(properties: Mapping[str, Any]) -> frozenset[str]:
    """Names of the settings whose values must never be shown: the keys, and ``secret: true``."""
    return ALWAYS_SECRET | {
        name for name, prop in properties.items() if isinstance(prop, dict) and prop.get("secret")
    }


def _json_type_of(value: Any) -> str:
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


def _type_mismatch(value: Any, prop: Mapping[str, Any]) -> str | None:
    """``"a string"`` (what is expected) if ``value`` is not of the schema's type, else None."""
    types = prop.get("type")
    if not types:
        return None
    expected = [types] if isinstance(types, str) else list(types)
    actual = _json_type_of(value)
    if actual in expected or (actual == "integer" and "number" in expected):
        return None
    return " or ".join(_JSON_TYPE_NAMES.get(k, k) for k in expected if k != "null")


def secret_problem(name: str, value: Any, prop: Mapping[str, Any]) -> str:
    """Say what is wrong with secret setting ``name`` without showing its value."""
    if wanted := _type_mismatch(value, prop):
        actual = _JSON_TYPE_NAMES[_json_type_of(value)]
        return (
            f"'{name}' must be {wanted}, but is {actual} (value not shown: the setting is secret)"
        )
    if isinstance(value, str) and len(value) < int(prop.get("minLength", 0)):
        return f"'{name}' is empty; give the key itself"
    return f"'{name}' does not have the expected form (value not shown: the setting is secret)"


def wrongly_typed_secrets(config: Mapping[str, Any], properties: Mapping[str, Any]) -> list[str]:
    """One line per secret setting given with a value of the wrong JSON type."""
    return [
        secret_problem(name, config[name], properties.get(name) or {})
        for name in sorted(secret_settings(properties))
        if name in config and _type_mismatch(config[name], properties.get(name) or {})
    ]


def _secret_texts(value: Any) -> Iterator[str]:
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
    errors: Iterable[str], config: Mapping[str, Any], properties: Mapping[str, Any]
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
            if len(text) >= MIN_SECRET_LENGTH
        },
        key=len,
        reverse=True,
    )
    return [
        functools.reduce(lambda line, text: line.replace(text, "***"), texts, error)
        for error in rewritten
    ]
