"""Load history into Redis in event time, then hand over to the live workers exactly once
(``engagement backfill``).

1. Refuse a prefix that holds data (``--force`` empties it) and, for ``--topics``, a consumer
   group with active members or (unless forced) committed offsets.
2. Read the history: files (JSON lines or CSV, gzip or not) or the input topics' retained
   messages below a snapshot of their end offsets. Decode with the worker's decoder; count
   rejections by the worker's reasons. Nothing is ``too_old``: the clock follows the events.
3. Replay in event time through the core (:mod:`stream.event_files.replay`), one ``advance`` per
   customer per step, up to the as-of moment. Alerts the replay raises are counted, never
   published: they are history.
4. Write every customer as of that moment through the store, with the fingerprints of the
   events still in its window, so a later re-delivery of any of them is dropped as a
   duplicate by the live workers.
5. Hand over. Topics: commit the snapshot offsets for the consumer group, so workers start
   right after the last message the backfill read. Files: the backfill owns every event in
   the files at or before the as-of moment; live workers score every other event, and drop
   the re-deliveries of the backfill's events (same customer and event id) by fingerprint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kafka.partitioner import murmur2

from stream.adapters.kafka_replay import (
    Snapshot,
    commit_group_offsets,
    group_state,
    read_partition,
    snapshot,
)
from stream.adapters.redis_client import async_redis, check_redis_credentials
from stream.adapters.redis_store import RedisScoreStore
from stream.config.errors import ConfigError
from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.core.events import Event
from stream.core.model import ScoringModel
from stream.core.profile import Profile
from stream.errors import ReplayError
from stream.event_files.replay import DecodeSummary, Replay, decode_records
from stream.event_files.sources import RawRecord, read_file
from stream.ports import Applied, Commit, IndexEntry, pack_marks
from stream.worker.accounts import seed_accounts
from stream.worker.processor import segment_membership

__all__ = ["BackfillReport", "BackfillRequest", "backfill", "partition_of"]

_ARGUMENTS = "arguments"


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    """What to load, as of when, and how."""

    files: tuple[Path, ...] = ()
    topics: bool = False
    as_of_ms: int = 0
    step_ms: int | None = None
    force: bool = False
    progress: bool = True
    chunk: int = 500


@dataclass(slots=True)
class BackfillReport:
    """What a backfill read, replayed and wrote."""

    source: str
    model_version: str
    as_of_ms: int
    prefix: str
    decoded: DecodeSummary = field(default_factory=DecodeSummary)
    applied: int = 0
    duplicates: int = 0
    customers: int = 0
    alerts_replayed: int = 0
    bands: dict[str, int] = field(default_factory=dict)
    cleared_keys: int = 0
    read_seconds: float = 0.0
    replay_seconds: float = 0.0
    write_seconds: float = 0.0
    handover: str = ""

    def lines(self) -> list[str]:
        """The summary printed at the end."""
        from stream.adapters.codec import iso_ms  # noqa: PLC0415

        rate = self.decoded.decoded / self.replay_seconds if self.replay_seconds else 0.0
        lines = [
            f"backfill of {self.source} into prefix {self.prefix} as of "
            f"{iso_ms(self.as_of_ms)} with {self.model_version}",
            *self.decoded.lines(),
            f"  applied    {self.applied} events ({self.duplicates} duplicates dropped)",
            f"customers written: {self.customers}; alerts the replay raised (not published): "
            f"{self.alerts_replayed}",
            f"time: read+decode {self.read_seconds:.1f} s, replay {self.replay_seconds:.1f} s "
            f"({rate:,.0f} events/s), write {self.write_seconds:.1f} s",
        ]
        if self.cleared_keys:
            lines.append(f"--force: deleted {self.cleared_keys} keys first")
        lines += [f"  {band:<18} {count:>8}" for band, count in self.bands.items()]
        lines.append(self.handover)
        return lines


def partition_of(customer_id: str, partitions: int) -> int:
    """The input partition a producer's default partitioner gives the customer's key."""
    hashed: int = murmur2(customer_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


async def backfill(settings: Settings, request: BackfillRequest) -> BackfillReport:
    """Run the backfill described by ``request``; see the module doc."""
    model = load_model(settings.model)
    source = "the input topics" if request.topics else ", ".join(p.name for p in request.files)
    report = BackfillReport(source, model.version, request.as_of_ms, settings.redis_prefix)
    check_redis_credentials(settings.redis)
    redis = async_redis(settings.redis, socket_timeout=30, socket_connect_timeout=10)
    try:
        store = RedisScoreStore(redis, settings.redis_prefix)
        await _prepare(store, request.force, report)
        snap: Snapshot | None = None
        seen_in: dict[str, int] = {}
        if request.topics:
            _check_group(settings, request.force)
            snap = snapshot(settings)
            records: Iterator[RawRecord] = _topic_records(settings, snap, seen_in)
        else:
            records = (r for path in request.files for r in read_file(path))
        started = time.monotonic()
        events, _ = decode_records(
            records,
            model,
            now_ms=int(time.time() * 1000),
            as_of_ms=request.as_of_ms,
            limits=settings.decode_limits(),
            summary=report.decoded,
        )
        report.read_seconds = time.monotonic() - started
        started = time.monotonic()
        replay = _replay(model, events, request)
        report.replay_seconds = time.monotonic() - started
        report.applied, report.duplicates = replay.applied, replay.duplicates
        report.alerts_replayed = len(replay.alerts)
        started = time.monotonic()
        count = settings.partitions
        partition: Callable[[str], int] = (
            seen_in.__getitem__ if snap is not None else lambda c: partition_of(c, count)
        )
        await _write(store, model, replay, request, partition, report)
        report.write_seconds = time.monotonic() - started
        report.bands = await store.band_counts(model.bands)
        if snap is not None:
            commit_group_offsets(settings, settings.app_id, snap)
            report.handover = (
                f"consumer group {settings.app_id} starts at the snapshot offsets "
                f"({snap.messages} messages were the backfill's): start the workers"
            )
        else:
            report.handover = (
                "hand-over: events at or before the as-of moment are the backfill's; start the "
                "workers: they score every later event and drop re-deliveries of the "
                "backfill's events (same event id) as duplicates"
            )
        return report
    finally:
        await redis.aclose()


async def _prepare(store: RedisScoreStore, force: bool, report: BackfillReport) -> None:
    if await store.empty():
        return
    if not force:
        raise ConfigError(
            _ARGUMENTS,
            "ENGAGEMENT_REDIS_PREFIX",
            f"prefix {store.prefix!r} already holds data; a backfill starts from an empty "
            "prefix (--force deletes its keys first)",
        )
    report.cleared_keys = await store.clear()


def _check_group(settings: Settings, force: bool) -> None:
    members, committed = group_state(settings, settings.app_id)
    if members:
        raise ConfigError(
            _ARGUMENTS,
            "ENGAGEMENT_APP_ID",
            f"consumer group {settings.app_id!r} has {members} active member(s); stop its "
            "workers first",
        )
    if committed and not force:
        raise ConfigError(
            _ARGUMENTS,
            "ENGAGEMENT_APP_ID",
            f"consumer group {settings.app_id!r} already has committed offsets; --force "
            "overwrites them",
        )


def _topic_records(
    settings: Settings, snap: Snapshot, seen_in: dict[str, int]
) -> Iterator[RawRecord]:
    """The retained messages below the snapshot; ``seen_in`` learns each key's partition."""
    roles = settings.topics.inputs
    for partition in snap.partitions:
        for record in read_partition(settings, snap.of(partition)):
            if record.key:
                seen_in.setdefault(record.key.decode(errors="replace"), partition)
            yield RawRecord(record.key, record.value, record.source, roles[record.topic])


