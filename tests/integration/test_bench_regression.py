"""A quick benchmark guarding the worker's throughput: it must keep a stated fraction of
the raw aiokafka consume-and-decode ceiling, measured in the same run on the same data
(a ratio, never an absolute time)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from devtools.bench import dataset, runners
from devtools.bench.contenders.common import ContenderConfig
from devtools.bench.main import topics_named
from devtools.localstack import LocalStack
from stream.adapters.kafka_admin import ensure_topics
from stream.config.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.bench]

# Measured 0.0092 after the store and client work of issue 4 (worker 4,507 events/s, raw
# 492,483) and 0.007-0.010 before it; 0.0213, 0.0238 (make-bench-sized run) and 0.0265
# after whole fetches and the frozen heap (issue 12, part 1), on the shared 2-core machine
# under a load average of 7-14; 0.0275 in `make bench` with the compiled kernel (issue 18).
# The floor is half that; raise it as the worker gets faster (issue 18 asks 0.05).
MIN_WORKER_TO_RAW = 0.0137
EVENTS = 100_000
CUSTOMERS = 10_000


def test_worker_keeps_its_fraction_of_the_raw_consumer_ceiling(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Worker events/s divided by raw aiokafka events/s on the same 100k events stays
    at or above ``MIN_WORKER_TO_RAW``."""
    tag = uuid.uuid4().hex[:6]
    topics = topics_named(f"regress-{tag}")
    ensure_topics(Settings(kafka_bootstrap=stack.kafka_bootstrap, topics=topics, partitions=8))
    source = dataset.records(CUSTOMERS, EVENTS, now_ms=int(time.time() * 1000))
    total = sum(dataset.produce(stack.kafka_bootstrap, topics, source).values())
    assert total == EVENTS

    config = ContenderConfig(bootstrap=stack.kafka_bootstrap, topics=topics.inputs,
                             group=f"raw-{tag}", expect=total)  # fmt: skip
    raw = runners.run_peer("raw-aiokafka", config, tmp_path, cap_s=60)
    env = runners.worker_env(stack, topics, tag, tmp_path)
    worker, processes = runners.run_workers("worker", env, 1, total, tmp_path, cap_s=15)
    for process in processes:
        process.stop()

    assert raw.complete and raw.events > EVENTS // 2
    assert worker.events > 0
    ratio = worker.rate / raw.rate
    print(f"\nworker {worker.rate:,.0f} events/s / raw {raw.rate:,.0f} events/s = {ratio:.4f}")
    assert ratio >= MIN_WORKER_TO_RAW, (
        f"worker {worker.rate:,.0f} events/s is {ratio:.4f} of raw aiokafka "
        f"{raw.rate:,.0f} events/s; the floor is {MIN_WORKER_TO_RAW}"
    )
