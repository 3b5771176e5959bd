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
issue targets (<= 1.5x). The same replay with the ranking and due-index writes the worker
also makes (which are not exactly-once accounting) is reported next to it: the worker's
Redis CPU over that is what exactly-once itself costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from devtools.bench.dataset import customer_id
from devtools.bench.measure import cpu_seconds
from stream.adapters.redis_keys import customer_key

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


def _indexes(client: redis.Redis, prefix: str, partitions: int) -> dict[str, Any]:
    """Each stored customer's ranking score and (partition, due moment), by id."""
    rows: Any = client.zrange(f"{prefix}:rank", 0, -1, withscores=True)
    rank = {member.decode(): float(score) for member, score in rows}
    due: dict[str, tuple[int, float]] = {}
    for partition in range(partitions):
        rows = client.zrange(f"{prefix}:due:{partition}", 0, -1, withscores=True)
        for member, at in rows:
            due[member.decode()] = (partition, float(at))
    return {"rank": rank, "due": due}


def _replay(
    client: redis.Redis,
    redis_pid: int,
    batches: list[list[int]],
    states: dict[int, Any],
    target_prefix: str,
    indexes: dict[str, Any] | None,
) -> tuple[float, int]:
    """Write the batches; Redis CPU seconds spent and HSETs sent."""
    writes = 0
    before = cpu_seconds([redis_pid])
    for customers in batches:
        pipe = client.pipeline(transaction=False)
        ranks: dict[str, float] = {}
        due: dict[int, dict[str, float]] = {}
        for number in customers:
            fields = states.get(number)
            if not fields:
                continue
            name = customer_id(number)
            pipe.hset(customer_key(target_prefix, name), mapping=fields)
            writes += 1
            if indexes is not None:
                ranks[name] = indexes["rank"].get(name, 0.0)
                if name in indexes["due"]:
                    partition, at = indexes["due"][name]
                    due.setdefault(partition, {})[name] = at
        if ranks:
            pipe.zadd(f"{target_prefix}:rank", ranks)
        for partition, members in due.items():
            pipe.zadd(f"{target_prefix}:due:{partition}", members)
        pipe.execute()
    return cpu_seconds([redis_pid]) - before, writes


def hset_floor(
    client: redis.Redis,
    redis_pid: int,
    source_prefix: str,
    order: Sequence[int],
    events: int,
    *,
    batch: int = 2000,
    partitions: int = 8,
    target_prefix: str = "bench-floor",
) -> dict[str, Any]:
    """Replay ``events`` of the data set as plain HSETs (see the module doc); the result.

    Also measured, into a second prefix: the same HSETs plus the ranking and due-index
    writes the worker makes per batch (one multi-member ``ZADD`` each), i.e. the worker's
    Redis writes without exactly-once accounting.
    """
    batches = replay_batches(order, events, batch)
    states = _states(client, source_prefix, sorted({c for b in batches for c in b}))
    cpu, writes = _replay(client, redis_pid, batches, states, target_prefix, None)
    indexes = _indexes(client, source_prefix, partitions)
    with_indexes, _ = _replay(client, redis_pid, batches, states, f"{target_prefix}-ix", indexes)
    # Events of customers the worker had not stored (a capped run) were not replayed.
    replayed = sum(1 for number in order[:events] if number in states)
    return {
        "events": replayed,
        "hset_writes": writes,
        "customers": len(states),
        "batch": batch,
        "redis_cpu_seconds": round(cpu, 3),
        "us_per_event": round(cpu / replayed * 1e6, 2) if replayed else None,
        "with_indexes_us_per_event": round(with_indexes / replayed * 1e6, 2) if replayed else None,
    }
