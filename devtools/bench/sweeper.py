"""The window sweeper's cost against the customers stored: synthetic customers in the
store's exact format (``state_fields``), most of them with a window that changes weeks
from now and a chosen number due now; the worker's own ``BatchProcessor.sweep`` is
timed over every partition with the real Redis and a real Kafka publisher.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from stream.adapters.kafka_publisher import KafkaPublisher
from stream.adapters.metrics import Metrics
from stream.adapters.redis_fields import state_fields
from stream.adapters.redis_store import RedisScoreStore
from stream.config.model_file import load_model
from stream.config.settings import TopicNames
from stream.core import window
from stream.core.alerts import AlertGate
from stream.core.customer import CustomerState, breakdown_of
from stream.core.model import ScoringModel
from stream.worker.processor import BatchProcessor

__all__ = ["fill", "time_sweeps"]

_CHUNK = 20_000
_DAY_MS = 86_400_000


def _state(model: ScoringModel, now_ms: int, due: bool) -> tuple[CustomerState, dict[str, int]]:
    """A customer active five days ago; a due one also has a bucket that just left the window."""
    live = model.bucket_of(now_ms - 5 * _DAY_MS)
    buckets = {live: {"page_views": 300, "clicks": 100, "_active": 1, "_session": 1}}
    if due:
        buckets[model.bucket_of(now_ms - model.window_ms - _DAY_MS)] = {
            "page_views": 700,
            "_active": 1,
        }
    state = CustomerState(
        buckets, 0, None, AlertGate(), now_ms, first_seen_ms=min(buckets) * model.bucket_ms
    )
    breakdown = breakdown_of(model, state)
    state.score_cp = sum(breakdown.values())
    state.band = model.bands.band_for(state.score_cp / 100)
    return state, breakdown


# Writes customers s-<first>..s-<first+count-1> server-side from one template (fast fill).
_FILL = """
local prefix, first, count, parts = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local due_at, score = ARGV[5], ARGV[6]
local template = {}
for i = 7, #ARGV do template[#template + 1] = ARGV[i] end
for i = first, first + count - 1 do
  local name = 's-' .. i
  local partition = tostring(i % parts)
  redis.call('HSET', prefix .. ':{' .. name .. '}', unpack(template))
  redis.call('ZADD', prefix .. ':due:' .. partition, due_at, name)
  redis.call('ZADD', prefix .. ':rank', score, name)
end
return count
"""


def fill(
    client: redis.Redis,
    prefix: str,
    count: int,
    *,
    due: bool,
    now_ms: int,
    partitions: int,
    model: ScoringModel,
) -> None:
    """Write customers ``s-0`` .. ``s-<count-1>`` (hash, ranking, due index) as the
    worker would; customer ``s-<i>`` belongs to partition ``i % partitions``."""
    state, breakdown = _state(model, now_ms, due)
    fields = {**state_fields(state, breakdown, model.version, 0, model.bucket_ms), "ver": "1"}
    template = [item for pair in fields.items() for item in pair]
    next_due = window.next_expiry(model, state.buckets) or now_ms
    script = client.register_script(_FILL)
    for first in range(0, count, _CHUNK):
        size = min(_CHUNK, count - first)
        script(args=[prefix, first, size, partitions, next_due, state.score_cp / 100, *template])


def time_sweeps(
    redis_url: str,
    bootstrap: str,
    alerts_topic: str,
    scenarios: Sequence[tuple[str, str, int]],
    *,
    partitions: int,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Time a full sweep per scenario (name, prefix, stored customers already written);
    before each sweep the first ``due`` customers are made due again."""
    return asyncio.run(
        _time_all(redis_url, bootstrap, alerts_topic, scenarios, partitions, repeats)
    )


async def _time_all(
    redis_url: str,
    bootstrap: str,
    alerts_topic: str,
    scenarios: Sequence[tuple[str, str, int]],
    partitions: int,
    repeats: int,
) -> list[dict[str, Any]]:
    model = load_model("default")
    sync = redis.Redis.from_url(redis_url)
    client = AsyncRedis.from_url(redis_url)
    publisher = KafkaPublisher(bootstrap)
    await publisher.start()
    results = []
    try:
        for name, prefix, due in scenarios:
            store = RedisScoreStore(client, prefix)
            processor = BatchProcessor(model, store, publisher, TopicNames(alerts=alerts_topic),
                                       Metrics())  # fmt: skip
            times = []
            for _ in range(repeats):
                now_ms = int(time.time() * 1000)
                fill(sync, prefix, due, due=True, now_ms=now_ms, partitions=partitions,
                     model=model)  # fmt: skip
                began = time.perf_counter()
                report = await processor.sweep(range(partitions))
                times.append(time.perf_counter() - began)
                if report.alerts:
                    raise RuntimeError("synthetic sweep customers must not alert")
            stored = int(sync.zcard(f"{prefix}:rank"))
            results.append({
                "scenario": name, "stored": stored, "due": due,
                "sweep_ms_median": round(statistics.median(times) * 1000, 1),
                "sweep_ms_all": [round(t * 1000, 1) for t in times],
                "us_per_due_customer": round(statistics.median(times) / due * 1e6, 1),
            })  # fmt: skip
    finally:
        await publisher.stop()
        await client.aclose()
        sync.close()
    return results
