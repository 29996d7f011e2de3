"""Keep secrets out of every log line, whatever code wrote it.

The tap never formats a key into a message itself, but an HTTP error body can
echo request headers back, and libraries log at debug level. A filter on every
log handler replaces the configured secret values before anything is written.
"""

from __future__ import annotations

import logging
import typing as t

MASK = "***"
# Masking a one- or two-letter "key" would shred every log line; real keys are long.
MIN_SECRET_LENGTH = 6


def redact(text: str, secrets: t.Iterable[str]) -> str:
    """Return ``text`` with every secret value replaced by ``***``."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    return text


class SecretRedactingFilter(logging.Filter):
    """A logging filter that masks the given secret values in every record."""

    def __init__(self, secrets: t.Iterable[str]) -> None:
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


def install(secrets: t.Iterable[str]) -> SecretRedactingFilter:
    """Attach one redacting filter to every handler known to the logging system."""
    redactor = SecretRedactingFilter(secrets)
    for handler in every_handler():
        if not any(isinstance(f, SecretRedactingFilter) for f in handler.filters):
            handler.addFilter(redactor)
    return redactor
