"""A real Prometheus scrapes a running worker: sane metrics, the shipped rules fire on real
input, and every dashboard query runs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dockerfile
import pytest
import yaml

from tests.deploy.support import (
    DEPLOY,
    RULES,
    WORKER_JOB,
    alert_rules,
    dashboard_expressions,
    load_yaml,
    metric_names_in,
    series_names,
)
from tests.integration.conftest import wait_until
from tests.integration.prometheus_server import PrometheusServer

pytestmark = pytest.mark.integration
# Alerts this test makes fire; their `for:` is shortened, their expressions are kept.
FAST = {"EngagementDeadLettersHigh", "EngagementWorkerDown"}
# Panels that stay empty while nothing fails.
ERROR_PANELS = {"Errors/s (retried)/A", "Errors/s (retried)/B"}


def _test_rules() -> dict[str, Any]:
    """The shipped rules with a one-second `for:` on the alerts this test triggers."""
    rules: dict[str, Any] = load_yaml(RULES)
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in FAST:
                rule["for"] = "1s"
    return rules


def _healthcheck(port: int) -> int:
    """Run the image's HEALTHCHECK command against a worker on this machine; its exit code."""
    (check,) = [
        c for c in dockerfile.parse_file(str(DEPLOY / "Dockerfile")) if c.cmd == "HEALTHCHECK"
    ]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "ENGAGEMENT_WEB_PORT": str(port)}
    return subprocess.run(["sh", "-c", check.value[1]], env=env, check=False, timeout=30).returncode


def _unmapped_track(customer: str, n: int, at_ms: int) -> dict[str, object]:
    """A Segment track call the model does not map: ignored and counted, not dead-lettered."""
    return {"type": "track", "event": "Tooltip Hovered", "userId": customer,
            "messageId": f"{customer}-unmapped-{n}", "timestamp": at_ms}  # fmt: skip


def _segments_model(tmp: Path) -> Path:
    """The default model with one segment dimension, plan (so the segment panel has data)."""
    doc = load_yaml(Path(__file__).parents[2] / "stream/config/models/default.yaml")
    doc["segments"] = {"dimensions": ["plan"]}
    path = tmp / "segments-model.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _identify(customer: str, at_ms: int, plan: str) -> dict[str, object]:
    return {"type": "identify", "userId": customer, "messageId": f"{customer}-identify",
            "timestamp": at_ms, "traits": {"plan": plan}}  # fmt: skip


def _page_view(customer: str, n: int, at_ms: int, kind: str = "page_view") -> dict[str, object]:
    return {
        "event_id": f"{customer}-{n}",
        "customer_id": customer,
        "type": kind,
        "timestamp": at_ms,
    }


