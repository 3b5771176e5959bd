"""The Redis score table: per-customer hashes, a global ranking and per-partition due indexes.

Key layout (the read contract, documented in README):

- ``{prefix}:{<customer>}``        hash: score, band, updated_at, breakdown, model_version, ...
- ``{prefix}:{<customer>}:seen``   sorted set: fingerprints of applied events -> expiry ms
- ``{prefix}:rank``                sorted set: customer -> score (ranking and band counts)
- ``{prefix}:due:<partition>``     sorted set: customer -> next moment its window changes

Both keys of a customer share the hash tag ``{<customer>}``, hence one Cluster slot; a
customer's commit is one Lua script on that slot. The ranking and due indexes are
written afterwards with idempotent commands, so a crash in between is healed by replay.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from stream.adapters.codec import state_from_fields
from stream.core.bands import BandScale
from stream.core.customer import CustomerState

__all__ = [
    "Commit",
    "IndexEntry",
    "Loaded",
    "RedisScoreStore",
    "Stored",
    "band_bounds",
    "customer_key",
    "seen_key",
]

_STATE_FIELDS = ("window", "score", "band", "armed", "last_alert_ms", "updated_ms", "ver", "outbox")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

# Apply one customer's commit if nobody else wrote since it was read (optimistic version).
_COMMIT = """
local current = redis.call('HGET', KEYS[1], 'ver') or '0'
if current ~= ARGV[1] then return 0 end
local nfields = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'ver', tostring(tonumber(current) + 1))
for i = 4, 3 + nfields, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = 4 + nfields, #ARGV, 2 do redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
return 1
"""

# Remove the outbox only if it is still exactly what was published.
_CLEAR_OUTBOX = """
if redis.call('HGET', KEYS[1], 'outbox') == ARGV[1] then
  return redis.call('HDEL', KEYS[1], 'outbox')
end
return 0
"""


def customer_key(prefix: str, customer_id: str) -> str:
    """The customer's hash; ``{customer_id}`` is its Redis Cluster hash tag."""
    return f"{prefix}:{{{customer_id}}}"


def seen_key(prefix: str, customer_id: str) -> str:
    """The customer's applied-event fingerprints, in the same slot as its hash."""
    return f"{prefix}:{{{customer_id}}}:seen"


def band_bounds(bands: BandScale, band: str | None) -> tuple[str, str]:
    """Sorted-set score bounds (min, max) of a band, for ZCOUNT/ZRANGEBYSCORE; None: all."""
    low, high = bands.score_range(band) if band else (None, None)
    return ("-inf" if low is None else f"({low:g}", "+inf" if high is None else f"{high:g}")


@dataclass(slots=True)
class Loaded:
    """A customer as read before a commit."""

    state: CustomerState
    version: str
    seen: set[bytes]
    outbox: list[dict[str, Any]]


@dataclass(slots=True)
class Commit:
    """One customer's new state, with the fingerprints of the events it applied."""

    customer_id: str
    expected_version: str
    fields: Mapping[str, str | bytes]
    fingerprints: Sequence[tuple[bytes, int]] = field(default_factory=tuple)
    trim_before_ms: int = 0


@dataclass(frozen=True, slots=True)
class Stored:
    """A customer as stored, with the input partition it belongs to (for ``rescore``)."""

    state: CustomerState
    partition: int | None


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """What the global indexes should say about one customer."""

    customer_id: str
    partition: int
    score: float
    next_due_ms: int | None


