"""Bad input is dead-lettered; a killed worker neither double counts nor loses alerts."""

from __future__ import annotations

import random
import time
from typing import Any

import orjson
import pytest

from devtools.sim.run import bad_messages
from stream.config.model_file import load_model
from stream.core.alerts import alert_id
from stream.core.customer import CustomerState, advance, drop_duplicates
from stream.core.events import Event
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration
MODEL = load_model("default")


def _view(customer: str, n: int, at: int, kind: str = "page_view") -> dict[str, object]:
    return {"event_id": f"{customer}-{n}", "customer_id": customer, "type": kind, "timestamp": at}


SPOOF = "erin\u202eexe.txt"  # shows as "erintxt.exe": a right-to-left override


def test_every_kind_of_bad_input_is_dead_lettered_and_good_events_still_score(deploy) -> None:
    """Each malformed message lands in the DLQ with its reason and original bytes."""
    d = deploy()
    d.start_worker()
    now = int(time.time() * 1000)
    bad = [(role, payload, "erin") for role, payload in bad_messages("erin", now, MODEL.window_ms)]
    bad += [
        ("clickstream", orjson.dumps(_view("erin", 90, now)), "mallory"),  # key mismatch
        ("clickstream", orjson.dumps(_view("erin", 91, now, "app_install")), "erin"),  # wrong topic
        ("clickstream", orjson.dumps(_view(SPOOF, 92, now)), SPOOF),  # a bidi override in the id
    ]
    expected = [
        "invalid_json", "missing_customer_id", "unknown_type", "invalid_field", "too_large",
        "future_timestamp", "too_old", "key_mismatch", "wrong_topic", "invalid_customer_id",
    ]  # fmt: skip
    for n, (role, payload, key) in enumerate(bad):
        d.send("clickstream", "erin", _view("erin", n, now))
        d.send(role, key, payload)
    d.flush()
    records = d.read(d.settings.topics.dlq, lambda rs: len(rs) >= len(bad))
    assert len(records) == len(bad)
    by_value = {r.value: dict(r.headers) for r in records}
    for (_, payload, _), reason in zip(bad, expected, strict=True):
        headers = by_value[payload]
        assert headers["dlq.reason"].decode() == reason
        assert headers["dlq.detail"]
        assert int(headers["dlq.offset"]) >= 0
        assert headers["dlq.topic"].decode() in d.settings.topics.inputs
    spoofed = by_value[bad[-1][1]]["dlq.detail"].decode()
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in spoofed and "at index 4" in spoofed
    # nine good page views plus one active day
    wait_until(lambda: d.customer("erin").get("score") == str(len(bad) + 2))


def _scored(worker: Any) -> float:
    return float(worker.counters("engagement_events", "outcome").get("scored", 0.0))


def test_sigkill_mid_stream_neither_double_counts_nor_loses_alerts(deploy) -> None:
    """Killing the worker twice mid-stream leaves exactly the reference scores and every alert."""
    d = deploy()
    d.start_worker()
    rng = random.Random(3)
    customers = [f"k{i:04d}" for i in range(300)]
    churners = customers[:60]
    sent: dict[str, list[Event]] = {c: [] for c in customers}
    now = int(time.time() * 1000)

    def send(customer: str, doc: dict[str, object], role: str = "clickstream") -> None:
        d.send(role, customer, doc)
        sent[customer].append(
            Event(str(doc["event_id"]), customer, str(doc["type"]), int(doc["timestamp"]))
        )  # type: ignore[arg-type]
        if rng.random() < 0.05:  # a duplicate delivery of the same event
            d.send(role, customer, doc)

    for c in customers:
        for n in range(8):
            send(c, _view(c, n, now))
    d.flush()
    wait_until(lambda: all(d.customer(c).get("score") == "10" for c in churners), timeout_s=90)

    uninstall_at = {c: now + 1000 + i for i, c in enumerate(churners)}
    phase_two = [(c, _view(c, 100 + n, now + 2000)) for c in customers[60:] for n in range(60)]
    phase_two += [(c, _view(c, 999, uninstall_at[c], "app_uninstall")) for c in churners]
    rng.shuffle(phase_two)

    # Mid-stream by construction: each third is sent, and the worker is killed once it has
    # scored part of it; the rest of the stream is produced after each kill.
    thirds = [phase_two[i::3] for i in range(3)]
    for third in thirds[:2]:
        worker = d.workers[-1]
        before = _scored(worker)
        for c, doc in third:
            send(c, doc, "app_installs" if doc["type"] == "app_uninstall" else "clickstream")
        d.flush()
        wait_until(lambda w=worker, b=before: _scored(w) > b, timeout_s=120, every_s=0.05)
        worker.kill()
        d.start_worker()
    for c, doc in thirds[2]:
        send(c, doc, "app_installs" if doc["type"] == "app_uninstall" else "clickstream")
    d.flush()

    reference = {c: advance(MODEL, c, CustomerState(), drop_duplicates(ev, set()),
                            int(time.time() * 1000)) for c, ev in sent.items()}  # fmt: skip

    def matches() -> list[str]:
        wrong = [c for c, ref in reference.items()
                 if d.customer(c).get("score") != f"{ref.state.score_cp / 100:g}"]  # fmt: skip
        return [] if wrong else ["ok"]

    wait_until(matches, timeout_s=120)
    for c in customers[:5] + churners[:5]:
        stored = orjson.loads(d.customer(c)["breakdown"])
        assert stored == {k: v / 100 for k, v in reference[c].breakdown.items()}

    expected_ids = {alert_id(MODEL.version, c, "event", uninstall_at[c]) for c in churners}
    alerts = d.alerts(lambda got: expected_ids <= {a["alert_id"] for a in got}, timeout_s=60)
    ids = [a["alert_id"] for a in alerts]
    assert set(ids) == expected_ids
    print(f"alerts: {len(expected_ids)} expected, {len(ids)} published "
          f"({len(ids) - len(set(ids))} duplicates)")  # fmt: skip