def test_prometheus_scrapes_the_worker_and_the_rules_fire(deploy: Any, tmp_path: Path) -> None:
    """Metrics arrive with the right values, the DLQ and worker-down alerts fire, panels run."""
    d = deploy(model=str(_segments_model(tmp_path)))
    worker = d.start_worker()
    assert _healthcheck(worker.web_port) == 0
    target = f"127.0.0.1:{worker.web_port}"
    with PrometheusServer(tmp_path / "prometheus", WORKER_JOB, [target], _test_rules()) as prom:
        wait_until(lambda: prom.value(f'up{{job="{WORKER_JOB}"}}') == 1)

        now = int(time.time() * 1000)
        customers = [f"p{i:02d}" for i in range(20)]
        _send_customers(d, customers, now)
        wait_until(lambda: d.customer("quitter").get("score"))
        d.send("app_installs", "quitter", _page_view("quitter", 2, now + 1, "app_uninstall"))
        d.flush()
        scored = 2 * len(customers) + 2

        wait_until(lambda: prom.value('sum(engagement_events_total{outcome="scored"})') == scored)
        wait_until(lambda: prom.value("sum(engagement_alerts_total)") == 1)
        wait_until(lambda: prom.value("engagement_ready") == 1)
        for dependency in ("redis", "kafka"):
            assert prom.value(f'engagement_dependency_up{{dependency="{dependency}"}}') == 1
        # The band counts come from the owner of clickstream partition 0 (here: the only
        # worker), refreshed every 5 s: the customers and the one in churn risk.
        wait_until(lambda: prom.value("sum(engagement_customers)") == len(customers) + 1)
        assert prom.value('engagement_customers{band="churn_risk"}') == 1
        _check_segments(prom, d, customers)
        # Latency is observed for every stored message, the identify calls too.
        assert prom.value("sum(engagement_event_to_store_seconds_count)") == scored + 20
        p99 = prom.value(
            "histogram_quantile(0.99, sum by (le) (engagement_event_to_store_seconds_bucket))"
        )
        assert p99 is not None and math.isfinite(p99) and p99 >= 0

        dlq_rule = alert_rules(RULES)["EngagementDeadLettersHigh"]
        assert prom.query(dlq_rule["expr"]) == []
        assert "EngagementDeadLettersHigh" not in prom.firing()

        # One bad message first, so that Prometheus has seen the counter before it grows.
        d.send("clickstream", "mallory", b"{not json")
        d.send("clickstream", customers[0], _unmapped_track(customers[0], 0, now))
        d.flush()
        wait_until(lambda: prom.value("sum(engagement_dead_letters_total)") == 1)
        wait_until(lambda: prom.value("sum(engagement_ignored_total)") == 1)
        # Then as many bad messages as good ones: half the input is dead-lettered.
        for n in range(100):
            d.send("clickstream", "mallory", b"{not json")
            c = customers[n % len(customers)]
            d.send("clickstream", c, _page_view(c, 10 + n, now))
            if n % 10 == 0:
                d.send("clickstream", c, _unmapped_track(c, 1 + n, now))
        d.flush()
        wait_until(lambda: "EngagementDeadLettersHigh" in prom.firing())
        wait_until(lambda: prom.value("sum(engagement_ignored_total)") == 11)
        assert prom.value('engagement_dead_letters_total{reason="invalid_json"}') == 101
        assert prom.value('sum(engagement_events_total{outcome="dead_lettered"})') == 101
        assert prom.value('sum(engagement_events_total{outcome="scored"})') == scored + 100

        _check_dashboard_queries(prom, (worker.get("/metrics") or b"").decode())

        worker.stop()
        assert _healthcheck(worker.web_port) != 0
        wait_until(lambda: prom.value(f'up{{job="{WORKER_JOB}"}}') == 0)
        wait_until(lambda: "EngagementWorkerDown" in prom.firing())


def _send_customers(d: Any, customers: list[str], now: int) -> None:
    """Two page views each, half on plan pro and half on free; one more customer (no plan)."""
    for i, c in enumerate(customers):
        d.send("clickstream", c, _identify(c, now, "pro" if i % 2 else "free"))
        d.send("clickstream", c, _page_view(c, 1, now))
        d.send("clickstream", c, _page_view(c, 2, now))
    d.send("clickstream", "quitter", _page_view("quitter", 1, now))
    d.flush()


def _check_segments(prom: PrometheusServer, d: Any, customers: list[str]) -> None:
    """Segment rollups from the band-count exporter: the plan of every identified customer."""
    wait_until(lambda: prom.value('sum(engagement_segment_customers{value="pro"})') == 10)
    assert prom.value('sum(engagement_segment_customers{value="free"})') == 10
    assert prom.value('sum(engagement_segment_customers{value="(none)"})') == 1  # quitter
    pro_score = float(d.customer(customers[1])["score"])  # every pro customer: the same
    assert prom.value('engagement_segment_mean_score{value="pro"}') == pro_score


def _check_dashboard_queries(prom: PrometheusServer, exposition: str) -> None:
    """Every panel query names real series, is accepted by the server and (bar errors) has data."""
    exposed = series_names(exposition)
    queries = dashboard_expressions()
    for title, expr in queries.items():
        assert metric_names_in(expr) <= exposed, title
        prom.query(expr)  # raises on a query the server rejects

    def empty_panels() -> list[str]:
        return [t for t, e in queries.items() if t not in ERROR_PANELS and not prom.query(e)]

    try:
        wait_until(lambda: not empty_panels())
    except AssertionError:
        raise AssertionError(f"panels without data: {empty_panels()}") from None
