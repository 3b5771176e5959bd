"""Latency at a fixed offered load: a paced producer stamps events and the harness times
them itself.

- event-to-store: a probe event for a brand-new customer is stamped just before it is
  produced; Redis keyspace notifications (hash writes on the probe customers' keys)
  say when its score was stored.
- event-to-alert: customers primed to a small positive score get an ``app_uninstall``
  (-40 points, so they enter ``churn_risk``); the alert's ``occurred_at_ms`` is the
  event's own timestamp and the alert record's Kafka timestamp is when it was published.
- the harness's own share: the paced producer fetches the topics' metadata before it
  starts (otherwise its first events wait for it and count as the worker's latency), and
  Kafka's acknowledgement of each probe is timed (``produce_to_ack``): latency the worker
  cannot be blamed for.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from devtools.bench.dataset import customer_id, document, producer, random_kind, topic_of
from devtools.bench.measure import percentile
from devtools.localstack.worker import WorkerProcess
from stream.config.settings import TopicNames

__all__ = ["LatencyResult", "histogram_quantile", "run_latency"]

_PROBE = "probe-"
_ALERTING = "alerting-"


@dataclass(slots=True)
class LatencyResult:
    """What the paced run offered and the latencies it observed (milliseconds)."""

    offered_rate: float
    achieved_rate: float
    seconds: float
    store_ms: list[float] = field(default_factory=list)
    alert_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    store_probes: int = 0
    alert_probes: int = 0
    worker_cpu_utilisation: float = 0.0
    worker_histogram: dict[str, float] = field(default_factory=dict)
    #: p50/p99 (seconds) and count of each of the worker's stages over the run
    worker_stages: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def summary(values: list[float], sent: int) -> dict[str, Any]:
            return {
                "samples": len(values),
                "sent": sent,
                "p50_ms": round(percentile(values, 50), 1),
                "p99_ms": round(percentile(values, 99), 1),
                "max_ms": round(max(values), 1) if values else None,
            }

        return {
            "offered_events_per_s": round(self.offered_rate, 1),
            "achieved_events_per_s": round(self.achieved_rate, 1),
            "seconds": round(self.seconds, 1),
            "event_to_store": summary(self.store_ms, self.store_probes),
            "event_to_alert": summary(self.alert_ms, self.alert_probes),
            "produce_to_ack": summary(self.ack_ms, self.store_probes + self.alert_probes),
            "worker_cpu_utilisation": round(self.worker_cpu_utilisation, 3),
            "worker_histogram_event_to_store_s": self.worker_histogram,
            "worker_stages_s": self.worker_stages,
        }


class _StoreWatcher(threading.Thread):
    """Records when each probe customer's hash is first written (keyspace notifications)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        super().__init__(daemon=True)
        client.config_set("notify-keyspace-events", "Kh")
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        db = client.connection_pool.connection_kwargs.get("db", 0)
        self.pattern = f"__keyspace@{db}__:{prefix}:{{{_PROBE}*"
        self.pubsub.psubscribe(self.pattern)
        self.seen: dict[str, float] = {}
        self._stop_flag = threading.Event()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            message = self.pubsub.get_message(timeout=0.05)
            if message is None or message.get("type") != "pmessage":
                continue
            at = time.time()
            channel = message["channel"].decode()
            probe = channel[channel.index("{") + 1 : channel.index("}")]
            self.seen.setdefault(probe, at)

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(5)
        self.pubsub.close()


