"""The commit protocol of the score table: one small Lua script per call checks each
customer's version (optimistic concurrency) and writes its fields, nothing else.

On one server one call commits up to 100 customers, each on its own; on a cluster, where a
script's keys must share a slot, one call per customer. The duplicate check is the
caller's, against the record it loaded; the version check makes it exact. The ranking and
due indexes are written afterwards with idempotent commands (``stream.adapters.
redis_indexes``), so a crash in between is healed by replay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stream.adapters.redis_cluster import ScriptCall, is_cluster, run_scripts
from stream.adapters.redis_fields import (
    STATE_FIELDS,
    StateValues,
    encode_applied,
    encode_outbox,
    profile_fields,
    state_codec,
)
from stream.adapters.redis_outbox import CLEAR_OUTBOX, clear_outboxes
from stream.ports import Commit, CommitResult, Loaded, OutboxAlert

__all__ = ["Committer"]

# The fields every commit sets, in the order the commit script takes their values.
_FIXED = ("ver", *STATE_FIELDS[:7], "dedup")
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


class Committer:
    """Commits customers and clears their outboxes through the registered scripts."""

    def __init__(self, client: Any, key: Callable[[str], str]) -> None:
        self.client = client
        self.key = key
        self._commit: Any = client.register_script(_COMMIT)
        self._clear: Any = client.register_script(CLEAR_OUTBOX)

    async def commit(self, commits: Sequence[Commit]) -> CommitResult:
        """Apply commits in one pipelined round trip: each is written, or a conflict."""
        result = CommitResult()
        if not commits:
            return result
        per_call = 1 if is_cluster(self.client) else _KEYS_PER_CALL
        calls = []
        encode = state_codec().state_values
        for start in range(0, len(commits), per_call):
            chunk = commits[start : start + per_call]
            args: list[Any] = []
            for item in chunk:
                args += _commit_args(item, encode)
            calls.append(ScriptCall(self._commit, [self.key(c.customer_id) for c in chunk], args))
        replies = [r for reply in await run_scripts(self.client, calls) for r in reply]
        for item, written in zip(commits, replies, strict=True):
            (result.written if written == 1 else result.conflicts).append(item.customer_id)
        return result

    async def clear_outbox(self, published: Mapping[str, Sequence[OutboxAlert]]) -> None:
        """Drop each customer's outbox if it still holds exactly the published alerts."""
        boxes = {self.key(c): encode_outbox(outbox) for c, outbox in published.items()}
        await clear_outboxes(self.client, self._clear, boxes)


def _commit_args(item: Commit, state_values: StateValues) -> list[Any]:
    """The commit script's arguments: expected version, how many fields to delete and how
    many further arguments to set, the ``_FIXED`` values, the fields to delete, the further
    fields to set. An empty value means "no such field"; it is deleted unless the customer
    as read at the expected version (``item.before``) shows it absent already (the version
    check makes that knowledge exact), so the usual commit deletes nothing. An empty fixed
    value is always deleted (the script has written it). ``state_values`` is the state
    codec's (``redis_fields.state_codec``)."""
    values = state_values(item.state, item.breakdown, item.model_version, item.partition,
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
