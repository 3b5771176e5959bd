"""A Segment-shaped workspace end to end on real Kafka and Redis: identify, group, unmapped
and alias calls next to scored ones; Unicode (with braces, spaces and '%') and numeric ids
through Kafka key -> Redis -> HTTP -> CLI -> alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from typing import Any

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from stream.adapters.redis_alerts import customer_alerts_key
from stream.adapters.redis_keys import customer_key
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

UNICODE = "José {VIP} 50%"
NUMERIC = 98765


def _call(kind: str, user: object, message_id: object, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "userId": user, "messageId": message_id,
            "timestamp": int(time.time() * 1000), **fields}  # fmt: skip


def _counter(worker: Any, family: str, label: str = "", value: str | None = None) -> float:
    """A counter's total, or its total where ``label`` is ``value`` (0 when absent)."""
    totals = worker.counters(family, label)
    return float(sum(totals.values()) if value is None else totals.get(value, 0.0))


def test_segment_workspace_and_unicode_and_numeric_ids_end_to_end(deploy_on) -> None:
    """Nothing is dead-lettered; ignored calls are counted; traits and account are stored
    once; both customers are scored, readable by HTTP and CLI, and alert under their ids."""
    d = deploy_on()
    worker = d.start_worker()
    for user, key in ((UNICODE, UNICODE), (NUMERIC, str(NUMERIC))):
        d.send("clickstream", key, _call("identify", user, f"{user}-i1",
                                         traits={"plan": "pro", "país": "España"}))  # fmt: skip
        d.send("clickstream", key, _call("group", user, f"{user}-g1", groupId=4242))
        d.send("clickstream", key, _call("track", user, f"{user}-t0", event="Internal Ping"))
        d.send("clickstream", key, _call("alias", user, f"{user}-a0", previousId="anon-1"))
        d.send("clickstream", key, _call("page", user, f"{user}-p0", name="Home"))
        for i in range(4):  # integer messageIds for the numeric customer
            message_id = 10_000 + i if user == NUMERIC else f"{user}-v{i}"
            d.send("clickstream", key, _call("track", user, message_id, event="Page Viewed"))
    d.flush()
    for customer in (UNICODE, str(NUMERIC)):
        wait_until(lambda c=customer: d.customer(c).get("score") == "7")  # type: ignore[misc]
    wait_until(lambda: _counter(worker, "engagement_ignored") == 4)
    assert _counter(worker, "engagement_ignored", "reason", "unmapped_track") == 2
    assert _counter(worker, "engagement_ignored", "reason", "unscored_call") == 2
    assert _counter(worker, "engagement_events", "outcome", "profiled") == 4
    assert _counter(worker, "engagement_events", "outcome", "ignored") == 4
    assert _counter(worker, "engagement_dead_letters") == 0

    stored = d.customer(UNICODE)
    assert json.loads(stored["traits"]) == {"plan": "pro", "país": "España"}
    assert stored["account"] == "4242"
    hash_key = customer_key(d.settings.redis_prefix, UNICODE)
    assert hash_key == f"{d.settings.redis_prefix}:{{José %7BVIP%7D 50%25}}"
    assert d.redis.exists(hash_key) == 1

    # A replay of the profile calls (a producer retry) changes nothing a reader sees (the
    # store may record the re-send's offset in the applied record: docs/concepts/exactly-once.md).
    public = ("score", "band", "updated_at", "breakdown", "traits", "account", "history")
    before = {field: d.customer(UNICODE).get(field) for field in public}
    d.send("clickstream", UNICODE, _call("identify", UNICODE, f"{UNICODE}-i1",
                                         traits={"plan": "free"}))  # fmt: skip
    d.flush()
    wait_until(lambda: _counter(worker, "engagement_events", "outcome", "duplicate") == 1)
    assert {field: d.customer(UNICODE).get(field) for field in public} == before
    assert json.loads(d.customer(UNICODE)["traits"])["plan"] == "pro"

    _check_readers(d, worker)

    for user, key in ((UNICODE, UNICODE), (NUMERIC, str(NUMERIC))):
        d.send("app_installs", key, _call("track", user, f"{user}-u0",
                                          event="Application Uninstalled"))  # fmt: skip
    d.flush()
    records = d.read(d.settings.topics.alerts, lambda rs: len(rs) >= 2)
    by_customer = {json.loads(r.value)["customer_id"]: r for r in records}
    assert set(by_customer) == {UNICODE, str(NUMERIC)}
    assert by_customer[UNICODE].key == UNICODE.encode()
    assert json.loads(by_customer[UNICODE].value)["type"] == "churn_risk_entered"
    alerts_key = customer_alerts_key(d.settings.redis_prefix, UNICODE)
    wait_until(lambda: d.redis.zcard(alerts_key) == 1)
    assert key_slot(alerts_key.encode()) == key_slot(hash_key.encode())
    if isinstance(d.redis, RedisCluster):  # the server's own CLUSTER KEYSLOT agrees
        assert d.redis.cluster_keyslot(alerts_key) == d.redis.cluster_keyslot(hash_key)
        assert d.redis.cluster_keyslot(hash_key) == key_slot(hash_key.encode())
    assert _counter(worker, "engagement_dead_letters") == 0


def _check_readers(d: Any, worker: Any) -> None:
    """The worker's HTTP route (URL-encoded id) and the CLI read both customers' profiles."""
    path = "/customers/" + urllib.parse.quote(UNICODE, safe="")
    view = json.loads(worker.get(path) or b"{}")
    assert (view["customer_id"], view["score"], view["account"]) == (UNICODE, 7.0, "4242")
    assert view["traits"]["país"] == "España"
    numeric_view = json.loads(worker.get(f"/customers/{NUMERIC}") or b"{}")
    assert numeric_view["score"] == 7.0 and numeric_view["account"] == "4242"

    env = {**os.environ, **d.env}
    cli = subprocess.run([sys.executable, "-m", "stream.cli.main", "score", UNICODE, "--json"],
                         env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(cli.stdout)["traits"] == {"plan": "pro", "país": "España"}
    text = subprocess.run([sys.executable, "-m", "stream.cli.main", "score", str(NUMERIC)],
                          env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert "account 4242" in text.stdout and 'país="España"' in text.stdout
