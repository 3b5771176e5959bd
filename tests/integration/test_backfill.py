"""`engagement backfill` on real Kafka and Redis: history replayed in event time lands in
Redis as of the chosen moment, and live workers continue exactly once (files: by event
fingerprint; topics: from the snapshot offsets)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.config.model_file import load_model
from stream.core.customer import CustomerState, advance, drop_duplicates
from stream.core.events import Event
from stream.core.model import ScoringModel
from tests.integration.conftest import Deployment, wait_until
from tests.integration.workload import committed_offsets, compare

pytestmark = pytest.mark.integration

_DAY_MS = 86_400_000
Doc = dict[str, Any]


def _doc(customer: str, kind: str, at_ms: int, event_id: str) -> Doc:
    return {"customer_id": customer, "type": kind, "timestamp": at_ms, "event_id": event_id}


def _history(now: int) -> list[Doc]:
    """Forty days of history for 12 customers: some stop early, some are older than the
    window (replayed, not rejected), with a few repeated deliveries."""
    docs = []
    for i in range(12):
        c = f"h{i:02d}"
        last = 40 if i % 3 else 35 - i  # every third customer stops earlier
        for day in range(40, 40 - last + (i % 5), -1):
            at = now - day * _DAY_MS + 3_600_000 * (i % 7)
            docs.append(_doc(c, "page_view", at, f"{c}-pv{day}"))
            if day % (i % 4 + 1) == 0:
                docs.append(_doc(c, "feature_used", at + 5, f"{c}-fu{day}"))
    return [*docs, docs[4], docs[30], docs[77]]


def _reference(model: ScoringModel, docs: list[Doc], now: int) -> dict[str, tuple[str, str]]:
    events: dict[str, list[Event]] = {}
    for doc in docs:
        event = Event(doc["event_id"], doc["customer_id"], doc["type"], doc["timestamp"])
        events.setdefault(event.customer_id, []).append(event)
    out = {}
    for customer, evs in events.items():
        state = advance(model, customer, CustomerState(), drop_duplicates(evs, set()), now).state
        out[customer] = (f"{state.score_cp / 100:g}", state.band or "")
    return out


def _backfill(d: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli.main", "backfill", "--no-progress", *args],
        env={**os.environ, **d.env}, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def _exact(d: Deployment, expected: dict[str, tuple[str, str]]) -> bool:
    return compare(d.redis, d.settings.redis_prefix, expected).exact


def test_backfill_from_files_then_live_workers_count_each_event_once(
    deploy: Any, tmp_path: Path
) -> None:
    model = load_model("default")
    d = deploy()
    now = int(time.time() * 1000)
    history = _history(now)
    late = [_doc("h01", "page_view", now + 60_000, "h01-late")]  # after --as-of: the workers'
    path = tmp_path / "history.jsonl"
    calls = [  # identify/group calls, one older than the window: the newest plan wins
        {"type": "identify", "userId": "h03", "messageId": "i-old", "timestamp": now - 45 * _DAY_MS,
         "traits": {"plan": "free", "seats": 3}},
        {"type": "identify", "userId": "h03", "messageId": "i-new", "timestamp": now - 2 * _DAY_MS,
         "traits": {"plan": "pro"}},
        {"type": "group", "userId": "h03", "messageId": "g-1", "timestamp": now - _DAY_MS,
         "groupId": 77},
    ]  # fmt: skip
    path.write_text("".join(orjson.dumps(x).decode() + "\n" for x in [*history, *late, *calls]))
    done = _backfill(d, "--events", str(path), "--as-of", str(now))
    assert done.returncode == 0, done.stderr
    assert "rejected   0" in done.stdout and "too_old" not in done.stdout
    assert "after the as-of moment (left to the live workers) 1" in done.stdout
    assert "3 duplicates dropped" in done.stdout
    outcome = compare(d.redis, d.settings.redis_prefix, _reference(model, history, now))
    assert outcome.exact, outcome.wrong
    h03 = d.customer("h03")
    assert orjson.loads(h03["traits"]) == {"plan": "pro", "seats": 3} and h03["account"] == "77"

    d.start_worker()
    later = int(time.time() * 1000)
    again = history[-40:]  # re-delivered by the live pipeline: already counted
    fresh = [_doc(f"h{i:02d}", "click", later, f"h{i:02d}-live") for i in range(0, 12, 2)]
    fresh.append(_doc("n00", "page_view", later, "n00-1"))
    for doc in [*again, *late, *fresh]:
        d.send("clickstream", doc["customer_id"], doc)
    d.flush()
    everything = [*history, *late, *fresh]
    wait_until(lambda: _exact(d, _reference(model, everything, later)), 90)
    final = compare(d.redis, d.settings.redis_prefix,
                    _reference(model, everything, int(time.time() * 1000)))  # fmt: skip
    assert final.exact, final.wrong

    refused = _backfill(d, "--events", str(path))
    assert refused.returncode == 2 and "already holds data" in refused.stderr


def test_backfill_from_the_topics_hands_over_at_the_snapshot_offsets(deploy: Any) -> None:
    model = load_model("default")
    d = deploy()
    now = int(time.time() * 1000)
    history = _history(now)
    for doc in history:
        d.send("clickstream", doc["customer_id"], doc)
    d.send("clickstream", "bad", b"{broken")
    d.flush()
    done = _backfill(d, "--topics")
    assert done.returncode == 0, done.stderr
    assert "invalid_json 1" in done.stdout and "too_old" not in done.stdout
    assert _exact(d, _reference(model, history, int(time.time() * 1000)))
    offsets = committed_offsets(d.settings.kafka_bootstrap, d.settings.app_id)
    assert sum(offsets.values()) == len(history) + 1

    d.start_worker()
    later = int(time.time() * 1000)
    fresh = [_doc(f"h{i:02d}", "click", later, f"h{i:02d}-live") for i in range(12)]
    for doc in fresh:
        d.send("clickstream", doc["customer_id"], doc)
    d.flush()
    everything = [*history, *fresh]
    wait_until(lambda: _exact(d, _reference(model, everything, later)), 90)
