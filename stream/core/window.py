"""Rolling windows as time buckets: add points, expire buckets, explain the total.

A customer's window is a mapping ``bucket index -> {factor: centipoints}``. A bucket
counts until its start plus the window length, so the window is exact at bucket
resolution (one day of a thirty-day window by default).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

from stream.core.model import ACTIVE, SESSION, ScoringModel, is_counter

__all__ = ["Buckets", "add", "breakdown", "expiry_moments", "next_expiry", "pop_expired"]

Buckets = dict[int, dict[str, int]]


def add(buckets: Buckets, bucket: int, contributions: Mapping[str, int]) -> None:
    """Add an event's contributions to one bucket, in place."""
    slot = buckets.setdefault(bucket, {})
    for key, value in contributions.items():
        slot[key] = slot.get(key, 0) + value


def expiry_moments(model: ScoringModel, buckets: Iterable[int], now_ms: int) -> list[int]:
    """Distinct expiry moments at or before ``now_ms``, oldest first."""
    return sorted({model.expiry_of(b) for b in buckets if model.expiry_of(b) <= now_ms})


def pop_expired(model: ScoringModel, buckets: Buckets, at_ms: int) -> None:
    """Remove, in place, every bucket that no longer counts at ``at_ms``."""
    for bucket in [b for b in buckets if model.expiry_of(b) <= at_ms]:
        del buckets[bucket]


def next_expiry(model: ScoringModel, buckets: Iterable[int]) -> int | None:
    """The next moment the window changes on its own, or None when it is empty."""
    return min((model.expiry_of(b) for b in buckets), default=None)


def breakdown(model: ScoringModel, buckets: Buckets) -> dict[str, int]:
    """Centipoints per factor over the buckets, including the derived factors.

    Regularity pays for every active bucket; a returning visit is a bucket with a
    session that follows at least ``returning.away_ms`` without activity.
    """
    totals: dict[str, int] = {}
    for slot in buckets.values():
        for key, value in slot.items():
            if not is_counter(key):
                totals[key] = totals.get(key, 0) + value
    active = sorted(b for b, slot in buckets.items() if slot.get(ACTIVE, 0) > 0)
    if active and model.regularity.points_cp_per_active_bucket:
        totals["regularity"] = len(active) * model.regularity.points_cp_per_active_bucket
    returns = _returning_visits(model, buckets, active)
    if returns and model.returning.points_cp:
        totals["returning_visits"] = returns * model.returning.points_cp
    return {k: v for k, v in totals.items() if v}


def _returning_visits(model: ScoringModel, buckets: Buckets, active: list[int]) -> int:
    gap = -(-model.returning.away_ms // model.bucket_ms)  # whole empty buckets needed
    return sum(
        1
        for earlier, later in itertools.pairwise(active)
        if later - earlier > gap and buckets[later].get(SESSION, 0) > 0
    )
