"""Recent alerts in Redis: a bounded, replay-safe record of published alerts, for the web page.

The worker writes an alert here just before it publishes it, while the outbox still holds it,
so a crash after the write publishes and writes it again on replay; every write is keyed by the
deterministic
``alert_id``, so a replay never duplicates (``ZADD``/``HSET`` of the same member overwrite).

Keys (part of the read contract, docs/reference/redis-keys.md):

- ``{prefix}:alerts``              sorted set: alert_id -> occurred_at_ms (every customer)
- ``{prefix}:alerts:data``         hash: alert_id -> the alert's JSON, as published
- ``{prefix}:alerts:{<tag>}``      sorted set: alert_id -> occurred_at_ms, that customer's
                                   latest alerts; expires when the customer has had none
                                   within the retention

Alerts older than ``retention_ms`` (by ``occurred_at_ms``, against the writer's clock) and
beyond the newest ``max_alerts`` are trimmed on every write; a reader skips an id whose
payload is already gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from stream.adapters.redis_keys import key_tag

__all__ = [
    "MAX_ALERTS",
    "PER_CUSTOMER",
    "RETENTION_MS",
    "RecentAlerts",
    "customer_alerts_key",
]

RETENTION_MS = 7 * 24 * 3600 * 1000
MAX_ALERTS = 10_000
PER_CUSTOMER = 20


def customer_alerts_key(prefix: str, customer_id: str) -> str:
    """A customer's recent alert ids; the hash tag (the escaped id, ``redis_keys.key_tag``)
    puts it in the slot of the customer's hash."""
    return f"{prefix}:alerts:{{{key_tag(customer_id)}}}"


class RecentAlerts:
    """Writes and reads the recent-alert record (see the module doc for the keys)."""

    def __init__(
        self,
        client: Any,
        prefix: str = "es",
        retention_ms: int = RETENTION_MS,
        max_alerts: int = MAX_ALERTS,
        per_customer: int = PER_CUSTOMER,
    ) -> None:
        self.client: Any = client
        self.prefix = prefix
        self.retention_ms = retention_ms
        self.max_alerts = max_alerts
        self.per_customer = per_customer

    @property
    def index_key(self) -> str:
        return f"{self.prefix}:alerts"

    @property
    def data_key(self) -> str:
        return f"{self.prefix}:alerts:data"

    async def record(self, alerts: Sequence[Mapping[str, Any]], now_ms: int) -> None:
        """Remember published alerts (idempotent by ``alert_id``) and trim the record."""
        if not alerts:
            return
        cutoff = now_ms - self.retention_ms
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.index_key, {str(a["alert_id"]): int(a["occurred_at_ms"]) for a in alerts})
        pipe.hset(self.data_key, mapping={str(a["alert_id"]): orjson.dumps(a) for a in alerts})
        for alert in alerts:
            key = customer_alerts_key(self.prefix, str(alert["customer_id"]))
            pipe.zadd(key, {str(alert["alert_id"]): int(alert["occurred_at_ms"])})
            pipe.zremrangebyrank(key, 0, -(self.per_customer + 1))
            pipe.zremrangebyscore(key, "-inf", f"({cutoff}")
            pipe.pexpire(key, self.retention_ms)
        pipe.zrangebyscore(self.index_key, "-inf", f"({cutoff}")
        pipe.zrange(self.index_key, 0, -(self.max_alerts + 1))
        replies = await pipe.execute()
        stale = set(replies[-2]) | set(replies[-1])
        if stale:
            trim = self.client.pipeline(transaction=False)
            trim.zrem(self.index_key, *stale)
            trim.hdel(self.data_key, *stale)
            await trim.execute()

    async def count_since(self, since_ms: int) -> int:
        """How many recorded alerts occurred at or after ``since_ms``."""
        return int(await self.client.zcount(self.index_key, since_ms, "+inf"))

    async def since(self, since_ms: int, limit: int) -> list[dict[str, Any]]:
        """Alerts that occurred at or after ``since_ms``, newest first, at most ``limit``."""
        ids = await self.client.zrevrangebyscore(
            self.index_key, "+inf", since_ms, start=0, num=limit
        )
        return await self._payloads(ids)

    async def of_customer(
        self, customer_id: str, limit: int = PER_CUSTOMER
    ) -> list[dict[str, Any]]:
        """A customer's recorded alerts, newest first."""
        key = customer_alerts_key(self.prefix, customer_id)
        return await self._payloads(await self.client.zrevrange(key, 0, limit - 1))

    async def _payloads(self, ids: Sequence[bytes]) -> list[dict[str, Any]]:
        if not ids:
            return []
        raw = await self.client.hmget(self.data_key, list(ids))
        return [orjson.loads(value) for value in raw if value]
