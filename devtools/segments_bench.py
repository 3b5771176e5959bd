"""Cost of the segment rollups: the batch processor against a real redis-server, with the
default model and with the same model plus segment dimensions (plan, country, channel).

    .venv/bin/python devtools/segments_bench.py [--customers 5000] [--events 100000]
        [--batch 500] [--rounds 3]

Starts its own redis-server (Debian's, on a free loopback port, no persistence). Per round
and variant (alternating which goes first): a fresh key prefix, one identify call per
customer (three traits), then ``--events`` page views in batches of ``--batch`` messages
over 8 partitions, processed in process by ``BatchProcessor`` (the worker's code, no
Kafka: the publisher only records; the heap frozen after each batch as the worker does).
Prints, per variant, the median over rounds of worker CPU (this process) and Redis CPU (the
server's ``used_cpu_user + used_cpu_sys``) per event, and the difference; and the memory of
the segment keys per customer (``MEMORY USAGE``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import random
import statistics
import subprocess
import tempfile
import time
import zlib
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio

from devtools.localstack.stack import free_port
from devtools.localstack.tools import ensure_program
from stream.adapters.redis_store import RedisScoreStore
from stream.config.model_file import load_model
from stream.config.settings import TopicNames
from stream.core.model import ScoringModel
from stream.core.segments import SegmentSettings
from stream.ports import Incoming, OutMessage
from stream.worker.gctune import GcTuner
from stream.worker.processor import BatchProcessor

PARTITIONS = 8
TOPICS = TopicNames()


class _Publisher:
    async def publish(self, messages: Sequence[OutMessage]) -> None:
        return None


def _messages(customers: int, events: int, seed: int) -> list[Incoming]:
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    out: list[Incoming] = []
    offset = 0

    def add(customer: str, doc: dict[str, Any]) -> None:
        nonlocal offset
        offset += 1
        out.append(Incoming(TOPICS.clickstream, zlib.crc32(customer.encode()) % PARTITIONS, offset,
                            customer.encode(), orjson.dumps(doc), now))  # fmt: skip

    for i in range(customers):
        traits = {"plan": rng.choice(["free", "pro", "team", "enterprise"]),
                  "country": rng.choice(["DE", "FR", "ES", "IT", "US", "GB", "NL", "PL"]),
                  "channel": rng.choice(["web", "ios", "android", "partner"])}  # fmt: skip
        add(f"c{i}", {"type": "identify", "userId": f"c{i}", "messageId": f"i{i}",
                      "timestamp": now - 60_000, "traits": traits})  # fmt: skip
    for n in range(events):
        c = f"c{rng.randrange(customers)}"
        add(c, {"customer_id": c, "type": "page_view", "timestamp": now - rng.randrange(86_400_000),
                "event_id": f"e{n}"})  # fmt: skip
    return out


async def _run(client: Any, model: ScoringModel, prefix: str, batches: list[list[Incoming]],
               events: int) -> tuple[float, float]:  # fmt: skip
    store = RedisScoreStore(client, prefix)
    await store.clear()
    processor = BatchProcessor(model, store, _Publisher(), TOPICS)
    redis_before = await _redis_cpu(client)
    cpu_before = time.process_time()
    tuner = GcTuner()  # as the worker: freeze the heap after each batch
    for batch in batches:
        await processor.process(batch)
        tuner.after_batch()
    worker_us = (time.process_time() - cpu_before) * 1e6 / events
    redis_us = (await _redis_cpu(client) - redis_before) * 1e6 / events
    if model.segments is not None:
        rollups = store.segments
        keys = [rollups.values_key, rollups.partitions_key]
        for p in await rollups.partitions():
            keys += [rollups.members_key(p), rollups.counts_key(p)]
        used = sum([int(await client.memory_usage(k) or 0) for k in keys])
        print(
            f"  segment keys: {used / max(1, len(await rollups.memberships())):.0f} B per customer"
        )
    await store.clear()
    gc.unfreeze()
    gc.collect()
    return worker_us, redis_us


async def _redis_cpu(client: Any) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def _bench(args: argparse.Namespace, port: int) -> None:
    client = redis.asyncio.Redis(port=port)
    plain = load_model("default")
    with_segments = dataclasses.replace(
        plain, segments=SegmentSettings(("plan", "country", "channel"), 50)
    )
    messages = _messages(args.customers, args.events, seed=1)
    batches = [messages[i : i + args.batch] for i in range(0, len(messages), args.batch)]
    total = len(messages)
    results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for round_ in range(args.rounds):
        variants = [("off", plain), ("on", with_segments)]
        for name, model in variants if round_ % 2 == 0 else variants[::-1]:  # no order bias
            results[name].append(await _run(client, model, f"bench-seg-{name}-{round_}",
                                            batches, total))  # fmt: skip
    await client.aclose()
    medians = {name: (statistics.median(w for w, _ in runs), statistics.median(r for _, r in runs))
               for name, runs in results.items()}  # fmt: skip
    print(
        f"{total} messages ({args.customers} identify calls, {args.events} page views), "
        f"batches of {args.batch}, {PARTITIONS} partitions, {args.rounds} rounds (medians)"
    )
    for name, (worker, server) in medians.items():
        print(f"segments {name:<3}: worker {worker:6.1f}, Redis {server:5.1f} CPU µs/event")
    (w_off, r_off), (w_on, r_on) = medians["off"], medians["on"]
    print(f"extra       : worker {w_on - w_off:+6.1f}, Redis {r_on - r_off:+5.1f} CPU µs/event")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [ensure_program("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", folder,
             "--hash-max-listpack-value", "1024"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_for(port)
            asyncio.run(_bench(args, port))
        finally:
            server.terminate()
            server.wait(10)


def _wait_for(port: int) -> None:
    import redis as sync_redis  # noqa: PLC0415

    deadline = time.monotonic() + 20
    while True:
        try:
            if sync_redis.Redis(port=port).ping():
                return
        except sync_redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    main()
