"""Reads of the accounts (``stream.adapters.redis_accounts`` for the keys): one account's
public view, the accounts of a band, and the accounts per band."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from stream.adapters.redis_indexes import band_bounds, band_counts
from stream.adapters.redis_keys import account_alerts_key, account_key, account_users_key
from stream.core.bands import BandScale
from stream.core.score_history import value_at

__all__ = ["RECENT_ALERTS", "AccountReads"]

RECENT_ALERTS = 20


class AccountReads:
    """Reads of one prefix's accounts."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client: Any = client
        self.prefix = prefix
        self.rank_key = f"{prefix}:acct:rank"

    async def view(
        self, account_id: str, bands: BandScale, now_ms: int, users: int = 10
    ) -> dict[str, Any] | None:
        """The public view of an account (None: unknown): score, band, aggregate, user
        count, the ``users`` highest scoring users with their bands, history, trend and
        latest alerts."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(account_key(self.prefix, account_id))
        pipe.zrevrange(account_users_key(self.prefix, account_id), 0, users - 1, withscores=True)
        pipe.lrange(account_alerts_key(self.prefix, account_id), 0, RECENT_ALERTS - 1)
        raw, top, alerts = await pipe.execute()
        if not raw:
            return None
        fields = {k.decode(): v for k, v in raw.items()}
        history = orjson.loads(fields.get("history") or b'{"bucket_ms": 0, "points": []}')
        return {
            "account_id": account_id,
            "score": float(fields["score"]) if fields.get("score") else None,
            "band": (fields.get("band") or b"").decode() or None,
            "users": int(fields.get("users", b"0")),
            "aggregate": (fields.get("aggregate") or b"").decode(),
            "updated_at": (fields.get("updated_at") or b"").decode(),
            "model_version": (fields.get("model_version") or b"").decode(),
            "top_users": [
                {"customer_id": m.decode(), "score": float(s), "band": bands.band_for(float(s))}
                for m, s in top
            ],
            "history": history,
            "trend": _trend(history, now_ms),
            "alerts": [orjson.loads(a) for a in alerts],
        }

    async def listing(self, bands: BandScale, band: str | None, limit: int) -> list[dict[str, Any]]:
        """Accounts in a band (None: all), lowest score first, at most ``limit``."""
        low, high = band_bounds(bands, band)
        rows = await self.client.zrangebyscore(self.rank_key, low, high, start=0, num=limit,
                                               withscores=True)  # fmt: skip
        if not rows:
            return []
        pipe = self.client.pipeline(transaction=False)
        for member, _ in rows:
            pipe.hmget(account_key(self.prefix, member.decode()), ["users", "updated_at"])
        details = await pipe.execute()
        return [
            {"account_id": m.decode(), "score": float(s), "band": bands.band_for(float(s)),
             "users": int(d[0] or 0), "updated_at": (d[1] or b"").decode()}
            for (m, s), d in zip(rows, details, strict=True)
        ]  # fmt: skip

    async def band_counts(self, bands: BandScale) -> dict[str, int]:
        """How many accounts are in each band (one ZCOUNT per band)."""
        return await band_counts(self.client, self.rank_key, bands)


def _trend(history: Mapping[str, Any], now_ms: int) -> dict[str, float | None]:
    """Score change over 7 and 30 days from the account's history (None: no point that old)."""
    bucket_ms = int(history.get("bucket_ms") or 0)
    kept = [(int(b), round(float(s) * 100)) for b, s in history.get("points", [])]
    if not bucket_ms or not kept:
        return {"change_7d": None, "change_30d": None}
    now = value_at(kept, now_ms // bucket_ms * bucket_ms)

    def change(days: int) -> float | None:
        before = value_at(kept, (now_ms - days * 86_400_000) // bucket_ms * bucket_ms)
        return None if before is None or now is None else _points(now - before)

    return {"change_7d": change(7), "change_30d": change(30)}


def _points(cp: int | None) -> float | None:
    return None if cp is None else cp / 100
