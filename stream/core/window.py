"""Rolling windows as time buckets: add points, expire buckets, explain the total.

A customer's window is a mapping ``bucket index -> {factor: centipoints}``. A bucket
counts until its start plus the window length, so the window is exact at bucket
resolution (one day of a thirty-day window by default).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

from stream.core.model import ACTIVE, SESSION, ScoringModel, is_counter

__all__ = ["Buckets", "add", "expiry_moments", "next_expiry", "pop_expired", "totals"]

Buckets = dict[int, dict[str, int]]


def add(buckets: Buckets, bucket: int, contributions: Mapping[str, int]) -> None:
    """Add an event's contributions to one bucket, in place."""
    slot = buckets.setdefault(bucket, {})
    for key, value in contributions.items():
        slot[key] = slot.get(key, 0) + value


def expiry_moments(model: ScoringModel, buckets: Iterable[int], now_ms: int) -> list[int]:
    """Distinct expiry moments at or before ``now_ms``, oldest first."""
    return sorted({model.expiry_of(b) for b in buckets if model.expiry_of(b) <= now_ms})


def pop_expired(model: ScoringModel, buckets: Buckets, at_ms: int) -> int | None:
    """Remove, in place, every bucket that no longer counts at ``at_ms``.

    Returns the latest removed bucket that was active (None if none was): the memory
    that decides whether the oldest visit left in the window is a returning one.
    """
    latest: int | None = None
    for bucket in [b for b in buckets if model.expiry_of(b) <= at_ms]:
        if buckets.pop(bucket).get(ACTIVE, 0) > 0 and (latest is None or bucket > latest):
            latest = bucket
    return latest


def next_expiry(model: ScoringModel, buckets: Iterable[int]) -> int | None:
    """The next moment the window changes on its own, or None when it is empty."""
    return min((model.expiry_of(b) for b in buckets), default=None)


def totals(
    model: ScoringModel, buckets: Buckets, prior_active: int | None = None
) -> dict[str, int]:
    """Raw centipoints per factor over the buckets, including the derived factors.

    Regularity pays for every active bucket; a returning visit is a bucket with a
    session whose latest earlier active bucket lies more than ``returning.away_ms``
    (rounded up to whole buckets) before it. ``prior_active`` is the latest active bucket
    that has already left the window: it stands in for the activity before the window, so
    a visit's returning status does not change when that activity ages out.
    """
    out: dict[str, int] = {}
    for slot in buckets.values():
        for key, value in slot.items():
            if not is_counter(key):
                out[key] = out.get(key, 0) + value
    regularity, returning = model.regularity, model.returning
    if regularity is None and returning is None:
        return {k: v for k, v in out.items() if v}
    active = sorted(b for b, slot in buckets.items() if slot.get(ACTIVE, 0) > 0)
    if active and regularity is not None and regularity.points_cp_per_active_bucket:
        out["regularity"] = len(active) * regularity.points_cp_per_active_bucket
    if returning is not None and returning.points_cp:
        returns = _returning_visits(model, returning.away_ms, buckets, active, prior_active)
        if returns:
            out["returning_visits"] = returns * returning.points_cp
    return {k: v for k, v in out.items() if v}


def _returning_visits(
    model: ScoringModel, away_ms: int, buckets: Buckets, active: list[int], prior: int | None
) -> int:
    gap = -(-away_ms // model.bucket_ms)  # whole empty buckets needed
    chain = active if prior is None else [prior, *active]
    return sum(
        1
        for earlier, later in itertools.pairwise(chain)
        if later - earlier > gap and buckets[later].get(SESSION, 0) > 0
    )
