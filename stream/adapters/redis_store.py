"""The Redis score table: per-customer hashes, a global ranking and per-partition due indexes.

Key layout (the read contract, documented in docs/reference/redis-keys.md):

- ``{prefix}:{<tag>}``             hash: score, band, updated_at, breakdown, model_version,
                                    traits, account (when known), plus internal fields
                                    (state, ver, dedup, outbox, profile_at)
- ``{prefix}:rank``                sorted set: customer -> score (ranking and band counts)
- ``{prefix}:due:<partition>``     sorted set: customer -> next moment its window changes
- ``{prefix}:alerts``, ``{prefix}:alerts:data``, ``{prefix}:alerts:{<tag>}``: the
                                    recent published alerts (``stream.adapters.redis_alerts``)
- ``{prefix}:bands:history``       hash: band-count snapshots (``stream.web.history``)
- ``{prefix}:acct:...``            accounts, with models that have them
                                    (``stream.adapters.redis_accounts``)
- ``{prefix}:seg:...``             segment rollups, when the model has segment dimensions
                                    (``stream.adapters.redis_segments``)

``<tag>`` is the customer id with ``%``, ``{`` and ``}`` percent-encoded
(``stream.adapters.redis_keys``). A customer is one key, so one Redis Cluster slot (its hash
tag ``{<tag>}``); every
command names one key, so the store works on a cluster as on one server (see
``redis_cluster`` for the few operations that differ). What a customer has applied
(``stream.ports.Applied``: per input partition the highest offset taken, and recent
fingerprints) lives in the hash as one packed string (``dedup``), stored exactly as the
port packs it (a value object kept packed, so that the worker's cache stays small): a
3-byte header (layout 1, watermark count), 20-byte watermarks (8-byte partition id,
8-byte offset, 4-byte forget-at in epoch seconds), then 12-byte fingerprint records
(8-byte fingerprint, 4-byte forget-at). A commit is one small Lua script on that key: it
checks the version (optimistic concurrency) and writes the fields, nothing else; on one
server one call commits up to 100 customers, each on its own (on a cluster, where a
script's keys must share a slot, one call per customer). The
duplicate check is the caller's, against the record it loaded; the version check makes it
exact. Releases before this one kept every fingerprint until its event left the window in
``seen`` (4-byte header, then 12-byte records); ``load`` still reads it, as fingerprints
with their own expiries, and the next commit moves them into ``dedup`` and deletes
``seen``. The ranking and due indexes are written afterwards with idempotent commands, so
a crash in between is healed by replay.

The store owns the hash's encoding: the worker hands it domain objects
(``stream.ports.Commit``: state, breakdown, applied record, outbox alerts) and never sees a
field.
"""

from __future__ import annotations

import functools
import re
import struct
import time
from collections.abc import AsyncIterator, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import orjson

from stream.adapters.codec import iso_ms, points
from stream.adapters.redis_accounts import RedisAccounts
from stream.adapters.redis_alerts import RecentAlerts, customer_alerts_key
from stream.adapters.redis_client import AsyncClient
from stream.adapters.redis_cluster import ScriptCall, is_cluster, run_scripts, unlink_keys
from stream.adapters.redis_keys import key_tag
from stream.adapters.redis_outbox import CLEAR_OUTBOX
from stream.adapters.redis_segments import SegmentRollups, Staged
from stream.adapters.redis_state import Internal, pack_state, unpack_state
from stream.core.bands import BandScale
from stream.core.customer import CustomerState
from stream.core.history import History, Marker, factor_changes, trend
from stream.core.profile import Profile
from stream.ports import (
    AccountCommit,
    AccountLoaded,
    Applied,
    Commit,
    CommitResult,
    IndexEntry,
    Loaded,
    OutboxAlert,
)

__all__ = [
    "RedisScoreStore",
    "Stored",
    "band_bounds",
    "customer_key",
    "decode_applied",
    "encode_applied",
    "encode_outbox",
    "profile_fields",
    "profile_from_fields",
    "state_fields",
    "state_from_fields",
]

_LOADED_FIELDS = ("state", "score", "band", "ver", "outbox", "history", "history_markers",
                  "model_version", "traits", "account", "profile_at", "dedup",
                  "seen")  # fmt: skip
_HISTORY_POINT = struct.Struct("<qq")  # also the history field's header (layout, bucket_ms)
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

# The fields ``state_fields`` writes, in order; all but the last are set by every commit.
_STATE_FIELDS = ("score", "band", "updated_at", "breakdown", "model_version", "state", "history",
                 "history_markers")  # fmt: skip
