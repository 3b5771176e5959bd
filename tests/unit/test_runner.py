"""The runner: one store attempt at a time, failures retried with backoff, and a sweep
retrying through an outage never keeps a batch from its own attempts."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from stream.adapters.metrics import Metrics
from stream.worker.health import Health
from stream.worker.processor import BatchProcessor, BatchReport
from stream.worker.runner import Runner

pytestmark = pytest.mark.unit


class _Outage:
    """A processor whose store is down until ``up`` is set: it records each attempt and
    whether two ever overlapped."""

    def __init__(self) -> None:
        self.up = False
        self.attempts: list[str] = []
        self.busy = False
        self.overlapped = False

    async def _attempt(self, operation: str) -> BatchReport:
        self.overlapped = self.overlapped or self.busy
        self.busy = True
        self.attempts.append(operation)
        try:
            await asyncio.sleep(0.001)
            if not self.up:
                raise RedisConnectionError("store down")
            return BatchReport()
        finally:
            self.busy = False

    async def process(self, batch: object) -> BatchReport:
        return await self._attempt("batch")

    async def sweep(self, partitions: object) -> BatchReport:
        return await self._attempt("sweep")


def _runner(outage: _Outage, metrics: Metrics) -> Runner:
    health = Health(lambda: int(time.time() * 1000))
    processor: BatchProcessor = outage  # type: ignore[assignment]
    return Runner(processor, metrics, health, first_backoff_s=0.01, max_backoff_s=0.04)


def test_a_sweep_retrying_through_an_outage_lets_batches_try_and_count_failures() -> None:
    outage, metrics = _Outage(), Metrics()
    runner = _runner(outage, metrics)

    async def scenario() -> None:
        async with asyncio.timeout(10):  # a starved batch fails the test, not hangs it
            sweep = asyncio.create_task(runner.run_sweep([0, 1]))
            while not outage.attempts:
                await asyncio.sleep(0.001)  # the sweep is now failing and retrying
            batch = asyncio.create_task(runner.run_batch([]))
            while outage.attempts.count("batch") < 3:
                await asyncio.sleep(0.01)
            outage.up = True
            await asyncio.gather(sweep, batch)

    asyncio.run(scenario())
    assert outage.attempts.count("batch") >= 4  # three failed, then the one that succeeded
    assert not outage.overlapped, "store attempts must never overlap"
    failures = metrics.registry.get_sample_value(
        "engagement_redis_errors_total", {"operation": "batch"}
    )
    assert failures is not None and failures >= 3
