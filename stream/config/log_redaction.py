"""Mask secret values in every log record, whichever library logs them.

Client libraries log protocol traffic at debug level; aiokafka, for one, logs a SASL PLAIN
login request with the password in it. Records are therefore built by a ``LogRecord``
subclass whose message and exception text have every known secret replaced by ``***``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from stream.config.secret import MASK

__all__ = ["install_log_redaction", "redact"]

_secrets: tuple[str, ...] = ()


def redact(text: str) -> str:
    """``text`` with every installed secret (and its escaped ``repr`` form) masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class _RedactingRecord(logging.LogRecord):
    def getMessage(self) -> str:  # noqa: N802 (logging's own name)
        return redact(super().getMessage())

    @property
    def exc_text(self) -> str | None:
        return self._exc_text

    @exc_text.setter
    def exc_text(self, value: str | None) -> None:
        self._exc_text = redact(value) if value else value


def install_log_redaction(secrets: Iterable[str]) -> None:
    """Mask these values in all log records created from now on."""
    global _secrets  # noqa: PLW0603 (one process-wide list, as logging itself is)
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= {secret, repr(secret)[1:-1], repr(secret.encode())[2:-1]}
    _secrets = tuple(sorted(forms | set(_secrets), key=len, reverse=True))
    logging.setLogRecordFactory(_record)


def _record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    return _RedactingRecord(*args, **kwargs)
