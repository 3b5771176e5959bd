"""The score table's indexes: the ranking (``{prefix}:rank``, every stored customer by
score) and the due indexes (``{prefix}:due:<partition>``, customers by the next moment
their window changes), written after the customers' commits with idempotent commands (a
crash in between is healed by replay), and read for rankings, band counts and sweeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from stream.adapters.redis_keys import due_key, rank_key
from stream.adapters.redis_segments import SegmentRollups, Staged
from stream.core.bands import BandScale
from stream.ports import IndexEntry

__all__ = ["ScoreIndexes", "band_bounds", "band_counts"]


def band_bounds(bands: BandScale, band: str | None) -> tuple[str, str]:
    """Sorted-set score bounds (min, max) of a band, for ZCOUNT/ZRANGEBYSCORE; None: all."""
    low, high = bands.score_range(band) if band else (None, None)
    return ("-inf" if low is None else f"({low:g}", "+inf" if high is None else f"{high:g}")


async def band_counts(client: Any, ranking: str, bands: BandScale) -> dict[str, int]:
    """How many members of the ranking sorted set ``ranking`` are in each band (one ZCOUNT
    per band, no scan)."""
    pipe = client.pipeline(transaction=False)
    for name in bands.names:
        pipe.zcount(ranking, *band_bounds(bands, name))
    counts = await pipe.execute()
    return dict(zip(bands.names, (int(c) for c in counts), strict=True))


class ScoreIndexes:
    """The ranking and due indexes of one prefix (and the segment rollups after them)."""

    def __init__(self, client: Any, prefix: str, segments: SegmentRollups) -> None:
        self.client = client
        self.prefix = prefix
        self.rank_key = rank_key(prefix)
        self.segments = segments

    async def update(self, entries: Iterable[IndexEntry]) -> None:
        """Idempotently point the ranking and due indexes at the customers' current state
        (a few multi-member commands per batch, not one per customer), then the segment
        rollups (one script per partition)."""
        ranks: dict[str, float] = {}
        due: dict[int, dict[str, int]] = {}
        done: dict[int, list[str]] = {}
        staged: list[Staged] = []
        for entry in entries:
            ranks[entry.customer_id] = entry.score
            if entry.segments is not None:
                staged.append((entry.partition, entry.customer_id, entry.segments))
            if entry.next_due_ms is None:
                done.setdefault(entry.partition, []).append(entry.customer_id)
            else:
                due.setdefault(entry.partition, {})[entry.customer_id] = entry.next_due_ms
        if not ranks:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.rank_key, ranks)
        for partition, members in due.items():
            pipe.zadd(due_key(self.prefix, partition), members)
        for partition, names in done.items():
            pipe.zrem(due_key(self.prefix, partition), *names)
        await pipe.execute()
        await self.segments.write(staged)

    async def due(self, partition: int, now_ms: int, limit: int) -> list[tuple[str, int]]:
        """Customers of a partition whose window changes at or before ``now_ms``, oldest
        first, each with the moment it became due."""
        members = await self.client.zrangebyscore(
            due_key(self.prefix, partition), "-inf", now_ms, start=0, num=limit, withscores=True
        )
        return [(m.decode(), int(due_ms)) for m, due_ms in members]

    async def top(
        self, bands: BandScale, band: str | None, count: int, lowest: bool = False
    ) -> list[tuple[str, float]]:
        """The highest (or lowest) scoring customers, optionally within one band."""
        low_arg, high_arg = band_bounds(bands, band)
        if lowest:
            rows = await self.client.zrangebyscore(
                self.rank_key, low_arg, high_arg, start=0, num=count, withscores=True
            )
        else:
            rows = await self.client.zrevrangebyscore(
                self.rank_key, high_arg, low_arg, start=0, num=count, withscores=True
            )
        return [(member.decode(), float(score)) for member, score in rows]

    async def band_counts(self, bands: BandScale) -> dict[str, int]:
        """How many customers are in each band (one ZCOUNT per band, no scan)."""
        return await band_counts(self.client, self.rank_key, bands)

    async def customer_ids(self, batch: int = 1000) -> AsyncIterator[list[str]]:
        """Every customer in the ranking (which holds every stored customer), in chunks."""
        cursor = 0
        while True:
            cursor, rows = await self.client.zscan(self.rank_key, cursor, count=batch)
            if rows:
                yield [member.decode() for member, _ in rows]
            if cursor == 0:
                return
