"""Segment rollups in Redis: per segment value, customers per band and the score sum.

Keys (part of the read contract, docs/reference/redis-keys.md); ``<p>`` is an input partition:

- ``{prefix}:seg:{p<p>}:members``  hash: customer -> its membership (``score_cp``, band,
                                   ``dim\\x1fvalue`` per dimension, joined by ``\\x1e``)
- ``{prefix}:seg:{p<p>}:counts``   hash: ``dim\\x1fvalue\\x1fband`` -> customers,
                                   ``dim\\x1fvalue`` -> sum of their scores (centipoints)
- ``{prefix}:seg:values``          hash: ``dim\\x1fvalue`` -> 1 for each admitted value,
                                   ``dim`` -> how many values are admitted
- ``{prefix}:seg:partitions``      set: the partitions that have a shard

Exactly once without scans: a customer is written by the owner of its partition, after the
customer's commit, like the ranking and due indexes. One Lua script per partition and batch
runs on the shard's two keys (one hash slot through the tag ``{p<p>}``, so it works on a
cluster): for each customer it reads the stored membership and, if it differs, stores the
new one and adjusts the counters by the difference. Writing a membership again is a no-op,
so a replay after a crash heals instead of double counting, and the counters always equal
the sum over the stored memberships. Readers sum the counters of every shard (one
``HGETALL`` per partition, each at most dimensions x (max_values + 2) x (bands + 1) fields).

Cardinality: a value is tracked once admitted to the registry (``seg:values``), which admits
the first ``max_values`` distinct values per dimension (atomically, one key, so every worker
agrees) and never forgets one; a value refused (the dimension was full) is refused for good,
so counting it under ``(other)`` is stable across replays. ``(none)`` and ``(other)`` are
always tracked. Each store remembers the decisions it has seen, so the registry is asked
only about values new to the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from stream.adapters.redis_cluster import ScriptCall, run_scripts
from stream.core.bands import BandScale
from stream.core.segments import (
    NONE_VALUE,
    OTHER_VALUE,
    Membership,
    SegmentRow,
    SegmentSettings,
    decode_membership,
    encode_membership,
    segment_rows,
)

__all__ = ["SegmentRollups", "Staged"]

Staged = tuple[int, str, Membership]
"""A membership to write: the customer's partition, the customer, its membership."""

_REFUSED_MEMORY = 10_000  # refused values remembered per process (then forgotten, re-asked)

# KEYS: members, counts. ARGV[1]: customer \x1d membership, joined by \x1c (one argument
# per shard is much cheaper to send than two per customer; ids hold no control character).
_APPLY = """
local delta, order = {}, {}
local function add(field, amount)
  if delta[field] == nil then delta[field] = 0; order[#order + 1] = field end
  delta[field] = delta[field] + amount
end
local function contribute(m, sign)
  local parts, from = {}, 1
  while true do
    local at = string.find(m, '\\30', from, true)
    if not at then parts[#parts + 1] = string.sub(m, from); break end
    parts[#parts + 1] = string.sub(m, from, at - 1)
    from = at + 1
  end
  local score, band = tonumber(parts[1]), parts[2]
  for i = 3, #parts do
    add(parts[i] .. '\\31' .. band, sign)
    add(parts[i], sign * score)
  end
end
local changed, from, all = 0, 1, ARGV[1]
while from <= #all do
  local stop = string.find(all, '\\28', from, true) or (#all + 1)
  local mid = string.find(all, '\\29', from, true)
  local customer, member = string.sub(all, from, mid - 1), string.sub(all, mid + 1, stop - 1)
  local old = redis.call('HGET', KEYS[1], customer)
  if old ~= member then
    if old then contribute(old, -1) end
    contribute(member, 1)
    redis.call('HSET', KEYS[1], customer, member)
    changed = changed + 1
  end
  from = stop + 1
end
for _, field in ipairs(order) do
  local amount = delta[field]
  if amount ~= 0 then
    local total = redis.call('HINCRBY', KEYS[2], field, string.format('%d', amount))
    if total == 0 then redis.call('HDEL', KEYS[2], field) end
  end
end
return changed
"""

