"""The Redis floor of issue 12: what Redis's CPU per event would be if the worker wrote the
same customers' states with plain pipelined ``HSET`` and no exactly-once accounting.

After the worker's run, every customer hash the worker stored is read back without its
exactly-once fields (``ver``, the duplicate-check field, ``outbox``), then the data set's
events are replayed in their produced order, ``batch`` events at a time (the worker's
``ENGAGEMENT_BATCH_MAX``): one ``HSET`` of the customer's stored fields per distinct
customer in each batch, as the worker commits once per customer per batch, one pipeline
per batch, into a separate prefix. Redis's CPU (user + system of the redis-server
process, the method every contender row uses) over the replay, divided by the events
replayed, is the floor; the worker's Redis CPU per event over the floor is the ratio the
issue targets (<= 1.5x).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from devtools.bench.dataset import customer_id
from devtools.bench.measure import cpu_seconds
from stream.adapters.redis_store import customer_key

__all__ = ["EXACTLY_ONCE_FIELDS", "hset_floor", "replay_batches"]

EXACTLY_ONCE_FIELDS = frozenset({b"ver", b"dedup", b"seen", b"outbox"})


def replay_batches(order: Sequence[int], events: int, batch: int) -> list[list[int]]:
    """The distinct customers of each batch of ``batch`` events, over the first ``events``."""
    out = []
    for start in range(0, min(events, len(order)), batch):
        out.append(list(dict.fromkeys(order[start : min(start + batch, events)])))
    return out


def _states(client: redis.Redis, prefix: str, customers: Sequence[int]) -> dict[int, Any]:
    states: dict[int, Any] = {}
    for start in range(0, len(customers), 2000):
        chunk = customers[start : start + 2000]
        pipe = client.pipeline(transaction=False)
        for number in chunk:
            pipe.hgetall(customer_key(prefix, customer_id(number)))
        for number, fields in zip(chunk, pipe.execute(), strict=True):
            kept = {k: v for k, v in fields.items() if k not in EXACTLY_ONCE_FIELDS and v}
            if kept:
                states[number] = kept
    return states


def hset_floor(
    client: redis.Redis,
    redis_pid: int,
    source_prefix: str,
    order: Sequence[int],
    events: int,
    *,
    batch: int = 2000,
    target_prefix: str = "bench-floor",
) -> dict[str, Any]:
    """Replay ``events`` of the data set as plain HSETs (see the module doc); the result."""
    batches = replay_batches(order, events, batch)
    states = _states(client, source_prefix, sorted({c for b in batches for c in b}))
    writes = 0
    before = cpu_seconds([redis_pid])
    for customers in batches:
        pipe = client.pipeline(transaction=False)
        for number in customers:
            fields = states.get(number)
            if fields:
                pipe.hset(customer_key(target_prefix, customer_id(number)), mapping=fields)
                writes += 1
        pipe.execute()
    cpu = cpu_seconds([redis_pid]) - before
    # Events of customers the worker had not stored (a capped run) were not replayed.
    replayed = sum(1 for number in order[:events] if number in states)
    return {
        "events": replayed,
        "hset_writes": writes,
        "customers": len(states),
        "batch": batch,
        "redis_cpu_seconds": round(cpu, 3),
        "us_per_event": round(cpu / replayed * 1e6, 2) if replayed else None,
    }
