"""Band-count snapshots over time: a bounded Redis hash written by the web process.

``{prefix}:bands:history`` maps a slot start (epoch ms, a multiple of the interval) to the
JSON band counts at that moment. Every web process may write; ``HSETNX`` keeps the first
snapshot of a slot, so several replicas write one point per slot. The hash is trimmed to
the newest ``keep`` slots.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["DEFAULT_KEEP", "BandHistory", "Snapshot"]

DEFAULT_KEEP = 1440

Snapshot = dict[str, Any]  # {"at_ms": int, "counts": {band: count}}


class BandHistory:
    """Writes and reads the band-count snapshots."""

    def __init__(self, client: Any, prefix: str, interval_ms: int, keep: int = DEFAULT_KEEP):
        self.client: Any = client
        self.key = f"{prefix}:bands:history"
        self.interval_ms = max(1, interval_ms)
        self.keep = keep

    def slot(self, now_ms: int) -> int:
        """Start of the snapshot slot that holds ``now_ms``."""
        return now_ms - now_ms % self.interval_ms

    async def write(self, counts: dict[str, int], now_ms: int) -> bool:
        """Store the counts for the current slot unless some writer already did."""
        written = bool(
            await self.client.hsetnx(self.key, str(self.slot(now_ms)), orjson.dumps(counts))
        )
        if written and int(await self.client.hlen(self.key)) > self.keep:
            slots = sorted(int(s) for s in await self.client.hkeys(self.key))
            await self.client.hdel(self.key, *[str(s) for s in slots[: len(slots) - self.keep]])
        return written

    async def read(self, since_ms: int = 0) -> list[Snapshot]:
        """Snapshots at or after ``since_ms``, oldest first."""
        raw = await self.client.hgetall(self.key)
        points = [
            {"at_ms": int(slot), "counts": orjson.loads(value)} for slot, value in raw.items()
        ]
        return sorted((p for p in points if p["at_ms"] >= since_ms), key=lambda p: p["at_ms"])
