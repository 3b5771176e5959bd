"""Redis memory per active customer, as the worker stored them with the default model.

Per sampled customer: ``MEMORY USAGE`` (all nested values counted) of the customer hash
(its packed duplicate-check field ``dedup`` included, reported apart), plus an equal
share of the ranking and due indexes.
A least-squares line of bytes against the fingerprints kept (in a bench run: the events
applied, all inside the worker's fingerprint horizon) tells the fixed and the per-event
cost, so the result can be read for lighter and heavier customers than the sample's.
"""

from __future__ import annotations

from typing import Any

import redis

from stream.adapters.redis_fields import decode_applied

__all__ = ["memory_per_customer"]


def memory_per_customer(
    client: redis.Redis, prefix: str, partitions: int, sample: int = 2000
) -> dict[str, Any]:
    """Average bytes per stored customer and how it grows with events applied."""
    rank = f"{prefix}:rank"
    customers = int(client.zcard(rank))
    if not customers:
        return {"customers": 0}
    chosen: list[bytes] = client.zrandmember(rank, sample) or []  # type: ignore[assignment]
    pipe = client.pipeline(transaction=False)
    for member in chosen:  # distinct members, at most ``sample``
        base = f"{prefix}:{{{member.decode()}}}"
        pipe.memory_usage(base, samples=0)
        pipe.hget(base, "dedup")
    replies = pipe.execute()
    per_key = [  # (hash bytes without the dedup field, dedup field bytes, events in it)
        (int(replies[i] or 0) - len(replies[i + 1] or b""), len(replies[i + 1] or b""),
         len(decode_applied(replies[i + 1]).marks) // 12)
        for i in range(0, len(replies), 2)
    ]  # fmt: skip
    index_bytes = int(client.memory_usage(rank, samples=0) or 0)
    for partition in range(partitions):
        index_bytes += int(client.memory_usage(f"{prefix}:due:{partition}", samples=0) or 0)
    hash_avg = sum(h for h, _, _ in per_key) / len(per_key)
    dedup_avg = sum(s for _, s, _ in per_key) / len(per_key)
    events_avg = sum(e for _, _, e in per_key) / len(per_key)
    index_share = index_bytes / customers
    intercept, slope = _fit([(e, h + s) for h, s, e in per_key])
    return {
        "customers": customers,
        "sampled": len(per_key),
        "events_per_customer": round(events_avg, 2),
        "hash_bytes": round(hash_avg, 1),
        "dedup_bytes": round(dedup_avg, 1),
        "index_share_bytes": round(index_share, 1),
        "bytes_per_customer": round(hash_avg + dedup_avg + index_share, 1),
        "fit_fixed_bytes": round(intercept + index_share, 1),
        "fit_bytes_per_event": round(slope, 1),
        "estimate_bytes_at_30_events": round(intercept + index_share + 30 * slope, 1),
        "estimate_bytes_at_300_events": round(intercept + index_share + 300 * slope, 1),
    }


def _fit(points: list[tuple[int, int]]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of y on x; slope 0 when x does not vary."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if not var:
        return mean_y, 0.0
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / var
    return mean_y - slope * mean_x, slope
