"""prometheus-client internals (pinned ``prometheus-client==0.26.0``).

Relies on an unlabelled ``Histogram`` keeping ``_upper_bounds`` (its bucket bounds, ``+Inf``
last), ``_buckets`` (one counter per bound, not cumulative) and ``_sum`` (a counter).

Why: the worker observes one latency per event, thousands per batch; ``observe`` takes a
lock and updates two values per amount. The public interface has no way to add many
observations at once, so ``observe_all`` adds a batch's counts with one update per bucket
touched. ``tests/unit/test_upstream_prometheus.py`` compares it with ``observe``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import Histogram

__all__ = ["observe_all"]


def observe_all(histogram: Histogram, amounts: Iterable[float]) -> None:
    """``histogram.observe(a)`` for each amount (a histogram without labels; no exemplars),
    with one update per bucket touched instead of two locked updates per amount: a batch's
    thousands of observations cost a few. The counts are the same; the sum is added once
    (its float rounding may differ in the last bit)."""
    bounds: list[float] = histogram._upper_bounds
    counts = [0] * len(bounds)
    total = 0.0
    for amount in amounts:
        counts[bisect_left(bounds, amount)] += 1
        total += amount
    if not any(counts):
        return
    histogram._sum.inc(total)
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)