# KEYS: the registry. ARGV: max_values, then dimension, value pairs. Returns 1 (admitted)
# or 0 (refused) per pair.
_ADMIT = """
local max = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 2 do
  local field = ARGV[i] .. '\\31' .. ARGV[i + 1]
  if redis.call('HEXISTS', KEYS[1], field) == 1 then
    out[#out + 1] = 1
  elseif tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0') < max then
    redis.call('HSET', KEYS[1], field, 1)
    redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""


class SegmentRollups:
    """Writes and reads the segment rollups of one prefix (see the module doc)."""

    def __init__(self, client: Any, prefix: str = "es") -> None:
        self.client: Any = client
        self.prefix = prefix
        self._apply: Any = client.register_script(_APPLY)
        self._admit: Any = client.register_script(_ADMIT)
        self._admitted: set[tuple[str, str]] = set()
        self._refused: set[tuple[str, str]] = set()
        self._partitions: set[int] = set()

    def members_key(self, partition: int) -> str:
        return f"{self.prefix}:seg:{{p{partition}}}:members"

    def counts_key(self, partition: int) -> str:
        return f"{self.prefix}:seg:{{p{partition}}}:counts"

    @property
    def values_key(self) -> str:
        return f"{self.prefix}:seg:values"

    @property
    def partitions_key(self) -> str:
        return f"{self.prefix}:seg:partitions"

    async def write(self, staged: Sequence[Staged]) -> None:
        """Store the memberships (values beyond the limit as ``(other)``) and adjust the
        counters: one script per partition, in one pipeline."""
        if not staged:
            return
        await self._register(staged)
        shards: dict[int, list[str]] = {}
        for partition, customer_id, member in staged:
            shards.setdefault(partition, []).append(
                f"{customer_id}\x1d{encode_membership(self._resolve(member))}"
            )
        calls = [
            ScriptCall(self._apply, [self.members_key(p), self.counts_key(p)], ["\x1c".join(items)])
            for p, items in sorted(shards.items())
        ]
        await run_scripts(self.client, calls)

    async def _register(self, staged: Sequence[Staged]) -> None:
        """Ask the registry about values this process has not seen decided, and record new
        partitions."""
        unknown: dict[tuple[str, str], None] = {}
        for _, _, member in staged:
            for pair in member.values:
                if pair[1] in (NONE_VALUE, OTHER_VALUE):
                    continue
                if pair not in self._admitted and pair not in self._refused:
                    unknown[pair] = None
        partitions = {p for p, _, _ in staged} - self._partitions
        if partitions:
            await self.client.sadd(self.partitions_key, *sorted(partitions))
            self._partitions |= partitions
        if not unknown:
            return
        args: list[Any] = [staged[0][2].max_values]
        for dim, value in unknown:
            args += [dim, value]
        [flags] = await run_scripts(self.client, [ScriptCall(self._admit, [self.values_key], args)])
        if len(self._refused) > _REFUSED_MEMORY:
            self._refused.clear()
        for pair, flag in zip(unknown, flags, strict=True):
            (self._admitted if int(flag) else self._refused).add(pair)

    def _resolve(self, member: Membership) -> Membership:
        if not any(pair in self._refused for pair in member.values):
            return member
        values = tuple((d, OTHER_VALUE if (d, v) in self._refused else v)
                       for d, v in member.values)  # fmt: skip
        return replace(member, values=values)

    async def partitions(self) -> list[int]:
        return sorted(int(p) for p in await self.client.smembers(self.partitions_key))

    async def counts(self) -> dict[str, int]:
        """The counters summed over every shard (one HGETALL per partition)."""
        shards = await self.partitions()
        if not shards:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for partition in shards:
            pipe.hgetall(self.counts_key(partition))
        total: dict[str, int] = {}
        for reply in await pipe.execute():
            for name, amount in reply.items():
                key = name.decode()
                total[key] = total.get(key, 0) + int(amount)
        return total

    async def rows(
        self, settings: SegmentSettings, bands: BandScale
    ) -> dict[str, list[SegmentRow]]:
        """Per dimension, the figures of each segment value (see ``segment_rows``)."""
        return segment_rows(await self.counts(), settings, bands)

    async def memberships(self) -> dict[str, Membership]:
        """Every stored membership (reads whole shards: for tests and administration)."""
        found: dict[str, Membership] = {}
        for partition in await self.partitions():
            raw = await self.client.hgetall(self.members_key(partition))
            for customer, member in raw.items():
                found[customer.decode()] = decode_membership(member.decode())
        return found
