"""The one root of every error engagement-stream raises on purpose, and its few kinds.

Each message is meant for a person: it names what was being read or reached, and what is
wrong, so that ``engagement`` can print it on one line without a traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EngagementError",
    "InvalidModelError",
    "MissingExtraError",
    "ProcessingError",
    "ReplayError",
    "UnreachableError",
]


class EngagementError(Exception):
    """Root of engagement-stream's errors."""


class ConfigError(EngagementError):
    """A setting, argument or model key is missing or invalid: where, which key, what."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


class InvalidModelError(EngagementError, ValueError):
    """A scoring model (or band scale) that is inconsistent in itself."""


class UnreachableError(EngagementError):
    """A dependency (Redis, Kafka) could not be reached or answered with an error."""

    def __init__(self, dependency: str, address: str, problem: str) -> None:
        super().__init__(f"cannot reach {dependency} at {address}: {problem}")
        self.dependency = dependency
        self.address = address
        self.problem = problem


class ReplayError(EngagementError):
    """Retained input cannot be replayed as asked (rescore, backfill)."""


class ProcessingError(EngagementError):
    """A batch could not be committed; it is retried and its offsets are not acknowledged."""


class MissingExtraError(EngagementError):
    """A command needs an optional extra that is not installed (for example ``calibrate``)."""
