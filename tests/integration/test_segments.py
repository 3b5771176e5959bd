"""Segment rollups end to end on real Kafka and Redis: identify calls and events through the
worker; the rollups equal a from-scratch reference computed from the stored customer hashes
(traits, band, score), on one Redis server and on the Redis Cluster; readable through the CLI
and /metrics; a SIGKILL mid-stream and a full replay by a second consumer group over the same
prefix do not double count."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from redis.crc import key_slot

from stream.adapters.redis_keys import customer_key
from stream.core.bands import DEFAULT_BANDS
from stream.core.segments import (
    NONE_VALUE,
    OTHER_VALUE,
    Membership,
    SegmentSettings,
    decode_membership,
    membership,
    rollup,
    segment_rows,
)
from tests.integration.conftest import Deployment, wait_until

pytestmark = pytest.mark.integration

SETTINGS = SegmentSettings(("plan", "country"), max_values=3)
PLANS = ["free", "pro", "team", "enterprise", "edu"]  # five values, three admitted


def _model(tmp: Path) -> Path:
    source = Path(__file__).parents[2] / "stream/config/models/default.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["version"] = "segments-test"
    doc["segments"] = {"dimensions": list(SETTINGS.dimensions),
                       "max_values": SETTINGS.max_values}  # fmt: skip
    path = tmp / "segments-model.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _identify(user: str, message_id: str, at_ms: int, **traits: object) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "messageId": message_id, "timestamp": at_ms,
            "traits": traits}  # fmt: skip


def _view(user: str, n: int, at_ms: int, kind: str = "page_view") -> dict[str, Any]:
    return {"customer_id": user, "type": kind, "timestamp": at_ms, "event_id": f"{user}-{n}"}


def _workload(customers: list[str], seed: int) -> list[tuple[str, dict[str, Any]]]:
    """Identify calls (some customers change plan later, some have no country), page views
    and conversions in varied amounts (so customers spread over the bands), 5 % duplicates."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    messages: list[tuple[str, dict[str, Any]]] = []
    for i, c in enumerate(customers):
        traits: dict[str, object] = {"plan": rng.choice(PLANS)}
        if rng.random() < 0.8:
            traits["country"] = rng.choice(["DE", "FR", "ES"])
        messages.append((c, _identify(c, f"{c}-i0", now - 60_000, **traits)))
        if i % 4 == 0:  # a later plan change
            messages.append((c, _identify(c, f"{c}-i1", now - 30_000, plan=rng.choice(PLANS))))
        for n in range(rng.choice([0, 1, 5, 30, 60, 120])):
            messages.append((c, _view(c, n, now - 1000)))
        if rng.random() < 0.3:
            messages.append((c, _view(c, 900, now - 500, "conversion")))
    rng.shuffle(messages)
    messages += rng.sample(messages, len(messages) // 20)  # redeliveries
    return messages


def _stored_rollups(d: Deployment) -> tuple[dict[str, int], dict[str, Membership]]:
    """The summed counters and the memberships, as stored."""
    prefix = d.settings.redis_prefix
    counts: dict[str, int] = {}
    members: dict[str, Membership] = {}
    for p in sorted(int(x) for x in d.redis.smembers(f"{prefix}:seg:partitions")):
        for name, amount in d.redis.hgetall(f"{prefix}:seg:{{p{p}}}:counts").items():
            counts[name.decode()] = counts.get(name.decode(), 0) + int(amount)
        for c, raw in d.redis.hgetall(f"{prefix}:seg:{{p{p}}}:members").items():
            members[c.decode()] = decode_membership(raw.decode(), SETTINGS.max_values)
    return counts, members


def _reference(d: Deployment, customers: list[str]) -> tuple[dict[str, int], dict[str, Membership]]:
    """From scratch: each stored customer's traits, band and score, with the values the
    registry admitted (at most max_values per dimension)."""
    prefix = d.settings.redis_prefix
    registry = {k.decode() for k in d.redis.hgetall(f"{prefix}:seg:values")}
    admitted = {tuple(k.split("\x1f", 1)) for k in registry if "\x1f" in k}
    for dim in SETTINGS.dimensions:
        assert sum(1 for a in admitted if a[0] == dim) <= SETTINGS.max_values
    members: dict[str, Membership] = {}
    for c in customers:
        raw = d.redis.hmget(customer_key(prefix, c), ["traits", "band", "score"])
        if raw[1] is None:
            continue
        traits = orjson.loads(raw[0] or b"{}")
        member = membership(SETTINGS, traits, raw[1].decode(), round(float(raw[2]) * 100))
        assert member is not None
        values = tuple((dim, v if v in (NONE_VALUE, OTHER_VALUE) or (dim, v) in admitted
                        else OTHER_VALUE) for dim, v in member.values)  # fmt: skip
        members[c] = dataclasses.replace(member, values=values)
    return rollup(members.values()), members


def _wait_for_reference(
    d: Deployment, customers: list[str], timeout_s: float = 120
) -> dict[str, int]:
    def same() -> dict[str, int] | None:
        ref_counts, ref_members = _reference(d, customers)
        counts, members = _stored_rollups(d)
        if len(ref_members) != len(customers) or members != ref_members or counts != ref_counts:
            return None
        return counts

    found: dict[str, int] = wait_until(same, timeout_s)
    return found


def _cli(d: Deployment, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "stream.cli.main", "segments", *args],
                         env={**os.environ, **d.env}, capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip
    return out.stdout


def test_rollups_equal_the_reference_and_read_through_cli_and_metrics(deploy_on, tmp_path) -> None:
    d = deploy_on(model=str(_model(tmp_path)))
    worker = d.start_worker()
    customers = [f"s{i:03d}" for i in range(80)]
    for c, doc in _workload(customers, seed=5):
        d.send("clickstream", c, doc)
    d.flush()
    # every event applied first: the reference can also match a state half-way through
    ends = d.end_offsets()
    wait_until(lambda: d.drained(ends), timeout_s=120)
    counts = _wait_for_reference(d, customers)

    rows = segment_rows(counts, SETTINGS, DEFAULT_BANDS)
    plan = {r.value: r for r in rows["plan"]}
    assert sum(r.customers for r in rows["plan"]) == len(customers)
    assert sum(r.customers for r in rows["country"]) == len(customers)
    assert len(set(plan) - {OTHER_VALUE}) == SETTINGS.max_values
    assert OTHER_VALUE in plan, "five plans, three tracked: the rest count as (other)"
    assert NONE_VALUE in {r.value for r in rows["country"]}, "no country: (none)"
    assert len({b for r in rows["plan"] for b, n in r.bands.items() if n}) >= 3

    doc = json.loads(_cli(d, "--json"))
    assert doc == {"dimensions": {dim: [r.as_json() for r in found]
                                  for dim, found in rows.items()}}  # fmt: skip
    table = _cli(d, "--dimension", "country")
    assert table.startswith("country") and "plan" not in table.splitlines()[0]

    def exported() -> dict[str, float] | None:
        totals: dict[str, float] = {}
        for labels, value in worker.samples("engagement_segment_customers"):
            if labels["dimension"] == "plan":
                totals[labels["value"]] = totals.get(labels["value"], 0) + value
        wanted = {v: float(r.customers) for v, r in plan.items()}
        return totals if totals == wanted else None

    wait_until(exported, timeout_s=30)
    labels = {k for sample, _ in worker.samples("engagement_segment_customers") for k in sample}
    assert labels == {"dimension", "value", "band"}, "no customer id in any label"
    prefix = d.settings.redis_prefix
    for p in range(4):
        members, shard = f"{prefix}:seg:{{p{p}}}:members", f"{prefix}:seg:{{p{p}}}:counts"
        assert key_slot(members.encode()) == key_slot(shard.encode()), "one slot per shard"


def test_sigkill_and_a_full_replay_do_not_double_count(deploy, tmp_path) -> None:
    d = deploy(model=str(_model(tmp_path)))
    d.start_worker()
    customers = [f"k{i:03d}" for i in range(150)]
    messages = _workload(customers, seed=11)

    half = len(messages) // 2
    killed = threading.Event()

    def produce() -> None:  # the second half goes out once the first worker is killed
        for i, (c, doc) in enumerate(messages):
            if i == half:
                d.flush()
                killed.wait(120)
            d.send("clickstream", c, doc)
        d.flush()

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(lambda: d.redis.exists(f"{d.settings.redis_prefix}:seg:partitions"), 60)
    d.workers[-1].kill()  # mid-stream: some batches committed, their index writes maybe not
    killed.set()
    d.start_worker()
    producer.join()
    first = _wait_for_reference(d, customers)

    # A second consumer group over the same topics and prefix re-reads everything: every
    # event is a duplicate, every membership is written again, and no counter moves.
    d.workers[-1].stop()
    replay = d.start_worker(ENGAGEMENT_APP_ID=d.env["ENGAGEMENT_APP_ID"] + "-replay")
    wait_until(lambda: sum(replay.counters("engagement_events", "outcome").values())
               >= len(messages), timeout_s=120)  # fmt: skip
    assert replay.counters("engagement_events", "outcome").get("scored", 0) == 0
    assert _wait_for_reference(d, customers) == first
    assert _stored_rollups(d)[0] == first
