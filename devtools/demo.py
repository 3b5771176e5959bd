"""``make demo``: local stack, a real worker process, the simulator, live progress, a summary."""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer

from devtools.localstack import LocalStack
from devtools.localstack.stack import free_port
from devtools.localstack.web import WebProcess
from devtools.localstack.worker import WorkerProcess
from devtools.sim.run import SimStats, simulate
from stream.adapters.kafka_admin import ensure_topics
from stream.adapters.redis_client import SyncClient, sync_redis
from stream.adapters.redis_indexes import band_bounds
from stream.adapters.redis_keys import customer_key
from stream.config.model_file import load_model
from stream.config.settings import Settings

__all__ = ["AlertCollector", "run_demo"]

_DEMO_MODEL = load_model("demo")
_SHORT = {"churn_risk_entered": "churn", "power_user_entered": "upsell", "score_drop": "drop",
          "score_rise": "rise"}  # fmt: skip


class AlertCollector(threading.Thread):
    """Reads the alert topic in the background."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.alerts: list[dict[str, Any]] = []  # customer alerts
        self.account_alerts: list[dict[str, Any]] = []  # ``scope: account`` (model accounts)
        self._stop_flag = threading.Event()
        self._consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None,
        )  # fmt: skip

    def run(self) -> None:
        while not self._stop_flag.is_set():
            for records in self._consumer.poll(timeout_ms=200).values():
                for doc in (json.loads(r.value) for r in records):
                    (self.account_alerts if doc.get("scope") == "account" else self.alerts).append(
                        doc
                    )
        self._consumer.close()

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(10)


def run_demo(
    workdir: Path, customers: int, days: int, redis_cluster: int = 0, serve: bool = False
) -> int:
    """Run the whole demo (scores in a Redis Cluster of ``redis_cluster`` masters, if not
    0); returns the exit code. With ``serve``, keep the stack, the worker, the simulated
    customers and the web page going until Ctrl-C."""
    started = time.monotonic()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    print("Starting the local stack (Kafka from Maven Central jars, redis-server)...", flush=True)
    with LocalStack(workdir / "stack", redis_cluster=redis_cluster) as stack:
        web_port = free_port()
        env = {
            **stack.env(), "ENGAGEMENT_MODEL": "demo", "ENGAGEMENT_WEB_PORT": str(web_port),
            "ENGAGEMENT_APP_ID": "engagement-demo", "ENGAGEMENT_PARTITIONS": "4",
            "ENGAGEMENT_DATA_DIR": str(workdir / "worker"), "ENGAGEMENT_LOG_LEVEL": "warning",
        }  # fmt: skip
        settings = Settings.from_env(env)
        model = _DEMO_MODEL
        ensure_topics(settings)
        print(f"  Kafka {stack.kafka_bootstrap}, Redis {stack.redis_url}", flush=True)
        worker = WorkerProcess(env, workdir / "worker.log", web_port)
        print("Starting the worker...", flush=True)
        worker.start()
        token = f"demo-{secrets.token_hex(8)}"
        web = WebProcess({**env, "ENGAGEMENT_API_TOKEN": token}, workdir / "web.log",
                         free_port(), snapshot_every_s=model.bucket_ms / 1000)  # fmt: skip
        web.start()
        print(f"Web page: {web.url}  (sign in with the token {token})", flush=True)
        collector = AlertCollector(stack.kafka_bootstrap, settings.topics.alerts)
        collector.start()
        ranks = sync_redis(settings.redis)
        print(
            f"Simulating {customers} customers for {days} demo days "
            f"({model.bucket_ms / 1000:g} s each; window {model.window_ms / 1000:g} s):",
            flush=True,
        )
        try:
            stats, people = simulate(
                stack.kafka_bootstrap, settings.topics, customers=customers, days=days,
                day_ms=model.bucket_ms, window_ms=model.window_ms,
                on_day=lambda day, s: _progress(day, s, ranks, settings, collector),
            )  # fmt: skip
            _wait_for_catch_up(
                worker, stats.events + stats.duplicates + stats.malformed + stats.profile_calls
            )
            _wait_for_alerts(collector, deadline_s=started + 150 - time.monotonic())
            _summary(worker, stats, people, collector, ranks, settings, started)
            print(f"\nWeb page: {web.url}  (token {token})", flush=True)
            if serve:
                _serve(stack.kafka_bootstrap, settings, customers, days)
        finally:
            collector.stop()
            web.stop()
            worker.stop()
    print(f"Done in {time.monotonic() - started:.0f} s; everything stopped.")
    return 0


def _serve(bootstrap: str, settings: Settings, customers: int, days: int) -> None:
    """Keep the simulated customers living (round after round) until Ctrl-C."""
    model = _DEMO_MODEL
    print("Serving until Ctrl-C: the customers keep living, the page stays up.", flush=True)
    round_ = 0
    try:
        while True:
            round_ += 1
            simulate(bootstrap, settings.topics, customers=customers, days=days,
                     day_ms=model.bucket_ms, window_ms=model.window_ms,
                     seed=7 + round_)  # fmt: skip
            print(f"  simulation round {round_} done; starting another", flush=True)
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)


def _band_counts(ranks: SyncClient, settings: Settings) -> dict[str, int]:
    model = _DEMO_MODEL
    counts = {}
    for name in model.bands.names:
        bounds = band_bounds(model.bands, name)
        counts[name] = int(ranks.zcount(f"{settings.redis_prefix}:rank", *bounds))
    return counts


def _progress(
    day: int, stats: SimStats, ranks: SyncClient, settings: Settings, alerts: AlertCollector
) -> None:
    if (day + 1) % 4:
        return
    counts = _band_counts(ranks, settings)
    types = Counter(a["type"] for a in alerts.alerts)
    bands = " ".join(f"{name}={count}" for name, count in counts.items())
    shown = " ".join(f"{_SHORT.get(k, k)}={v}" for k, v in sorted(types.items())) or "none"
    print(f"  day {day + 1:>3}: sent {stats.events:>6}  bands: {bands}  alerts: {shown}",
          flush=True)  # fmt: skip


def _wait_for_catch_up(worker: WorkerProcess, sent: int, timeout_s: float = 20.0) -> None:
    """Wait until the worker has accounted for every message the simulator sent."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if sum(worker.counters("engagement_events", "outcome").values()) >= sent:
            return
        time.sleep(0.5)


