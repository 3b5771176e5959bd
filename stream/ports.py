"""The ports between the worker and its adapters: the messages both sides exchange and the
two interfaces the batch processor needs, a score store and a publisher.

Everything here is in domain terms (customer states, applied-event fingerprints, outbox
alerts, index entries); how a store encodes them (Redis hash fields, packed fingerprints)
or how a publisher produces them (Faust, aiokafka) is the adapter's business. The worker
imports this module, the adapters implement it, and neither imports the other's internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from stream.core.accounts import AccountState, Rollup
from stream.core.customer import CustomerState
from stream.core.profile import Profile
from stream.core.segments import Membership

__all__ = [
    "AccountCommit",
    "AccountLoaded",
    "AppliedMark",
    "Commit",
    "CommitResult",
    "Incoming",
    "IndexEntry",
    "Loaded",
    "OutMessage",
    "OutboxAlert",
    "Publisher",
    "ScoreStore",
]

OutboxAlert = dict[str, Any]
"""An alert as it is published (the README's alert contract), waiting in a customer's outbox."""

AppliedMark = tuple[bytes, int]
"""An applied event's fingerprint and the moment (epoch ms) from which it may be forgotten."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One consumed Kafka message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int

    @property
    def source(self) -> str:
        """topic/partition/offset: the event id of an event that brings none, so the
        worker and the rescore give such an event the same fingerprint."""
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class OutMessage:
    """A message to produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(slots=True)
class Loaded:
    """A customer as read before a commit: state, version and pending outbox.

    A customer never written reads as ``CustomerState()``, version 0 and an empty outbox
    (and an empty profile).
    """

    state: CustomerState
    version: int
    outbox: list[OutboxAlert]
    breakdown: dict[str, int] | None = None  # known when cached from the last evaluation
    profile: Profile = field(default_factory=Profile)


@dataclass(slots=True)
class Commit:
    """One customer's new state, replacing the one read at ``expected_version``.

    ``fingerprints`` are the events it applied (each with its expiry); fingerprints whose
    expiry is at or before ``trim_before_ms`` (to the second) may be forgotten. ``outbox``
    is the customer's whole outbox after this commit (earlier alerts first). ``bucket_ms``
    is the model's bucket length, stored with the score history. ``profile`` (traits and
    account) replaces the stored one in the same atomic write; None leaves it.
    """

    customer_id: str
    expected_version: int
    state: CustomerState
    breakdown: dict[str, int]
    partition: int
    model_version: str
    fingerprints: Sequence[AppliedMark] = ()
    outbox: Sequence[OutboxAlert] = ()
    trim_before_ms: int = 0
    bucket_ms: int = 86_400_000  # the model's bucket, for the stored score history
    profile: Profile | None = None

    def after(self, profile: Profile | None = None) -> Loaded:
        """The customer as it reads back once this commit is written (``profile``: the one
        it had, when this commit leaves it unchanged)."""
        kept = self.profile if self.profile is not None else profile or Profile()
        return Loaded(self.state, self.expected_version + 1, list(self.outbox), self.breakdown,
                      kept)  # fmt: skip


@dataclass(slots=True)
class CommitResult:
    """What became of a round of commits: each customer is in exactly one of the three."""

    written: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # version moved: nothing written
    duplicates: dict[str, set[bytes]] = field(default_factory=dict)  # applied before: ditto


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """What the global indexes should say about one customer (``segments``: its segment
    membership, when the model has segment dimensions)."""

    customer_id: str
    partition: int
    score: float
    next_due_ms: int | None
    account: str | None = None  # the customer's account (its score rolls up into it)
    segments: Membership | None = None


@dataclass(slots=True)
class AccountLoaded:
    """An account as read (and rolled up) before its commit: its users' rollup, its last
    evaluated state, version and pending outbox (``stream.core.accounts``)."""

    rollup: Rollup
    state: AccountState
    version: int
    outbox: list[OutboxAlert]


@dataclass(frozen=True, slots=True)
class AccountCommit:
    """An account's newly evaluated state replacing the one read at ``expected_version``;
    ``outbox`` is its whole outbox after this commit, ``alerts`` the alerts it adds (kept
    with the account as its recent alerts)."""

    account_id: str
    expected_version: int
    state: AccountState
    aggregate: str
    model_version: str
    bucket_ms: int
    outbox: Sequence[OutboxAlert] = ()
    alerts: Sequence[OutboxAlert] = ()


class ScoreStore(Protocol):
    """Per-customer state with exactly-once commits, plus the ranking and due indexes.

    The semantics every implementation keeps (``tests/integration/test_store_contract.py``
    checks the Redis store and the in-memory one against the same cases):

    - ``commit`` applies each commit atomically, or not at all when the customer's version
      is no longer ``expected_version`` (a conflict) or when any of its fingerprints was
      applied before (a duplicate: the refused fingerprints are reported). A written commit
      makes the version ``expected_version + 1``, replaces state and outbox, adds the
      fingerprints and forgets expired ones.
    - ``clear_outbox`` empties an outbox only if it still holds exactly the published alerts.
    - ``record_alerts`` remembers published alerts for readers (the web page), idempotent by
      ``alert_id``, so a replay does not duplicate them.
    - ``update_indexes`` is idempotent; ``due`` lists a partition's customers whose next due
      moment is at or before ``now_ms``, earliest first.
    """

    async def load(self, customers: Iterable[str]) -> dict[str, Loaded]: ...

    async def commit(self, commits: Sequence[Commit]) -> CommitResult: ...

    async def clear_outbox(self, published: Mapping[str, Sequence[OutboxAlert]]) -> None: ...

    async def record_alerts(self, alerts: Sequence[OutboxAlert], now_ms: int) -> None: ...

    async def update_indexes(self, entries: Iterable[IndexEntry]) -> None: ...

    async def due(self, partition: int, now_ms: int, limit: int) -> list[tuple[str, int]]: ...

    # Accounts (only called when the model has an ``accounts`` section):
    # ``roll_accounts`` idempotently sets each entry's score in its account (moving a customer
    # whose account changed) and returns every touched account, plus ``also``, as loaded;
    # ``members`` (the caller's cache, customer -> the account the store holds it in, filled
    # by the store) spares re-reading the membership of customers known not to have moved;
    # ``commit_accounts`` writes evaluated accounts at their expected versions and returns the
    # accounts whose version moved (nothing written); ``clear_account_outbox`` is
    # ``clear_outbox`` for accounts.
    async def roll_accounts(
        self,
        entries: Iterable[IndexEntry],
        top: int,
        also: Iterable[str] = (),
        members: MutableMapping[str, str] | None = None,
    ) -> dict[str, AccountLoaded]: ...

    async def commit_accounts(self, commits: Sequence[AccountCommit]) -> list[str]: ...

    async def clear_account_outbox(
        self, published: Mapping[str, Sequence[OutboxAlert]]
    ) -> None: ...


class Publisher(Protocol):
    """Produces messages and returns only once Kafka has acknowledged all of them."""

    async def publish(self, messages: Sequence[OutMessage]) -> None: ...
