"""Clearing a published outbox (a customer's or an account's hash): the Lua script and the
one function both stores clear through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream.adapters.redis_cluster import ScriptCall, run_scripts

__all__ = ["CLEAR_OUTBOX", "clear_outboxes"]

# Remove the outbox only if it is still exactly what was published: alerts added after the
# publish (a later batch) stay for the next one.
CLEAR_OUTBOX = """
if redis.call('HGET', KEYS[1], 'outbox') == ARGV[1] then
  return redis.call('HDEL', KEYS[1], 'outbox')
end
return 0
"""


async def clear_outboxes(client: Any, script: Any, published: Mapping[str, bytes]) -> None:
    """Drop the outbox of each key of ``published`` if it still holds exactly the encoded
    outbox given for it (``script`` is ``CLEAR_OUTBOX`` registered on ``client``)."""
    if published:
        calls = [ScriptCall(script, [key], [box]) for key, box in published.items()]
        await run_scripts(client, calls)