def _wait_for_alerts(collector: AlertCollector, deadline_s: float) -> None:
    end = time.monotonic() + max(0.0, deadline_s)
    while time.monotonic() < end:
        triggers = {a["trigger"] for a in collector.alerts if a["type"] == "churn_risk_entered"}
        if {"event", "window"} <= triggers:
            return
        time.sleep(0.5)


def _memory_per_customer(ranks: SyncClient, settings: Settings, people: list[Any]) -> float:
    total = 0
    for person in people:
        total += int(
            ranks.memory_usage(customer_key(settings.redis_prefix, person.customer_id)) or 0
        )
    return total / max(1, len(people))


def _summary(
    worker: WorkerProcess,
    stats: SimStats,
    people: list[Any],
    collector: AlertCollector,
    ranks: SyncClient,
    settings: Settings,
    started: float,
) -> None:
    outcomes = worker.counters("engagement_events", "outcome")
    dlq = worker.counters("engagement_dead_letters", "reason")
    print("\n=== Summary ===")
    print(f"wall time so far: {time.monotonic() - started:.0f} s")
    print(f"simulator sent: {stats.events} events, {stats.duplicates} duplicate re-sends, "
          f"{stats.malformed} malformed, {stats.profile_calls} identify/group calls "
          f"({len({p.account for p in people})} accounts)")  # fmt: skip
    print("worker processed: " + ", ".join(f"{k}={v:g}" for k, v in sorted(outcomes.items())))
    print("dead letters by reason: " + (", ".join(f"{k}={v:g}" for k, v in dlq.items()) or "none"))
    print("band distribution: " + ", ".join(
        f"{k}={v}" for k, v in _band_counts(ranks, settings).items()))  # fmt: skip
    print(f"Redis memory per customer: {_memory_per_customer(ranks, settings, people):.0f} bytes "
          "(customer hash with its packed applied record, MEMORY USAGE)")  # fmt: skip
    churn = [a for a in collector.alerts if a["type"] == "churn_risk_entered"]
    triggers = Counter(a["trigger"] for a in churn)
    others = Counter(a["type"] for a in collector.alerts if a["type"] != "churn_risk_entered")
    print("other alerts: " + (", ".join(f"{k}={v}" for k, v in sorted(others.items())) or "none"))
    print(f"churn-risk alerts: {len(churn)} ({triggers['event']} event-triggered, "
          f"{triggers['window']} window-triggered); a few:")  # fmt: skip
    shown = [a for a in churn if a["trigger"] == "event"][:4]
    shown += [a for a in churn if a["trigger"] == "window"][:4]
    for alert in shown:
        reasons = ", ".join(f"{r['factor']} {r['change']:+g}" for r in alert["reasons"][:3])
        print(f"  {alert['customer_id']:<22} {alert['trigger']:<6} "
              f"{alert['previous_band']} {alert['previous_score']:g} -> {alert['score']:g}"
              f"  because: {reasons}")  # fmt: skip
    if collector.account_alerts:
        kinds = Counter(a["type"] for a in collector.account_alerts)
        print("account alerts: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    sample = next((p.customer_id for p in people if p.persona == "loyal"), people[0].customer_id)
    view = json.loads(worker.get(f"/customers/{sample}") or b"{}")
    print(f"\nGET /customers/{sample}:")
    print(json.dumps(view, indent=2))
