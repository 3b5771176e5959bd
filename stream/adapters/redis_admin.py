"""Administrative operations on a whole prefix of the score table: whether it is empty,
deleting it, and moving keys from the layout before customer ids were escaped. Meant for
commands (``rescore``, ``backfill``, tests), never for the worker's hot path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from stream.adapters.redis_alerts import customer_alerts_key
from stream.adapters.redis_cluster import unlink_keys
from stream.adapters.redis_keys import customer_key, own_key_pattern, rank_key, scan_match

__all__ = ["PrefixAdmin"]


class PrefixAdmin:
    """Scans, deletes and migrates the keys of one prefix."""

    def __init__(
        self, client: Any, prefix: str, customer_ids: Callable[[int], AsyncIterator[list[str]]]
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.customer_ids = customer_ids
        self._own_key = own_key_pattern(prefix)

    def owns(self, key: bytes) -> bool:
        """Whether ``key`` belongs to this prefix (``stream.adapters.redis_keys``)."""
        return self._own_key.fullmatch(key) is not None

    async def empty(self) -> bool:
        """Whether no key of this prefix exists (a scan)."""
        if await self.client.exists(rank_key(self.prefix)):
            return False
        async for _ in self.own_keys():
            return False
        return True

    async def clear(self, batch: int = 1000) -> int:
        """Delete every key of this prefix; returns how many were deleted."""
        deleted = 0
        chunk: list[bytes] = []
        async for key in self.own_keys(batch):
            chunk.append(key)
            if len(chunk) >= batch:
                deleted += await unlink_keys(self.client, chunk)
                chunk = []
        if chunk:
            deleted += await unlink_keys(self.client, chunk)
        return deleted

    async def own_keys(self, batch: int = 1000) -> AsyncIterator[bytes]:
        """Every key of this prefix (a scan)."""
        async for key in self.client.scan_iter(match=scan_match(self.prefix), count=batch):
            if self.owns(key):
                yield key

    async def migrate_legacy_keys(self, batch: int = 1000) -> tuple[int, int]:
        """Move the keys of customers whose id contains ``%`` from the layout before ids
        were escaped (``<prefix>:{<id>}``, ``<prefix>:alerts:{<id>}``) to the escaped one.

        Meant for a stopped deployment (no worker running); idempotent. Every other id
        kept its key. Returns (keys moved, keys left because the new key already exists).
        On a cluster the old and new keys may be in different slots, so each key moves by
        DUMP, RESTORE and UNLINK (a command per key).
        """
        moved = kept = 0
        async for ids in self.customer_ids(batch):
            for customer_id in (c for c in ids if "%" in c):
                pairs = [
                    (f"{self.prefix}:{{{customer_id}}}", customer_key(self.prefix, customer_id)),
                    (f"{self.prefix}:alerts:{{{customer_id}}}",
                     customer_alerts_key(self.prefix, customer_id)),
                ]  # fmt: skip
                for old, new in pairs:
                    moved_one = await self._move(old, new)
                    moved += moved_one is True
                    kept += moved_one is False
        return moved, kept

    async def _move(self, old: str, new: str) -> bool | None:
        """Move ``old`` to ``new``: True when moved, False when ``new`` exists, None when
        there is no ``old``."""
        dumped = await self.client.dump(old)
        if dumped is None:
            return None
        if await self.client.exists(new):
            return False
        ttl = max(0, int(await self.client.pttl(old)))
        await self.client.restore(new, ttl, dumped)
        await self.client.unlink(old)
        return True
