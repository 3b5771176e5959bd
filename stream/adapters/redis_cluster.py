"""The few operations that differ between one Redis server and a Redis Cluster.

Everything else works unchanged on redis-py's cluster client, because every command the
store sends names one key (a customer's hash is one slot through its ``{customer}`` hash
tag; the ranking and each due index are one key each):

- a pipeline on a cluster is non-transactional and split per node by the client, which
  sends each node its share in one round trip (the store never asks for a transaction);
- a script call names exactly one key, so it runs on that key's master. A cluster
  pipeline does not load scripts first (a single server's pipeline does), so
  ``run_scripts`` loads a script on every master when a node answers NOSCRIPT (a new
  or restarted node) and resends just the refused calls (a refused call did nothing).
  redis-py refuses ``evalsha()`` on a cluster pipeline (it cannot know the keys in
  general), so the call is queued as the raw ``EVALSHA`` command with its one key;
- ``SCAN`` on the cluster client already visits every master (``scan_iter``);
- multi-key deletes are sent as one single-key ``UNLINK`` per key in a pipeline, which
  either client groups per node (a multi-key ``UNLINK`` must not span slots);
- readiness pings every master, not just one node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import NoScriptError

__all__ = ["ScriptCall", "is_cluster", "ping_all", "run_scripts", "unlink_keys"]


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One call of a registered script (``client.register_script``) on one key."""

    script: Any
    keys: Sequence[Any]
    args: Sequence[Any]


def is_cluster(client: Any) -> bool:
    """Whether ``client`` is redis-py's asyncio cluster client."""
    return isinstance(client, AsyncRedisCluster)


async def run_scripts(client: Any, calls: Sequence[ScriptCall]) -> list[Any]:
    """The replies of ``calls``, in order, sent in one pipeline (on a cluster: one per node)."""
    if not calls:
        return []
    replies = await _pipelined(client, calls, raise_on_error=not is_cluster(client))
    if not is_cluster(client):
        return replies
    refused = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if refused:
        for script in {id(calls[i].script): calls[i].script for i in refused}.values():
            await client.script_load(script.script)  # SCRIPT LOAD goes to every master
        again = await _pipelined(client, [calls[i] for i in refused], raise_on_error=True)
        for i, reply in zip(refused, again, strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def _pipelined(
    client: Any, calls: Sequence[ScriptCall], *, raise_on_error: bool
) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for call in calls:
        if is_cluster(client):  # redis-py blocks evalsha() on a cluster pipeline, not the command
            pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
        else:
            await call.script(keys=list(call.keys), args=list(call.args), client=pipe)
    replies: list[Any] = await pipe.execute(raise_on_error=raise_on_error)
    return replies


async def unlink_keys(client: Any, keys: Sequence[bytes | str]) -> int:
    """UNLINK ``keys`` (one command per key, pipelined); returns how many existed."""
    if not keys:
        return 0
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("UNLINK", key)
    return sum(int(n) for n in await pipe.execute())


async def ping_all(client: Any) -> bool:
    """PING the server, or every master of a cluster (readiness needs all of them)."""
    if is_cluster(client):
        return bool(await client.ping(target_nodes=AsyncRedisCluster.PRIMARIES))
    return bool(await client.ping())
