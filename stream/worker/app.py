"""The Faust application: the scoring agent, fed whole fetches of the three input topics
as batches (``stream.worker.fetch``, ``stream.worker.fetches``), the window sweeper timer,
and the web endpoints (/metrics, /customers/{id}, /health, /ready)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP

from stream.adapters.faust_publisher import FaustPublisher
from stream.adapters.kafka_admin import ensure_topics
from stream.adapters.kafka_security import faust_credentials
from stream.adapters.metrics import Metrics
from stream.adapters.redis_client import AsyncClient, async_redis, check_redis_credentials
from stream.adapters.redis_cluster import ping_all
from stream.adapters.redis_store import RedisScoreStore
from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.core import kernel
from stream.core.model import ScoringModel
from stream.core.segments import SegmentRow
from stream.ports import Incoming
from stream.upstream.faust import PromptTableManager, kafka_metadata
from stream.upstream.prometheus import observe_all
from stream.worker.crashpoints import crash_plan
from stream.worker.dedup import DedupPolicy
from stream.worker.fetch import FetchConsumer, broker_url
from stream.worker.fetches import Fetch, FetchOptions, fetch_channel
from stream.worker.gctune import GcClock, GcTuner
from stream.worker.health import Health, messages_waiting
from stream.worker.processor import BatchProcessor
from stream.worker.runner import Runner
from stream.worker.web import install_pages

__all__ = ["SCORING_AGENT", "assemble_app", "build_app", "export_segments"]

log = logging.getLogger(__name__)

_PROBE_INTERVAL_S = 2.0
_PROBE_TIMEOUT_S = 3.0
SCORING_AGENT = "score"


def build_app(settings: Settings, model: ScoringModel | None = None) -> faust.App:
    """Create the worker application; topics are created and checked before it starts."""
    model = model or load_model(settings.model)
    ensure_topics(settings, model)
    check_redis_credentials(settings.redis)
    return assemble_app(settings, model)


def assemble_app(settings: Settings, model: ScoringModel) -> faust.App:
    """The worker application, its agent, timers and pages (connects to nothing yet)."""
    app = faust.App(
        settings.app_id,
        broker=broker_url(settings.kafka_bootstrap),  # Faust's aiokafka, whole fetches
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
        broker_max_poll_records=settings.batch_max,
        **_static_membership(settings),
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_ms / 3000),
        broker_commit_interval=1.0,
        logging_config=None,
        TableManager=PromptTableManager,
    )
    metrics = Metrics()
    loaded = kernel.use(settings.kernel)
    log.info("per-event kernel: %s (%s)", loaded.name, loaded.reason)
    metrics.kernel.info({"kernel": loaded.name})
    # No per-reply socket timeout (redis-py wraps every reply in an asyncio timeout, a
    # large share of a batch's cost); the runner bounds each whole attempt instead.
    redis = async_redis(settings.redis, socket_timeout=None, socket_connect_timeout=5)
    store = RedisScoreStore(redis, settings.redis_prefix)
    processor = BatchProcessor(
        model,
        store,
        FaustPublisher(app),
        settings.topics,
        metrics,
        settings.decode_limits(),
        dedup=DedupPolicy(settings.dedup_horizon_ms),
        crash=crash_plan(),
    )
    health = Health(
        lambda: int(time.time() * 1000),
        probe_interval_ms=int(_PROBE_INTERVAL_S * 1000),
        max_sweep_behind_ms=settings.alert_bound_ms,
    )
    parts = _Parts(settings, model, store, metrics, health, Runner(processor, metrics, health),
                   GcTuner(settings.gc_freeze))  # fmt: skip
    _install_scoring(app, parts)
    _install_timers(app, parts, redis)
    install_pages(app, settings, store, metrics, health)
    return app


def _static_membership(settings: Settings) -> dict[str, Any]:
    """Faust settings of a static group member (KIP-345): a restart within the session
    timeout gets the member's partitions back without a rebalance. The broker hands back
    the assignment made for the predecessor, and Faust's assignor requires the node URL in
    it to be this process's, so that URL is the instance id (the worker serves no Faust
    routes through it), not the web port, which a restart may change."""
    if settings.instance_id is None:
        return {}
    return {
        "consumer_group_instance_id": settings.instance_id,
        "canonical_url": f"http://{settings.instance_id}",
    }


@dataclass(slots=True)
class _Parts:
    """What the scoring path, timers and pages share."""

    settings: Settings
    model: ScoringModel
    store: RedisScoreStore
    metrics: Metrics
    health: Health
    runner: Runner
    gc: GcTuner
    gc_clock: GcClock = field(default_factory=GcClock)
    gc_reported: float = 0.0
    processed: dict[TP, int] = field(default_factory=dict)  # last offset done per partition

    def owned(self, app: faust.App) -> list[TP]:
        inputs = self.settings.topics.inputs
        return [tp for tp in app.assignor.assigned_actives() if tp.topic in inputs]


def _install_scoring(app: faust.App, parts: _Parts) -> None:
    settings = parts.settings
    # Subscribed through Faust's conductor; the transport driver fetches them and hands
    # each fetch to the scoring agent on the fetch channel.
    app.topics.add(app.topic(*settings.topics.inputs, key_serializer="raw", value_serializer="raw"))

    async def score_batch(batch: Sequence[Incoming]) -> None:
        await parts.runner.run_batch(batch)
        processed = parts.processed
        for message in batch:
            tp = TP(message.topic, message.partition)
            if message.offset > processed.get(tp, -1):
                processed[tp] = message.offset
        parts.gc.after_batch()

    options = FetchOptions(
        batch_max=settings.batch_max,
        batch_within_s=settings.batch_within_ms / 1000,
        grace_s=settings.shutdown_grace_ms / 1000,
        revoke_wait_s=settings.shutdown_grace_ms / 1000,
        commit_interval_s=1.0,
        observe=lambda end: parts.metrics.batch_ends.labels(end).inc(),
        stage=lambda stage, seconds: observe_all(parts.metrics.stage.labels(stage), seconds),
    )
    fetches = fetch_channel(app, list(settings.topics.inputs), options)

    @app.agent(fetches, name=SCORING_AGENT, concurrency=1)
    async def score(stream: faust.StreamT[Fetch]) -> None:
        """Score each fetch of the input topics as one batch."""
        async for fetch in stream:
            await fetch.process(score_batch)

    parts.gc_clock.install()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_revoked(sender: Any, revoked: set[TP], **_: Any) -> None:
        parts.health.record_group("rebalancing")
        parts.runner.processor.forget()
        for tp in revoked:
            parts.processed.pop(tp, None)
            with contextlib.suppress(KeyError):
                parts.metrics.lag.remove(tp.topic, str(tp.partition))

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def note_assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
        parts.health.record_group("resuming")

    del score, forget_revoked, note_assigned


def _install_timers(app: faust.App, parts: _Parts, redis: AsyncClient) -> None:
    health, metrics = parts.health, parts.metrics

    # Every worker sweeps the partitions it owns, so on_leader would be wrong here.
    @app.timer(parts.settings.sweep_interval_ms / 1000)
    async def sweep_windows() -> None:
        owned = {tp.partition for tp in parts.owned(app)}
        if owned:
            await parts.runner.run_sweep(owned)
        else:  # nothing to sweep: nothing is behind (a worker that lost its partitions)
            health.record_sweep(0)
            metrics.sweep_behind.set(0)

    @app.timer(_PROBE_INTERVAL_S)
    async def probe_dependencies() -> None:
        await _probe(health, metrics, "redis", ping_all(redis))  # every master of a cluster
        await _probe(health, metrics, "kafka", kafka_metadata(app))
        health.lag = _record_lag(app, metrics, parts.owned(app), parts.processed)
        health.agent_crashed = _crash_reason(app)
        _record_group(app, health)
        metrics.gc_seconds.inc(parts.gc_clock.seconds - parts.gc_reported)
        parts.gc_reported = parts.gc_clock.seconds
        metrics.ready.set(1 if health.readiness()[0] else 0)

    # One reporter for the global band counts: whoever owns clickstream partition 0
    # (Faust's leader election is off, so on_leader timers would never run).
    @app.timer(5.0)
    async def count_bands() -> None:
        reporter = TP(parts.settings.topics.clickstream, 0)
        if reporter not in app.assignor.assigned_actives():
            metrics.customers.clear()
            metrics.accounts.clear()
            metrics.segment_customers.clear()
            metrics.segment_mean_score.clear()
            return
        accounts = parts.model.accounts
        try:
            counts = await parts.store.band_counts(parts.model.bands)
            per_account = {} if accounts is None else await parts.store.accounts.reads.band_counts(
                accounts.bands)  # fmt: skip
            segments = parts.model.segments
            rows = await parts.store.segments.rows(segments, parts.model.bands) if segments else {}
        except Exception as exc:  # a metrics refresh must never stop the worker
            log.warning("band count refresh failed: %s", type(exc).__name__)
            return
        for band, count in counts.items():
            metrics.customers.labels(band).set(count)
        for band, count in per_account.items():
            metrics.accounts.labels(band).set(count)
        export_segments(metrics, rows)

    del sweep_windows, probe_dependencies, count_bands


def export_segments(metrics: Metrics, rows: Mapping[str, Sequence[SegmentRow]]) -> None:
    """Replace the segment gauges with ``rows`` (values are bounded by the model's
    ``max_values``; no customer id is ever a label)."""
    metrics.segment_customers.clear()
    metrics.segment_mean_score.clear()
    for dimension, found in rows.items():
        for row in found:
            metrics.segment_mean_score.labels(dimension, row.value).set(row.mean_score)
            for band, count in row.bands.items():
                metrics.segment_customers.labels(dimension, row.value, band).set(count)


async def _probe(health: Health, metrics: Metrics, name: str, check: Awaitable[Any]) -> None:
    try:
        await asyncio.wait_for(check, _PROBE_TIMEOUT_S)
    except Exception as exc:  # any failure means "not reachable right now"
        health.record_probe(name, False, f"{type(exc).__name__}")
        metrics.dependency_up.labels(name).set(0)
    else:
        health.record_probe(name, True)
        metrics.dependency_up.labels(name).set(1)


def _record_group(app: faust.App, health: Health) -> None:
    """Faust's rebalance flag, as the worker's group phase: rebalancing from the revoke to
    the resumed fetches; a member once they resumed (or at its first batch)."""
    if app.rebalancing:
        if health.group_phase == "member":
            health.record_group("rebalancing")
    elif health.group_phase == "resuming":
        health.record_group("member")


def _crash_reason(app: faust.App) -> str | None:
    consumer = app.consumer
    return consumer.failure if isinstance(consumer, FetchConsumer) else None


def _record_lag(
    app: faust.App, metrics: Metrics, owned: Sequence[TP], processed: dict[TP, int]
) -> int:
    """Update the lag gauges of the owned partitions; returns the total lag (see
    ``messages_waiting``: counted from the offset a partition resumed from)."""
    total = 0
    consumer = app.consumer
    for tp in owned:
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # partition revoked meanwhile
            continue
        if highwater is None:
            continue
        resumed = consumer.resumed_from(tp) if isinstance(consumer, FetchConsumer) else 0
        lag = messages_waiting(highwater, processed.get(tp), resumed)
        metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)
        total += lag
    return total
