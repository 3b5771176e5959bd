"""Run batches and sweeps one attempt at a time, retrying failures until they succeed.

A batch's offsets are committed as soon as ``run_batch`` returns, so nothing may escape:
a failed batch is retried with backoff (it is idempotent) and the worker reports itself
not ready meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from redis.exceptions import RedisError

from stream.adapters.metrics import Metrics
from stream.ports import Incoming
from stream.worker.health import Health
from stream.worker.processor import BatchProcessor, BatchReport

__all__ = ["Runner"]

log = logging.getLogger(__name__)


class Runner:
    """Serialises store work of one worker process and retries it until it succeeds."""

    def __init__(
        self,
        processor: BatchProcessor,
        metrics: Metrics,
        health: Health,
        first_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        attempt_timeout_s: float = 30.0,
    ) -> None:
        self.processor = processor
        self.metrics = metrics
        self.health = health
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.attempt_timeout_s = attempt_timeout_s
        self.lock = asyncio.Lock()

    async def run_batch(self, batch: Sequence[Incoming]) -> BatchReport:
        """Process a batch of input messages; returns only once it has succeeded."""
        report = await self._until_done("batch", lambda: self.processor.process(batch))
        self.health.record_progress()
        return report

    async def run_sweep(self, partitions: Iterable[int]) -> BatchReport:
        """Re-evaluate due customers of the given partitions."""
        owned = sorted(partitions)
        report = await self._until_done("sweep", lambda: self.processor.sweep(owned))
        self.health.record_sweep(report.sweep_behind_ms)
        self.metrics.sweep_behind.set(report.sweep_behind_ms / 1000)
        return report

    async def _until_done(
        self, operation: str, attempt: Callable[[], Awaitable[BatchReport]]
    ) -> BatchReport:
        backoff = self.first_backoff_s
        while True:
            try:
                async with self.lock:
                    # A hung connection (no reset, no reply) must not stall us forever.
                    report = await asyncio.wait_for(attempt(), self.attempt_timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.health.record_processing(False, f"{operation}: {type(exc).__name__}")
                self._count(operation, exc)
                log.warning("%s failed (%s); retrying in %.1fs", operation, exc, backoff)
                # The backoff is waited out without the lock: a sweep retrying through an
                # outage must not keep the batches from trying (and reporting) theirs.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            self.health.record_processing(True)
            return report

    def _count(self, operation: str, exc: Exception) -> None:
        if isinstance(exc, RedisError):
            self.metrics.redis_errors.labels(operation).inc()
        else:
            self.metrics.errors.labels(operation, type(exc).__name__).inc()
