"""The worker's batch processor in process: CPU µs per event of Python and of Redis.

``python -m devtools.bench.inproc`` feeds the benchmark's data set (``devtools.bench.dataset``:
100,000 customers, events in time order, batches of 2,000 as ``ENGAGEMENT_BATCH_MAX``) to a
``BatchProcessor`` against a real ``redis-server`` (its own, started on a free loopback port,
or ``--redis-url``), with the garbage-collector tuning of the worker (``GcTuner``) and a
publisher that only counts. No Kafka and no Faust: what it measures is the worker's own
per-event work (decode, duplicate check, core, commit, outbox, indexes, metrics) and the
Redis server's CPU for it. The clock is fixed, so every run stores the same result
(``--digest`` prints a hash of every key the run wrote, to check that a change to the hot
path changed no result).

The first third of the batches warms the state cache and Redis; the rest is measured:
events per second (wall), this process's CPU µs per event (user + system), and Redis's CPU
µs per event (``INFO cpu``). ``--repeat`` runs the whole thing several times (a fresh
prefix and processor each time) and prints the median; ``ENGAGEMENT_KERNEL`` chooses the
per-event kernel as for the worker (``stream.core.kernel``); ``--profile`` adds a cProfile of
one measured pass (cProfile roughly doubles the time, so read it as proportions).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import io
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from devtools.bench import dataset
from devtools.localstack import LocalStack
from stream.adapters.redis_client import async_redis
from stream.adapters.redis_store import RedisScoreStore
from stream.config.model_file import load_model
from stream.config.security import RedisConnection
from stream.config.settings import TopicNames
from stream.core import kernel
from stream.ports import Incoming, OutMessage
from stream.worker.gctune import GcClock, GcTuner
from stream.worker.processor import BatchProcessor

__all__ = ["RunResult", "batches", "main", "run"]

_PARTITIONS = 8
_NOW_MS = 1_795_000_000_000  # a fixed clock: every run stores the same result
_PREFIX = "inproc"


@dataclass(frozen=True, slots=True)
class RunResult:
    """One measured pass over the data set."""

    events: int
    wall_s: float
    cpu_us: float  # this process, per event
    redis_cpu_us: float  # the Redis server, per event
    alerts: int
    gc_us: float  # of which in the cyclic garbage collector, per event
    digest: str | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    def line(self) -> str:
        text = (
            f"{self.events:>8,} events  {self.events_per_s:>8,.0f} events/s  "
            f"CPU {self.cpu_us:6.1f} µs/event  Redis CPU {self.redis_cpu_us:5.1f} µs/event  "
            f"GC {self.gc_us:4.1f} µs/event  alerts {self.alerts:,}"
        )
        return text + (f"  digest {self.digest}" if self.digest else "")


class _Counting:
    """A publisher that only counts what it is given."""

    def __init__(self) -> None:
        self.messages = 0

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        self.messages += len(messages)


def batches(customers: int, events: int, batch: int) -> list[list[Incoming]]:
    """The data set as consumed messages (8 partitions per topic), in batches."""
    topics = TopicNames()
    offsets: dict[tuple[str, int], int] = {}
    messages: list[Incoming] = []
    for record in dataset.records(customers, events, now_ms=_NOW_MS):
        topic = dataset.topic_of(topics, record.role)
        hashed = hashlib.blake2b(record.key, digest_size=2).digest()
        partition = int.from_bytes(hashed) % _PARTITIONS  # stable across processes
        offset = offsets[(topic, partition)] = offsets.get((topic, partition), -1) + 1
        messages.append(Incoming(topic, partition, offset, record.key, record.value,
                                 record.timestamp_ms))  # fmt: skip
    return [messages[i : i + batch] for i in range(0, len(messages), batch)]


def _redis_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _digest(client: redis.Redis, prefix: str) -> str:
    """A hash of every key of ``prefix`` and its value (order-independent reads)."""
    h = hashlib.blake2b(digest_size=12)
    for key in sorted(client.scan_iter(match=f"{prefix}*", count=5000)):
        kind = client.type(key)
        value: Any
        if kind == b"hash":
            value = sorted(client.hgetall(key).items())
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            value = sorted(client.smembers(key))
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        else:
            value = client.get(key) if kind == b"string" else None
        h.update(repr((key, kind, value)).encode())
    return h.hexdigest()


async def _pass(
    url: str, work: list[list[Incoming]], prefix: str, profile: cProfile.Profile | None
) -> tuple[int, float, float, int, float]:
    """Warm up on the first third, then process the rest: events, wall s, CPU s, alerts,
    GC s."""
    client = async_redis(RedisConnection(url), socket_timeout=None)
    store = RedisScoreStore(client, prefix)
    await store.clear()
    publisher = _Counting()
    processor = BatchProcessor(load_model("default"), store, publisher, TopicNames(),
                               clock_ms=lambda: _NOW_MS)  # fmt: skip
    tuner = GcTuner()
    warm = len(work) // 3
    try:
        gc.collect()
        gc.freeze()
        for batch in work[:warm]:
            await processor.process(batch)
            tuner.after_batch()
        events = sum(len(b) for b in work[warm:])
        clock = GcClock(time.process_time)
        clock.install()
        wall, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        for batch in work[warm:]:
            await processor.process(batch)
            tuner.after_batch()
        if profile is not None:
            profile.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        clock.uninstall()
        return events, wall, cpu, publisher.messages, clock.seconds
    finally:
        await client.aclose()
        gc.unfreeze()


def run(
    url: str,
    work: list[list[Incoming]],
    prefix: str = _PREFIX,
    profile: cProfile.Profile | None = None,
    digest: bool = False,
) -> RunResult:
    """One pass against the Redis at ``url`` (its keys of ``prefix`` are replaced)."""
    with redis.Redis.from_url(url) as sync:
        before = _redis_cpu_s(sync)
        events, wall_s, cpu_s, alerts, gc_s = asyncio.run(_pass(url, work, prefix, profile))
        redis_s = _redis_cpu_s(sync) - before
        hashed = _digest(sync, prefix) if digest else None
    per_event = 1e6 / events
    return RunResult(events, wall_s, cpu_s * per_event, redis_s * per_event, alerts,
                     gc_s * per_event, hashed)  # fmt: skip


def _print_profile(profile: cProfile.Profile, lines: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)
    print(out.getvalue())


def main(argv: Sequence[str] | None = None) -> list[RunResult]:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.bench.inproc",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="passes (the median is printed)")
    parser.add_argument(
        "--redis-url", default=None, help="a Redis to use (default: a redis-server of its own)"
    )
    parser.add_argument("--prefix", default=_PREFIX, help="key prefix (replaced each pass)")
    parser.add_argument("--profile", type=int, nargs="?", const=40, default=0, metavar="LINES",
                        help="cProfile one more pass; print the top LINES by own and "
                             "cumulative time")  # fmt: skip
    parser.add_argument(
        "--digest",
        action="store_true",
        help="hash every stored key after each pass (the result's identity)",
    )
    args = parser.parse_args(argv)
    loaded = kernel.use(os.environ.get("ENGAGEMENT_KERNEL", "auto"))
    print(f"per-event kernel: {loaded.name} (ENGAGEMENT_KERNEL; {loaded.reason})")
    work = batches(args.customers, args.events, args.batch)
    print(f"{args.events:,} events of {args.customers:,} customers, batches of {args.batch:,}; "
          f"measured after {len(work) // 3} warm-up batches")  # fmt: skip
    stack: LocalStack | None = None
    url = args.redis_url
    if url is None:
        stack = LocalStack(Path(tempfile.mkdtemp(prefix="inproc-")))
        stack.workdir.mkdir(parents=True, exist_ok=True)
        stack.start_redis()
        url = stack.redis_url
    results: list[RunResult] = []
    try:
        for _ in range(args.repeat):
            results.append(run(url, work, args.prefix, digest=args.digest))
            print(results[-1].line(), flush=True)
        if results:
            print(
                f"median: {statistics.median(r.events_per_s for r in results):,.0f} events/s, "
                f"CPU {statistics.median(r.cpu_us for r in results):.1f} µs/event, "
                f"Redis CPU {statistics.median(r.redis_cpu_us for r in results):.1f} µs/event"
            )
        if args.profile:
            profile = cProfile.Profile()
            print("profiled:", run(url, work, args.prefix, profile).line())
            _print_profile(profile, args.profile)
        with redis.Redis.from_url(url) as sync:
            for key in sync.scan_iter(match=f"{args.prefix}*", count=5000):
                sync.unlink(key)
    finally:
        if stack is not None:
            stack.stop_redis()
    return results


if __name__ == "__main__":
    main()
