"""Accounts in Redis: per-account users and score, exactly once and cluster-safe.

Keys (the read contract, docs/reference/redis-keys.md; ``<tag>`` is the account id escaped like a
customer id, ``stream.adapters.redis_keys.key_tag``, so an account's two keys share one
Redis Cluster slot):

- ``{prefix}:acct:{<tag>}``         hash: ``score`` (points), ``band``, ``users``,
                                     ``updated_at``, ``aggregate``, ``model_version``,
                                     ``history`` (JSON ``{"bucket_ms", "points": [[start_ms,
                                     score], ...]}``), plus internal fields (``state``,
                                     ``sum_cp``, ``ver``, ``outbox``)
- ``{prefix}:acct:{<tag>}:users``   sorted set: customer -> score (points)
- ``{prefix}:acct:{<tag>}:alerts``  list: the account's latest alerts (JSON, as published),
                                     newest first, at most ``RECENT_ALERTS``
- ``{prefix}:acct:rank``            sorted set: account -> score (lists by band, counts)
- ``acct_in`` in the customer's hash: the account whose users set holds the customer
  (internal; how a customer who changes account is moved)

A roll-up (``roll``) is one Lua script per touched account: it sets the users' scores
(``ZADD``/``ZREM``, only where they differ), keeps ``sum_cp`` (the scores' sum in
centipoints) by adding each difference against the old score, and returns the sum, the
user count, the highest scores the aggregate needs, and the account's last evaluated state,
version and pending outbox. The worker evaluates the account
(``stream.core.accounts.evaluate``) and ``commit`` writes the result with an optimistic
version check (one script per account), then points the ranking at it (idempotent ``ZADD``
or ``ZREM`` when the account has no users left).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

import orjson

from stream.adapters.codec import iso_ms
from stream.adapters.redis_account_reads import RECENT_ALERTS, AccountReads
from stream.adapters.redis_cluster import ScriptCall, run_scripts
from stream.adapters.redis_keys import account_alerts_key, account_key, account_users_key
from stream.adapters.redis_outbox import CLEAR_OUTBOX, clear_outboxes
from stream.core.accounts import AccountState, Rollup
from stream.core.alerts import AlertGate, RuleGate
from stream.ports import AccountCommit, AccountLoaded, IndexEntry, OutboxAlert

__all__ = [
    "RECENT_ALERTS",
    "RedisAccounts",
    "account_state_from_json",
    "account_state_to_json",
    "history_to_json",
]

MEMBER_FIELD = "acct_in"

# KEYS: account hash, users set. ARGV: how many top scores to return, then pairs of
# customer, score in centipoints ('' removes the customer).
_ROLL = """
local sum = tonumber(redis.call('HGET', KEYS[1], 'sum_cp') or '0')
local changed = false
for i = 2, #ARGV, 2 do
  local old = redis.call('ZSCORE', KEYS[2], ARGV[i])
  local oldcp = nil
  if old then oldcp = math.floor(tonumber(old) * 100 + 0.5) end
  if ARGV[i + 1] == '' then
    if old then
      redis.call('ZREM', KEYS[2], ARGV[i]); sum = sum - oldcp; changed = true
    end
  else
    local newcp = tonumber(ARGV[i + 1])
    if oldcp ~= newcp then
      redis.call('ZADD', KEYS[2], string.format('%.2f', newcp / 100), ARGV[i])
      sum = sum + newcp - (oldcp or 0); changed = true
    end
  end