class RedisScoreStore:
    """Reads and writes the score table; every hot-path call is one pipelined round trip."""

    def __init__(self, client: Redis, prefix: str = "es") -> None:
        # redis-py's async annotations mix sync and async return types; treat replies as Any.
        self.client: Any = client
        self.prefix = prefix
        self._commit: Any = client.register_script(_COMMIT)
        self._clear: Any = client.register_script(_CLEAR_OUTBOX)
        # Exactly this prefix's keys: braces are not allowed in a prefix or a customer id,
        # so no key of another prefix (even one that starts with this one) matches.
        self._own_key = re.compile(
            rf"{re.escape(prefix)}:(rank|due:[0-9]+|\{{[^{{}}]+\}}(:seen)?)".encode()
        )

    def customer_key(self, customer_id: str) -> str:
        return customer_key(self.prefix, customer_id)

    def seen_key(self, customer_id: str) -> str:
        return seen_key(self.prefix, customer_id)

    @property
    def rank_key(self) -> str:
        return f"{self.prefix}:rank"

    def due_key(self, partition: int) -> str:
        return f"{self.prefix}:due:{partition}"

    async def load(self, wanted: Mapping[str, Sequence[bytes]]) -> dict[str, Loaded]:
        """State, version, outbox and which of the given fingerprints were already applied."""
        pipe = self.client.pipeline(transaction=False)
        for customer_id, marks in wanted.items():
            pipe.hmget(self.customer_key(customer_id), _STATE_FIELDS)
            if marks:
                pipe.zmscore(self.seen_key(customer_id), list(marks))
        replies = iter(await pipe.execute())
        loaded = {}
        for customer_id, marks in wanted.items():
            raw = dict(zip(_STATE_FIELDS, next(replies), strict=True))
            scores = next(replies) if marks else []
            outbox = orjson.loads(raw["outbox"]) if raw["outbox"] else []
            loaded[customer_id] = Loaded(
                state=state_from_fields(raw),
                version=(raw["ver"] or b"0").decode(),
                seen={m for m, s in zip(marks, scores, strict=True) if s is not None},
                outbox=outbox,
            )
        return loaded

    async def commit(self, commits: Sequence[Commit]) -> list[str]:
        """Apply commits; return the customers whose version moved (to be re-read)."""
        if not commits:
            return []
        pipe = self.client.pipeline(transaction=False)
        for item in commits:
            flat: list[Any] = []
            for name, value in item.fields.items():
                flat += [name, value]
            for mark, expiry_ms in item.fingerprints:
                flat += [expiry_ms, mark]
            await self._commit(
                keys=[self.customer_key(item.customer_id), self.seen_key(item.customer_id)],
                args=[item.expected_version, item.trim_before_ms, 2 * len(item.fields), *flat],
                client=pipe,
            )
        results = await pipe.execute()
        return [item.customer_id for item, ok in zip(commits, results, strict=True) if not ok]

    async def clear_outbox(self, published: Mapping[str, bytes]) -> None:
        """Drop each customer's outbox if it still holds exactly the published alerts."""
        if not published:
            return
        pipe = self.client.pipeline(transaction=False)
        for customer_id, outbox in published.items():
            await self._clear(keys=[self.customer_key(customer_id)], args=[outbox], client=pipe)
        await pipe.execute()

    async def update_indexes(self, entries: Iterable[IndexEntry]) -> None:
        """Idempotently point the ranking and due indexes at the customers' current state."""
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for entry in entries:
            count += 1
            pipe.zadd(self.rank_key, {entry.customer_id: entry.score})
            if entry.next_due_ms is None:
                pipe.zrem(self.due_key(entry.partition), entry.customer_id)
            else:
                pipe.zadd(self.due_key(entry.partition), {entry.customer_id: entry.next_due_ms})
        if count:
            await pipe.execute()

    def owns(self, key: bytes) -> bool:
        """Whether ``key`` belongs to this store's prefix (see the key layout above)."""
        return self._own_key.fullmatch(key) is not None

    async def empty(self) -> bool:
        """Whether no key of this prefix exists (a scan; meant for administrative commands)."""
        if await self.client.exists(self.rank_key):
            return False
        async for _ in self._own_keys():
            return False
        return True

    async def clear(self, batch: int = 1000) -> int:
        """Delete every key of this prefix; returns how many were deleted."""
        deleted = 0
        chunk: list[bytes] = []
        async for key in self._own_keys(batch):
            chunk.append(key)
            if len(chunk) >= batch:
                deleted += await self.client.unlink(*chunk)
                chunk = []
        if chunk:
            deleted += await self.client.unlink(*chunk)
        return deleted

    async def customer_ids(self, batch: int = 1000) -> AsyncIterator[list[str]]:
        """Every customer in the ranking (which holds every stored customer), in chunks."""
        cursor = 0
        while True:
            cursor, rows = await self.client.zscan(self.rank_key, cursor, count=batch)
            if rows:
                yield [member.decode() for member, _ in rows]
            if cursor == 0:
                return

    async def stored(self, customer_ids: Sequence[str]) -> dict[str, Stored]:
        """State and partition of those of ``customer_ids`` that are stored."""
        pipe = self.client.pipeline(transaction=False)
        for customer_id in customer_ids:
            pipe.hmget(self.customer_key(customer_id), [*_STATE_FIELDS, "partition"])
        found = {}
        for customer_id, values in zip(customer_ids, await pipe.execute(), strict=True):
            *state_values, partition = values
            if state_values[0] is None:  # no window: not stored
                continue
            raw = dict(zip(_STATE_FIELDS, state_values, strict=True))
            found[customer_id] = Stored(
                state_from_fields(raw), int(partition) if partition is not None else None
            )
        return found

    async def _own_keys(self, batch: int = 1000) -> AsyncIterator[bytes]:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + ":*"
        async for key in self.client.scan_iter(match=pattern, count=batch):
            if self.owns(key):
                yield key

    async def due(self, partition: int, now_ms: int, limit: int) -> list[tuple[str, int]]:
        """Customers of a partition whose window changes at or before ``now_ms``, oldest
        first, each with the moment it became due."""
        members = await self.client.zrangebyscore(
            self.due_key(partition), "-inf", now_ms, start=0, num=limit, withscores=True
        )
        return [(m.decode(), int(due_ms)) for m, due_ms in members]

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        """The public view of one customer, or None when unknown."""
        raw = await self.client.hgetall(self.customer_key(customer_id))
        if not raw:
            return None
        fields = {k.decode(): v for k, v in raw.items()}
        return {
            "customer_id": customer_id,
            "score": float(fields.get("score", b"0")),
            "band": fields.get("band", b"").decode(),
            "updated_at": fields.get("updated_at", b"").decode(),
            "breakdown": orjson.loads(fields.get("breakdown", b"{}")),
            "model_version": fields.get("model_version", b"").decode(),
        }

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
        pipe = self.client.pipeline(transaction=False)
        for name in bands.names:
            pipe.zcount(self.rank_key, *band_bounds(bands, name))
        counts = await pipe.execute()
        return dict(zip(bands.names, (int(c) for c in counts), strict=True))