# The fields every commit sets, in the order the commit script takes their values.
_FIXED = ("ver", *_STATE_FIELDS[:7], "dedup")
# One call commits one or more customers (KEYS), each on its own: ARGV holds, per key in
# order, the expected version, the number n of fields to delete, the number m of further
# field/value arguments, the values of the ``_FIXED`` fields (names are the script's own
# constants: every argument costs Redis a conversion into Lua and back, so sending names
# cost about a third of the script's time), the n names, then the m arguments. An empty
# fixed value is written, then deleted as one of the n. Returns, per key, 1 when written
# or 0 on a version conflict (then nothing of that key is written).
_FIXED_SET = ", ".join(f"'{name}', ARGV[a + {3 + i}]" for i, name in enumerate(_FIXED))
_COMMIT = f"""
local out = {{}}
local a = 1
for k = 1, #KEYS do
  local key = KEYS[k]
  local n, m = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local gone = a + {3 + len(_FIXED)}
  if (redis.call('HGET', key, 'ver') or '0') ~= ARGV[a] then
    out[k] = 0
  else
    redis.call('HSET', key, {_FIXED_SET})
    if m > 0 then redis.call('HSET', key, unpack(ARGV, gone + n, gone + n + m - 1)) end
    if n > 0 then redis.call('HDEL', key, unpack(ARGV, gone, gone + n - 1)) end
    out[k] = 1
  end
  a = gone + n + m
end
return out
"""
_KEYS_PER_CALL = 100  # one server: customers per script call (a cluster: one per call)


def customer_key(prefix: str, customer_id: str) -> str:
    """The customer's hash; ``{key_tag(customer_id)}`` is its Redis Cluster hash tag."""
    return f"{prefix}:{{{key_tag(customer_id)}}}"


_SORTED = orjson.OPT_SORT_KEYS
# A batch's states share their ``updated_at`` (the moment they were evaluated).
_iso_ms = functools.lru_cache(maxsize=256)(iso_ms)


def state_fields(
    state: CustomerState,
    breakdown: Mapping[str, int],
    model_version: str,
    partition: int,
    bucket_ms: int = 86_400_000,
) -> dict[str, str | bytes]:
    """Hash fields for a customer: the public read contract plus one internal ``state``
    (``stream.adapters.redis_state``: binary, versioned)."""
    return dict(zip(_STATE_FIELDS, _state_values(state, breakdown, model_version, partition,
                                                 bucket_ms), strict=True))  # fmt: skip


def _state_values(
    state: CustomerState,
    breakdown: Mapping[str, int],
    model_version: str,
    partition: int,
    bucket_ms: int,
) -> tuple[str, str, str, bytes, str, bytes, bytes, bytes]:
    """The values of ``_STATE_FIELDS``, in order."""
    internal = Internal(
        buckets=state.buckets,
        gate=state.gate,
        updated_ms=state.updated_ms,
        partition=partition,
        first_seen_ms=state.first_seen_ms,
        tenure_days=state.tenure_days,
        prior_active=state.prior_active,
        rule_gates=state.rule_gates,
        own_version=state.version != model_version,  # usually equal: then ``model_version``
        version=state.version,
    )
    return (
        f"{points(state.score_cp):g}",
        state.band or "",
        _iso_ms(state.updated_ms),
        orjson.dumps({k: points(v) for k, v in breakdown.items()}, option=_SORTED),
        model_version,
        pack_state(internal),
        history_to_bytes(state.history, bucket_ms),
        markers_to_json(state.markers) if state.markers else b"",
    )


def history_to_bytes(history: History, bucket_ms: int) -> bytes:
    """The ``history`` hash field (see docs/reference/redis-keys.md): little-endian signed 64-bit
    integers ``[1, bucket_ms, start_0, score_0, start_1, score_1, ...]``, points oldest first,
    each the start of a bucket in epoch ms and the score in centipoints."""
    return struct.pack(f"<{2 + 2 * len(history)}q", 1, bucket_ms, *chain.from_iterable(history))


def history_from_bytes(raw: bytes | None) -> tuple[int, History]:
    """The bucket length and the points of a ``history`` field (empty: none)."""
    if not raw:
        return 0, ()
    layout, bucket_ms = _HISTORY_POINT.unpack_from(raw)
    if layout != 1:
        raise ValueError(f"unknown history layout {layout}")
    return bucket_ms, tuple(_HISTORY_POINT.iter_unpack(memoryview(raw)[_HISTORY_POINT.size :]))


