"""Adaptive batching against real Kafka: an idle worker's batches end because they caught
up with the broker (aiokafka's fetch-reply stamps, read through Faust's driver thread),
never by waiting out ``ENGAGEMENT_BATCH_WITHIN``."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


def _ends(worker: Any) -> dict[str, float]:
    text = (worker.get("/metrics") or b"").decode()
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "engagement_batch_ends"
        for sample in family.samples
        if sample.name == "engagement_batch_ends_total"
    }


def _send_and_wait(d: Any, customer: str) -> None:
    event = {"event_id": f"{customer}-0", "customer_id": customer, "type": "page_view",
             "timestamp": int(time.time() * 1000), "properties": {}}  # fmt: skip
    d.send("clickstream", customer, event)
    d.flush()
    wait_until(lambda: d.customer(customer).get("score"), timeout_s=120)


def test_an_idle_workers_batches_end_by_catching_up_not_by_the_window(deploy: Any) -> None:
    d = deploy()
    # A window long enough that waiting it out would show (and slow this test down).
    worker = d.start_worker(ENGAGEMENT_BATCH_WITHIN="20s")
    _send_and_wait(d, "warm-up")  # past start-up: every partition has been fetched
    before = _ends(worker)
    for i in range(5):
        _send_and_wait(d, f"one-at-a-time-{i}")
    after = _ends(worker)
    grew = {reason: after.get(reason, 0.0) - before.get(reason, 0.0) for reason in after}
    assert grew.get("caught_up", 0.0) >= 5
    assert grew.get("window", 0.0) == 0
    assert grew.get("full", 0.0) == 0