def _replay(model: ScoringModel, events: Sequence[Event], request: BackfillRequest) -> Replay:
    replay = Replay(model, request.step_ms)
    if not request.progress or not events:
        replay.run(events, [request.as_of_ms])
        return replay
    from tqdm import tqdm  # noqa: PLC0415

    with tqdm(total=len(events), unit="ev", unit_scale=True, desc="replay") as bar:
        replay.run(events, [request.as_of_ms], progress=bar.update)
    return replay


async def _write(
    store: RedisScoreStore,
    model: ScoringModel,
    replay: Replay,
    request: BackfillRequest,
    partition: Callable[[str], int],
    report: BackfillReport,
) -> None:
    customers = list(replay.states)
    for start in range(0, len(customers), request.chunk):
        commits, entries = [], []
        for customer_id in customers[start : start + request.chunk]:
            commit, entry = _commit(
                model, replay, customer_id, partition(customer_id), request.as_of_ms
            )
            commits.append(commit)
            entries.append(entry)
        result = await store.commit(commits)
        clashes = result.conflicts
        if clashes:
            raise ReplayError(
                f"Redis prefix {store.prefix!r}: {len(clashes)} customers were written by "
                "someone else during the backfill (is a worker using this prefix?)"
            )
        await store.update_indexes(entries)
        await seed_accounts(model, store, entries, request.as_of_ms)
        report.customers += len(commits)


def _commit(
    model: ScoringModel, replay: Replay, customer_id: str, partition: int, as_of_ms: int
) -> tuple[Commit, IndexEntry]:
    state = replay.states[customer_id]
    marks = replay.live_marks(customer_id, as_of_ms)
    profile = replay.profiles.get(customer_id)
    commit = Commit(customer_id, 0, state, replay.breakdowns[customer_id], partition,
                    model.version, Applied.of(marks=pack_marks(marks)), (),
                    bucket_ms=model.bucket_ms, profile=profile)  # fmt: skip
    member = segment_membership(model, state, profile or Profile())
    entry = IndexEntry(customer_id, partition, state.score_cp / 100, replay.next_due[customer_id],
                       account=profile.account if profile is not None else None,
                       segments=member)  # fmt: skip
    return commit, entry
