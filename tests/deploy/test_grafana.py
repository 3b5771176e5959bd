"""The Grafana dashboard and its provisioning: valid, parsable queries of real metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.support import (
    DASHBOARD,
    DEPLOY,
    dashboard_expressions,
    load_yaml,
    metric_names_in,
    promtool,
    worker_series_names,
)

PROVISIONING = DEPLOY / "grafana" / "provisioning"


def _dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def _promtool_parses(expressions: dict[str, str], folder: Path) -> tuple[bool, str]:
    """Check expressions with Prometheus' own parser: as recording rules, via promtool."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, expr in enumerate(expressions.values())
    ]
    (folder / "queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]}))
    result = promtool("check", "rules", "queries.yml", cwd=folder)
    return result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_a_grafana_dashboard_with_unique_panels() -> None:
    """Valid JSON with a uid, a title and panels of distinct ids that do not overlap."""
    doc = _dashboard()
    assert doc["uid"] and doc["title"] and doc["schemaVersion"] >= 36
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in doc["panels"]:
        pos = panel["gridPos"]
        panel_cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                       for y in range(pos["y"], pos["y"] + pos["h"])}  # fmt: skip
        assert not cells & panel_cells, panel["title"]
        assert pos["x"] + pos["w"] <= 24
        cells |= panel_cells


def test_panels_query_the_datasource_variable() -> None:
    """Every panel and query uses the Prometheus datasource picked by the `datasource` variable."""
    doc = _dashboard()
    (variable,) = [v for v in doc["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    ref = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
    for panel in doc["panels"]:
        assert panel["datasource"] == ref, panel["title"]
        assert all(t["datasource"] == ref for t in panel["targets"]), panel["title"]


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    """Prometheus' parser (promtool) accepts every panel query."""
    ok, output = _promtool_parses(dashboard_expressions(), tmp_path)
    assert ok, output


def test_a_broken_query_is_caught(tmp_path: Path) -> None:
    """The same check rejects a query with a syntax error."""
    ok, _ = _promtool_parses(
        {"broken": "sum by (topic (rate(engagement_events_total[1m]))"}, tmp_path
    )
    assert not ok


def test_every_query_reads_metrics_the_worker_exposes() -> None:
    """Each engagement_* series a panel reads is on the worker's /metrics page."""
    exposed = worker_series_names()
    for title, expr in dashboard_expressions().items():
        names = metric_names_in(expr)
        assert names <= exposed, (title, names - exposed)
    assert not metric_names_in("engagement_event_to_store_second_bucket") <= exposed


def test_dashboard_shows_what_operators_need() -> None:
    """Throughput by topic, lag, latency percentiles, DLQ by reason, alerts, bands, readiness."""
    exprs = list(dashboard_expressions().values())

    def shown(pattern: str) -> bool:
        return any(re.search(pattern, e) for e in exprs)

    assert shown(r"sum by \(topic\) \(rate\(engagement_events_total")
    assert shown(r"engagement_consumer_lag")
    latency = (
        r"histogram_quantile\(([\d.]+), sum by \(le\) \(rate\(engagement_event_to_store_seconds"
    )
    quantiles = {q for e in exprs for q in re.findall(latency, e)}
    assert {"0.5", "0.95", "0.99"} <= quantiles
    assert shown(r"sum by \(reason\) \(rate\(engagement_dead_letters_total")
    assert shown(r"sum by \(type.*\) \(rate\(engagement_alerts_total")
    assert shown(r"by \(band\) \(engagement_customers\)")
    assert shown(r"^engagement_ready$")


def test_provisioning_loads_the_dashboard_from_prometheus() -> None:
    """The provisioned default datasource is Prometheus; the provider serves the dashboard."""
    (source,) = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    (provider,) = load_yaml(PROVISIONING / "dashboards" / "engagement.yml")["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
