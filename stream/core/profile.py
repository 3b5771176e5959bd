"""A customer's profile from Segment ``identify`` and ``group`` calls: traits and account.

Last write by event time wins, per trait and for the account: a call older than what is
stored changes only the traits it is the newest for (on equal times the later-applied call
wins). Every call is applied once (its fingerprint is committed with the profile), so a
replay changes nothing. Bounded: at most ``MAX_TRAITS`` traits (further new names are
dropped), names of at most ``MAX_TRAIT_NAME`` characters, values whose JSON is at most
``MAX_TRAIT_BYTES`` bytes (larger ones are dropped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.core.events import Event

__all__ = ["MAX_TRAITS", "MAX_TRAIT_BYTES", "MAX_TRAIT_NAME", "Profile", "apply_profile"]

MAX_TRAITS = 100
MAX_TRAIT_NAME = 128
MAX_TRAIT_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Profile:
    """Traits (name -> JSON value), each trait's event time, and the account with its time."""

    traits: Mapping[str, Any] = field(default_factory=dict)
    trait_ms: Mapping[str, int] = field(default_factory=dict)
    account: str | None = None
    account_ms: int = 0


def apply_profile(profile: Profile, events: Iterable[Event]) -> Profile:
    """The profile after ``events`` (any events: only traits and accounts matter)."""
    traits, trait_ms = dict(profile.traits), dict(profile.trait_ms)
    account, account_ms = profile.account, profile.account_ms
    for event in events:
        at = event.timestamp_ms
        if event.account is not None and (account is None or at >= account_ms):
            account, account_ms = event.account, at
        for name, value in (event.traits or {}).items():
            if not _fits(name, value) or (name not in traits and len(traits) >= MAX_TRAITS):
                continue
            if name not in traits or at >= trait_ms[name]:
                traits[name], trait_ms[name] = value, at
    return Profile(traits, trait_ms, account, account_ms)


def _fits(name: str, value: Any) -> bool:
    if len(name) > MAX_TRAIT_NAME:
        return False
    try:
        return len(orjson.dumps(value)) <= MAX_TRAIT_BYTES
    except TypeError:  # not serialisable (an integer beyond 64 bits): dropped
        return False
