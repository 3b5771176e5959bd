"""The Lua script that clears a published outbox (a customer's or an account's hash)."""

from __future__ import annotations

__all__ = ["CLEAR_OUTBOX"]

# Remove the outbox only if it is still exactly what was published: alerts added after the
# publish (a later batch) stay for the next one.
CLEAR_OUTBOX = """
if redis.call('HGET', KEYS[1], 'outbox') == ARGV[1] then
  return redis.call('HDEL', KEYS[1], 'outbox')
end
return 0
"""
