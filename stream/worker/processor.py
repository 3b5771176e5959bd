"""Process a batch of input messages, or a sweep of due customers: the stored totals count
each event exactly once, and each alert fires once per crossing and is published at least
once (consumers drop duplicates by its deterministic ``alert_id``).

The order of effects is what makes replay safe:
1. each customer's new state, applied record (offset watermarks and recent fingerprints,
   ``stream.worker.dedup``) and alert outbox are committed atomically (one small Lua script
   per customer: an optimistic version check, then the write);
2. outbox alerts are published and acknowledged by Kafka, then the outbox is cleared;
3. with accounts, the customers' scores are rolled into their accounts and account alerts
   are committed, published and cleared the same way (``stream.worker.accounts``);
4. the ranking and due indexes are updated (idempotent);
5. dead letters are acknowledged by Kafka;
only then does the caller acknowledge the input offsets. A crash anywhere replays the
batch: watermarks make redelivered messages no-ops (fingerprints, re-sent events), and a
left-over outbox is published again with the same deterministic ``alert_id``.

Customers' last committed state is cached in memory, so a batch usually costs one Redis
round trip for all commits. The duplicate check runs here, against the cached applied
record; the cache is only a guess, as every commit checks the version in Redis (so the
record checked against is the stored one), and a mismatch re-reads the customer and
decides again.

The processor sees the store and the publisher only through ``stream.ports`` (it hands
the store domain objects and never builds a stored field), so it runs in process against
the in-memory store of the tests as it does against Redis.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from stream.adapters.codec import alert_to_json
from stream.adapters.metrics import Metrics
from stream.config.settings import TopicNames
from stream.core import kernel
from stream.core.customer import CustomerState, Evaluation, advance
from stream.core.decode import DecodeLimits, Ignored, Rejection
from stream.core.events import PROFILE_TYPES, Event, fingerprint
from stream.core.model import ScoringModel
from stream.core.profile import Profile, apply_profile
from stream.core.segments import Membership, membership
from stream.core.vocabulary import Outcome
from stream.errors import ProcessingError
from stream.ports import (
    Applied,
    AppliedMark,
    Commit,
    CommitResult,
    Incoming,
    IndexEntry,
    Loaded,
    OutboxAlert,
    OutMessage,
    Publisher,
    ScoreStore,
    source_id,
)
from stream.upstream.prometheus import observe_all
from stream.worker.accounts import roll_up_accounts
from stream.worker.crashpoints import CrashPlan
from stream.worker.dedup import DedupPolicy, Seen, after
from stream.worker.stages import BatchStages

__all__ = [
    "BatchProcessor",
    "BatchReport",
    "Marked",
    "customer_commit",
    "segment_membership",
    "window_marks",
]

_MAX_ROUNDS = 10
_CACHE_LIMIT = 200_000
_NO_CRASH = CrashPlan({})
_REPORT_FIELD = {"scored": "scored", "duplicate": "duplicates", "expired": "expired",
                 "profiled": "profiled"}  # fmt: skip

Marked = tuple[Incoming, Event, bytes]
"""A decoded event with the message it came from and its fingerprint, carried together."""


@dataclass(slots=True)
class BatchReport:
    """What one batch or sweep did."""

    scored: int = 0
    duplicates: int = 0
    expired: int = 0
    dead_lettered: int = 0
    ignored: int = 0  # unmapped track names and unscored calls (not dead-lettered)
    profiled: int = 0  # identify/group calls applied (traits or account stored)
    sweep_behind_ms: int = 0
    alerts: list[dict[str, object]] = field(default_factory=list)


@dataclass(slots=True)
class _Group:
    partition: int
    items: list[Marked] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


def customer_commit(
    model: ScoringModel,
    customer_id: str,
    partition: int,
    version: int,
    evaluation: Evaluation,
    applied: Applied,
    outbox: Sequence[OutboxAlert],
    profile: Profile | None = None,
    before: Loaded | None = None,
) -> Commit:
    """A customer's commit: its new evaluation on top of ``version`` (read as ``before``),
    its whole applied record after it, its outbox, and its new profile if traits or
    account changed (None keeps the stored one). The worker and the rescore both commit
    through this one function."""
    return Commit(customer_id, version, evaluation.state, evaluation.breakdown, partition,
                  model.version, applied, outbox, bucket_ms=model.bucket_ms, profile=profile,
                  before=before)  # fmt: skip


def window_marks(model: ScoringModel, applied: Iterable[tuple[Event, bytes]]) -> list[AppliedMark]:
    """Fingerprints kept until each event's bucket leaves the window (backfill, rescore:
    their events have no offsets the worker could recognise)."""
    return [(mark, model.expiry_of(model.bucket_of(e.timestamp_ms))) for e, mark in applied]


def segment_membership(
    model: ScoringModel, state: CustomerState, profile: Profile
) -> Membership | None:
    """The customer's segment membership for the index entry (None: the model has no
    segments, and then nothing is computed). The worker, rescore and backfill share it."""
    if model.segments is None:
        return None
    band = state.band or model.bands.band_for(state.score_cp / 100)
    return membership(model.segments, profile.traits, band, state.score_cp)


class BatchProcessor:
    """Glue between decoded messages, the pure core, the store and the publisher."""

    def __init__(
        self,
        model: ScoringModel,
        store: ScoreStore,
        publisher: Publisher,
        topics: TopicNames,
        metrics: Metrics | None = None,
        limits: DecodeLimits | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        cache_limit: int = _CACHE_LIMIT,
        dedup: DedupPolicy | None = None,
        crash: CrashPlan = _NO_CRASH,
    ) -> None:
        self.model = model
        self.store = store
        self.publisher = publisher
        self.topics = topics
        self.metrics = metrics or Metrics()
        self.decode = kernel.Decoder(model, limits)
        # the compiled kernel's running totals for states read from the store (None: Python)
        self.warm = kernel.running_warmer(model)
        self.clock_ms = clock_ms
        self.cache: dict[str, Loaded] = {}
        self.cache_limit = cache_limit
        self.account_members: dict[str, str] = {}  # customer -> account the store holds it in
        self.dedup = dedup or DedupPolicy()
        self.crash = crash

    def forget(self) -> None:
        """Drop the state cache (after a rebalance another worker may have written)."""
        self.cache.clear()
        self.account_members.clear()

    async def process(self, batch: Sequence[Incoming]) -> BatchReport:
        """Score a batch of input messages; dead-letter the ones that cannot be scored."""
        now_ms = self.clock_ms()
        stages = BatchStages()
        report = BatchReport()
        groups: dict[str, _Group] = {}
        dead: list[OutMessage] = []
        for message in batch:
            outcome = self._decode(message, now_ms)
            if type(outcome) is Event:  # the usual case first
                group = groups.get(outcome.customer_id)
                if group is None:
                    group = groups[outcome.customer_id] = _Group(message.partition)
                group.items.append((message, outcome, fingerprint(outcome)))
                continue
            if isinstance(outcome, Ignored):
                self.metrics.events.labels(message.topic, outcome.call, "ignored").inc()
                self.metrics.ignored.labels(outcome.reason).inc()
                report.ignored += 1
                continue
            if isinstance(outcome, Rejection):
                dead.append(self._dead_letter(message, outcome))
                self.metrics.events.labels(message.topic, "unknown", "dead_lettered").inc()
                self.metrics.dead_letters.labels(outcome.reason).inc()
                continue
            raise AssertionError(f"unexpected decode outcome {outcome!r}")  # pragma: no cover
        stages.lap("process")
        await self._advance(groups, now_ms, report, stages)
        if dead:
            await self.publisher.publish(dead)
            stages.lap("publish")
        report.dead_lettered = len(dead)
        self._observe_latency(groups)
        self.metrics.batches.observe(len(batch))
        self._observe_stages(stages)
        return report

    async def sweep(self, partitions: Iterable[int], limit: int = 1000) -> BatchReport:
        """Re-evaluate customers whose window has moved, in the given partitions.

        The report's ``sweep_behind_ms`` is how long the oldest due customer had waited.
        """
        report = BatchReport()
        now_ms = self.clock_ms()
        for partition in partitions:
            while True:
                due = await self.store.due(partition, now_ms, limit)
                if not due:
                    break
                report.sweep_behind_ms = max(report.sweep_behind_ms, now_ms - due[0][1])
                due_groups = {c: _Group(partition) for c, _ in due}
                await self._advance(due_groups, now_ms, report, BatchStages())
                self.metrics.swept.inc(len(due))
                if len(due) < limit:
                    break
        return report

    def _decode(self, message: Incoming, now_ms: int) -> Event | Rejection | Ignored:
        role = self.topics.inputs.get(message.topic)
        if role is None:
            return Rejection("wrong_topic", f"{message.topic!r} is not an input topic")
        return self.decode(message.value, message.key, role, now_ms, message.source)

    def _dead_letter(self, message: Incoming, rejection: Rejection) -> OutMessage:
        headers = [
            ("dlq.reason", rejection.reason.encode()),
            ("dlq.detail", rejection.detail.encode()),
            ("dlq.topic", message.topic.encode()),
            ("dlq.partition", str(message.partition).encode()),
            ("dlq.offset", str(message.offset).encode()),
            ("dlq.timestamp_ms", str(message.timestamp_ms).encode()),
        ]
        return OutMessage(self.topics.dlq, message.key, message.value, headers)

    async def _advance(
        self, groups: dict[str, _Group], now_ms: int, report: BatchReport, stages: BatchStages
    ) -> None:
        pending = dict(groups)
        loaded = await self._load_missing(pending)
        stages.lap("store")
        self.cache.update(self._warmed(loaded))  # the kernel's work: charged to `process`
        outboxes: dict[str, list[OutboxAlert]] = {}
        entries: dict[str, IndexEntry] = {}
        for _ in range(_MAX_ROUNDS):
            if not pending:
                break
            commits: list[Commit] = []
            for customer_id, group in pending.items():
                commit, entry, outbox = self._evaluate(customer_id, group, now_ms)
                entries[customer_id], outboxes[customer_id] = entry, outbox
                if commit is not None:
                    commits.append(commit)
            self.crash.reached("mid_batch")
            stages.lap("process")
            result = await self.store.commit(commits)
            self.crash.reached("after_store_commit")
            self._remember(commits, result)
            self._count_outcomes(pending, result, report)
            await self._reload(result.conflicts)
            stages.lap("store")
            retry = set(result.conflicts)
            pending = {c: g for c, g in pending.items() if c in retry}
        if pending:
            raise ProcessingError(
                f"{len(pending)} customers kept conflicting; the batch will be retried"
            )
        await self._publish_outboxes(outboxes, report)
        stages.lap("publish")
        if self.model.accounts is not None:  # before the due index moves (a sweep replays)
            if len(self.account_members) > self.cache_limit:
                self.account_members.clear()
            report.alerts += await roll_up_accounts(self.model, self.store, self.publisher,
                self.topics.alerts, list(entries.values()), now_ms, self.metrics,
                self.account_members)  # fmt: skip
            stages.lap("accounts")
        await self.store.update_indexes(entries.values())
        stages.lap("store")

    async def _load_missing(self, groups: dict[str, _Group]) -> dict[str, Loaded]:
        """The customers of ``groups`` not cached, as stored (the cache is emptied first
        when they would not fit)."""
        missing = [c for c in groups if c not in self.cache]
        if len(self.cache) + len(missing) > self.cache_limit:
            self.cache.clear()
            missing = list(groups)
        return await self.store.load(missing) if missing else {}

    async def _reload(self, customers: list[str]) -> None:
        if customers:
            self.metrics.conflicts.inc(len(customers))
            self.cache.update(self._warmed(await self.store.load(customers)))

    def _warmed(self, loaded: dict[str, Loaded]) -> dict[str, Loaded]:
        """The loaded customers, each state with its running totals when the compiled kernel
        builds them (a cache of the state, not part of its value)."""
        if self.warm is not None:
            for item in loaded.values():
                self.warm(item.state)
        return loaded

    def _remember(self, commits: Sequence[Commit], result: CommitResult) -> None:
        written = set(result.written)
        for commit in commits:
            if commit.customer_id in written:
                before = self.cache.get(commit.customer_id)
                self.cache[commit.customer_id] = commit.after(before.profile if before else None)

    def _evaluate(
        self, customer_id: str, group: _Group, now_ms: int
    ) -> tuple[Commit | None, IndexEntry, list[OutboxAlert]]:
        model, loaded = self.model, self.cache[customer_id]
        seen = Seen(loaded.applied)
        fresh, group.outcomes, taken = _fresh(model, group, seen, now_ms)
        events = [e for e, _ in fresh]
        result = advance(model, customer_id, loaded.state, events, now_ms, loaded.breakdown)
        outbox = loaded.outbox
        if result.alerts:
            outbox = outbox + [alert_to_json(a) for a in result.alerts]
        profile = _new_profile(loaded.profile, events) if fresh else None
        current = profile or loaded.profile
        entry = IndexEntry(
            customer_id,
            group.partition,
            result.state.score_cp / 100,
            result.next_due_ms,
            account=current.account,
            segments=segment_membership(model, result.state, current),
        )
        if (not fresh and not _moves(seen, taken) and result.state == loaded.state
                and not result.alerts):  # fmt: skip
            return None, entry, outbox
        policy = self.dedup
        marks = [(mark, policy.mark_until(model, e.timestamp_ms, now_ms)) for e, mark in fresh]
        applied = after(loaded.applied, now_ms, marks, taken,
                        policy.watermark_until(model, now_ms), seen)  # fmt: skip
        commit = customer_commit(model, customer_id, group.partition, loaded.version, result,
                                 applied, outbox, profile, loaded)  # fmt: skip
        return commit, entry, outbox

    def _count_outcomes(
        self, pending: dict[str, _Group], result: CommitResult, report: BatchReport
    ) -> None:
        retried = set(result.conflicts)
        counts: dict[tuple[str, str, Outcome], int] = {}
        for customer_id, group in pending.items():
            if customer_id in retried or not group.items:
                continue
            for (message, event, _), outcome in zip(group.items, group.outcomes, strict=True):
                key = (message.topic, event.type, outcome)
                counts[key] = counts.get(key, 0) + 1
        events = self.metrics.events
        for (topic, kind, outcome), count in counts.items():  # one update per label set
            events.labels(topic, kind, outcome).inc(count)
            field_name = _REPORT_FIELD[outcome]
            setattr(report, field_name, getattr(report, field_name) + count)

    async def _publish_outboxes(
        self, outboxes: dict[str, list[OutboxAlert]], report: BatchReport
    ) -> None:
        waiting = {c: box for c, box in outboxes.items() if box}
        if not waiting:
            return
        messages = [
            OutMessage(self.topics.alerts, c.encode(), orjson.dumps(alert))
            for c, box in waiting.items()
            for alert in box
        ]
        # The web page's recent-alert record is written before publishing (idempotent by
        # alert_id, and the outbox still holds the alerts, so a replay writes and publishes
        # them again), which keeps the publish-to-clear window, where a crash republishes,
        # as short as one Redis round trip.
        await self.store.record_alerts(
            [a for box in waiting.values() for a in box], self.clock_ms()
        )
        await self.publisher.publish(messages)
        self.crash.reached("after_publish")
        await self.store.clear_outbox(waiting)
        for customer_id in waiting:
            cached = self.cache.get(customer_id)
            if cached is not None:
                cached.outbox = []
        for box in waiting.values():
            for alert in box:
                self.metrics.alerts.labels(alert["type"], alert["trigger"]).inc()
                self.metrics.alerts_by_scope.labels("customer").inc()
                report.alerts.append(alert)

    def _observe_stages(self, stages: BatchStages) -> None:
        for stage, seconds in stages.spent.items():
            if stage != "accounts" or self.model.accounts is not None:
                self.metrics.stage.labels(stage).observe(seconds)

    def _observe_latency(self, groups: dict[str, _Group]) -> None:
        done_ms = self.clock_ms()
        observe_all(self.metrics.event_to_store,
                    [max(0, done_ms - message.timestamp_ms) / 1000
                     for group in groups.values() for message, _, _ in group.items])  # fmt: skip


def _fresh(
    model: ScoringModel, group: _Group, seen: Seen, now_ms: int
) -> tuple[list[tuple[Event, bytes]], list[Outcome], dict[bytes, int]]:
    """The group's events not applied before (redeliveries by watermark, re-sends by
    fingerprint, first occurrence only in the batch), each with its fingerprint; per
    event: scored, duplicate, or expired (aged out meanwhile); and the highest offset
    taken from each input partition."""
    batch: set[bytes] = set()
    taken: dict[bytes, int] = {}
    fresh: list[tuple[Event, bytes]] = []
    outcomes: list[Outcome] = []
    live_from = model.live_from(now_ms)
    for message, event, mark in group.items:
        source = _source(message.topic, message.partition)
        offset = message.offset
        if offset > taken.get(source, -1):
            taken[source] = offset
        if mark in batch or seen.duplicate(source, offset, mark):
            outcomes.append("duplicate")
            continue
        batch.add(mark)
        fresh.append((event, mark))
        if event.type in PROFILE_TYPES:
            outcomes.append("profiled")
        else:
            outcomes.append("scored" if event.timestamp_ms >= live_from else "expired")
    return fresh, outcomes, taken


_source = functools.lru_cache(maxsize=4096)(source_id)
"""``source_id``, remembered: a worker reads a few dozen input partitions."""


def _moves(seen: Seen, taken: dict[bytes, int]) -> bool:
    """Whether a partition's watermark would rise (a re-send dropped by its fingerprint
    still raises it, so a later redelivery of that message is known by its offset)."""
    return any(not seen.redelivered(source, offset) for source, offset in taken.items())


def _new_profile(profile: Profile, events: Sequence[Event]) -> Profile | None:
    """The profile after the events, or None when none of them carries traits or an
    account (so an ordinary commit does not rewrite the profile fields)."""
    if not any(e.traits is not None or e.account is not None for e in events):
        return None
    updated = apply_profile(profile, events)
    return None if updated == profile else updated