def markers_to_json(markers: tuple[Marker, ...]) -> bytes:
    """The ``history_markers`` hash field: ``[[at_ms, model_version], ...]``, oldest first."""
    return orjson.dumps([[at, version] for at, version in markers])


def markers_from_json(raw: bytes | None) -> tuple[Marker, ...]:
    """The markers of a ``history_markers`` field (empty: none)."""
    return tuple((int(at), str(v)) for at, v in orjson.loads(raw)) if raw else ()


def history_view(fields: Mapping[str, bytes], now_ms: int) -> dict[str, Any]:
    """The ``history`` and ``trend`` members of a customer's public view, at ``now_ms``.

    ``trend.change_7d``/``change_30d`` are the score now minus the score 7/30 days earlier
    (None without a point that old); ``top_factor`` is the factor whose raw points over the
    last 7 days changed most against the 7 days before, from the window's buckets;
    ``factor_changes_7d`` is that change for every factor with points in either week.
    """
    bucket_ms, kept = history_from_bytes(fields.get("history"))
    if not bucket_ms:
        return {"history": None, "trend": None}
    markers = markers_from_json(fields.get("history_markers"))
    raw = fields.get("state")
    buckets = unpack_state(raw).buckets if raw else {}
    found = trend(kept, buckets, bucket_ms, now_ms, 86_400_000)

    def change(cp: int | None) -> float | None:
        return None if cp is None else points(cp)

    return {
        "history": {
            "bucket_ms": bucket_ms,
            "points": [[start, points(score)] for start, score in kept],
            "markers": [
                {"at": iso_ms(at), "at_ms": at, "model_version": version} for at, version in markers
            ],
        },
        "trend": {
            "change_7d": change(found.change_7d_cp),
            "change_30d": change(found.change_30d_cp),
            "top_factor": found.top_factor,
            "top_factor_change": points(found.top_factor_change_cp),
            "factor_changes_7d": {
                factor: points(cp)
                for factor, cp in sorted(
                    factor_changes(buckets, bucket_ms, now_ms, 86_400_000).items()
                )
            },
        },
    }


def _version(fields: Mapping[str, bytes | None]) -> str | None:
    return (fields.get("model_version") or b"").decode() or None


def state_from_fields(fields: Mapping[str, bytes | None]) -> CustomerState:
    """Rebuild a CustomerState from the hash fields written by ``state_fields``."""
    raw = fields.get("state")
    if not raw:
        return CustomerState()
    internal = unpack_state(raw)
    score = fields.get("score") or b"0"
    return CustomerState(
        buckets=internal.buckets,
        score_cp=round(float(score) * 100),
        band=(fields.get("band") or b"").decode() or None,
        gate=internal.gate,
        updated_ms=internal.updated_ms,
        first_seen_ms=internal.first_seen_ms,
        tenure_days=internal.tenure_days,
        prior_active=internal.prior_active,
        history=history_from_bytes(fields.get("history"))[1],
        markers=markers_from_json(fields.get("history_markers")),
        version=internal.version if internal.own_version else _version(fields),
        rule_gates=internal.rule_gates,
    )


def profile_fields(profile: Profile) -> dict[str, str | bytes]:
    """Hash fields of a profile: public ``traits`` (JSON object) and ``account``, internal
    ``profile_at`` (event times, for last-write-wins); an empty value deletes the field."""
    at: dict[str, Any] = {}
    if profile.trait_ms:
        at["t"] = dict(profile.trait_ms)
    if profile.account is not None:
        at["a"] = profile.account_ms
    return {
        "traits": orjson.dumps(dict(profile.traits)) if profile.traits else b"",
        "account": profile.account or "",
        "profile_at": orjson.dumps(at) if at else b"",
    }


def profile_from_fields(fields: Mapping[str, bytes | None]) -> Profile:
    """Rebuild a Profile from the hash fields written by ``profile_fields``."""
    at = orjson.loads(fields.get("profile_at") or b"{}")
    account = fields.get("account")
    return Profile(
        traits=orjson.loads(fields.get("traits") or b"{}"),
        trait_ms=at.get("t", {}),
        account=account.decode() if account else None,
        account_ms=int(at.get("a", 0)),
    )


def encode_outbox(outbox: Sequence[OutboxAlert]) -> bytes:
    """The ``outbox`` field: a JSON array of alert documents; empty means no field."""
    return orjson.dumps(list(outbox)) if outbox else b""


