"""In-process stand-ins for the worker's ports: an in-memory score store with the Redis
store's semantics, a recording publisher, and crash injection at every port call.

``tests/integration/test_store_contract.py`` runs the same behavioural cases against
:class:`MemoryScoreStore` and the real ``RedisScoreStore``, so this fake cannot drift.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from stream.core.accounts import AccountState, Rollup
from stream.core.customer import CustomerState
from stream.core.profile import Profile
from stream.core.segments import NONE_VALUE, OTHER_VALUE, Membership, apply_change
from stream.ports import (
    AccountCommit,
    AccountLoaded,
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
    "AccountRow",
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
class AccountRow:
    """One stored account: users' scores (centipoints), version, evaluated state, outbox,
    latest alerts (newest first)."""

    users: dict[str, int] = field(default_factory=dict)
    version: int = 0
    state: AccountState = field(default_factory=AccountState)
    outbox: list[OutboxAlert] = field(default_factory=list)
    alerts: list[OutboxAlert] = field(default_factory=list)


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
    accounts: dict[str, AccountRow] = field(default_factory=dict)
    member_of: dict[str, str] = field(default_factory=dict)
    account_rank: dict[str, float] = field(default_factory=dict)

    # Segment rollups as ``redis_segments`` keeps them: per partition, each customer's stored
    # membership and the counters; the registry of admitted values per dimension.
    seg_members: dict[int, dict[str, Membership]] = field(default_factory=dict)
    seg_counts: dict[int, dict[str, int]] = field(default_factory=dict)
    seg_values: dict[str, list[str]] = field(default_factory=dict)

    async def roll_accounts(
        self,
        entries: Iterable[IndexEntry],
        top: int,
        also: Iterable[str] = (),
        members: MutableMapping[str, str] | None = None,
    ) -> dict[str, AccountLoaded]:
        touched = dict.fromkeys(also)
        for entry in entries:
            if entry.account is None:
                continue
            before = self.member_of.get(entry.customer_id)
            if before is not None and before != entry.account:
                self.accounts.setdefault(before, AccountRow()).users.pop(entry.customer_id, None)
                touched[before] = None
            row = self.accounts.setdefault(entry.account, AccountRow())
            row.users[entry.customer_id] = round(entry.score * 100)
            self.member_of[entry.customer_id] = entry.account
            if members is not None:
                members[entry.customer_id] = entry.account
            touched[entry.account] = None
        loaded = {}
        for account_id in touched:
            row = self.accounts.setdefault(account_id, AccountRow())
            scores = sorted(row.users.values(), reverse=True)
            rollup = Rollup(len(scores), sum(scores), tuple(scores[:top]))
            loaded[account_id] = AccountLoaded(rollup, row.state, row.version, list(row.outbox))
        return loaded

    async def commit_accounts(self, commits: Sequence[AccountCommit]) -> list[str]:
        conflicts = []
        for commit in commits:
            row = self.accounts.setdefault(commit.account_id, AccountRow())
            if row.version != commit.expected_version:
                conflicts.append(commit.account_id)
                continue
            row.version += 1
            row.state, row.outbox = commit.state, list(commit.outbox)
            row.alerts = [*reversed(commit.alerts), *row.alerts][:20]
            self.stored_alerts.update(a["alert_id"] for a in commit.alerts)
            if commit.state.score_cp is None:
                self.account_rank.pop(commit.account_id, None)
            else:
                self.account_rank[commit.account_id] = commit.state.score_cp / 100
        return conflicts

    async def clear_account_outbox(self, published: Mapping[str, Sequence[OutboxAlert]]) -> None:
        for account_id, outbox in published.items():
            row = self.accounts.get(account_id)
            if row is not None and row.outbox and row.outbox == list(outbox):
                row.outbox = []

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
            if entry.segments is not None:
                self._segment(entry.partition, entry.customer_id, entry.segments)

    def _segment(self, partition: int, customer_id: str, member: Membership) -> None:
        values = []
        for dim, value in member.values:
            admitted = self.seg_values.setdefault(dim, [])
            kept = value
            if value not in (NONE_VALUE, OTHER_VALUE) and value not in admitted:
                if len(admitted) < member.max_values:
                    admitted.append(value)
                else:
                    kept = OTHER_VALUE
            values.append((dim, kept))
        resolved = dataclasses.replace(member, values=tuple(values))
        members = self.seg_members.setdefault(partition, {})
        counts = self.seg_counts.setdefault(partition, {})
        apply_change(counts, members.get(customer_id), resolved)
        members[customer_id] = resolved

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

    async def roll_accounts(
        self,
        entries: Iterable[IndexEntry],
        top: int,
        also: Iterable[str] = (),
        members: MutableMapping[str, str] | None = None,
    ) -> dict[str, AccountLoaded]:
        listed, names = list(entries), list(also)
        return await self.plan.around(
            "roll_accounts", lambda: self.inner.roll_accounts(listed, top, names, members)
        )

    async def commit_accounts(self, commits: Sequence[AccountCommit]) -> list[str]:
        return await self.plan.around(
            "commit_accounts", lambda: self.inner.commit_accounts(commits)
        )

    async def clear_account_outbox(self, published: Mapping[str, Sequence[OutboxAlert]]) -> None:
        await self.plan.around(
            "clear_account_outbox", lambda: self.inner.clear_account_outbox(published)
        )


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