end
if changed then redis.call('HSET', KEYS[1], 'sum_cp', string.format('%d', sum)) end
local top = {}
local n = tonumber(ARGV[1])
if n > 0 then top = redis.call('ZREVRANGE', KEYS[2], 0, n - 1, 'WITHSCORES') end
local fields = redis.call('HMGET', KEYS[1], 'ver', 'state', 'outbox', 'history')
return {string.format('%d', sum), redis.call('ZCARD', KEYS[2]), top, fields}
"""

# KEYS: account hash, recent alerts list. ARGV: expected version, how many alerts the list
# keeps, the number of field/value pairs, the pairs ('' deletes the field), then the new
# alerts' JSON (pushed to the list, newest last).
_COMMIT = """
local current = redis.call('HGET', KEYS[1], 'ver') or '0'
if current ~= ARGV[1] then return 0 end
local set = {'ver', tostring(tonumber(current) + 1)}
local last = 3 + 2 * tonumber(ARGV[3])
for i = 4, last, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else set[#set + 1] = ARGV[i]; set[#set + 1] = ARGV[i + 1] end
end
redis.call('HSET', KEYS[1], unpack(set))
if #ARGV > last then
  for i = last + 1, #ARGV do redis.call('LPUSH', KEYS[2], ARGV[i]) end
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
end
return 1
"""


def account_state_to_json(state: AccountState) -> bytes:
    """The internal ``state`` field: last evaluated score, band, users, moment and the alert
    gates (the history is the public ``history`` field, ``history_to_json``)."""
    return orjson.dumps({
        "s": state.score_cp, "b": state.band, "n": state.users, "u": state.updated_ms,
        "c": [1 if state.churn_gate.armed else 0, state.churn_gate.last_alert_ms],
        "d": [1 if state.drop_gate.armed else 0, state.drop_gate.last_alert_ms],
    })  # fmt: skip


def history_to_json(state: AccountState, bucket_ms: int) -> bytes:
    """The public ``history`` field: ``{"bucket_ms", "points": [[bucket_start_ms, score]]}``,
    oldest first, scores in points with two decimals (exact centipoints)."""
    return orjson.dumps({"bucket_ms": bucket_ms,
                         "points": [[b, s / 100] for b, s in state.history]})  # fmt: skip


def account_state_from_json(raw: bytes | None, history: bytes | None = None) -> AccountState:
    """Inverse of ``account_state_to_json`` and ``history_to_json``; nothing stored reads as
    a new account."""
    if not raw:
        return AccountState()
    data = orjson.loads(raw)
    points = orjson.loads(history)["points"] if history else []
    return AccountState(
        score_cp=data["s"], band=data["b"], users=int(data["n"]), updated_ms=int(data["u"]),
        history=tuple((int(b), round(float(s) * 100)) for b, s in points),
        churn_gate=AlertGate(bool(data["c"][0]), data["c"][1]),
        drop_gate=RuleGate(bool(data["d"][0]), data["d"][1]),
    )  # fmt: skip


def _outbox(outbox: Sequence[OutboxAlert]) -> bytes:
    return orjson.dumps(list(outbox)) if outbox else b""


class RedisAccounts:
    """Writes accounts (see the module doc for the keys); ``reads`` reads them
    (``stream.adapters.redis_account_reads``)."""

    def __init__(self, client: Any, prefix: str, customer_key: Any) -> None:
        self.client: Any = client
        self.prefix = prefix
        self._customer_key = customer_key
        self._roll: Any = client.register_script(_ROLL)
        self._commit: Any = client.register_script(_COMMIT)
        self._clear: Any = client.register_script(CLEAR_OUTBOX)
        self.reads = AccountReads(client, prefix)

    @property
    def rank_key(self) -> str:
        return f"{self.prefix}:acct:rank"

    async def roll(
        self,
        entries: Iterable[IndexEntry],
        top: int,
        also: Iterable[str] = (),
        members: MutableMapping[str, str] | None = None,
    ) -> dict[str, AccountLoaded]:
        """Set the entries' scores in their accounts (see ``ScoreStore.roll_accounts``)."""
        changes: dict[str, dict[str, int | None]] = {a: {} for a in also}
        known = members if members is not None else {}
        listed = [e for e in entries if e.account is not None]
        for entry in listed:
            assert entry.account is not None
            changes.setdefault(entry.account, {})[entry.customer_id] = round(entry.score * 100)
        unsure = [e for e in listed if known.get(e.customer_id) != e.account]
        moved = await self._moves(unsure, changes)
        names = list(changes)
        calls = []
        for account_id in names:
            flat: list[Any] = []
            for customer_id, cp in changes[account_id].items():
                flat += [customer_id, "" if cp is None else cp]
            keys = [
                account_key(self.prefix, account_id),
                account_users_key(self.prefix, account_id),
            ]
            calls.append(ScriptCall(self._roll, keys, [top, *flat]))
        replies = await run_scripts(self.client, calls)
        if moved:  # only once both the old and the new account hold the right members
            pipe = self.client.pipeline(transaction=False)
            for customer_id, account_id in moved.items():
                pipe.hset(self._customer_key(customer_id), MEMBER_FIELD, account_id)
            await pipe.execute()
        for entry in unsure:
            assert entry.account is not None
            known[entry.customer_id] = entry.account
        return {name: _loaded(reply) for name, reply in zip(names, replies, strict=True)}

    async def _moves(
        self, entries: Sequence[IndexEntry], changes: dict[str, dict[str, int | None]]
    ) -> dict[str, str]:
        """Add to ``changes`` the removals from accounts the entries' customers left; returns
        the customers whose recorded account must become their new one."""
        if not entries:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for entry in entries:
            pipe.hget(self._customer_key(entry.customer_id), MEMBER_FIELD)
        moved: dict[str, str] = {}
        for entry, raw in zip(entries, await pipe.execute(), strict=True):
            before = raw.decode() if raw is not None else None
            if entry.account is not None and before != entry.account:
                moved[entry.customer_id] = entry.account
                if before is not None:
                    changes.setdefault(before, {})[entry.customer_id] = None
        return moved

    async def commit(self, commits: Sequence[AccountCommit]) -> list[str]:
        """Write evaluated accounts at their expected versions; returns the conflicts."""
        if not commits:
            return []
        calls = []
        for c in commits:
            fields = self._fields(c)
            keys = [
                account_key(self.prefix, c.account_id),
                account_alerts_key(self.prefix, c.account_id),
            ]
            args = [c.expected_version, RECENT_ALERTS, len(fields) // 2, *fields,
                    *map(orjson.dumps, c.alerts)]  # fmt: skip
            calls.append(ScriptCall(self._commit, keys, args))
        replies = await run_scripts(self.client, calls)
        written = [c for c, reply in zip(commits, replies, strict=True) if int(reply) == 1]
        pipe = self.client.pipeline(transaction=False)
        scored = {c.account_id: c.state.score_cp / 100 for c in written
                  if c.state.score_cp is not None}  # fmt: skip
        if scored:
            pipe.zadd(self.rank_key, scored)
        gone = [c.account_id for c in written if c.state.score_cp is None]
        if gone:
            pipe.zrem(self.rank_key, *gone)
        if scored or gone:
            await pipe.execute()
        return [c.account_id for c, r in zip(commits, replies, strict=True) if int(r) != 1]

    def _fields(self, commit: AccountCommit) -> list[Any]:
        state = commit.state
        return [
            "state", account_state_to_json(state),
            "score", "" if state.score_cp is None else f"{state.score_cp / 100:g}",
            "band", state.band or "",
            "users", str(state.users),
            "updated_at", iso_ms(state.updated_ms),
            "aggregate", commit.aggregate,
            "model_version", commit.model_version,
            "history", history_to_json(state, commit.bucket_ms),
            "outbox", _outbox(commit.outbox),
        ]  # fmt: skip

    async def clear_outbox(self, published: Mapping[str, Sequence[OutboxAlert]]) -> None:
        """Drop each account's outbox if it still holds exactly the published alerts."""
        boxes = {account_key(self.prefix, a): _outbox(box) for a, box in published.items()}
        await clear_outboxes(self.client, self._clear, boxes)


def _loaded(reply: Sequence[Any]) -> AccountLoaded:
    sum_cp, users, top, (ver, state, outbox, history) = reply
    top_cp = tuple(round(float(top[i + 1]) * 100) for i in range(0, len(top), 2))
    return AccountLoaded(
        rollup=Rollup(int(users), int(sum_cp), top_cp),
        state=account_state_from_json(state, history),
        version=int(ver or 0),
        outbox=orjson.loads(outbox) if outbox else [],
    )
