"""Produce the simulated customers' events to Kafka in real time, day by model day."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaProducer

from devtools.sim.personas import Customer, day_events, make_customers, profile_calls, render
from stream.config.settings import TopicNames

__all__ = ["SimStats", "bad_messages", "simulate"]


@dataclass(slots=True)
class SimStats:
    """What the simulator sent."""

    customers: int = 0
    days: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    profile_calls: int = 0  # Segment identify and group calls (not scored)


def bad_messages(customer_id: str, now_ms: int, window_ms: int) -> list[tuple[str, bytes]]:
    """One malformed message of each kind, as (topic role, bytes)."""
    good = {"event_id": "x", "customer_id": customer_id, "type": "page_view", "timestamp": now_ms}
    return [
        ("clickstream", b"{not json"),
        ("clickstream", orjson.dumps({**good, "customer_id": None})),
        ("clickstream", orjson.dumps({**good, "type": "teleported"})),
        ("sessions", orjson.dumps({**good, "type": "session_end",
                                   "properties": {"duration_seconds": "long", "page_count": 2}})),
        ("clickstream", orjson.dumps({**good, "properties": {"blob": "x" * 70_000}})),
        ("clickstream", orjson.dumps({**good, "timestamp": now_ms + 86_400_000})),
        ("clickstream", orjson.dumps({**good, "timestamp": now_ms - 2 * window_ms})),
    ]  # fmt: skip


def simulate(
    bootstrap: str,
    topics: TopicNames,
    *,
    customers: int,
    days: int,
    day_ms: int,
    window_ms: int,
    seed: int = 7,
    duplicate_rate: float = 0.01,
    malformed_per_day: int = 1,
    on_day: Callable[[int, SimStats], None] | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> tuple[SimStats, list[Customer]]:
    """Run the simulation in real time; return what was sent and the customers."""
    rng = random.Random(seed)
    people = make_customers(customers, rng, days)
    names = {role: name for name, role in topics.inputs.items()}
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, **(client_options or {})
    )
    stats = SimStats(customers=len(people))
    start = time.time()
    try:
        for day in range(days):
            _sleep_until(start + day * day_ms / 1000)
            now_ms = int(time.time() * 1000)
            for person in people:
                for call in profile_calls(person, day, now_ms):
                    producer.send(names[call.role], key=person.customer_id.encode(),
                                  value=orjson.dumps(call.document))  # fmt: skip
                    stats.profile_calls += 1
                for event_type, value in day_events(person, day, rng):
                    emitted = render(person, event_type, value, now_ms - rng.randint(0, 200), rng)
                    payload = orjson.dumps(emitted.document)
                    key = person.customer_id.encode()
                    producer.send(names[emitted.role], key=key, value=payload)
                    stats.events += 1
                    if rng.random() < duplicate_rate:
                        producer.send(names[emitted.role], key=key, value=payload)
                        stats.duplicates += 1
            for _ in range(malformed_per_day):
                victim = rng.choice(people).customer_id
                role, payload = rng.choice(bad_messages(victim, now_ms, window_ms))
                producer.send(names[role], key=victim.encode(), value=payload)
                stats.malformed += 1
            producer.flush()
            stats.days = day + 1
            if on_day:
                on_day(day, stats)
    finally:
        producer.close()
    return stats, people


def _sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)
