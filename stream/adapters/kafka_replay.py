"""Read the input topics' retained messages up to a snapshot, and hand a consumer group
its starting offsets (for ``engagement rescore``).

Reading uses a plain consumer without a group, so no group's offsets move. The offsets are
given to the new group with the admin API, which Kafka accepts only while the group has no
active member.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from stream.adapters.kafka_security import client_options
from stream.config.errors import ConfigError
from stream.config.settings import Settings
from stream.errors import ReplayError
from stream.ports import Incoming

__all__ = [
    "PartitionRange",
    "Snapshot",
    "commit_group_offsets",
    "group_state",
    "read_partition",
    "snapshot",
]

_T = TypeVar("_T")
_SOURCE = "kafka"


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """The retained messages of one input partition below the snapshot: [begin, end)."""

    topic: str
    partition: int
    begin: int
    end: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every input partition's retained range, taken at one moment."""

    ranges: tuple[PartitionRange, ...]

    @property
    def partitions(self) -> list[int]:
        """The partition numbers (the inputs are co-partitioned)."""
        return sorted({r.partition for r in self.ranges})

    @property
    def messages(self) -> int:
        return sum(r.end - r.begin for r in self.ranges)

    def of(self, partition: int) -> list[PartitionRange]:
        """The ranges of one partition number, one per input topic."""
        return [r for r in self.ranges if r.partition == partition]


def _consumer(settings: Settings, **extra: Any) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        client_id=f"{settings.app_id}-rescore",
        **client_options(settings.kafka_security),
        **extra,
    )


def _admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.app_id}-rescore",
        **client_options(settings.kafka_security),
    )


def snapshot(settings: Settings) -> Snapshot:
    """The current beginning and end offsets of every input partition."""
    consumer = _consumer(settings, group_id=None)
    try:
        tps = []
        counts = {}
        for topic in settings.topics.inputs:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise ConfigError(_SOURCE, topic, "input topic does not exist")
            counts[topic] = len(partitions)
            tps += [TopicPartition(topic, p) for p in sorted(partitions)]
        if len(set(counts.values())) != 1:
            raise ConfigError(_SOURCE, "input topics", f"are not co-partitioned: {counts}")
        begin = consumer.beginning_offsets(tps)
        end = consumer.end_offsets(tps)
    finally:
        consumer.close()
    return Snapshot(tuple(PartitionRange(tp.topic, tp.partition, begin[tp], end[tp]) for tp in tps))


def read_partition(
    settings: Settings, ranges: Sequence[PartitionRange], stall_s: float = 60.0
) -> Iterator[Incoming]:
    """Every message inside ``ranges``, in offset order per partition."""
    wanted = {TopicPartition(r.topic, r.partition): r for r in ranges if r.end > r.begin}
    if not wanted:
        return
    consumer = _consumer(settings, group_id=None, key_deserializer=None)
    try:
        consumer.assign(list(wanted))
        for tp, span in wanted.items():
            consumer.seek(tp, span.begin)
        last_progress = time.monotonic()
        while any(consumer.position(tp) < span.end for tp, span in wanted.items()):
            batches = consumer.poll(timeout_ms=500)
            if batches:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > stall_s:
                raise ReplayError(f"{_SOURCE}: no message read for {stall_s:.0f} s")
            for tp, records in batches.items():
                end = wanted[tp].end
                yield from (_retained(r) for r in records if r.offset < end)
    finally:
        consumer.close()


def _retained(record: Any) -> Incoming:
    return Incoming(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value if record.value is not None else b"",
        timestamp_ms=record.timestamp,
    )


def group_state(settings: Settings, group: str) -> tuple[int, int]:
    """(active members, partitions with a committed offset) of a consumer group."""
    admin = _admin(settings)
    try:
        described = _retrying(lambda: admin.describe_groups([group]))[group]
        offsets = _retrying(lambda: admin.list_group_offsets(group))[group]
    finally:
        admin.close()
    return len(described.get("members") or []), len(offsets)


def commit_group_offsets(settings: Settings, group: str, snap: Snapshot) -> None:
    """Commit the snapshot's end offsets for ``group``: its workers start there."""
    offsets = {
        TopicPartition(r.topic, r.partition): OffsetAndMetadata(r.end, "", -1) for r in snap.ranges
    }
    admin = _admin(settings)
    try:
        results = _retrying(lambda: admin.alter_group_offsets(group, offsets))
    finally:
        admin.close()
    failed = {f"{tp.topic}/{tp.partition}": error.__name__ for tp, error in results.items()
              if error.__name__ != "NoError"}  # fmt: skip
    if failed:
        raise ReplayError(
            f"{_SOURCE}: group {group}: could not commit the snapshot offsets: {failed}"
        )


def _retrying(call: Callable[[], _T], attempts: int = 20, pause_s: float = 1.0) -> _T:
    """Retry a call while the broker answers with a retriable error (coordinator loading)."""
    for attempt in range(attempts):
        try:
            return call()
        except KafkaError as exc:
            if not getattr(exc, "retriable", False) or attempt == attempts - 1:
                raise
            time.sleep(pause_s)
    raise AssertionError("unreachable")
