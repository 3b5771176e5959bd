"""Prometheus metrics of the worker. No label ever carries a customer id."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                  30)  # fmt: skip


class Metrics:
    """All worker metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "engagement_events",
            "Input messages by topic, event type and outcome "
            "(scored, duplicate, expired, dead_lettered, ignored, profiled).",
            ["topic", "type", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "engagement_dead_letters", "Messages sent to the dead-letter topic, by reason.",
            ["reason"], registry=r,
        )  # fmt: skip
        self.ignored = Counter(
            "engagement_ignored",
            "Messages skipped without a dead letter, by reason (unmapped_track, unscored_call).",
            ["reason"], registry=r,
        )  # fmt: skip
        self.alerts = Counter(
            "engagement_alerts", "Alerts published, by type and trigger.",
            ["type", "trigger"], registry=r,
        )  # fmt: skip
        self.alerts_by_scope = Counter(
            "engagement_alerts_by_scope", "Alerts published, by scope (customer, account).",
            ["scope"], registry=r,
        )  # fmt: skip
        self.accounts = Gauge(
            "engagement_accounts", "Accounts per account band (models with accounts).", ["band"],
            registry=r,
        )  # fmt: skip
        self.customers = Gauge(
            "engagement_customers", "Customers per engagement band.", ["band"], registry=r
        )
        self.segment_customers = Gauge(
            "engagement_segment_customers",
            "Customers per segment value and band (the model's segment dimensions; at most "
            "max_values values per dimension, plus (none) and (other)).",
            ["dimension", "value", "band"], registry=r,
        )  # fmt: skip
        self.segment_mean_score = Gauge(
            "engagement_segment_mean_score", "Mean score of the customers of a segment value.",
            ["dimension", "value"], registry=r,
        )  # fmt: skip
        self.event_to_store = Histogram(
            "engagement_event_to_store_seconds",
            "Time from a message's Kafka timestamp to its score being stored.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "engagement_stage_seconds",
            "Time spent per stage (stream.worker.stages): per message, kafka (Kafka timestamp "
            "to the fetch reply) and batch (reply to the batch closing); per batch, process, "
            "store, publish, accounts and offset_commit.",
            ["stage"], buckets=_STAGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "engagement_consumer_lag", "Messages behind the partition's high watermark.",
            ["topic", "partition"], registry=r,
        )  # fmt: skip
        self.redis_errors = Counter(
            "engagement_redis_errors", "Failed Redis round trips (retried), by operation.",
            ["operation"], registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "engagement_processing_errors",
            "Failed batch or sweep attempts other than Redis errors (retried), by kind.",
            ["operation", "error"], registry=r,
        )  # fmt: skip
        self.ready = Gauge(
            "engagement_ready", "1 while the worker passes its readiness checks, else 0.",
            registry=r,
        )  # fmt: skip
        self.dependency_up = Gauge(
            "engagement_dependency_up", "1 if the last check of a dependency succeeded, else 0.",
            ["dependency"], registry=r,
        )  # fmt: skip
        self.batches = Histogram(
            "engagement_batch_messages", "Messages per processed batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000), registry=r,
        )  # fmt: skip
        self.batch_ends = Counter(
            "engagement_batch_ends", "Batches by why they stopped growing: caught_up with "
            "the broker, full (BATCH_MAX; a backlog), or window (BATCH_WITHIN passed).",
            ["reason"], registry=r,
        )  # fmt: skip
        self.swept = Counter(
            "engagement_window_sweeps", "Customers re-evaluated because their window moved.",
            registry=r,
        )  # fmt: skip
        self.sweep_behind = Gauge(
            "engagement_sweep_behind_seconds",
            "Age of the oldest due window change still waiting on this worker.",
            registry=r,
        )
        self.conflicts = Counter(
            "engagement_store_conflicts", "Optimistic-version conflicts (re-read and retried).",
            registry=r,
        )  # fmt: skip
        self.kernel = Info(
            "engagement_kernel",
            "The per-event kernel this worker loaded (ENGAGEMENT_KERNEL): rust, the compiled "
            "one, or python, the pure core.",
            registry=r,
        )
        self.gc_seconds = Counter(
            "engagement_gc_seconds", "Time spent in Python's cyclic garbage collector.",
            registry=r,
        )  # fmt: skip

    def render(self) -> bytes:
        """The exposition text for ``/metrics``."""
        return generate_latest(self.registry)