class _AlertReader(threading.Thread):
    """Reads the alert topic: (alert document, record timestamp ms)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                      enable_auto_commit=False, fetch_max_wait_ms=10)  # fmt: skip
        parts = [TopicPartition(topic, p) for p in self.consumer.partitions_for_topic(topic) or ()]
        self.consumer.assign(parts)
        self.consumer.seek_to_beginning()
        self.alerts: list[tuple[dict[str, Any], int]] = []
        self._stop_flag = threading.Event()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            for records in self.consumer.poll(timeout_ms=50).values():
                self.alerts += [(orjson.loads(r.value), r.timestamp) for r in records]
        self.consumer.close()

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(10)


def run_latency(
    bootstrap: str,
    client: redis.Redis,
    topics: TopicNames,
    worker: WorkerProcess,
    prefix: str,
    *,
    rate: float,
    seconds: float,
    population: int,
    cpu_of_worker: Callable[[], float],
    alerting_customers: int = 400,
    store_probes_per_s: float = 100.0,
    before_load: Callable[[], None] = lambda: None,
) -> LatencyResult:
    """Offer ``rate`` events/s for ``seconds`` to a running worker and time probes."""
    _prime(bootstrap, client, topics, prefix, alerting_customers)
    watcher = _StoreWatcher(client, prefix)
    reader = _AlertReader(bootstrap, topics.alerts)
    watcher.start()
    reader.start()
    histogram_before, stages_before = _histogram(worker), _stages(worker)
    before_load()
    cpu_before = cpu_of_worker()
    try:
        result, sent_probes = _paced(bootstrap, topics, rate, seconds, population,
                                     alerting_customers, store_probes_per_s)  # fmt: skip
        result.worker_cpu_utilisation = (cpu_of_worker() - cpu_before) / result.seconds
        _wait(lambda: len(watcher.seen) >= len(sent_probes) and
              len(reader.alerts) >= result.alert_probes)  # fmt: skip
    finally:
        watcher.stop()
        reader.stop()
        client.config_set("notify-keyspace-events", "")
    result.store_ms = [
        (watcher.seen[p] - t) * 1000 for p, t in sent_probes.items() if p in watcher.seen
    ]
    result.alert_ms = [
        float(ts - alert["occurred_at_ms"])
        for alert, ts in reader.alerts
        if alert["customer_id"].startswith(_ALERTING) and alert["trigger"] == "event"
    ]
    result.worker_histogram = histogram_quantile(histogram_before, _histogram(worker))
    stages_after = _stages(worker)
    result.worker_stages = {stage: histogram_quantile(stages_before.get(stage, {}), buckets)
                            for stage, buckets in stages_after.items()}  # fmt: skip
    return result


def _prime(
    bootstrap: str, client: redis.Redis, topics: TopicNames, prefix: str, count: int
) -> None:
    """Give each alerting customer one page view (3 points: very_disengaged, armed)."""
    sink = producer(bootstrap, linger_ms=5)
    rng = random.Random(3)
    now = int(time.time() * 1000)
    clickstream = topic_of(topics, "clickstream")
    names = [f"{_ALERTING}{i}" for i in range(count)]
    for name in names:
        sink.produce(clickstream, document(f"prime-{name}", name, "page_view", now, rng),
                     name.encode(), timestamp=now)  # fmt: skip
    sink.flush(30)

    def all_stored() -> bool:
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.exists(f"{prefix}:{{{name}}}")
        return all(pipe.execute())

    if not _wait(all_stored, timeout_s=120):
        raise RuntimeError("the worker did not store the primed customers within 120s")


def _paced(
    bootstrap: str,
    topics: TopicNames,
    rate: float,
    seconds: float,
    population: int,
    alerting: int,
    probes_per_s: float,
) -> tuple[LatencyResult, dict[str, float]]:
    """Produce ``rate`` events/s in 2 ms ticks: store probes and uninstalls of the
    alerting customers on their own even schedules, existing customers' events between."""
    sink = producer(bootstrap, linger_ms=1)
    rng = random.Random(5)
    names = {role: topic_of(topics, role) for role in topics.inputs.values()}
    for name in names.values():
        sink.list_topics(name, timeout=30)
    probes: dict[str, float] = {}
    acks: list[float] = []

    def acked(error: Any, message: Any) -> None:
        if error is None:
            acks.append(time.time() * 1000 - message.timestamp()[1])

    alerts_sent = sent = 0
    alert_gap, probe_gap = seconds / max(1, alerting), 1 / probes_per_s
    start = time.monotonic()
    next_probe, next_alert = start, start + alert_gap / 2
    while (now_mono := time.monotonic()) - start < seconds:
        while sent < int((now_mono - start) * rate):
            sent += 1
            now_s = time.time()
            timed = True
            if now_mono >= next_probe:
                next_probe += probe_gap
                name, role, kind = f"{_PROBE}{len(probes)}", "clickstream", "page_view"
                probes[name] = now_s
            elif now_mono >= next_alert and alerts_sent < alerting:
                next_alert += alert_gap
                name, role, kind = f"{_ALERTING}{alerts_sent}", "app_installs", "app_uninstall"
                alerts_sent += 1
            else:
                name = customer_id(rng.randrange(population))
                role, kind = random_kind(rng)
                timed = False
            now = int(now_s * 1000)
            sink.produce(names[role], document(f"lat-{sent}", name, kind, now, rng),
                         name.encode(), timestamp=now,
                         on_delivery=acked if timed else None)  # fmt: skip
        sink.poll(0)
        time.sleep(0.002)
    took = time.monotonic() - start
    sink.flush(30)
    result = LatencyResult(offered_rate=rate, achieved_rate=sent / took, seconds=took,
                           store_probes=len(probes), alert_probes=alerts_sent,
                           ack_ms=acks)  # fmt: skip
    return result, probes


def _wait(check: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _histogram(worker: WorkerProcess) -> dict[float, float]:
    return _buckets(worker, "engagement_event_to_store_seconds").get("", {})


def _stages(worker: WorkerProcess) -> dict[str, dict[float, float]]:
    return _buckets(worker, "engagement_stage_seconds", label="stage")


def _buckets(
    worker: WorkerProcess, name: str, label: str | None = None
) -> dict[str, dict[float, float]]:
    """A histogram's cumulative bucket counts from the worker's /metrics, by the value of
    ``label`` ("" without one)."""
    text = (worker.get("/metrics") or b"").decode()
    found: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    key = sample.labels.get(label, "") if label else ""
                    found.setdefault(key, {})[float(sample.labels["le"])] = sample.value
    return found


def histogram_quantile(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """p50/p99 (seconds) of the worker's own histogram over the interval, as Prometheus
    would estimate them (linear within a bucket)."""
    delta = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = delta[-1][1] if delta else 0.0
    out: dict[str, float] = {"count": total}
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        rank, lower, below = q * total, 0.0, 0.0
        for le, cumulative in delta:
            if cumulative >= rank and total:
                upper = le if le != float("inf") else lower
                share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
                out[name] = round(lower + (upper - lower) * share, 4)
                break
            lower, below = le, cumulative
    return out
