"""Score history, trend and every alert rule on real Kafka and Redis: history after a replay
into a fresh prefix equals the live one; each rule fires exactly once across a SIGKILL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.adapters.kafka_admin import ensure_topics
from stream.config.settings import Settings
from tests.integration.conftest import Deployment, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(1200)]
DAY_MS = 86_400_000
RULES = [
    {"name": "churn_risk", "when": "band_entered", "band": "churn_risk", "rearm_above": 10},
    {"name": "upsell", "when": "band_entered", "band": "power_user", "cooldown": "7d"},
    {"name": "drop", "when": "score_drop", "points": 10, "over": "7d"},
    {"name": "rise", "when": "score_rise", "points": 20, "over": "7d"},
]
# customer -> (events ten days ago, events now), and the rule each must fire.
PLAN: dict[str, tuple[list[str], list[str], str]] = {
    "h-drop": (["conversion"] * 10, ["app_uninstall"], "drop"),
    "h-rise": (["click"], ["conversion"] * 3, "rise"),
    "h-upsell": ([], ["click"] + ["conversion"] * 12, "upsell"),
    "h-churn": ([], ["page_view", "app_uninstall"], "churn_risk"),
}


def _model(tmp: Path) -> Path:
    source = Path(__file__).parents[2] / "stream/config/models/default.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["alerts"] = {"rules": RULES}
    path = tmp / "rules-model.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _send(d: Deployment, customer: str, kinds: list[str], at_ms: int, tag: str) -> None:
    for n, kind in enumerate(kinds):
        doc = {"event_id": f"{customer}-{tag}-{n}", "customer_id": customer, "type": kind,
               "timestamp": at_ms + n}  # fmt: skip
        role = "app_installs" if kind.startswith("app_") else "clickstream"
        d.send(role, customer, doc)
    d.flush()


def _alerts(d: Deployment, until: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    return d.alerts(until, timeout_s=120)


def test_each_rule_fires_once_across_a_sigkill_and_history_survives_a_replay(
    deploy: Callable[..., Deployment], tmp_path: Path
) -> None:
    model = _model(tmp_path)
    d = deploy(model=str(model))
    worker = d.start_worker()
    now = int(time.time() * 1000)
    ten_days_ago = now - 10 * DAY_MS
    for customer, (early, _, _) in PLAN.items():
        _send(d, customer, early or ["page_view"], ten_days_ago if early else now - 60_000, "a")
    wait_until(lambda: all(d.customer(c).get("score") for c in PLAN))
    for customer, (_, later, _) in PLAN.items():
        _send(d, customer, later, now, "b")
    expected = {(c, rule) for c, (_, _, rule) in PLAN.items()}

    def every_rule(alerts: list[dict[str, Any]]) -> bool:
        return expected <= {(a["customer_id"], a["rule"]) for a in alerts}

    _alerts(d, every_rule)
    worker.kill()  # before the batch's offsets are surely committed
    worker = d.start_worker()
    for customer, (_, later, _) in PLAN.items():  # a producer retry: the same events again
        _send(d, customer, later, now, "b")
    _send(d, "h-sentinel", ["page_view"], now, "s")
    wait_until(lambda: d.customer("h-sentinel").get("score"))
    alerts = _alerts(d, every_rule)
    fired = Counter((a["customer_id"], a["rule"]) for a in alerts)
    assert {k: n for k, n in fired.items() if k in expected} == dict.fromkeys(expected, 1)
    assert len({a["alert_id"] for a in alerts}) == len(alerts)
    kinds = {(a["rule"], a["type"]) for a in alerts if (a["customer_id"], a["rule"]) in expected}
    assert kinds == {
        ("drop", "score_drop"),
        ("rise", "score_rise"),
        ("upsell", "power_user_entered"),
        ("churn_risk", "churn_risk_entered"),
    }

    # History and trend, over HTTP and the CLI.
    view = json.loads(worker.get("/customers/h-drop") or b"{}")
    starts = [start for start, _ in view["history"]["points"]]
    assert starts == [ten_days_ago // DAY_MS * DAY_MS, now // DAY_MS * DAY_MS]
    assert [score for _, score in view["history"]["points"]] == [102.0, 62.0]
    assert view["trend"]["change_7d"] == -40.0 and view["trend"]["top_factor"] == "conversions"
    env = {**os.environ, **d.env}
    cli = subprocess.run([sys.executable, "-m", "stream.cli.main", "score", "h-drop", "--history"],
                         env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert "trend: 7d -40" in cli.stdout and "102.00" in cli.stdout

    # A replay of the same topics into a fresh prefix (another consumer group) rebuilds the
    # same history, whatever batches the replay happens to read.
    tag = f"{d.settings.redis_prefix}-replay"
    replay_env = {"ENGAGEMENT_APP_ID": f"app-{tag}", "ENGAGEMENT_REDIS_PREFIX": tag,
                  "ENGAGEMENT_TOPIC_ALERTS": f"alerts-{tag}"}  # fmt: skip
    ensure_topics(Settings.from_env({**d.env, **replay_env}))
    d.start_worker(**replay_env)

    def histories(prefix: str) -> dict[str, bytes | None]:
        return {c: d.redis.hget(f"{prefix}:{{{c}}}", "history") for c in PLAN}

    live = histories(d.settings.redis_prefix)
    assert len(live["h-drop"] or b"") == 16 + 2 * 16  # the packed layout: header, two points
    wait_until(lambda: histories(tag) == live, timeout_s=120)
