"""``python -m devtools.accountbench REDIS_URL``: the cost of account roll-ups per message.

The batch processor in process against a real Redis (a publisher that only counts stands in
for Kafka), the same messages with the default model and with the default model plus an
``accounts`` section (mean; 2,000 customers in 200 accounts; 40,000 events in batches of
500 after every customer's ``group`` call). Runs alternate; prints the medians as JSON:
wall time and the worker's CPU time per message. Uses throw-away key prefixes
(``accountbench-*``) and deletes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence

import orjson

from stream.adapters.redis_client import async_redis
from stream.adapters.redis_store import RedisScoreStore
from stream.config.model_file import load_model
from stream.config.security import RedisConnection
from stream.config.settings import TopicNames
from stream.core.account_settings import AccountSettings
from stream.ports import Incoming, OutMessage
from stream.worker.processor import BatchProcessor

__all__ = ["run"]

CUSTOMERS, EVENTS, BATCH, ROUNDS = 2000, 40_000, 500, 5
NOW_MS = 1_795_000_000_000
TOPICS = TopicNames()


class _Counting:
    """A publisher that acknowledges at once and counts."""

    def __init__(self) -> None:
        self.sent = 0

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        self.sent += len(messages)


def _batches(seed: int) -> list[list[Incoming]]:
    rng, offsets = random.Random(seed), itertools.count()
    docs: list[tuple[int, dict[str, object]]] = []
    for c in range(CUSTOMERS):
        docs.append((c, {"type": "group", "userId": f"c{c}", "groupId": f"a{c // 10}",
                         "messageId": f"g{c}", "timestamp": NOW_MS - 10_000}))  # fmt: skip
    for n in range(EVENTS):
        c = rng.randrange(CUSTOMERS)
        docs.append((c, {"event_id": f"e{n}", "customer_id": f"c{c}",
                         "type": rng.choice(["page_view", "click", "conversion"]),
                         "timestamp": NOW_MS - rng.randrange(5_000_000)}))  # fmt: skip
    messages = [Incoming(TOPICS.clickstream, c % 4, next(offsets), f"c{c}".encode(),
                         orjson.dumps(doc), NOW_MS) for c, doc in docs]  # fmt: skip
    return [messages[i : i + BATCH] for i in range(0, len(messages), BATCH)]


async def _once(redis_url: str, accounts: bool, prefix: str) -> tuple[float, float]:
    model = load_model("default")
    if accounts:
        model = dataclasses.replace(model, accounts=AccountSettings())
    client = async_redis(RedisConnection(redis_url))
    store = RedisScoreStore(client, prefix)
    try:
        await store.clear()
        worker = BatchProcessor(model, store, _Counting(), TOPICS, clock_ms=lambda: NOW_MS)
        work = _batches(1)
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in work:
            await worker.process(batch)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        await store.clear()
    finally:
        await client.aclose()
    count = CUSTOMERS + EVENTS
    return wall * 1e6 / count, cpu * 1e6 / count


async def run(redis_url: str) -> dict[str, dict[str, float]]:
    """Median µs per message, wall and CPU, without and with accounts."""
    got: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for round_no in range(ROUNDS):
        for accounts in (False, True):
            got[accounts].append(await _once(redis_url, accounts, f"accountbench-{round_no}"))
    return {
        ("with_accounts" if accounts else "without_accounts"): {
            "wall_us_per_message": round(statistics.median(w for w, _ in rows), 1),
            "cpu_us_per_message": round(statistics.median(c for _, c in rows), 1),
        }
        for accounts, rows in got.items()
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1])), indent=2))
