"""Redis CPU per event, one server against a Redis Cluster of three masters.

``python -m devtools.bench.cluster_probe`` starts a plain ``redis-server`` and a local
cluster of three masters (no Kafka), and feeds the worker's batch processor the
benchmark's data set in batches of ``ENGAGEMENT_BATCH_MAX`` (2,000) against each in turn,
in process: the same decode, core, commit script, outbox and index writes as the worker,
without the consumer. It prints, per Redis set-up, the events per second of this process,
its CPU µs per event, and the Redis servers' CPU µs per event (user + system of every
redis-server process, summed over the masters), and where the Redis time went: the
servers' own per-command time (``INFO commandstats``, ``usec``) per event, by command.
Then the cost of the one key every event touches on a single master, the global ranking
``es:rank``: Redis CPU µs per member of a 2,000-member ``ZADD`` (new scores, random
customers) into a ranking of 100,000 and of 1,000,000 customers.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from devtools.bench import dataset
from devtools.bench.measure import cpu_seconds
from devtools.localstack import LocalStack
from stream.adapters.redis_client import async_redis
from stream.adapters.redis_store import RedisScoreStore
from stream.config.model_file import load_model
from stream.config.settings import Settings, TopicNames
from stream.ports import Incoming, OutMessage
from stream.worker.processor import BatchProcessor

__all__ = ["ProbeResult", "main", "probe"]

_PARTITIONS = 8


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One run of the data set against one Redis set-up."""

    setup: str
    events: int
    seconds: float
    process_cpu_us: float  # this process (decode, core, client) per event
    redis_cpu_us: float  # every redis-server of the set-up, per event
    command_us: dict[str, float]  # server time per event, by command (all nodes)

    def line(self) -> str:
        return (
            f"{self.setup:<22} {self.events:>8,} {self.events / self.seconds:>10,.0f} "
            f"{self.process_cpu_us:>12.1f} {self.redis_cpu_us:>12.1f}   "
            + ", ".join(f"{k} {v:.1f}" for k, v in self.command_us.items() if v >= 0.05)
        )


class _Discard:
    async def publish(self, messages: Sequence[OutMessage]) -> None:
        return None


def _batches(customers: int, events: int, batch: int) -> list[list[Incoming]]:
    topics = TopicNames()
    offsets: dict[tuple[str, int], int] = {}
    out: list[list[Incoming]] = [[]]
    now = int(time.time() * 1000)
    for record in dataset.records(customers, events, now_ms=now):
        topic = dataset.topic_of(topics, record.role)
        partition = hash(record.key) % _PARTITIONS
        offset = offsets[(topic, partition)] = offsets.get((topic, partition), -1) + 1
        if len(out[-1]) >= batch:
            out.append([])
        out[-1].append(Incoming(topic, partition, offset, record.key, record.value,
                                record.timestamp_ms))  # fmt: skip
    return out


async def _run(settings: Settings, batches: list[list[Incoming]]) -> None:
    client = async_redis(settings.redis, socket_timeout=None)
    store = RedisScoreStore(client, settings.redis_prefix)
    processor = BatchProcessor(load_model("default"), store, _Discard(), settings.topics)
    try:
        for batch in batches:
            await processor.process(batch)
    finally:
        await client.aclose()


def probe(stack: LocalStack, setup: str, batches: list[list[Incoming]]) -> ProbeResult:
    """Process ``batches`` against the stack's Redis; CPU of this process and of Redis."""
    settings = Settings.from_env({**stack.env(), "ENGAGEMENT_REDIS_PREFIX": f"probe-{setup}"})
    pids = [proc.pid for proc in stack.processes.values()]
    ports = list(stack.redis_nodes.values())
    _reset_stats(ports)
    redis0, own0, began = cpu_seconds(pids), time.process_time(), time.monotonic()
    asyncio.run(_run(settings, batches))
    seconds = time.monotonic() - began
    events = sum(len(b) for b in batches)
    redis_cpu, own_cpu = cpu_seconds(pids) - redis0, time.process_time() - own0
    commands = {
        k: v / events for k, v in sorted(_command_usec(ports).items(), key=lambda kv: -kv[1])
    }
    return ProbeResult(setup, events, seconds, own_cpu / events * 1e6, redis_cpu / events * 1e6,
                       commands)  # fmt: skip


def _reset_stats(ports: list[int]) -> None:
    for port in ports:
        with redis.Redis(host="127.0.0.1", port=port) as node:
            node.config_resetstat()


def _command_usec(ports: list[int]) -> dict[str, float]:
    """Server time (µs) per command name, summed over the nodes."""
    total: dict[str, float] = {}
    for port in ports:
        with redis.Redis(host="127.0.0.1", port=port) as node:
            for name, stats in node.info("commandstats").items():
                command = name.removeprefix("cmdstat_")
                total[command] = total.get(command, 0.0) + float(stats["usec"])
    return total


def rank_zadd_cost(stack: LocalStack, size: int, batches: int = 100) -> float:
    """Redis CPU µs per member of ``ZADD`` into a ranking of ``size`` customers."""
    rng = random.Random(size)
    names = [dataset.customer_id(i) for i in range(size)]
    pid = stack.processes["redis"].pid
    with redis.Redis(host="127.0.0.1", port=stack.redis_port) as client:
        client.delete("probe:rank")
        pipe = client.pipeline(transaction=False)
        for start in range(0, size, 5000):
            pipe.zadd("probe:rank", {n: rng.uniform(-50, 100) for n in names[start : start + 5000]})
        pipe.execute()
        updates = [{n: rng.uniform(-50, 100) for n in rng.sample(names, 2000)}
                   for _ in range(batches)]  # fmt: skip
        before = cpu_seconds([pid])
        for update in updates:
            client.zadd("probe:rank", update)
        spent = cpu_seconds([pid]) - before
        client.delete("probe:rank")
    return spent / (batches * 2000) * 1e6


def main(argv: Sequence[str] | None = None) -> list[ProbeResult]:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.cluster_probe")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rank-sizes", type=lambda v: [int(n) for n in v.split(",")],
                        default=[100_000, 1_000_000], help="ranking sizes (ZADD cost)")  # fmt: skip
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args(argv)
    batches = _batches(args.customers, args.events, args.batch)
    work = args.dir or Path(tempfile.mkdtemp(prefix="cluster-probe-"))
    results: list[ProbeResult] = []
    setups: list[tuple[str, dict[str, Any]]] = [
        ("one server", {}),
        ("cluster, 3 masters", {"redis_cluster": 3}),
    ]
    ranks: dict[int, float] = {}
    for setup, options in setups:
        stack = LocalStack(work / setup.split(",")[0].replace(" ", "-"), **options)
        stack.workdir.mkdir(parents=True, exist_ok=True)
        try:
            stack.start_redis()
            results.append(probe(stack, setup, batches))
            if not stack.redis_cluster:
                ranks = {size: rank_zadd_cost(stack, size) for size in args.rank_sizes}
        finally:
            stack.stop_redis()
    print(f"{args.events:,} events of {args.customers:,} customers, batches of {args.batch:,}")
    print(f"{'setup':<22} {'events':>8} {'events/s':>10} {'proc CPU µs':>12} {'Redis CPU µs':>12}"
          "   Redis command time, µs per event")  # fmt: skip
    for result in results:
        print(result.line())
    for size, cost in ranks.items():
        print(f"ZADD into a ranking of {size:,} customers: {cost:.1f} Redis CPU µs per member")
    return results


if __name__ == "__main__":
    main()
