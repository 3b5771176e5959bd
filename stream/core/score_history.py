"""Score history: one point per bucket, bounded, with model-version markers, and the trend.

A point ``(bucket_start_ms, score_cp)`` is the score at the end of that bucket as the customer was
last evaluated in it. Every moment the core observes (a batch of events dated by its latest
event, a bucket leaving the window, a new day of tenure, the end of onboarding) writes the
score to the point of the moment's bucket, or to the latest point when the moment lies in an
earlier bucket (a late event): points never move back in time, so the history is a step
function of time and a bucket without a point kept the score of the point before it.
Only the latest ``limit`` points are kept.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stream.core import window

__all__ = [
    "DEFAULT_POINTS",
    "MAX_MARKERS",
    "History",
    "Marker",
    "Point",
    "Trend",
    "factor_changes",
    "mark",
    "record",
    "record_into",
    "trend",
    "value_at",
]

DEFAULT_POINTS = 120
MAX_MARKERS = 16

Point = tuple[int, int]  # (start of the bucket in ms, score in centipoints)
Marker = tuple[int, str]  # (moment in ms, model version now in force)
History = tuple[Point, ...]


def record(history: History, bucket: int, score_cp: int, limit: int) -> History:
    """The history with the score observed in the bucket starting at ``bucket`` (ms; see the
    module's rule)."""
    points = list(history)
    record_into(points, bucket, score_cp, limit)
    return tuple(points)


def record_into(points: list[Point], bucket: int, score_cp: int, limit: int) -> None:
    """``record`` in place, on a list of points."""
    if points:
        last_bucket, last_score = points[-1]
        if bucket <= last_bucket:
            if last_score != score_cp:
                points[-1] = (last_bucket, score_cp)
            return
    points.append((bucket, score_cp))
    if len(points) > limit:
        del points[: len(points) - limit]


def value_at(history: Sequence[Point], bucket: int) -> int | None:
    """The score at the end of the bucket starting at ``bucket`` (ms): the latest point at
    or before it, or None."""
    index = bisect_right(history, (bucket, 2**62))
    return history[index - 1][1] if index else None


def mark(markers: tuple[Marker, ...], at_ms: int, version: str) -> tuple[Marker, ...]:
    """Markers with a model-version change at ``at_ms`` added (the latest ``MAX_MARKERS``)."""
    return (*markers, (at_ms, version))[-MAX_MARKERS:]


@dataclass(frozen=True, slots=True)
class Trend:
    """Score change over 7 and 30 days (None: no point that old) and the factor whose
    points over the last 7 days changed most against the 7 days before."""

    change_7d_cp: int | None
    change_30d_cp: int | None
    top_factor: str | None
    top_factor_change_cp: int


def trend(
    history: History, buckets: window.Buckets, bucket_ms: int, now_ms: int, day_ms: int
) -> Trend:
    """The trend at ``now_ms`` from a history and the window's buckets."""
    now_bucket = now_ms // bucket_ms
    current = value_at(history, now_bucket * bucket_ms)

    def change(days: int) -> int | None:
        before = value_at(history, (now_ms - days * day_ms) // bucket_ms * bucket_ms)
        return None if before is None or current is None else current - before

    top, top_change = None, 0
    for factor, value in sorted(factor_changes(buckets, bucket_ms, now_ms, day_ms).items()):
        if abs(value) > abs(top_change):
            top, top_change = factor, value
    return Trend(change(7), change(30), top, top_change)


def factor_changes(
    buckets: window.Buckets, bucket_ms: int, now_ms: int, day_ms: int
) -> dict[str, int]:
    """Per factor, its raw points (centipoints) over the last 7 days minus those of the 7
    days before, from the window's buckets (factors without points in either week left out;
    a factor with equal points in both weeks is 0)."""
    now_bucket = now_ms // bucket_ms
    week = max(1, (7 * day_ms) // bucket_ms)
    recent: dict[str, int] = {}
    for bucket, slot in buckets.items():
        age = now_bucket - bucket
        if 0 <= age < 2 * week:
            _add(recent, slot, 1 if age < week else -1)
    return recent


def _add(into: dict[str, int], slot: Mapping[str, int], sign: int) -> None:
    for key, value in slot.items():
        if not key.startswith("_"):
            into[key] = into.get(key, 0) + sign * value
