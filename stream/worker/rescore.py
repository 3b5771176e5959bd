"""Move every customer's score to a new scoring model, exactly once (``engagement rescore``).

1. Refuse unsafe targets: the running deployment's prefix or consumer group, a target
   group with active members or (unless forced) committed offsets, a target prefix that
   holds data (unless forced, which deletes it first).
2. Snapshot the end offsets of every input partition.
3. Per partition number: read the retained messages below the snapshot, decode them with
   the new model (rejections are counted, not dead-lettered again), rebuild each customer
   from scratch without alerts (:mod:`stream.core.rebuild`) and commit it into the new
   prefix with the fingerprints of the events it applied, so later re-deliveries of those
   events are dropped as duplicates.
4. Carry over customers of the old prefix that have no live event left (score 0, alert
   memory kept), as the new model would show them had it always run.
5. Commit the snapshot offsets for the new consumer group: workers started with the new
   model, prefix and group continue exactly where the rebuild stopped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from stream.adapters.kafka_admin import input_retention_ms, required_retention_ms
from stream.adapters.kafka_replay import (
    PartitionRange,
    commit_group_offsets,
    group_state,
    read_partition,
    snapshot,
)
from stream.adapters.redis_client import async_redis, check_redis_credentials
from stream.adapters.redis_reads import Stored
from stream.adapters.redis_store import RedisScoreStore
from stream.config.errors import ConfigError
from stream.config.settings import Settings
from stream.core.decode import Ignored, Rejection
from stream.core.events import Event, fingerprint
from stream.core.kernel import Decoder
from stream.core.model import ScoringModel
from stream.core.profile import Profile, apply_profile
from stream.core.rebuild import Rebuilt, rebuild
from stream.errors import ReplayError
from stream.ports import Applied, Commit, Incoming, IndexEntry, pack_marks
from stream.worker.accounts import seed_accounts
from stream.worker.processor import customer_commit, segment_membership, window_marks

__all__ = ["RescoreReport", "Target", "rescore"]

_ARGUMENTS = "arguments"


@dataclass(frozen=True, slots=True)
class Target:
    """Where the scores go: the new model, Redis prefix and consumer group."""

    model: ScoringModel
    prefix: str
    app_id: str


@dataclass(slots=True)
class RescoreReport:
    """What a rescore read, rebuilt and wrote."""

    old_version: str
    new_version: str
    partitions: int = 0
    messages: int = 0
    scored: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rebuilt: int = 0
    carried: int = 0
    cleared_keys: int = 0
    entered_alert_band: int = 0
    bands_old: dict[str, int] = field(default_factory=dict)
    bands_new: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


async def rescore(
    settings: Settings,
    old_model: ScoringModel,
    target: Target,
    *,
    force: bool = False,
    now_ms: int | None = None,
    chunk: int = 500,
) -> RescoreReport:
    """Rebuild every customer into ``target`` from the retained input; see the module doc."""
    _check_target(settings, target, force)
    check_redis_credentials(settings.redis)
    redis = async_redis(settings.redis, socket_timeout=30, socket_connect_timeout=10)
    try:
        job = _Rescore(
            settings,
            target,
            RedisScoreStore(redis, settings.redis_prefix),
            RedisScoreStore(redis, target.prefix),
            RescoreReport(old_model.version, target.model.version),
            now_ms if now_ms is not None else int(time.time() * 1000),
            chunk,
        )
        await job.prepare(force)
        snap = snapshot(settings)
        job.check_retention()
        for partition in snap.partitions:
            await job.rebuild_partition(snap.of(partition))
        await job.carry_over()
        job.report.bands_old = await job.old.band_counts(old_model.bands)
        job.report.bands_new = await job.new.band_counts(target.model.bands)
        commit_group_offsets(settings, target.app_id, snap)
        job.report.partitions = len(snap.partitions)
        return job.report
    finally:
        await redis.aclose()


def _check_target(settings: Settings, target: Target, force: bool) -> None:
    if "{" in target.prefix or "}" in target.prefix or not target.prefix:
        raise ConfigError(_ARGUMENTS, "--to-prefix", "must be non-empty, without braces")
    if target.prefix == settings.redis_prefix:
        raise ConfigError(
            _ARGUMENTS, "--to-prefix", f"must differ from ENGAGEMENT_REDIS_PREFIX ({target.prefix})"
        )
    if target.app_id == settings.app_id:
        raise ConfigError(
            _ARGUMENTS, "--to-app-id", f"must differ from ENGAGEMENT_APP_ID ({target.app_id})"
        )
    members, committed = group_state(settings, target.app_id)
    if members:
        raise ConfigError(
            _ARGUMENTS,
            "--to-app-id",
            f"consumer group {target.app_id!r} has {members} active member(s); "
            "stop its workers first",
        )
    if committed and not force:
        raise ConfigError(
            _ARGUMENTS,
            "--to-app-id",
            f"consumer group {target.app_id!r} already has committed offsets "
            f"({committed} partitions); --force overwrites them",
        )


@dataclass(slots=True)
class _Rescore:
    """One rescore run: both stores, the clock it scores at, and its report."""

    settings: Settings
    target: Target
    old: RedisScoreStore
    new: RedisScoreStore
    report: RescoreReport
    now_ms: int
    chunk: int
    decode: Decoder = field(init=False)

    def __post_init__(self) -> None:
        self.decode = Decoder(self.target.model, self.settings.decode_limits())

    async def prepare(self, force: bool) -> None:
        """The target prefix must be empty; with ``force`` it is emptied."""
        if await self.new.empty():
            return
        if not force:
            raise ConfigError(
                _ARGUMENTS,
                "--to-prefix",
                f"prefix {self.target.prefix!r} already holds data; "
                "--force deletes it and rebuilds",
            )
        self.report.cleared_keys = await self.new.clear()

    def check_retention(self) -> None:
        """Warn when input topics may have lost events that still count in the new window."""
        required = required_retention_ms(self.target.model)
        for topic, retention in input_retention_ms(self.settings).items():
            if retention is not None and retention < required:
                self.report.warnings.append(
                    f"{topic}: retention.ms {retention} is shorter than the new model's window "
                    f"({required} ms): events deleted by retention are missing from the scores"
                )

    async def rebuild_partition(self, ranges: Sequence[PartitionRange]) -> None:
        """Rebuild and write every customer whose messages are in these ranges."""
        events: dict[str, list[Event]] = {}
        partition = ranges[0].partition
        trimmed = {(r.topic, r.begin) for r in ranges if r.begin > 0}
        for record in read_partition(self.settings, ranges):
            if (record.topic, record.offset) in trimmed:
                self._check_trimmed(record)
            self.report.messages += 1
            decoded = self._decode(record)
            if isinstance(decoded, Rejection):
                self.report.rejected[decoded.reason] += 1
            elif not isinstance(decoded, Ignored):  # unmapped calls: skipped, as in the worker
                events.setdefault(decoded.customer_id, []).append(decoded)
        for ids in _chunks(list(events), self.chunk):
            before = await self.old.stored(ids)
            built = {c: self._rebuild(c, events[c], before.get(c)) for c in ids}
            # traits and account: the old prefix's, updated by the retained identify/group calls
            profiles = {c: apply_profile(before[c].profile if c in before else Profile(), events[c])
                        for c in ids}  # fmt: skip
            await self._write({c: (partition, b) for c, b in built.items()}, profiles)
            for rebuilt in built.values():
                self.report.scored += len(rebuilt.applied)
                self.report.duplicates += rebuilt.duplicates
            self.report.rebuilt += len(ids)

    async def carry_over(self) -> None:
        """Customers stored under the old prefix but without a live event: score 0."""
        async for ids in self.old.customer_ids(self.chunk):
            present = await self.new.stored(ids)
            missing = [c for c in ids if c not in present]
            before = await self.old.stored(missing) if missing else {}
            moved = {
                c: (stored.partition, self._rebuild(c, [], stored))
                for c, stored in before.items()
                if stored.partition is not None
            }
            await self._write(moved, {c: stored.profile for c, stored in before.items()})
            self.report.carried += len(moved)

    def _rebuild(self, customer_id: str, events: list[Event], before: Stored | None) -> Rebuilt:
        model = self.target.model
        rebuilt = rebuild(model, customer_id, events, self.now_ms, before.state if before else None)
        band = rebuilt.evaluation.state.band
        if band == model.alerts.band and (before is None or before.state.band != band):
            self.report.entered_alert_band += 1
        return rebuilt

    def _decode(self, record: Incoming) -> Event | Rejection | Ignored:
        role = self.settings.topics.inputs[record.topic]
        return self.decode(record.value, record.key, role, self.now_ms, record.source)

    def _check_trimmed(self, first_kept: Incoming) -> None:
        """A partition whose first retained message still counts may have lost earlier ones."""
        horizon = self.now_ms - required_retention_ms(self.target.model)
        if first_kept.timestamp_ms > horizon:
            self.report.warnings.append(
                f"{first_kept.topic}/{first_kept.partition}: messages before offset "
                f"{first_kept.offset} "
                "were deleted, and the first one kept is inside the new window: "
                "events may be missing"
            )

    async def _write(
        self, built: dict[str, tuple[int, Rebuilt]], profiles: dict[str, Profile]
    ) -> None:
        if not built:
            return
        commits, entries = [], []
        for customer_id, (partition, rebuilt) in built.items():
            commit, entry = _commit(self.target.model, customer_id, partition, rebuilt, self.now_ms,
                                    profiles.get(customer_id))  # fmt: skip
            commits.append(commit)
            entries.append(entry)
        result = await self.new.commit(commits)
        conflicts = result.conflicts
        if conflicts:
            raise ReplayError(
                f"Redis prefix {self.target.prefix!r}: {len(conflicts)} customers were written "
                "by someone else during the rescore (is a worker using this prefix?)"
            )
        await self.new.update_indexes(entries)
        await seed_accounts(self.target.model, self.new, entries, self.now_ms)


def _commit(
    model: ScoringModel,
    customer_id: str,
    partition: int,
    rebuilt: Rebuilt,
    now_ms: int,
    profile: Profile | None = None,
) -> tuple[Commit, IndexEntry]:
    """A new customer's commit (through the worker's own ``customer_commit``), with the
    customer's traits and account carried over, and its index entry."""
    evaluation = rebuilt.evaluation
    applied = ((e, fingerprint(e)) for e in rebuilt.applied)
    kept = profile if profile is not None and profile != Profile() else None
    marks = pack_marks(window_marks(model, applied))
    commit = customer_commit(model, customer_id, partition, 0, evaluation, Applied.of(marks=marks),
                             (), kept)  # fmt: skip
    entry = IndexEntry(
        customer_id,
        partition,
        evaluation.state.score_cp / 100,
        evaluation.next_due_ms,
        account=profile.account if profile is not None else None,
        segments=segment_membership(model, evaluation.state, profile or Profile()),
    )
    return commit, entry


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
