"""The ports between the worker and its adapters: the messages both sides exchange and the
two interfaces the batch processor needs, a score store and a publisher.

Everything here is in domain terms (customer states, applied-event fingerprints, outbox
alerts, index entries); how a store encodes them (Redis hash fields, packed fingerprints)
or how a publisher produces them (Faust, aiokafka) is the adapter's business. The worker
imports this module, the adapters implement it, and neither imports the other's internals.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from stream.core.accounts import AccountState, Rollup
from stream.core.customer import CustomerState
from stream.core.profile import Profile
from stream.core.segments import Membership

__all__ = [
    "APPLIED_LAYOUT",
    "AccountCommit",
    "AccountLoaded",
    "Applied",
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
    "Watermark",
    "pack_marks",
    "source_id",
    "unpack_marks",
]

OutboxAlert = dict[str, Any]
"""An alert as it is published (the alert contract, docs/reference/alerts.md), waiting in a
customer's outbox."""

AppliedMark = tuple[bytes, int]
"""An applied event's fingerprint and the moment (epoch ms) from which it may be forgotten."""

Watermark = tuple[int, int]
"""The highest offset a customer has taken from one input partition, and the moment (epoch
ms) from which it may be forgotten (any redelivery is then too old to count)."""


_HEADER = struct.Struct(">BH")  # layout, number of watermarks
_WATERMARK = struct.Struct(">8sqI")  # partition id, offset, forget-at (epoch s)
_MARK = struct.Struct(">8sI")  # fingerprint, forget-at (epoch s)
APPLIED_LAYOUT = 1


@dataclass(frozen=True, slots=True)
class Applied:
    """What a customer has applied, for the worker's duplicate check
    (docs/concepts/exactly-once.md): per input partition (``source_id``) the highest offset
    taken, and the fingerprints of recently applied events, each with the moment it may be
    forgotten.

    Kept packed, as the store keeps it (a cached customer costs about a hundred bytes, not
    a dict; a commit appends one record): empty, or a 3-byte header (layout 1, watermark
    count), 20-byte watermarks (8-byte partition id, 8-byte offset, 4-byte moment), then
    12-byte fingerprint records (8-byte fingerprint, 4-byte moment); big-endian, moments
    in epoch seconds rounded up. One record per application, so an event applied twice
    would show twice. Build with ``Applied.of``. ``earliest_s`` remembers the earliest
    fingerprint moment (None: not known yet), so a commit with nothing to forget does not
    read the records. ``legacy`` says the customer was read from a store format of an
    earlier release (the store rewrites it on the next commit).
    """

    packed: bytes = b""
    legacy: bool = False
    earliest_s: int | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        watermarks: Mapping[bytes, Watermark] | None = None,
        marks: bytes = b"",
        *,
        legacy: bool = False,
        earliest_s: int | None = None,
    ) -> Applied:
        """A record of watermarks and packed fingerprint records (``pack_marks``)."""
        if not watermarks and not marks:
            return cls(b"", legacy, earliest_s)
        parts = [_HEADER.pack(APPLIED_LAYOUT, len(watermarks or {}))]
        parts += [_WATERMARK.pack(source, offset, -(-until_ms // 1000))
                  for source, (offset, until_ms) in (watermarks or {}).items()]  # fmt: skip
        parts.append(marks)
        return cls(b"".join(parts), legacy, earliest_s)

    def _marks_at(self) -> int:
        if not self.packed:
            return 0
        layout, count = _HEADER.unpack_from(self.packed)
        if layout != APPLIED_LAYOUT:
            raise ValueError(f"unknown applied-record layout {layout}")
        return _HEADER.size + int(count) * _WATERMARK.size

    @property
    def watermarks(self) -> dict[bytes, Watermark]:
        """Partition id -> (highest offset taken, moment it may be forgotten, ms)."""
        end = self._marks_at()
        return {source: (offset, until_s * 1000) for source, offset, until_s
                in _WATERMARK.iter_unpack(self.packed[_HEADER.size : end])}  # fmt: skip

    @property
    def marks(self) -> bytes:
        """The packed fingerprint records (``unpack_marks`` reads them)."""
        return self.packed[self._marks_at() :]


def pack_marks(marks: Iterable[AppliedMark]) -> bytes:
    """Fingerprint records: 8-byte fingerprint, 4-byte big-endian moment in epoch seconds
    (rounded up)."""
    return b"".join([_MARK.pack(mark, -(-until_ms // 1000)) for mark, until_ms in marks])


def unpack_marks(packed: bytes) -> list[AppliedMark]:
    """The (fingerprint, moment in epoch ms) of each record of ``pack_marks``."""
    return [(mark, until_s * 1000) for mark, until_s in _MARK.iter_unpack(packed)]


def source_id(topic: str, partition: int) -> bytes:
    """Eight bytes naming one input partition, the key of a customer's watermark."""
    return hashlib.blake2b(f"{topic}\x00{partition}".encode(), digest_size=8).digest()


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
    """A customer as read before a commit: state, version, pending outbox and what it has
    applied.

    A customer never written reads as ``CustomerState()``, version 0, an empty outbox
    (and an empty profile and nothing applied).
    """

    state: CustomerState
    version: int
    outbox: list[OutboxAlert]
    breakdown: dict[str, int] | None = None  # known when cached from the last evaluation
    profile: Profile = field(default_factory=Profile)
    applied: Applied = field(default_factory=Applied)


@dataclass(slots=True)
class Commit:
    """One customer's new state, replacing the one read at ``expected_version``.

    ``applied`` is the customer's whole duplicate-check record after this commit (its
    watermarks and kept fingerprints: the caller adds and forgets). ``outbox`` is the
    customer's whole outbox after this commit (earlier alerts first). ``bucket_ms`` is the
    model's bucket length, stored with the score history. ``profile`` (traits and account)
    replaces the stored one in the same atomic write; None leaves it. ``before`` is the
    customer as the caller read it at ``expected_version`` (None: not known), which lets
    the store skip deleting fields it knows are absent; the version check makes it exact.
    """

    customer_id: str
    expected_version: int
    state: CustomerState
    breakdown: dict[str, int]
    partition: int
    model_version: str
    applied: Applied = field(default_factory=Applied)
    outbox: Sequence[OutboxAlert] = ()
    bucket_ms: int = 86_400_000  # the model's bucket, for the stored score history
    profile: Profile | None = None
    before: Loaded | None = None

    def after(self, profile: Profile | None = None) -> Loaded:
        """The customer as it reads back once this commit is written (``profile``: the one
        it had, when this commit leaves it unchanged)."""
        kept = self.profile if self.profile is not None else profile or Profile()
        applied = self.applied
        if applied.legacy:
            applied = Applied(applied.packed, earliest_s=applied.earliest_s)
        return Loaded(self.state, self.expected_version + 1, list(self.outbox), self.breakdown,
                      kept, applied)  # fmt: skip


@dataclass(slots=True)
class CommitResult:
    """What became of a round of commits: each customer is in exactly one of the two."""

    written: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # version moved: nothing written


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
      is no longer ``expected_version`` (a conflict). A written commit makes the version
      ``expected_version + 1`` and replaces state, outbox and the applied record, which
      ``load`` returns as written. The duplicate check is the caller's, against what it
      loaded; the version check is what makes that check exact.
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
