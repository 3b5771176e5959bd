"""Outages: Redis, a Redis Cluster master and the Kafka broker go away mid-stream.

Part of the fault suite (see ``test_faults.py`` for what every scenario checks and the
helpers they share); these scenarios run on stacks of their own, which they stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from devtools.localstack import LocalStack
from devtools.localstack.worker import WorkerProcess
from tests.integration.conftest import Deployment, wait_until
from tests.integration.test_faults import (
    CLUSTER_SCALE,
    MODEL,
    SCALE,
    record,
    scored,
    settle,
    warm_up,
)
from tests.integration.workload import Streamer, Workload, committed_offsets, make_workload

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack of its own for scenarios that stop Redis or Kafka."""
    with LocalStack(tmp_path_factory.mktemp("fragile")) as running:
        yield running


@pytest.fixture(scope="module")
def fragile_cluster(
    stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    """A Redis Cluster of its own (three masters) for scenarios that kill a master."""
    cluster = LocalStack(
        tmp_path_factory.mktemp("fragile-cluster"), kafka_port=stack.kafka_port, redis_cluster=3
    )
    try:
        cluster.start_redis()
        yield cluster
    finally:
        cluster.stop_redis()


@pytest.fixture
def fragile_running(fragile: LocalStack) -> Iterator[LocalStack]:
    """The fragile stack, restarted after a scenario that left a server down."""
    yield fragile
    fragile.ensure_running()


def _mid_stream(
    deploy: Callable[..., Deployment],
    on: LocalStack,
    work: Workload,
    chunks: int,
    out: int,
    session_timeout: str,
) -> tuple[Deployment, WorkerProcess, Streamer]:
    """The prelude every outage shares: a worker on ``on``, warmed up, then ``out`` of the
    main workload's ``chunks`` chunks sent and scored past the warm-up."""
    d = deploy(on=on, ENGAGEMENT_SESSION_TIMEOUT=session_timeout)
    worker = d.start_worker()
    warm_up(d, work)
    streamer = Streamer(lambda m: d.send(*m), d.flush, work.main, chunks=chunks)
    streamer.release(out)
    wait_until(lambda: scored(worker) > len(work.warmup))
    return d, worker, streamer


def test_cluster_master_killed_stops_commits_and_catches_up_exactly(
    fragile_cluster: LocalStack, deploy: Callable[..., Deployment]
) -> None:
    """The seed master of the cluster is SIGKILLed: batches stop committing (every
    batch touches it), the worker says Redis is not ready, then the master restarts on its
    AOF and nodes.conf, rejoins, and the scores catch up exactly."""
    work = make_workload(MODEL, int(1000 * CLUSTER_SCALE), int(40_000 * CLUSTER_SCALE),
                         seed=22, prefix="m")  # fmt: skip
    d, worker, streamer = _mid_stream(deploy, fragile_cluster, work, 10, 3, "2s")
    fragile_cluster.stop_redis(kill=True, node=0)
    down_at = time.monotonic()
    try:
        wait_until(lambda: _not_ready_because(worker, "redis"))
        streamer.release(4)
        assert_no_offset_moves_while_batches_fail(d, worker)
    finally:
        fragile_cluster.start_redis()
    outage_s = time.monotonic() - down_at
    streamer.release_all()
    streamer.join()
    figures, _ = settle(d, work)
    wait_until(lambda: (worker.status("/ready") or (0,))[0] == 200)
    record("Redis Cluster: seed master SIGKILLed, AOF restart",
           outage_s=round(outage_s, 1), **figures)  # fmt: skip


def test_redis_outage_stops_commits_and_catches_up_exactly(
    fragile_running: LocalStack, deploy: Callable[..., Deployment]
) -> None:
    """Redis killed: no offsets commit while batches fail, the worker is not ready, then it
    catches up."""
    fragile = fragile_running
    work = make_workload(MODEL, int(1000 * SCALE), int(20_000 * SCALE), seed=12, prefix="r")
    d, worker, streamer = _mid_stream(deploy, fragile, work, 10, 3, "2s")
    fragile.stop_redis(kill=True)
    down_at = time.monotonic()
    wait_until(lambda: _not_ready_because(worker, "redis"))
    wait_until(lambda: _gauge(worker, "engagement_ready") == 0.0)
    assert _gauge(worker, "engagement_dependency_up", dependency="redis") == 0.0
    streamer.release(4)
    assert_no_offset_moves_while_batches_fail(d, worker)
    fragile.start_redis()
    outage_s = time.monotonic() - down_at
    streamer.release_all()
    streamer.join()
    figures, _ = settle(d, work)
    wait_until(lambda: worker.status("/ready") == (200, worker.status("/ready")[1]))  # type: ignore[index]
    errors = sum(v for _, v in worker.samples("engagement_redis_errors") if v)
    assert errors > 0
    record("Redis SIGKILL, outage, AOF restart", outage_s=round(outage_s, 1),
           redis_errors_retried=int(errors), **figures)  # fmt: skip


def test_broker_restart_mid_stream(
    fragile_running: LocalStack, deploy: Callable[..., Deployment]
) -> None:
    """The broker restarts on its kept log directory; the same worker reconnects exactly."""
    fragile = fragile_running
    work = make_workload(MODEL, int(1000 * SCALE), int(20_000 * SCALE), seed=13, prefix="b")
    d, worker, streamer = _mid_stream(deploy, fragile, work, 4, 2, "6s")
    down_at = time.monotonic()
    fragile.stop_kafka()
    wait_until(lambda: _not_ready_because(worker, "kafka"))
    fragile.start_kafka()
    outage_s = time.monotonic() - down_at
    streamer.release_all()
    streamer.join()
    figures, _ = settle(d, work)
    assert worker.alive, "the worker must survive the broker restart"
    wait_until(lambda: (worker.status("/ready") or (0,))[0] == 200)
    record("Kafka broker restart", outage_s=round(outage_s, 1), **figures)


def _batch_failures(worker: WorkerProcess) -> float:
    return worker.counters("engagement_redis_errors", "operation").get("batch", 0.0)


def assert_no_offset_moves_while_batches_fail(d: Deployment, worker: WorkerProcess) -> None:
    """With the store down and messages waiting, the worker's batch fails and is retried
    with a doubling backoff (0.1 s, 0.2 s, ...). By its sixth failure, over 3 s after the
    first, the commit timer (1 s) has committed every batch finished before the outage;
    over the next two retries (about 8 s more) no offset may move, and the worker stays
    alive and healthy."""
    bootstrap, group = d.stack.kafka_bootstrap, d.settings.app_id
    wait_until(lambda: _batch_failures(worker) >= 6, timeout_s=120)
    frozen = committed_offsets(bootstrap, group)
    failed = _batch_failures(worker)
    wait_until(lambda: _batch_failures(worker) >= failed + 2, timeout_s=120)
    assert committed_offsets(bootstrap, group) == frozen
    assert worker.alive and worker.status("/health")[0] == 200  # type: ignore[index]


def _not_ready_because(worker: WorkerProcess, check: str) -> bool:
    answer = worker.status("/ready")
    return bool(answer and answer[0] == 503 and not answer[1]["checks"][check]["ok"])


def _gauge(worker: WorkerProcess, name: str, **labels: str) -> float | None:
    for sample_labels, value in worker.samples(name):
        if all(sample_labels.get(k) == v for k, v in labels.items()):
            return value
    return None
