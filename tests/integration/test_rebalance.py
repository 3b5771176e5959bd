"""Rebalances of a busy worker: partitions move while batches are in flight, and nothing
is lost or counted twice (the fetch consumer finishes and commits the in-flight batch
before a revoke, and drops its state cache)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from devtools.localstack.worker import WorkerProcess
from stream.config.model_file import load_model
from tests.integration.conftest import Deployment, wait_until
from tests.integration.workload import (
    Streamer,
    alert_ids,
    committed_offsets,
    compare,
    make_workload,
    stored,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
MODEL = load_model("default")


def _scored(worker: WorkerProcess) -> float:
    return worker.counters("engagement_events", "outcome").get("scored", 0.0)


def test_workers_joining_and_leaving_mid_stream_keep_scores_exact(
    deploy: Callable[..., Deployment],
) -> None:
    """A second worker joins while the first is busy, then leaves by SIGTERM while busy
    itself: both revokes happen mid-stream, and the store ends exactly at the reference."""
    work = make_workload(MODEL, 1000, 40_000, seed=21, prefix="rb")
    d = deploy(ENGAGEMENT_SESSION_TIMEOUT="3s")
    first = d.start_worker()
    for message in work.warmup:
        d.send(*message)
    d.flush()
    everyone = len(work.customers)
    wait_until(lambda: stored(d.redis, d.settings.redis_prefix, work.customers) == everyone,
               timeout_s=180)  # fmt: skip
    streamer = Streamer(lambda m: d.send(*m), d.flush, work.main, chunks=4)
    streamer.release()
    wait_until(lambda: _scored(first) > len(work.warmup) + 100, every_s=0.05)
    second = d.start_worker()  # joins: the busy first worker revokes half its partitions
    streamer.release()
    wait_until(lambda: _scored(second) > 0, timeout_s=120, every_s=0.2)
    streamer.release()
    second.stop(signal.SIGTERM, timeout_s=40)  # leaves: the first gets them back
    assert second.proc is not None and second.proc.returncode == 0
    streamer.release_all()
    streamer.join()

    prefix = d.settings.redis_prefix
    wait_until(lambda: compare(d.redis, prefix, work.reference(int(time.time() * 1000))).exact,
               timeout_s=300, every_s=1.0)  # fmt: skip
    expected = work.expected_alert_ids()
    ids = alert_ids(d.stack.kafka_bootstrap, d.settings.topics.alerts,
                    lambda got: expected <= set(got))  # fmt: skip
    assert expected <= set(ids)
    assert not set(ids) - expected
    assert first.alive
    committed = committed_offsets(d.stack.kafka_bootstrap, d.settings.app_id)
    assert sum(committed.values()) > 0


def _waiting(worker: WorkerProcess) -> dict[tuple[str, str], float]:
    samples = worker.samples("engagement_consumer_lag")
    return {(labels["topic"], labels["partition"]): value for labels, value in samples}


def test_a_worker_resuming_caught_up_partitions_has_nothing_waiting(
    deploy: Callable[..., Deployment],
) -> None:
    """The lag behind readiness starts at the committed offset each partition resumed
    from: a worker started after the group caught up processes nothing, and must not
    count every message of every partition as waiting (it used to, and /ready then said
    "N messages waiting, no batch completed" forever on an idle, caught-up worker)."""
    work = make_workload(MODEL, 200, 2000, seed=41, prefix="rl")
    d = deploy(ENGAGEMENT_SESSION_TIMEOUT="3s")
    first = d.start_worker()
    for message in work.warmup + work.main:
        d.send(*message)
    d.flush()
    inputs = set(d.settings.topics.inputs)
    group, bootstrap = d.settings.app_id, d.stack.kafka_bootstrap

    def caught_up() -> bool:
        committed = committed_offsets(bootstrap, group)
        return sum(o for (topic, _), o in committed.items() if topic in inputs) == work.size

    wait_until(caught_up, timeout_s=180, every_s=0.5)
    first.stop(signal.SIGTERM, timeout_s=40)
    second = d.start_worker()
    partitions = len(inputs) * d.settings.partitions
    wait_until(lambda: len(_waiting(second)) == partitions and not any(_waiting(second).values()),
               timeout_s=60)  # fmt: skip
    assert second.counters("engagement_events", "outcome").get("scored", 0.0) == 0
