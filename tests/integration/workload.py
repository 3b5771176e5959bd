"""Known event sets for the fault scenarios, their from-scratch reference and checks.

A workload has two phases. The warm-up makes every customer known and armed (eight
page views). The main phase streams mixed positive events to most customers, out of
order across several days, re-sends some of them (duplicate deliveries), and gives each
churner one ``app_uninstall`` that drops it into churn risk: that alert's ``alert_id``
is known in advance. The reference is the pure model applied to each customer's
de-duplicated events at once, which the stored state must equal exactly.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from stream.adapters.redis_fields import decode_applied
from stream.adapters.redis_keys import customer_key
from stream.core.alerts import alert_id
from stream.core.customer import CustomerState, advance, drop_duplicates
from stream.core.events import Event, fingerprint
from stream.core.model import ScoringModel
from stream.ports import unpack_marks

__all__ = [
    "Message",
    "Outcome",
    "Workload",
    "committed_offsets",
    "drain_alert_ids",
    "make_workload",
    "tally_events",
]

Message = tuple[str, str, dict[str, Any]]  # (topic role, key, native document)

_DAY_MS = 86_400_000
_POSITIVE = [("clickstream", t) for t in ("page_view", "click", "like", "comment", "share")]
_POSITIVE += [("clickstream", "feature_used"), ("app_installs", "app_open")]
_POSITIVE += [("sessions", "session_end")]


@dataclass
class Workload:
    """Messages to send, and what the store and the alert topic must show afterwards."""

    model: ScoringModel
    customers: list[str]
    churners: list[str]
    warmup: list[Message]
    main: list[Message]
    events: dict[str, list[Event]] = field(default_factory=dict)
    uninstall_at: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Messages in both phases, duplicates included."""
        return len(self.warmup) + len(self.main)

    @property
    def duplicates(self) -> int:
        """Messages that re-deliver an event already sent."""
        return self.size - sum(len(e) for e in self.events.values())

    def reference(self, now_ms: int) -> dict[str, tuple[str, str]]:
        """Customer -> (score, band) computed from scratch by the pure model."""
        expected = {}
        for customer, events in self.events.items():
            state = advance(self.model, customer, CustomerState(), drop_duplicates(events, set()),
                            now_ms).state  # fmt: skip
            expected[customer] = (f"{state.score_cp / 100:g}", state.band)
        return expected

    def expected_alert_ids(self) -> set[str]:
        """One churn-risk alert per churner, triggered by its uninstall."""
        version = self.model.version
        return {alert_id(version, c, "event", at) for c, at in self.uninstall_at.items()}


def make_workload(
    model: ScoringModel,
    customers: int,
    events: int,
    *,
    seed: int = 7,
    churn_share: float = 0.1,
    duplicate_share: float = 0.03,
    now_ms: int | None = None,
    prefix: str = "c",
    warmup_age_ms: int = 3_600_000,
    spread_ms: int = 5 * _DAY_MS,
) -> Workload:
    """About ``events`` messages for ``customers`` customers, described in the module doc."""
    rng = random.Random(seed)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    names = [f"{prefix}{i:06d}" for i in range(customers)]
    churners = names[: max(1, int(customers * churn_share))]
    work = Workload(model, names, churners, [], [], {c: [] for c in names})
    for customer in names:
        for n in range(8):
            work.warmup.append(_message(work, customer, f"w{n}", "clickstream", "page_view",
                                        now - warmup_age_ms + n))  # fmt: skip
    for i, customer in enumerate(churners):
        at = now + 1000 + i
        work.uninstall_at[customer] = at
        work.main.append(_message(work, customer, "u", "app_installs", "app_uninstall", at))
    engaged = names[len(churners) :]
    for n in range(max(0, events - len(work.warmup) - len(churners))):
        role, kind = rng.choice(_POSITIVE)
        at = now - rng.randrange(spread_ms)
        work.main.append(_message(work, rng.choice(engaged), f"m{n}", role, kind, at, rng))
    rng.shuffle(work.main)
    for message in rng.sample(work.main, int(len(work.main) * duplicate_share)):
        work.main.insert(rng.randrange(len(work.main) + 1), message)
    return work


