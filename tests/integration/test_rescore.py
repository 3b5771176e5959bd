"""`engagement rescore` on real Kafka and Redis: scores move to a new model and a new
prefix, and workers of the new model continue exactly where the rebuild stopped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from stream.adapters.kafka_admin import input_retention_ms, required_retention_ms
from stream.adapters.redis_keys import customer_key
from stream.config.model_file import load_model
from stream.core.alerts import alert_id
from stream.core.customer import CustomerState, advance, drop_duplicates
from stream.core.events import Event
from stream.core.model import ScoringModel
from tests.integration.conftest import Deployment, wait_until
from tests.integration.workload import committed_offsets, compare

pytestmark = pytest.mark.integration

_DAY_MS = 86_400_000
_ROOT = Path(__file__).resolve().parents[2]
Sent = tuple[str, str, dict[str, Any]]  # (topic role, key, document)
_ROLES = {"app_install": "app_installs", "app_open": "app_installs",
          "app_uninstall": "app_installs", "session_end": "sessions"}  # fmt: skip


def _model_b(folder: Path) -> Path:
    """The default model with other points, a 10-day window and its own version."""
    doc = yaml.safe_load((_ROOT / "stream/config/models/default.yaml").read_text())
    doc["version"] = "test-b"
    doc["window"] = "10d"
    doc["events"]["page_view"]["points"] = 3
    doc["events"]["click"]["points"] = 2
    doc["events"]["app_open"]["points"] = 4
    doc["regularity"]["points_per_active_day"] = 1
    path = folder / "model-b.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _event(customer: str, kind: str, at_ms: int, event_id: str | None, **props: Any) -> Sent:
    doc: dict[str, Any] = {"customer_id": customer, "type": kind, "timestamp": at_ms}
    if event_id is not None:
        doc["event_id"] = event_id
    if props:
        doc["properties"] = props
    return _ROLES.get(kind, "clickstream"), customer, doc


def _phase_one(now: int) -> list[Sent]:
    """Recent customers (some churning), stale ones (older than model B's window), repeats."""
    sent: list[Sent] = []
    for i in range(20):
        c = f"r{i:02d}"
        for day in range(i % 4 + 1):
            at = now - day * _DAY_MS - 3_600_000
            sent.append(_event(c, "page_view", at, f"{c}-pv{day}"))
            sent.append(_event(c, "click", at + 1, f"{c}-ck{day}"))
        sent.append(_event(c, "app_open", now - 2 * _DAY_MS, f"{c}-open"))
        sent.append(_event(c, "session_end", now - 60_000, f"{c}-s1",
                           duration_seconds=300 + 30 * i, page_count=i % 6))  # fmt: skip
    for c in ("r01", "r02"):
        sent.append(_event(c, "app_uninstall", now - 30_000, f"{c}-gone"))
    for i in range(5):
        c = f"s{i:02d}"
        for day in (15, 17, 20):
            sent.append(_event(c, "page_view", now - day * _DAY_MS, f"{c}-old{day}"))
    sent.append(_event("r00", "page_view", now - 120_000, None))  # no id: topic/partition/offset
    sent += [sent[3], sent[10], sent[40]]  # delivered twice
    return sent


def _phase_two(now: int, first: list[Sent]) -> list[Sent]:
    """More events for known and new customers, repeats of rebuilt events, one uninstall."""
    sent = [_event(f"r{i:02d}", "page_view", now, f"r{i:02d}-later") for i in range(0, 20, 3)]
    sent += [_event("n00", "click", now, "n00-c1"), _event("s01", "page_view", now, "s01-back")]
    sent += [first[0], first[5], first[21]]  # already counted by the rebuild: dropped
    sent.append(first[-4])  # an event without id sent again is a new event (new offset)
    sent.append(_event("r05", "app_uninstall", now + 1000, "r05-gone"))
    return sent


def _send(d: Deployment, messages: Iterable[Sent]) -> None:
    for role, key, doc in messages:
        d.send(role, key, doc)
    d.flush()


def _reference(model: ScoringModel, sent: list[Sent], now: int) -> dict[str, tuple[str, str]]:
    """Customer -> (score, band) by the pure model over every event sent, at ``now``."""
    events: dict[str, list[Event]] = {}
    for n, (_, customer, doc) in enumerate(sent):
        event_id = doc.get("event_id") or f"no-id-{n}"
        events.setdefault(customer, []).append(
            Event(event_id, customer, doc["type"], doc["timestamp"], doc.get("properties", {}))
        )
    expected = {}
    for customer, evs in events.items():
        fresh = drop_duplicates(evs, set())
        state = advance(model, customer, CustomerState(), fresh, now).state
        expected[customer] = (f"{state.score_cp / 100:g}", state.band or "")
    return expected


def _rescore(d: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli.main", "rescore", *args],
        env={**os.environ, **d.env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _end_offsets(d: Deployment, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    consumer = KafkaConsumer(bootstrap_servers=d.settings.kafka_bootstrap)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or []]
        return {(tp.topic, tp.partition): end for tp, end in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def _all_alerts(d: Deployment) -> list[dict[str, Any]]:
    """Every alert on the alert topic, up to its current end."""
    total = sum(_end_offsets(d, [d.settings.topics.alerts]).values())
    return d.alerts(lambda alerts: len(alerts) >= total)


def _set_retention(d: Deployment, topic: str, retention_ms: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=d.settings.kafka_bootstrap)
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic,
                                  {"retention.ms": str(retention_ms)})  # fmt: skip
        admin.alter_configs([resource])
    finally:
        admin.close()


def _versions(d: Deployment, prefix: str, customers: Iterable[str]) -> set[str]:
    pipe = d.redis.pipeline(transaction=False)
    for customer in customers:
        pipe.hget(customer_key(prefix, customer), "model_version")
    return {v.decode() for v in pipe.execute()}


def _exact(d: Deployment, prefix: str, expected: dict[str, tuple[str, str]]) -> bool:
    return compare(d.redis, prefix, expected).exact


def _store_profiles(d: Deployment, customers: list[str]) -> list[str]:
    """Give a carried-over customer (s00) and one rebuilt from events traits and an account,
    as identify/group calls store them; the rescore must carry both over."""
    profile = {"traits": '{"plan":"pro"}', "account": "acme",
               "profile_at": '{"t":{"plan":1},"a":1}'}  # fmt: skip
    chosen = ["s00", next(c for c in customers if not c.startswith("s"))]
    for customer in chosen:
        d.redis.hset(customer_key(d.settings.redis_prefix, customer), mapping=profile)
    return chosen


def test_rescore_moves_scores_to_a_new_model_exactly_once(deploy_on: Any, tmp_path: Path) -> None:
    """Rebuilt scores equal model B's reference; B's workers then continue without gap or
    double count; the old prefix keeps model A's scores; history is not re-alerted."""
    model_a, path_b = load_model("default"), _model_b(tmp_path)
    model_b = load_model(str(path_b))
    d = deploy_on()
    d.start_worker()
    now = int(time.time() * 1000)
    first = _phase_one(now)
    _send(d, first)
    for n in range(3):
        d.send("clickstream", "mallory", f'{{"broken {n}'.encode())
    d.flush()
    wait_until(lambda: _exact(d, d.settings.redis_prefix, _reference(model_a, first, now)), 90)

    profiled = _store_profiles(d, sorted(_reference(model_a, first, now)))

    prefix_b, group_b = f"{d.settings.redis_prefix}-b", f"{d.settings.app_id}-b"
    done = _rescore(d, "--model", str(path_b), "--to-prefix", prefix_b, "--to-app-id", group_b)
    assert done.returncode == 0, done.stderr
    assert all(d.redis.hmget(customer_key(prefix_b, c), ["traits", "account"])
               == [b'{"plan":"pro"}', b"acme"] for c in profiled)  # fmt: skip
    rebuilt = _reference(model_b, first, int(time.time() * 1000))
    outcome = compare(d.redis, prefix_b, rebuilt)
    assert outcome.exact, outcome.wrong
    assert {rebuilt[f"s{i:02d}"] for i in range(5)} == {("0", "churn_risk")}
    assert _versions(d, prefix_b, rebuilt) == {"test-b"}
    stale, repeats = 15, 3
    assert f"scored     {len(first) - repeats - stale} events" in done.stdout
    assert "duplicate  3 " in done.stdout
    assert re.search(rf"rejected   {3 + stale}: too_old {stale}, invalid_json 3\b", done.stdout)
    assert "customers: 20 rebuilt from events, 5 carried over" in done.stdout
    assert f"ENGAGEMENT_REDIS_PREFIX={prefix_b} ENGAGEMENT_APP_ID={group_b}" in done.stdout
    inputs = list(d.settings.topics.inputs)
    assert committed_offsets(d.settings.kafka_bootstrap, group_b) == _end_offsets(d, inputs)
    assert model_b.version not in {a["model_version"] for a in _all_alerts(d)}

    worker_b = d.start_worker(ENGAGEMENT_MODEL=str(path_b), ENGAGEMENT_REDIS_PREFIX=prefix_b,
                              ENGAGEMENT_APP_ID=group_b)  # fmt: skip
    later = int(time.time() * 1000)
    second = _phase_two(later, first)
    _send(d, second)
    everything = first + second
    ends = _end_offsets(d, inputs)
    wait_until(lambda: committed_offsets(d.settings.kafka_bootstrap, group_b) == ends, 90)
    wait_until(lambda: _exact(d, prefix_b, _reference(model_b, everything, later)), 60)
    final = compare(d.redis, prefix_b, _reference(model_b, everything, int(time.time() * 1000)))
    assert final.exact, final.wrong
    expected_a = _reference(model_a, everything, later)
    wait_until(lambda: _exact(d, d.settings.redis_prefix, expected_a), 60)
    assert _versions(d, d.settings.redis_prefix, expected_a) == {model_a.version}

    gone = alert_id(model_b.version, "r05", "event", later + 1000)
    alerts = wait_until(
        lambda: (found := _all_alerts(d)) and gone in {a["alert_id"] for a in found} and found
    )
    assert {a["alert_id"] for a in alerts if a["model_version"] == "test-b"} == {gone}
    assert worker_b.alive

    busy = _rescore(d, "--model", str(path_b), "--to-prefix", "other", "--to-app-id", group_b,
                    "--force")  # fmt: skip
    assert busy.returncode == 2
    assert "active member" in busy.stderr


def test_rescore_refuses_unsafe_targets_and_force_clears_the_prefix(deploy_on: Any) -> None:
    """Same prefix or group, a prefix holding data, or a group with offsets need --force or
    are refused outright; --force empties the prefix before rebuilding."""
    d = deploy_on()
    prefix = d.settings.redis_prefix
    same = _rescore(d, "--model", "default", "--to-prefix", prefix, "--to-app-id", "x")
    assert same.returncode == 2 and "--to-prefix" in same.stderr
    same = _rescore(d, "--model", "default", "--to-prefix", "x", "--to-app-id", d.settings.app_id)
    assert same.returncode == 2 and "--to-app-id" in same.stderr

    target = f"{prefix}-new"
    d.redis.hset(f"{target}:{{left-over}}", mapping={"window": "{}", "score": "1"})
    d.redis.zadd(f"{target}:rank", {"left-over": 1})
    neighbour = f"{target}:due:{{c9}}"  # customer c9 of the prefix "<target>:due"
    d.redis.hset(neighbour, mapping={"window": "{}", "score": "1"})
    args = ["--model", "default", "--to-prefix", target, "--to-app-id", f"{d.settings.app_id}-n"]
    full = _rescore(d, *args)
    assert full.returncode == 2 and "already holds data" in full.stderr
    required = required_retention_ms(load_model("default"))
    assert input_retention_ms(d.settings) == dict.fromkeys(d.settings.topics.inputs, required)
    _set_retention(d, d.settings.topics.clickstream, 3_600_000)
    forced = _rescore(d, *args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "deleted 2 keys" in forced.stdout
    assert f"warning: {d.settings.topics.clickstream}: retention.ms 3600000 is shorter" in (
        forced.stdout
    )
    assert d.keys(f"{target}:*") == [neighbour.encode()]

    again = _rescore(d, "--model", "default", "--to-prefix", f"{prefix}-3",
                     "--to-app-id", f"{d.settings.app_id}-n")  # fmt: skip
    assert again.returncode == 2 and "committed offsets" in again.stderr
    assert again.stdout == ""


def test_rescore_over_sasl_ssl_and_redis_tls(secure_deploy: Any) -> None:
    """On the secure stack (SCRAM-SHA-512 over TLS, Redis over TLS with a password file) the
    rescore reads, checks and commits through the same security options as every client."""
    d = secure_deploy()
    now = int(time.time() * 1000)
    sent = [_event("t1", "page_view", now - n * _DAY_MS, f"t1-{n}") for n in range(3)]
    _send(d, sent)
    target = f"{d.settings.redis_prefix}-b"
    done = _rescore(d, "--model", "default", "--to-prefix", target,
                    "--to-app-id", f"{d.settings.app_id}-b")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "read 3 messages" in done.stdout
    assert compare(d.redis, target, _reference(load_model("default"), sent, now)).exact
