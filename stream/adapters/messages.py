"""The consumed Kafka message as the worker and the rescore see it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Incoming"]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One consumed Kafka message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int

    @property
    def source(self) -> str:
        """topic/partition/offset: the event id of an event that brings none, so the
        worker and the rescore give such an event the same fingerprint."""
        return f"{self.topic}/{self.partition}/{self.offset}"
