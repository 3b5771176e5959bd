"""The benchmark data set: a realistic mix of the default model's event types, native
shape, keyed by customer id, in time order over the last weeks, produced in large batches.

Generation is pure and seeded (``records``); ``produce`` writes the records to Kafka with
librdkafka (confluent-kafka) using the Java client's murmur2 partitioner, so a customer's
events land in the same partition number on all three co-partitioned topics.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from confluent_kafka import Producer

from stream.config.settings import TopicNames

__all__ = [
    "EVENT_MIX",
    "Record",
    "customer_id",
    "customer_order",
    "document",
    "produce",
    "producer",
    "random_kind",
    "records",
    "topic_of",
]

DAY_MS = 86_400_000

# (topic role, event type, relative weight): mostly page views, clicks and sessions,
# a few conversions, surveys and uninstalls, as a product analytics stream looks.
EVENT_MIX: tuple[tuple[str, str, float], ...] = (
    ("clickstream", "page_view", 30.0),
    ("clickstream", "click", 12.0),
    ("clickstream", "like", 3.0),
    ("clickstream", "comment", 1.5),
    ("clickstream", "share", 1.0),
    ("clickstream", "feature_used", 6.0),
    ("clickstream", "conversion", 1.0),
    ("clickstream", "download", 1.5),
    ("clickstream", "event_registration", 0.5),
    ("clickstream", "survey_response", 0.5),
    ("app_installs", "app_install", 1.5),
    ("app_installs", "app_open", 10.0),
    ("app_installs", "app_uninstall", 0.5),
    ("sessions", "session_start", 14.0),
    ("sessions", "session_end", 14.0),
)

_WEIGHTS = [w for _, _, w in EVENT_MIX]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PATHS = ("/", "/pricing", "/docs", "/blog/launch", "/app/dashboard", "/app/reports", "/help")


@dataclass(frozen=True, slots=True)
class Record:
    """One input message: the topic role it goes to, key, value and Kafka timestamp."""

    role: str
    key: bytes
    value: bytes
    timestamp_ms: int


def customer_id(index: int) -> str:
    """The id of the benchmark's customer number ``index``."""
    return f"c-{index:07d}"


def topic_of(topics: TopicNames, role: str) -> str:
    """The topic name that plays ``role``."""
    return next(name for name, r in topics.inputs.items() if r == role)


def records(
    customers: int, events: int, *, now_ms: int, span_days: int = 20, seed: int = 1
) -> Iterator[Record]:
    """``events`` records for ``customers`` customers, oldest first, all inside the window.

    Every customer has at least one event; the rest follow a skewed popularity (a few
    heavy users, a long tail), as real products see.
    """
    if events < customers:
        raise ValueError("need at least one event per customer")
    rng = random.Random(seed)
    who = _order(rng, customers, events)
    start_ms = now_ms - span_days * DAY_MS
    stamps = sorted(rng.randrange(start_ms, now_ms - 60_000) for _ in range(events))
    kinds = rng.choices(EVENT_MIX, weights=_WEIGHTS, k=events)
    for number, (index, stamp, (role, kind, _)) in enumerate(zip(who, stamps, kinds, strict=True)):
        cid = customer_id(index)
        yield Record(
            role, cid.encode(), document(f"e-{seed}-{number}", cid, kind, stamp, rng), stamp
        )


def customer_order(customers: int, events: int, seed: int = 1) -> list[int]:
    """The customer number of each of ``records``' events, in order (without the rest)."""
    if events < customers:
        raise ValueError("need at least one event per customer")
    return _order(random.Random(seed), customers, events)


def _order(rng: random.Random, customers: int, events: int) -> list[int]:
    who = list(range(customers))
    weights = [1.0 / (1 + i % 1000) ** 0.6 for i in range(customers)]
    who += rng.choices(range(customers), weights=weights, k=events - customers)
    rng.shuffle(who)
    return who


def document(event_id: str, customer: str, kind: str, stamp_ms: int, rng: random.Random) -> bytes:
    """One native-shape event as JSON bytes, with realistic properties for its type."""
    doc = {
        "event_id": event_id,
        "customer_id": customer,
        "type": kind,
        "timestamp": _EPOCH + timedelta(milliseconds=stamp_ms),
        "properties": _properties(kind, rng),
    }
    return orjson.dumps(doc, option=orjson.OPT_UTC_Z)


def random_kind(rng: random.Random) -> tuple[str, str]:
    """A (topic role, event type) drawn from the mix."""
    role, kind, _ = rng.choices(EVENT_MIX, weights=_WEIGHTS)[0]
    return role, kind


def _properties(kind: str, rng: random.Random) -> dict[str, Any]:
    if kind == "session_end":
        return {"duration_seconds": rng.randint(3, 1800), "page_count": rng.randint(1, 25)}
    if kind == "survey_response":
        if rng.random() < 0.5:
            return {"nps": rng.randint(0, 10)}
        return {"csat": rng.randint(1, 5)}
    if kind in ("page_view", "click"):
        return {"path": rng.choice(_PATHS), "referrer": "https://example.com/"}
    return {"source": "web" if rng.random() < 0.7 else "ios"}


def producer(bootstrap: str, linger_ms: int = 20) -> Producer:
    """A librdkafka producer tuned for large batches, murmur2-partitioned like Java clients."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": linger_ms,
            "batch.size": 1_000_000,
            "batch.num.messages": 100_000,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "partitioner": "murmur2_random",
            "acks": "all",
        }
    )


def produce(bootstrap: str, topics: TopicNames, source: Iterable[Record]) -> dict[str, int]:
    """Produce every record and wait until Kafka has acknowledged all; count per topic."""
    sink = producer(bootstrap)
    names = {role: topic_of(topics, role) for role in topics.inputs.values()}
    sent: Counter[str] = Counter()
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    for record in source:
        topic = names[record.role]
        while True:
            try:
                sink.produce(
                    topic, record.value, record.key,
                    timestamp=record.timestamp_ms, on_delivery=delivered,
                )  # fmt: skip
                break
            except BufferError:
                sink.poll(0.05)
        sent[topic] += 1
        if sent.total() % 50_000 == 0:
            sink.poll(0)
    deadline = time.monotonic() + 120
    while sink.flush(1.0) and time.monotonic() < deadline:
        pass
    if failures or len(sink):
        raise RuntimeError(f"producing failed: {failures[:3]} ({len(sink)} undelivered)")
    return dict(sent)