def _message(
    work: Workload,
    customer: str,
    suffix: str,
    role: str,
    kind: str,
    at: int,
    rng: random.Random | None = None,
) -> Message:
    doc: dict[str, Any] = {"event_id": f"{customer}-{suffix}", "customer_id": customer,
                           "type": kind, "timestamp": at}  # fmt: skip
    if kind == "session_end" and rng is not None:
        doc["properties"] = {"duration_seconds": rng.randrange(5, 1800),
                             "page_count": rng.randrange(1, 12)}  # fmt: skip
    work.events[customer].append(
        Event(doc["event_id"], customer, kind, at, doc.get("properties", {}))
    )
    return role, customer, doc


@dataclass
class Outcome:
    """How the stored state compares with the reference."""

    customers: int
    wrong: dict[str, tuple[tuple[str, str], tuple[str, str] | None]]

    @property
    def exact(self) -> bool:
        return not self.wrong


def compare(
    redis: Any, prefix: str, expected: dict[str, tuple[str, str]], batch: int = 2000
) -> Outcome:
    """Read score and band of every customer (pipelined) and diff them with ``expected``."""
    wrong: dict[str, tuple[tuple[str, str], tuple[str, str] | None]] = {}
    names = list(expected)
    for start in range(0, len(names), batch):
        chunk = names[start : start + batch]
        pipe = redis.pipeline(transaction=False)
        for customer in chunk:
            pipe.hmget(customer_key(prefix, customer), "score", "band")
        for customer, (score, band) in zip(chunk, pipe.execute(), strict=True):
            got = None if score is None else (score.decode(), band.decode())
            if got != expected[customer]:
                wrong[customer] = (expected[customer], got)
    return Outcome(len(names), wrong)


def alert_ids(bootstrap: str, topic: str, until: Callable[[list[str]], bool],
              timeout_s: float = 120) -> list[str]:  # fmt: skip
    """Every ``alert_id`` on the alert topic, read until ``until(ids)`` holds."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ids: list[str] = []
        deadline = time.monotonic() + timeout_s
        while not until(ids):
            if time.monotonic() > deadline:
                raise AssertionError(f"alerts incomplete after {timeout_s}s: {len(ids)} read")
            for records in consumer.poll(timeout_ms=300).values():
                ids.extend(orjson.loads(r.value)["alert_id"] for r in records)
        return ids
    finally:
        consumer.close()


def drain_alert_ids(bootstrap: str, topic: str, timeout_s: float = 120) -> list[str]:
    """Every ``alert_id`` on the alert topic up to its end offsets (taken now), in order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        end = consumer.end_offsets(partitions)
        ids: list[str] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"alert topic not drained after {timeout_s}s")
            for tp, records in consumer.poll(timeout_ms=300).items():
                ids.extend(orjson.loads(r.value)["alert_id"] for r in records if r.offset < end[tp])
        return ids
    finally:
        consumer.close()


def tally_events(
    redis: Any, prefix: str, work: Workload, now_ms: int, batch: int = 2000
) -> tuple[int, int]:
    """(lost, double-counted) events, measured in the store against the workload.

    The store records each applied event's fingerprint, one record per application, in
    the customer's packed ``dedup`` field (``decode_applied``), kept for the worker's
    fingerprint horizon (24 hours by default, far longer than any scenario). A distinct
    event that still counts but has no record there was lost; a fingerprint recorded more
    than once was applied more than once.
    """
    lost = double = 0
    names = list(work.events)
    for start in range(0, len(names), batch):
        chunk = names[start : start + batch]
        pipe = redis.pipeline(transaction=False)
        for customer in chunk:
            pipe.hmget(customer_key(prefix, customer), "dedup", "seen")
        for customer, (packed, seen) in zip(chunk, pipe.execute(), strict=True):
            marks = [mark for mark, _ in unpack_marks(decode_applied(packed, seen).marks)]
            double += len(marks) - len(set(marks))
            live = {fingerprint(e) for e in work.events[customer]
                    if work.model.is_live(e.timestamp_ms, now_ms)}  # fmt: skip
            lost += len(live - set(marks))
    return lost, double


