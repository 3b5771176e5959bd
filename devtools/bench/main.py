"""``make bench``: start the local stack, produce the data set once, measure every
contender on it in its own process and consumer group, then latency at half the
worker's maximum, Redis memory per customer, the sweeper's cost at 1M stored customers
and two workers in one group; print one table and write the results as JSON."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from devtools.bench import dataset, report, runners
from devtools.bench.contenders.common import ContenderConfig
from devtools.bench.floor import hset_floor
from devtools.bench.latency import run_latency
from devtools.bench.measure import Measurement, cpu_seconds
from devtools.bench.memory import memory_per_customer
from devtools.bench.names import ALL_CONTENDERS, ALL_PHASES
from devtools.bench.report import FIXED_LATENCY_RATE, stage_line
from devtools.bench.sweeper import fill, time_sweeps
from devtools.localstack import LocalStack
from stream.adapters.kafka_admin import ensure_topics
from stream.config.model_file import load_model
from stream.config.settings import Settings, TopicNames

__all__ = [
    "Bench",
    "BenchOptions",
    "bench_stack",
    "run_bench",
    "say",
    "topics_named",
]


@dataclass
class BenchOptions:
    """What to run and how big."""

    workdir: Path = Path(".bench")
    output: Path = Path("bench/results/latest.json")
    events: int = 1_000_000
    customers: int = 100_000
    partitions: int = 8
    cap_s: float = 75.0
    contenders: tuple[str, ...] = ALL_CONTENDERS
    phases: tuple[str, ...] = ALL_PHASES
    latency_s: float = 20.0
    sweep_stored: int = 1_000_000
    profile_s: float = 25.0
    experiments: tuple[dict[str, str], ...] = field(default_factory=tuple)


def topics_named(prefix: str) -> TopicNames:
    """Input, alert and dead-letter topic names with a prefix."""
    return TopicNames(
        clickstream=f"{prefix}-clickstream", app_installs=f"{prefix}-app-installs",
        sessions=f"{prefix}-sessions", alerts=f"{prefix}-alerts", dlq=f"{prefix}-dlq",
    )  # fmt: skip


def say(text: str) -> None:
    print(text, flush=True)


class Bench:
    """One running benchmark: the stack, the produced data set and the results so far."""

    def __init__(self, options: BenchOptions, stack: LocalStack) -> None:
        self.options = options
        self.stack = stack
        self.logs = options.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.topics = topics_named("bench")
        self.redis = redis.Redis.from_url(stack.redis_url)
        self.total = 0
        self.results: dict[str, Any] = {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "options": {
                "events": options.events, "customers": options.customers,
                "partitions": options.partitions, "cap_s": options.cap_s,
            },
            "contenders": {},
        }  # fmt: skip

    def make_topics(self, topics: TopicNames) -> None:
        settings = Settings(kafka_bootstrap=self.stack.kafka_bootstrap, topics=topics,
                            partitions=self.options.partitions)  # fmt: skip
        ensure_topics(settings)

    def produce(self) -> None:
        o = self.options
        self.make_topics(self.topics)
        say(f"Producing {o.events:,} events for {o.customers:,} customers...")
        began = time.monotonic()
        source = dataset.records(o.customers, o.events, now_ms=int(time.time() * 1000))
        per_topic = dataset.produce(self.stack.kafka_bootstrap, self.topics, source)
        took = time.monotonic() - began
        self.total = sum(per_topic.values())
        self.results["dataset"] = {
            "events": self.total, "customers": o.customers, "partitions": o.partitions,
            "per_topic": per_topic, "produce_seconds": round(took, 1),
            "produce_events_per_s": round(self.total / took),
        }  # fmt: skip
        say(f"  produced in {took:.1f} s ({self.total / took:,.0f} events/s)")

    @property
    def stack_pids(self) -> dict[str, int]:
        return runners.stack_pids(self.stack)

    def record(self, measurement: Measurement, key: str | None = None) -> dict[str, Any]:
        row = measurement.to_json()
        self.results["contenders"][key or measurement.name] = row
        state = "all" if measurement.complete else "capped at"
        say(f"  {measurement.name}: {row['events_per_s']:,.0f} events/s, "
            f"{row['cpu_s_per_million']:.1f} CPU s/M events, peak RSS "
            f"{row['peak_rss_mb']:.0f} MB ({state} {measurement.events:,} events)")  # fmt: skip
        return row

    def peer(self, name: str) -> None:
        say(f"Contender {name}...")
        config = ContenderConfig(
            bootstrap=self.stack.kafka_bootstrap, topics=self.topics.inputs,
            group=f"bench-{name}", expect=self.total, workdir=str(self.options.workdir),
            redis_url=self.stack.redis_url, redis_prefix=f"bench-{name}",
        )  # fmt: skip
        measurement = runners.run_peer(name, config, self.logs, cap_s=self.options.cap_s,
                                       stack=self.stack_pids)  # fmt: skip
        self.record(measurement)

    def worker(self) -> None:
        say("Contender worker (stream.worker, one process)...")
        env = runners.worker_env(self.stack, self.topics, "w1", self.options.workdir)
        used_before = int(self.redis.info("memory")["used_memory"])
        measurement, workers = runners.run_workers(
            "worker", env, 1, self.total, self.logs, cap_s=self.options.cap_s,
            stack=self.stack_pids,
        )  # fmt: skip
        try:
            row = self.record(measurement)
            if measurement.complete:
                row["uncommitted_after"] = runners.wait_for_commits(
                    self.stack.kafka_bootstrap, env["ENGAGEMENT_APP_ID"], list(self.topics.inputs)
                )
        finally:
            for worker in workers:
                worker.stop()
        used = int(self.redis.info("memory")["used_memory"]) - used_before
        if "memory" in self.options.phases:
            self.memory("bench-w1", used)
        if "floor" in self.options.phases:
            self.floor("bench-w1", measurement)

    def floor(self, prefix: str, worker: Measurement) -> None:
        """The plain-HSET floor of the worker's Redis CPU per event (``floor.py``)."""
        o = self.options
        say("Redis floor: the same customers' states with plain pipelined HSET...")
        order = dataset.customer_order(o.customers, o.events)
        result = hset_floor(self.redis, self.stack_pids["redis"], prefix, order, worker.events,
                            batch=Settings().batch_max, partitions=o.partitions)  # fmt: skip
        row = self.results["contenders"].get("worker", {})
        measured = row.get("stack_cpu_s_per_million", {}).get("redis")
        result["worker_us_per_event"] = measured
        floor, indexed = result["us_per_event"], result["with_indexes_us_per_event"]
        result["ratio"] = round(measured / floor, 3) if measured and floor else None
        result["ratio_with_indexes"] = (
            round(measured / indexed, 3) if measured and indexed else None
        )
        self.results["redis_floor"] = result
        say(f"  HSET floor {floor} Redis CPU µs/event ({indexed} with the index writes); "
            f"worker {measured}: {result['ratio']}x the floor "
            f"({result['ratio_with_indexes']}x with the index writes)")  # fmt: skip

    def memory(self, prefix: str, used_delta: int) -> None:
        result = memory_per_customer(self.redis, prefix, self.options.partitions)
        if result.get("customers"):
            result["used_memory_delta_per_customer"] = round(used_delta / result["customers"], 1)
        self.results["memory"] = result
        say(f"  Redis memory per customer: {result.get('bytes_per_customer')} B "
            f"at {result.get('events_per_customer')} events per customer")  # fmt: skip

    def latency(self) -> None:
        worker_rate = self.results["contenders"].get("worker", {}).get("events_per_s")
        if not worker_rate:
            say("Latency: skipped (needs the worker's measured maximum)")
            return
        say(f"Latency at {worker_rate / 2:,.0f} events/s (half the worker's maximum)...")
        # on the main run's store (its customers exist), as every release measured it
        self.results["latency"] = self._latency_at(worker_rate / 2, "lat", "bench-w1")
        if worker_rate > 2 * FIXED_LATENCY_RATE:  # far from saturated: the design's own floor
            say(f"Latency at a fixed {FIXED_LATENCY_RATE:,} events/s...")
            self.results["latency_fixed"] = self._latency_at(FIXED_LATENCY_RATE, "latfix",
                                                             "bench-latfix")  # fmt: skip

    def _latency_at(self, rate: float, name: str, prefix: str) -> dict[str, Any]:
        topics = topics_named(f"bench-{name}")
        self.make_topics(topics)
        env = runners.worker_env(self.stack, topics, name, self.options.workdir,
                                 ENGAGEMENT_REDIS_PREFIX=prefix)  # fmt: skip
        workers = runners.start_workers(env, 1, self.logs)
        pid = workers[0].proc.pid if workers[0].proc else 0
        try:
            result = run_latency(
                self.stack.kafka_bootstrap, self.redis, topics, workers[0], prefix,
                rate=rate, seconds=self.options.latency_s, population=self.options.customers,
                cpu_of_worker=lambda: cpu_seconds([pid]),
            )  # fmt: skip
        finally:
            workers[0].stop()
        row = result.to_json()
        store, alert, ack = row["event_to_store"], row["event_to_alert"], row["produce_to_ack"]
        say(f"  event-to-store p50 {store['p50_ms']} ms p99 {store['p99_ms']} ms; "
            f"event-to-alert p50 {alert['p50_ms']} ms p99 {alert['p99_ms']} ms; "
            f"the harness's Kafka acks p99 {ack['p99_ms']} ms")  # fmt: skip
        say(f"  stages (worker, p50/p99 ms): {stage_line(row)}")
        return row

    def scale(self) -> None:
        say("Two worker processes in one consumer group...")
        env = runners.worker_env(self.stack, self.topics, "w2", self.options.workdir)
        measurement, workers = runners.run_workers(
            "worker x2", env, 2, self.total, self.logs, cap_s=self.options.cap_s,
            stack=self.stack_pids,
        )  # fmt: skip
        for worker in workers:
            worker.stop()
        row = measurement.to_json()
        self.results.setdefault("scale", {})["two_workers"] = row
        say(f"  two workers: {row['events_per_s']:,.0f} events/s, "
            f"{row['events_per_cpu_s']:,.0f} events per CPU-s")  # fmt: skip

    def sweeper(self) -> None:
        stored = self.options.sweep_stored
        small = max(10_000, stored // 100)
        say(f"Sweeper: writing {stored:,} + {small:,} synthetic customers...")
        model = load_model("default")
        now = int(time.time() * 1000)
        began = time.monotonic()
        for prefix, count in (("bench-sw-small", small), ("bench-sw-large", stored)):
            fill(self.redis, prefix, count, due=False, now_ms=now,
                 partitions=self.options.partitions, model=model)  # fmt: skip
        say(f"  written in {time.monotonic() - began:.0f} s; timing sweeps...")
        scenarios = [("small", "bench-sw-small", 1000), ("large", "bench-sw-large", 1000),
                     ("large, 10x due", "bench-sw-large", 10_000)]  # fmt: skip
        rows = time_sweeps(self.stack.redis_url, self.stack.kafka_bootstrap, self.topics.alerts,
                           scenarios, partitions=self.options.partitions)  # fmt: skip
        self.results["sweeper"] = {
            "scenarios": rows,
            "stored_ratio": round(rows[1]["sweep_ms_median"] / rows[0]["sweep_ms_median"], 3),
            "due_ratio": round(rows[2]["sweep_ms_median"] / rows[1]["sweep_ms_median"], 3),
        }
        say("  " + "; ".join(f"{r['due']:,} due of {r['stored']:,}: {r['sweep_ms_median']} ms"
                             for r in rows))  # fmt: skip
        # The synthetic customers stay until the stack, the last user, is discarded.


@contextmanager
def bench_stack(options: BenchOptions) -> Iterator[LocalStack]:
    """A fresh local stack in the work folder, stopped and its data removed at the end."""
    shutil.rmtree(options.workdir, ignore_errors=True)
    options.workdir.mkdir(parents=True)
    say("Starting the local stack (Kafka from Maven Central jars, redis-server)...")
    stack = LocalStack(options.workdir / "stack")
    try:
        stack.start()
        say(f"  Kafka {stack.kafka_bootstrap}, Redis {stack.redis_url}")
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(options.workdir / "stack", ignore_errors=True)


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """The whole benchmark; returns (and writes) the results document."""
    began = time.monotonic()
    with bench_stack(options) as stack:
        bench = Bench(options, stack)
        bench.produce()
        for name in options.contenders:
            bench.worker() if name == "worker" else bench.peer(name)
        phases: dict[str, Callable[[], None]] = {
            "latency": bench.latency, "scale": bench.scale, "sweeper": bench.sweeper,
        }  # fmt: skip
        for name, phase in phases.items():
            if name in options.phases:
                phase()
        results = bench.results
    results["ratios"] = report.ratios(results)
    results["seconds"] = round(time.monotonic() - began, 1)
    report.write(results, options.output)
    say("\n" + report.render(results))
    say(f"\nWhole run {results['seconds']:.0f} s; results in {options.output}")
    return results