def encode_applied(applied: Applied) -> bytes:
    """The ``dedup`` field: the record as packed (``stream.ports.Applied``); empty when
    nothing is kept."""
    return applied.packed


def decode_applied(raw: bytes | None, legacy: bytes | None = None) -> Applied:
    """The record of a ``dedup`` field, plus the fingerprints of a pre-upgrade ``seen``
    field (4-byte header, then the same 12-byte records), each with its own expiry."""
    applied = Applied(raw or b"")
    if len(applied.marks) % 12:
        raise ValueError("a dedup field's fingerprint records are 12 bytes each")
    if legacy is None:
        return applied
    return Applied.of(applied.watermarks, applied.marks + legacy[4:], legacy=True)


def band_bounds(bands: BandScale, band: str | None) -> tuple[str, str]:
    """Sorted-set score bounds (min, max) of a band, for ZCOUNT/ZRANGEBYSCORE; None: all."""
    low, high = bands.score_range(band) if band else (None, None)
    return ("-inf" if low is None else f"({low:g}", "+inf" if high is None else f"{high:g}")


def _commit_args(item: Commit) -> list[Any]:
    """The commit script's arguments: expected version, how many fields to delete and how
    many further arguments to set, the ``_FIXED`` values, the fields to delete, the further
    fields to set. An empty value means "no such field"; it is deleted unless the customer
    as read at the expected version (``item.before``) shows it absent already (the version
    check makes that knowledge exact), so the usual commit deletes nothing. An empty fixed
    value is always deleted (the script has written it)."""
    values = _state_values(item.state, item.breakdown, item.model_version, item.partition,
                           item.bucket_ms)  # fmt: skip
    fixed = [str(item.expected_version + 1), *values[:7], encode_applied(item.applied)]
    gone = [name for name, value in zip(_FIXED, fixed, strict=True) if not value]
    optional: dict[str, str | bytes] = {"history_markers": values[7],
                                        "outbox": encode_outbox(item.outbox)}  # fmt: skip
    before = item.before
    absent = _absent(before) if before is not None else set()
    if item.profile is not None:
        optional.update(profile_fields(item.profile))
        if before is not None:
            absent |= {k for k, v in profile_fields(before.profile).items() if not v}
    gone += [name for name, value in optional.items() if not value and name not in absent]
    if before is None or before.applied.legacy:
        gone.append("seen")
    further = [part for name, value in optional.items() if value for part in (name, value)]
    return [item.expected_version, len(gone), len(further), *fixed, *gone, *further]


def _absent(before: Loaded) -> set[str]:
    """Optional fields the customer, as read, does not have (a commit may leave them
    empty)."""
    absent = set()
    if not before.outbox:
        absent.add("outbox")
    if not before.state.markers:
        absent.add("history_markers")
    return absent


@dataclass(frozen=True, slots=True)
class Stored:
    """A customer as stored, with the input partition it belongs to and its traits and
    account (for ``rescore``)."""

    state: CustomerState
    partition: int | None
    profile: Profile = field(default_factory=Profile)


