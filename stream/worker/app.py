"""The Faust application: one batching agent over the three input topics, the window
sweeper timer, and the web endpoints (/metrics, /customers/{id}, /health, /ready)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import TP

from stream.adapters.kafka_admin import ensure_topics
from stream.adapters.kafka_security import faust_credentials
from stream.adapters.metrics import Metrics
from stream.adapters.redis_client import async_redis, check_redis_credentials
from stream.adapters.redis_store import RedisScoreStore
from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.core.decode import DecodeLimits, valid_customer_id
from stream.core.model import ScoringModel
from stream.worker.http_auth import CHALLENGE, bearer_allows
from stream.worker.processor import BatchProcessor, Incoming, OutMessage
from stream.worker.runner import Runner

__all__ = ["FaustPublisher", "build_app"]

log = logging.getLogger(__name__)

# aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway.
_METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"


class FaustPublisher:
    """Produces through the app's producer and waits until Kafka acknowledges every message."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        pending = [
            await self.app.producer.send(
                m.topic, m.key, m.value, partition=None, timestamp=None, headers=list(m.headers)
            )
            for m in messages
        ]
        await asyncio.gather(*pending)


def build_app(settings: Settings, model: ScoringModel | None = None) -> faust.App:
    """Create the worker application; topics are created and checked before it starts."""
    model = model or load_model(settings.model)
    ensure_topics(settings)
    check_redis_credentials(settings)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings.kafka_security),
        store="memory://",
        datadir=settings.data_dir,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_enabled=True,
        web_router_enabled=False,  # no tables: serve only our own read-only pages
        web_tables_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_every=settings.batch_max,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_ms / 3000),
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, settings.batch_max * 2),
        logging_config=None,
    )
    metrics = Metrics()
    redis = async_redis(settings, socket_timeout=10, socket_connect_timeout=5)
    store = RedisScoreStore(redis, settings.redis_prefix)
    processor = BatchProcessor(
        model,
        store,
        FaustPublisher(app),
        settings.topics,
        metrics,
        DecodeLimits(
            max_bytes=settings.max_message_bytes,
            max_id_length=settings.max_id_length,
            max_json_depth=settings.max_json_depth,
        ),
    )
    runner = Runner(processor, metrics)
    inputs = app.topic(*settings.topics.inputs, key_serializer="raw", value_serializer="raw")
    input_names = set(settings.topics.inputs)

    @app.agent(inputs, name="score")
    async def score(stream: Any) -> None:
        within = settings.batch_within_ms / 1000
        async for events in stream.take_events(settings.batch_max, within=within):
            batch = [_incoming(event.message) for event in events]
            await _finish_even_if_cancelled(runner, batch, settings.shutdown_grace_ms / 1000)
            _record_lag(app, metrics, batch)

    @app.timer(settings.sweep_interval_ms / 1000)
    async def sweep_windows() -> None:
        owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic in input_names}
        if owned:
            await runner.run_sweep(owned)

    @app.timer(5.0, on_leader=True)
    async def count_bands() -> None:
        try:
            counts = await store.band_counts(model.bands)
        except Exception as exc:  # a metrics refresh must never stop the worker
            log.warning("band count refresh failed: %s", exc)
            return
        for band, count in counts.items():
            metrics.customers.labels(band).set(count)

    @app.page("/metrics")
    async def metrics_page(self: Any, request: Any) -> Any:
        return self.bytes(metrics.render(), content_type=_METRICS_CONTENT_TYPE)

    @app.page("/customers/{customer_id}")
    async def customer_page(self: Any, request: Any, customer_id: str) -> Any:
        if not bearer_allows(request.headers.get("Authorization"), settings.api_token):
            return self.json({"error": "unauthorized"}, status=401, headers=dict(CHALLENGE))
        if not valid_customer_id(customer_id, settings.max_id_length):
            return self.json({"error": "invalid customer id"}, status=400)
        view = await store.customer(customer_id)
        if view is None:
            return self.json({"error": "unknown customer", "customer_id": customer_id}, status=404)
        return self.json(view)

    @app.page("/health")
    async def health_page(self: Any, request: Any) -> Any:
        return self.json({"status": "ok"})

    @app.page("/ready")
    async def ready_page(self: Any, request: Any) -> Any:
        body = {"ready": runner.healthy, "last_error": runner.last_error}
        return self.json(body, status=200 if runner.healthy else 503)

    del score, sweep_windows, count_bands, metrics_page, customer_page, health_page, ready_page
    return app


async def _finish_even_if_cancelled(runner: Runner, batch: list[Incoming], grace_s: float) -> None:
    """Process a batch; if the agent is cancelled (shutdown), finish it first.

    Faust acknowledges a batch's offsets when the agent leaves it, even by cancellation.
    So a cancelled agent waits for the in-flight batch; if it cannot finish within the
    grace period, the process exits at once so that those offsets are never committed.
    """
    task = asyncio.ensure_future(runner.run_batch(batch))
    try:
        await asyncio.shield(task)
        return
    except asyncio.CancelledError:
        deadline = asyncio.get_running_loop().time() + grace_s
        while not task.done() and asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task}, timeout=deadline - asyncio.get_running_loop().time())
        if not task.done() or task.cancelled() or task.exception() is not None:
            log.error("in-flight batch unfinished at shutdown; exiting without committing it")
            os._exit(70)
        raise


def _incoming(message: Any) -> Incoming:
    return Incoming(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value if message.value is not None else b"",
        timestamp_ms=int(message.timestamp * 1000),
    )


def _record_lag(app: faust.App, metrics: Metrics, batch: Sequence[Incoming]) -> None:
    last: dict[tuple[str, int], int] = {}
    for message in batch:
        key = (message.topic, message.partition)
        last[key] = max(last.get(key, -1), message.offset)
    for (topic, partition), offset in last.items():
        try:
            highwater = app.consumer.highwater(TP(topic, partition))
        except Exception:  # partition revoked meanwhile
            continue
        if highwater is not None:
            metrics.lag.labels(topic, str(partition)).set(max(0, highwater - offset - 1))
