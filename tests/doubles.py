"""In-process stand-ins for the worker's ports: an in-memory score store with the Redis
store's semantics, a recording publisher, and crash injection at every port call.

``tests/integration/test_store_contract.py`` runs the same behavioural cases against
:class:`MemoryScoreStore` and the real ``RedisScoreStore``, so this fake cannot drift.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from stream.core.customer import CustomerState
from stream.core.profile import Profile
from stream.ports import (
    Applied,
    Commit,
    CommitResult,
    IndexEntry,
    Loaded,
    OutboxAlert,
    OutMessage,
    ScoreStore,
)

__all__ = [
    "Crash",
    "CrashPlan",
    "CrashingStore",
    "MemoryScoreStore",
    "RecordingPublisher",
    "Row",
]

_T = TypeVar("_T")
Phase = Literal["before", "after"]


def _copy(state: CustomerState) -> CustomerState:
    buckets = {b: dict(slot) for b, slot in state.buckets.items()}
    return dataclasses.replace(state, buckets=buckets)


@dataclass(slots=True)
class Row:
    """One stored customer."""

    state: CustomerState
    breakdown: dict[str, int]
    partition: int
    model_version: str
    version: int = 0
    applied: Applied = field(default_factory=Applied)
    outbox: list[OutboxAlert] = field(default_factory=list)
    profile: Profile = field(default_factory=Profile)


@dataclass(slots=True)
class MemoryScoreStore:
    """The score store in a few dicts, with the semantics of ``RedisScoreStore``: version
    check, the applied record kept as written (its moments to the second, as Redis keeps
    them), outbox clear-if-unchanged, due index ordered by moment then name.
    ``stored_alerts`` counts each alert id added to an outbox."""

    rows: dict[str, Row] = field(default_factory=dict)
    rank: dict[str, float] = field(default_factory=dict)
    due_index: dict[int, dict[str, int]] = field(default_factory=dict)
    stored_alerts: Counter[str] = field(default_factory=Counter)
    recent_alerts: dict[str, OutboxAlert] = field(default_factory=dict)

    async def load(self, customers: Iterable[str]) -> dict[str, Loaded]:
        loaded = {}
        for customer_id in customers:
            row = self.rows.get(customer_id)
            loaded[customer_id] = (
                Loaded(CustomerState(), 0, [])
                if row is None
                else Loaded(
                    _copy(row.state),
                    row.version,
                    list(row.outbox),
                    profile=row.profile,
                    applied=row.applied,
                )
            )
        return loaded

    async def commit(self, commits: Sequence[Commit]) -> CommitResult:
        result = CommitResult()
        for item in commits:
            row = self.rows.get(item.customer_id)
            if (row.version if row else 0) != item.expected_version:
                result.conflicts.append(item.customer_id)
                continue
            self._write(row, item)
            result.written.append(item.customer_id)
        return result

    def _write(self, row: Row | None, item: Commit) -> None:
        before = {a["alert_id"] for a in row.outbox} if row else set()
        self.stored_alerts.update(a["alert_id"] for a in item.outbox if a["alert_id"] not in before)
        self.rows[item.customer_id] = Row(
            _copy(item.state), dict(item.breakdown), item.partition, item.model_version,
            item.expected_version + 1, item.applied, list(item.outbox),
            item.profile if item.profile is not None else row.profile if row else Profile(),
        )  # fmt: skip

    async def clear_outbox(self, published: Mapping[str, Sequence[OutboxAlert]]) -> None:
        for customer_id, outbox in published.items():
            row = self.rows.get(customer_id)
            if row is not None and row.outbox and row.outbox == list(outbox):
                row.outbox = []

    async def record_alerts(self, alerts: Sequence[OutboxAlert], now_ms: int) -> None:
        for alert in alerts:
            self.recent_alerts[str(alert["alert_id"])] = alert

    async def update_indexes(self, entries: Iterable[IndexEntry]) -> None:
        for entry in entries:
            self.rank[entry.customer_id] = entry.score
            due = self.due_index.setdefault(entry.partition, {})
            if entry.next_due_ms is None:
                due.pop(entry.customer_id, None)
            else:
                due[entry.customer_id] = entry.next_due_ms

    async def due(self, partition: int, now_ms: int, limit: int) -> list[tuple[str, int]]:
        members = self.due_index.get(partition, {})
        ready = sorted((at, c) for c, at in members.items() if at <= now_ms)
        return [(c, at) for at, c in ready[:limit]]

    def states(self) -> dict[str, CustomerState]:
        """Every stored customer's state."""
        return {c: row.state for c, row in self.rows.items()}


class Crash(Exception):  # noqa: N818 - it is what happens, not an error of the code
    """The process died here (injected)."""


@dataclass(slots=True)
class CrashPlan:
    """Numbers every port call's start and end as steps; crashes at the chosen steps.

    ``trace`` records the steps passed (``"commit:before"``, ``"publish:alerts:after"``,
    ...), so a crash-free run lists every place a crash could happen.
    """

    at: set[int] = field(default_factory=set)
    step: int = 0
    trace: list[str] = field(default_factory=list)

    def passing(self, name: str) -> None:
        self.trace.append(name)
        self.step += 1
        if self.step - 1 in self.at:
            raise Crash(name)

    async def around(self, name: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Crash before the call (nothing happened) or after it (it happened, nobody knows)."""
        self.passing(f"{name}:before")
        result = await call()
        self.passing(f"{name}:after")
        return result


@dataclass(slots=True)
class CrashingStore:
    """Any score store, with a crash point before and after each call."""

    inner: ScoreStore
    plan: CrashPlan

    async def load(self, customers: Iterable[str]) -> dict[str, Loaded]:
        names = list(customers)
        return await self.plan.around("load", lambda: self.inner.load(names))

    async def commit(self, commits: Sequence[Commit]) -> CommitResult:
        return await self.plan.around("commit", lambda: self.inner.commit(commits))

    async def clear_outbox(self, published: Mapping[str, Sequence[OutboxAlert]]) -> None:
        await self.plan.around("clear_outbox", lambda: self.inner.clear_outbox(published))

    async def record_alerts(self, alerts: Sequence[OutboxAlert], now_ms: int) -> None:
        listed = list(alerts)
        await self.plan.around("record_alerts", lambda: self.inner.record_alerts(listed, now_ms))

    async def update_indexes(self, entries: Iterable[IndexEntry]) -> None:
        listed = list(entries)
        await self.plan.around("update_indexes", lambda: self.inner.update_indexes(listed))

    async def due(self, partition: int, now_ms: int, limit: int) -> list[tuple[str, int]]:
        return await self.plan.around("due", lambda: self.inner.due(partition, now_ms, limit))


@dataclass(slots=True)
class RecordingPublisher:
    """Records every acknowledged message in order; crashes where its plan says."""

    plan: CrashPlan = field(default_factory=CrashPlan)
    sent: list[OutMessage] = field(default_factory=list)

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        kind = "dead_letters" if messages and messages[0].topic.endswith("dlq") else "alerts"
        self.plan.passing(f"publish:{kind}:before")
        self.sent.extend(messages)
        self.plan.passing(f"publish:{kind}:after")

    def on(self, topic: str) -> list[OutMessage]:
        """The messages sent to one topic, in order."""
        return [m for m in self.sent if m.topic == topic]
