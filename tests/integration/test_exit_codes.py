"""The worker's exit code contract (``stream.worker.exits``) with real Kafka and Redis: a
batch that cannot finish within ``ENGAGEMENT_SHUTDOWN_GRACE`` after SIGTERM ends the worker
through mode's crash path with code 70, and its offsets stay uncommitted."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import pytest

from devtools.localstack import LocalStack
from tests.integration.conftest import Deployment, wait_until
from tests.integration.workload import committed_offsets

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A redis-server of its own (beside the session's Kafka), for a test that kills it."""
    redis = LocalStack(tmp_path_factory.mktemp("own-redis"), kafka_port=stack.kafka_port)
    redis.start_redis()
    try:
        yield redis
    finally:
        redis.stop_redis(kill=True)


def _event(customer: str, n: int) -> dict[str, object]:
    return {"event_id": f"{customer}-{n}", "customer_id": customer, "type": "page_view",
            "timestamp": int(time.time() * 1000), "properties": {}}  # fmt: skip


def test_a_batch_unfinished_within_the_grace_exits_70_and_stays_uncommitted(
    own_redis: LocalStack, deploy: Callable[..., Deployment]
) -> None:
    d = deploy(on=own_redis, ENGAGEMENT_SHUTDOWN_GRACE="2s")
    worker = d.start_worker()
    d.send("clickstream", "warm", _event("warm", 0))
    d.flush()
    wait_until(lambda: d.customer("warm").get("score"), timeout_s=120)
    own_redis.stop_redis(kill=True)
    for n in range(20):
        d.send("clickstream", f"stuck-{n}", _event(f"stuck-{n}", 0))
    d.flush()
    wait_until(lambda: (worker.status("/ready") or (0, {}))[0] == 503, timeout_s=60)
    # a batch is in flight, retrying against the dead Redis
    wait_until(lambda: worker.counters("engagement_redis_errors", "operation"), timeout_s=60)
    committed = committed_offsets(d.stack.kafka_bootstrap, d.settings.app_id)
    asked = time.monotonic()
    worker.stop(signal.SIGTERM, timeout_s=120)
    took_s = time.monotonic() - asked
    assert worker.proc is not None and worker.proc.returncode == 70
    assert took_s < 90, f"the stop took {took_s:.0f}s"
    assert committed_offsets(d.stack.kafka_bootstrap, d.settings.app_id) == committed
    log = worker.log_path.read_text(errors="replace")
    assert "did not finish within 2s of the stop" in log
