"""End to end on real Kafka and Redis: exact scores, queries, alerts of both triggers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.integration.conftest import short_model, wait_until

pytestmark = pytest.mark.integration


def _now() -> int:
    return int(time.time() * 1000)


def _native(kind: str, customer: str, n: int, **props: object) -> dict[str, object]:
    return {"event_id": f"{customer}-{kind}-{n}", "customer_id": customer, "type": kind,
            "timestamp": _now(), "properties": props}  # fmt: skip


def _track(name: str, user: str, n: int, **props: object) -> dict[str, object]:
    return {"type": "track", "event": name, "userId": user, "messageId": f"{user}-{name}-{n}",
            "timestamp": _now(), "properties": props, "context": {"groupId": "acct"}}  # fmt: skip


def test_both_shapes_on_all_topics_score_exactly(deploy_on) -> None:
    """Native and Segment events on the three topics give the hand-computed breakdowns."""
    d = deploy_on()
    worker = d.start_worker()
    for i in range(3):
        d.send("clickstream", "alice", _native("page_view", "alice", i))
    for i in range(2):
        d.send("clickstream", "alice", _native("click", "alice", i))
    for kind in ("like", "feature_used", "conversion"):
        d.send("clickstream", "alice", _native(kind, "alice", 0))
    d.send("clickstream", "alice", _native("survey_response", "alice", 0, nps=10))
    d.send("app_installs", "alice", _native("app_install", "alice", 0))
    d.send("sessions", "alice", _native("session_start", "alice", 0))
    d.send("sessions", "alice", _native("session_end", "alice", 0, duration_seconds=600,
                                        page_count=5))  # fmt: skip
    d.send("clickstream", "bob", _track("Page Viewed", "bob", 0))
    d.send("clickstream", "bob", _track("Page Viewed", "bob", 1))
    d.send("clickstream", "bob", _track("Survey Answered", "bob", 0, csat=2))
    d.send("app_installs", "bob", _track("Application Installed", "bob", 0))
    d.send("sessions", "bob", _track("Session Ended", "bob", 0, duration_seconds=5, page_count=1))
    d.flush()

    alice = wait_until(lambda: (c := d.customer("alice")).get("score") == "53.5" and c)
    assert orjson.loads(alice["breakdown"]) == {
        "page_views": 3.0, "clicks": 1.0, "social": 2.0, "feature_use": 3.0, "conversions": 10.0,
        "nps": 15.0, "app_installs": 10.0, "time_on_site": 5.0, "pages_per_session": 2.5,
        "regularity": 2.0,
    }  # fmt: skip
    assert alice["band"] == "somewhat_engaged"
    bob = wait_until(lambda: (c := d.customer("bob")).get("score") == "6" and c)
    assert orjson.loads(bob["breakdown"]) == {
        "page_views": 2.0, "csat": -5.0, "app_installs": 10.0, "bounces": -3.0, "regularity": 2.0
    }  # fmt: skip

    view = json.loads(worker.get("/customers/alice") or b"{}")
    assert view["score"] == 53.5 and view["band"] == "somewhat_engaged"
    assert view["breakdown"]["time_on_site"] == 5.0
    env = {**os.environ, **d.env}
    cli = subprocess.run([sys.executable, "-m", "stream.cli.main", "score", "bob", "--json"],
                         env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(cli.stdout)["score"] == 6.0
    top = subprocess.run([sys.executable, "-m", "stream.cli.main", "top", "-n", "5"],
                         env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert top.stdout.index("alice") < top.stdout.index("bob")
    bands = subprocess.run([sys.executable, "-m", "stream.cli.main", "bands"],
                           env=env, capture_output=True, text=True, check=True)  # fmt: skip
    counts = dict(line.split() for line in bands.stdout.splitlines())
    assert counts["somewhat_engaged"] == "1" and sum(map(int, counts.values())) == 2
    wait_until(lambda: (worker.status("/ready") or (0, {}))[1].get("checks", {}).get("redis")
               == {"ok": True, "detail": "ok"})  # fmt: skip
    metrics = (worker.get("/metrics") or b"").decode()
    assert 'engagement_events_total{outcome="scored",topic="' in metrics
    assert "alice" not in metrics and "bob" not in metrics


def test_uninstall_drop_raises_event_alert(deploy_on) -> None:
    """A light user who uninstalls crosses into churn risk and one alert is published."""
    d = deploy_on()
    d.start_worker()
    for i in range(5):
        d.send("clickstream", "carol", _native("page_view", "carol", i))
    d.flush()
    wait_until(lambda: d.customer("carol").get("score") == "7")
    uninstall = _native("app_uninstall", "carol", 0)
    d.send("app_installs", "carol", uninstall)
    d.send("app_installs", "carol", uninstall)  # a duplicate delivery must not alert twice
    d.flush()
    (alert,) = d.alerts(lambda alerts: len(alerts) >= 1)
    assert alert["customer_id"] == "carol"
    assert alert["type"] == "churn_risk_entered"
    assert alert["trigger"] == "event"
    assert (alert["previous_band"], alert["band"]) == ("very_disengaged", "churn_risk")
    assert (alert["previous_score"], alert["score"]) == (7.0, -33.0)
    assert alert["occurred_at_ms"] == uninstall["timestamp"]
    assert alert["reasons"] == [{"factor": "app_uninstalls", "change": -40.0, "before": 0.0,
                                 "after": -40.0}]  # fmt: skip
    assert alert["model_version"] == "default-2026.11"
    assert len(alert["alert_id"]) == 32
    wait_until(lambda: d.customer("carol").get("score") == "-33")
    assert d.customer("carol").get("outbox", "") == ""


def test_silent_customer_alerts_when_events_age_out(deploy_on, tmp_path: Path) -> None:
    """With no new events, a customer's score decays and the window alert fires within 5 s."""
    d = deploy_on(model=str(short_model(tmp_path, window="8s", bucket="1s")))
    d.start_worker()
    for i in range(4):
        d.send("clickstream", "dave", _native("page_view", "dave", i))
    d.flush()
    wait_until(lambda: d.customer("dave").get("band") == "very_disengaged")
    records = d.read(d.settings.topics.alerts, lambda rs: len(rs) >= 1, timeout_s=30)
    alert = orjson.loads(records[0].value)
    assert alert["customer_id"] == "dave"
    assert alert["trigger"] == "window"
    assert alert["previous_score"] > 0 and alert["score"] == 0.0  # buckets may split the 4 views
    assert {r["factor"] for r in alert["reasons"]} <= {"page_views", "regularity"}
    assert alert["reasons"]
    assert records[0].timestamp - alert["occurred_at_ms"] <= 5000  # the configured alert bound
    assert d.customer("dave")["band"] == "churn_risk"
