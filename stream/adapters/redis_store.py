"""The Redis score table: per-customer hashes, a global ranking and per-partition due
indexes, behind one object the worker, the CLI and the web page share.

Key layout (the read contract, documented in README):

- ``{prefix}:{<tag>}``             hash: score, band, updated_at, breakdown, model_version,
                                    traits, account (when known), plus internal fields
                                    (state, ver, dedup, outbox, profile_at)
- ``{prefix}:rank``                sorted set: customer -> score (ranking and band counts)
- ``{prefix}:due:<partition>``     sorted set: customer -> next moment its window changes
- ``{prefix}:alerts``, ``{prefix}:alerts:data``, ``{prefix}:alerts:{<tag>}``: the
                                    recent published alerts (``stream.adapters.redis_alerts``)
- ``{prefix}:bands:history``       hash: band-count snapshots (``stream.web.band_history``)
- ``{prefix}:acct:...``            accounts, with models that have them
                                    (``stream.adapters.redis_accounts``)
- ``{prefix}:seg:...``             segment rollups, when the model has segment dimensions
                                    (``stream.adapters.redis_segments``)

``<tag>`` is the customer id with ``%``, ``{`` and ``}`` percent-encoded. A customer is one
key, so one Redis Cluster slot (its hash tag ``{<tag>}``); every command names one key, so
the store works on a cluster as on one server (see ``redis_cluster`` for the few
operations that differ).

The store is split by job: the key contract (``redis_keys``), the state codec
(``redis_fields``), the commit protocol (``redis_commit``), the indexes (``redis_indexes``),
the reads (``redis_reads``) and whole-prefix administration (``redis_admin``). The worker
hands it domain objects (``stream.ports.Commit``: state, breakdown, applied record, outbox
alerts) and never sees a field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from stream.adapters.redis_accounts import RedisAccounts
from stream.adapters.redis_admin import PrefixAdmin
from stream.adapters.redis_alerts import RecentAlerts
from stream.adapters.redis_client import AsyncClient
from stream.adapters.redis_commit import Committer
from stream.adapters.redis_indexes import ScoreIndexes
from stream.adapters.redis_keys import customer_key, due_key, rank_key
from stream.adapters.redis_reads import CustomerReads, Stored
from stream.adapters.redis_segments import SegmentRollups
from stream.core.bands import BandScale
from stream.ports import (
    AccountCommit,
    AccountLoaded,
    Commit,
    CommitResult,
    IndexEntry,
    Loaded,
    OutboxAlert,
)

__all__ = ["RedisScoreStore"]


class RedisScoreStore:
    """Reads and writes the score table; every hot-path call is one pipelined round trip."""

    def __init__(self, client: AsyncClient, prefix: str = "es") -> None:
        # redis-py's async annotations mix sync and async return types; treat replies as Any.
        self.client: Any = client
        self.prefix = prefix
        self.recent_alerts = RecentAlerts(client, prefix)
        self.accounts = RedisAccounts(client, prefix, self.customer_key)
        self.segments = SegmentRollups(client, prefix)
        self.reads = CustomerReads(client, prefix)
        self.indexes = ScoreIndexes(client, prefix, self.segments)
        self.admin = PrefixAdmin(client, prefix, self.indexes.customer_ids)
        self._committer = Committer(client, self.customer_key)

    def customer_key(self, customer_id: str) -> str:
        return customer_key(self.prefix, customer_id)

    @property
    def rank_key(self) -> str:
        return rank_key(self.prefix)

    def due_key(self, partition: int) -> str:
        return due_key(self.prefix, partition)

    # -- the worker's path: load, commit, clear the outbox, index, roll up accounts

    async def load(self, customers: Iterable[str]) -> dict[str, Loaded]:
        """State, version and pending outbox of each customer (one pipelined round trip)."""
        return await self.reads.load(customers)

    async def commit(self, commits: Sequence[Commit]) -> CommitResult:
        """Apply commits in one pipelined round trip (``stream.adapters.redis_commit``)."""
        return await self._committer.commit(commits)

    async def clear_outbox(self, published: Mapping[str, Sequence[OutboxAlert]]) -> None:
        """Drop each customer's outbox if it still holds exactly the published alerts."""
        await self._committer.clear_outbox(published)

    async def record_alerts(self, alerts: Sequence[Mapping[str, Any]], now_ms: int) -> None:
        """Add published alerts to the bounded recent-alert record the web page reads
        (idempotent by ``alert_id``; see ``stream.adapters.redis_alerts``)."""
        await self.recent_alerts.record(alerts, now_ms)

    async def update_indexes(self, entries: Iterable[IndexEntry]) -> None:
        """Point the ranking and due indexes at the customers' current state
        (``stream.adapters.redis_indexes``)."""
        await self.indexes.update(entries)

    async def roll_accounts(
        self,
        entries: Iterable[IndexEntry],
        top: int,
        also: Iterable[str] = (),
        members: MutableMapping[str, str] | None = None,
    ) -> dict[str, AccountLoaded]:
        """Set customers' scores in their accounts (``stream.adapters.redis_accounts``)."""
        return await self.accounts.roll(entries, top, also, members)

    async def commit_accounts(self, commits: Sequence[AccountCommit]) -> list[str]:
        """Write evaluated accounts; returns those whose version moved."""
        return await self.accounts.commit(commits)

    async def clear_account_outbox(self, published: Mapping[str, Sequence[OutboxAlert]]) -> None:
        """``clear_outbox`` for accounts."""
        await self.accounts.clear_outbox(published)

    async def due(self, partition: int, now_ms: int, limit: int) -> list[tuple[str, int]]:
        """Customers of a partition whose window changes at or before ``now_ms``."""
        return await self.indexes.due(partition, now_ms, limit)

    # -- reads (the CLI, the web page, rescore)

    async def customer(self, customer_id: str, now_ms: int | None = None) -> dict[str, Any] | None:
        """The public view of one customer, or None when unknown."""
        return await self.reads.customer(customer_id, now_ms)

    async def rows(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The public rows of several customers; unknown ones left out."""
        return await self.reads.rows(customer_ids)

    async def stored(self, customer_ids: Sequence[str]) -> dict[str, Stored]:
        """State and partition of those of ``customer_ids`` that are stored."""
        return await self.reads.stored(customer_ids)

    async def top(
        self, bands: BandScale, band: str | None, count: int, lowest: bool = False
    ) -> list[tuple[str, float]]:
        """The highest (or lowest) scoring customers, optionally within one band."""
        return await self.indexes.top(bands, band, count, lowest)

    async def band_counts(self, bands: BandScale) -> dict[str, int]:
        """How many customers are in each band (one ZCOUNT per band, no scan)."""
        return await self.indexes.band_counts(bands)

    def customer_ids(self, batch: int = 1000) -> AsyncIterator[list[str]]:
        """Every stored customer, in chunks."""
        return self.indexes.customer_ids(batch)

    # -- the whole prefix (``stream.adapters.redis_admin``)

    def owns(self, key: bytes) -> bool:
        """Whether ``key`` belongs to this store's prefix."""
        return self.admin.owns(key)

    async def empty(self) -> bool:
        """Whether no key of this prefix exists (a scan; meant for administrative commands)."""
        return await self.admin.empty()

    async def clear(self, batch: int = 1000) -> int:
        """Delete every key of this prefix; returns how many were deleted."""
        return await self.admin.clear(batch)

    async def migrate_legacy_keys(self, batch: int = 1000) -> tuple[int, int]:
        """Move keys from the layout before customer ids were escaped (see ``redis_admin``)."""
        return await self.admin.migrate_legacy_keys(batch)