class RedisScoreStore:
    """Reads and writes the score table; every hot-path call is one pipelined round trip."""

    def __init__(self, client: AsyncClient, prefix: str = "es") -> None:
        # redis-py's async annotations mix sync and async return types; treat replies as Any.
        self.client: Any = client
        self.prefix = prefix
        self._commit: Any = client.register_script(_COMMIT)
        self._clear: Any = client.register_script(CLEAR_OUTBOX)
        # Exactly this prefix's keys: braces are not allowed in a prefix and are escaped in
        # a customer's tag, so no key of another prefix (even one that starts with this
        # one) matches.
        self._own_key = re.compile(
            rf"{re.escape(prefix)}:(rank|due:[0-9]+|\{{[^{{}}]+\}}|alerts|alerts:data"
            rf"|alerts:\{{[^{{}}]+\}}|bands:history"
            rf"|acct:rank|acct:\{{[^{{}}]+\}}(?::users|:alerts)?"
            rf"|seg:\{{p[0-9]+\}}:(?:members|counts)|seg:values|seg:partitions)".encode()
        )
        self.recent_alerts = RecentAlerts(client, prefix)
        self.accounts = RedisAccounts(client, prefix, self.customer_key)
        self.segments = SegmentRollups(client, prefix)

    def customer_key(self, customer_id: str) -> str:
        return customer_key(self.prefix, customer_id)

    @property
    def rank_key(self) -> str:
        return f"{self.prefix}:rank"

    def due_key(self, partition: int) -> str:
        return f"{self.prefix}:due:{partition}"

    async def load(self, customers: Iterable[str]) -> dict[str, Loaded]:
        """State, version and pending outbox of each customer (one pipelined round trip)."""
        loaded = {}
        for customer_id, raw in await self._read(customers):
            loaded[customer_id] = Loaded(
                state=state_from_fields(raw),
                version=int(raw["ver"] or 0),
                outbox=orjson.loads(raw["outbox"]) if raw["outbox"] else [],
                profile=profile_from_fields(raw),
                applied=decode_applied(raw["dedup"], raw["seen"]),
            )
        return loaded

    async def _read(self, customers: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
        """The loaded fields of each customer, in one pipelined round trip."""
        names = list(customers)
        pipe = self.client.pipeline(transaction=False)
        for customer_id in names:
            pipe.hmget(self.customer_key(customer_id), _LOADED_FIELDS)
        replies = await pipe.execute()
        return [(c, dict(zip(_LOADED_FIELDS, values, strict=True)))
                for c, values in zip(names, replies, strict=True)]  # fmt: skip

    async def commit(self, commits: Sequence[Commit]) -> CommitResult:
        """Apply commits in one pipelined round trip; see the module doc for the outcomes."""
        result = CommitResult()
        if not commits:
            return result
        per_call = 1 if is_cluster(self.client) else _KEYS_PER_CALL
        calls = []
        for start in range(0, len(commits), per_call):
            chunk = commits[start : start + per_call]
            args: list[Any] = []
            for item in chunk:
                args += _commit_args(item)
            keys = [self.customer_key(c.customer_id) for c in chunk]
            calls.append(ScriptCall(self._commit, keys, args))
        replies = [r for reply in await run_scripts(self.client, calls) for r in reply]
        for item, written in zip(commits, replies, strict=True):
            (result.written if written == 1 else result.conflicts).append(item.customer_id)
        return result

    async def clear_outbox(self, published: Mapping[str, Sequence[OutboxAlert]]) -> None:
        """Drop each customer's outbox if it still holds exactly the published alerts."""
        if not published:
            return
        calls = [ScriptCall(self._clear, [self.customer_key(c)], [encode_outbox(outbox)])
                 for c, outbox in published.items()]  # fmt: skip
        await run_scripts(self.client, calls)

    async def record_alerts(self, alerts: Sequence[Mapping[str, Any]], now_ms: int) -> None:
        """Add published alerts to the bounded recent-alert record the web page reads
        (idempotent by ``alert_id``; see ``stream.adapters.redis_alerts``)."""
        await self.recent_alerts.record(alerts, now_ms)

    async def update_indexes(self, entries: Iterable[IndexEntry]) -> None:
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
            pipe.zadd(self.due_key(partition), members)
        for partition, names in done.items():
            pipe.zrem(self.due_key(partition), *names)
        await pipe.execute()
        await self.segments.write(staged)

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
                deleted += await unlink_keys(self.client, chunk)
                chunk = []
        if chunk:
            deleted += await unlink_keys(self.client, chunk)
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
        found = {}
        for customer_id, raw in await self._read(customer_ids):
            if raw["state"] is None:  # not stored
                continue
            partition = unpack_state(raw["state"]).partition
            found[customer_id] = Stored(state_from_fields(raw), partition, profile_from_fields(raw))
        return found

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
                    (f"{self.prefix}:{{{customer_id}}}", self.customer_key(customer_id)),
                    (f"{self.prefix}:alerts:{{{customer_id}}}",
                     customer_alerts_key(self.prefix, customer_id)),
                ]  # fmt: skip
                for old, new in pairs:
                    dumped = await self.client.dump(old)
                    if dumped is None:
                        continue
                    if await self.client.exists(new):
                        kept += 1
                        continue
                    ttl = max(0, int(await self.client.pttl(old)))
                    await self.client.restore(new, ttl, dumped)
                    await self.client.unlink(old)
                    moved += 1
        return moved, kept

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

    async def customer(self, customer_id: str, now_ms: int | None = None) -> dict[str, Any] | None:
        """The public view of one customer, or None when unknown; its trend is taken at
        ``now_ms`` (default: the wall clock)."""
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
            **history_view(fields, now_ms if now_ms is not None else int(time.time() * 1000)),
            "traits": orjson.loads(fields.get("traits", b"{}")),
            "account": fields["account"].decode() if "account" in fields else None,
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
