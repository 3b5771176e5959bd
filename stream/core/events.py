"""The validated event the core scores, and its identity for de-duplication."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROFILE_TYPES", "Event", "fingerprint"]

PROFILE_TYPES = frozenset({"identify", "group"})


@dataclass(frozen=True, slots=True)
class Event:
    """One customer action, already decoded and validated."""

    event_id: str
    customer_id: str
    type: str
    timestamp_ms: int
    properties: Mapping[str, Any] = field(default_factory=dict)
    traits: Mapping[str, Any] | None = None  # an identify call's traits
    account: str | None = None  # a group call's groupId, or any call's context.groupId

    @property
    def profile_only(self) -> bool:
        """An ``identify`` or ``group`` call: it updates the profile, never the score."""
        return self.type in PROFILE_TYPES


def fingerprint(event: Event) -> bytes:
    """Return a short, stable identity of the event for duplicate detection.

    Eight bytes of BLAKE2b keep the per-customer duplicate set small; a collision
    needs about 2**32 events of one customer inside one window to be likely.
    """
    material = f"{event.customer_id}\x00{event.event_id}".encode()
    return hashlib.blake2b(material, digest_size=8).digest()