def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The consumer group's committed offsets."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group)[group]
    finally:
        admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


class Streamer:
    """Sends messages from a background thread in chunks released one at a time."""

    def __init__(self, send: Callable[[Message], None], flush: Callable[[], None],
                 messages: Sequence[Message], chunks: int) -> None:  # fmt: skip
        self.send, self.flush = send, flush
        size = -(-len(messages) // chunks)
        self.chunks = [messages[i : i + size] for i in range(0, len(messages), size)]
        self.released = threading.Semaphore(0)
        self.sent_chunks = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def release(self, count: int = 1) -> None:
        """Let the next ``count`` chunks go."""
        self.released.release(count)

    def release_all(self) -> None:
        self.release(len(self.chunks))

    @property
    def done(self) -> bool:
        return self.sent_chunks == len(self.chunks)

    def join(self, timeout_s: float = 300) -> None:
        self.thread.join(timeout_s)
        assert self.done, f"only {self.sent_chunks}/{len(self.chunks)} chunks sent"

    def _run(self) -> None:
        for chunk in self.chunks:
            self.released.acquire()
            for message in chunk:
                self.send(message)
            self.flush()
            self.sent_chunks += 1


def sent_events(messages: Iterable[Message]) -> int:
    """Distinct events among ``messages``."""
    return len({(key, doc["event_id"]) for _, key, doc in messages})


def stored(redis: Any, prefix: str, customers: Sequence[str], batch: int = 5000) -> int:
    """How many of ``customers`` have a score hash."""
    total = 0
    for start in range(0, len(customers), batch):
        pipe = redis.pipeline(transaction=False)
        for customer in customers[start : start + batch]:
            pipe.exists(customer_key(prefix, customer))
        total += sum(pipe.execute())
    return total


@dataclass
class SilentGroup:
    """Customers who were active once and then go quiet: window-driven alerts."""

    customers: list[str]
    messages: list[Message]
    alert_ids: list[str]


def silent_group(model: ScoringModel, count: int, prefix: str, at_ms: int) -> SilentGroup:
    """``count`` customers with eight page views at ``at_ms``, and their expected window alert.

    The reference replays the pure core: the customer becomes known with its page views,
    then the window moves past them; the alert is dated at that expiry moment.
    """
    group = SilentGroup([], [], [])
    for i in range(count):
        customer = f"{prefix}{i:05d}"
        events = [Event(f"{customer}-{n}", customer, "page_view", at_ms + n) for n in range(8)]
        group.customers.append(customer)
        group.messages += [("clickstream", customer, {"event_id": e.event_id, "customer_id":
                            customer, "type": e.type, "timestamp": e.timestamp_ms})
                           for e in events]  # fmt: skip
        known = advance(model, customer, CustomerState(), events, at_ms + 8).state
        later = advance(model, customer, known, [], at_ms + 2 * model.window_ms)
        assert len(later.alerts) == 1, "a silent customer must alert exactly once"
        group.alert_ids.append(later.alerts[0].alert_id)
    return group


def committed_events(
    bootstrap: str, topics: Iterable[str], committed: dict[tuple[str, int], int]
) -> dict[str, list[Event]]:
    """Events of every input partition below its committed offset, by customer."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    events: dict[str, list[Event]] = {}
    try:
        for topic in topics:
            for partition in consumer.partitions_for_topic(topic) or []:
                end = committed.get((topic, partition), 0)
                if end > 0:
                    _read_below(consumer, TopicPartition(topic, partition), end, events)
    finally:
        consumer.close()
    return events


def _read_below(consumer: Any, tp: Any, end: int, into: dict[str, list[Event]]) -> None:
    consumer.assign([tp])
    consumer.seek(tp, 0)
    while consumer.position(tp) < end:
        for record in consumer.poll(timeout_ms=500).get(tp, []):
            if record.offset < end:
                doc = orjson.loads(record.value)
                into.setdefault(doc["customer_id"], []).append(
                    Event(
                        doc["event_id"],
                        doc["customer_id"],
                        doc["type"],
                        doc["timestamp"],
                        doc.get("properties", {}),
                    )
                )
