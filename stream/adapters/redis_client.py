"""Redis clients built from a ``RedisConnection`` (``Settings.redis``, made at the edge):
URL, ACL user and password, TLS files, and whether the URL names one server or a seed
node of a Redis Cluster
(``ENGAGEMENT_REDIS_CLUSTER``: then redis-py's cluster clients, which find every node
from the seed and route each command to the master of its key's slot).

``check_redis_credentials`` pings once at start-up so that refused credentials or a
failed TLS handshake stop the worker with a clear message instead of endless retries.
An unreachable server is not an error there: the worker retries it and reports not ready.
"""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

import hiredis
import redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import Connection, SSLConnection
from redis.cluster import RedisCluster
from redis.exceptions import AuthenticationError, NoPermissionError

from stream.config.errors import ConfigError
from stream.config.security import RedisConnection
from stream.config.sources import ENV_PREFIX

__all__ = [
    "AsyncClient",
    "SyncClient",
    "async_redis",
    "check_redis_credentials",
    "redis_options",
    "sync_redis",
]

# One server or a cluster: the store and the commands work with either.
AsyncClient: TypeAlias = AsyncRedis | AsyncRedisCluster
SyncClient: TypeAlias = redis.Redis | RedisCluster

_SOURCE = "redis"


def redis_options(connection: RedisConnection) -> dict[str, Any]:
    """Keyword arguments for ``Redis.from_url`` besides the URL itself."""
    security = connection.security
    options: dict[str, Any] = {}
    if security.username is not None:
        options["username"] = security.username
    if security.password is not None:
        options["password"] = security.password.reveal()
    if connection.url.startswith("rediss://"):
        options.update(
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
            ssl_ca_certs=security.ssl_cafile,
            ssl_certfile=security.ssl_certfile,
            ssl_keyfile=security.ssl_keyfile,
        )
    return options


class _HiredisPacking:
    """Pack commands with hiredis (C) instead of redis-py's pure-Python asyncio packer,
    which was the largest single cost of a batch's pipeline (see CHANGELOG.md, 0.1.0)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # e.g. "SCRIPT LOAD"
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]


class _FastConnection(_HiredisPacking, Connection):
    pass


class _FastSSLConnection(_HiredisPacking, SSLConnection):
    pass


_FAST: dict[type[Any], type[Any]] = {Connection: _FastConnection, SSLConnection: _FastSSLConnection}


def async_redis(connection: RedisConnection, **extra: Any) -> AsyncClient:
    """An asyncio client (the worker and the query commands); a cluster client connects
    lazily, on its first command."""
    if connection.cluster:
        return _async_cluster(connection, **extra)
    client = AsyncRedis.from_url(connection.url, **redis_options(connection), **extra)
    pool = client.connection_pool
    pool.connection_class = _FAST.get(pool.connection_class, pool.connection_class)
    return client


def _async_cluster(connection: RedisConnection, **extra: Any) -> AsyncRedisCluster:
    client = AsyncRedisCluster.from_url(connection.url, **redis_options(connection), **extra)
    # Every node's connections are made from these keyword arguments (the seed node's
    # already exist as objects, without connections yet).
    kwargs = client.nodes_manager.connection_kwargs
    kwargs["connection_class"] = _FAST.get(kwargs["connection_class"], kwargs["connection_class"])
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = _FAST.get(node.connection_class, node.connection_class)
    return client


def sync_redis(connection: RedisConnection, **extra: Any) -> SyncClient:
    """A blocking client (the demo and tests); a cluster client asks the seed node for the
    cluster's layout at once, so it needs a reachable cluster."""
    if connection.cluster:
        return RedisCluster.from_url(connection.url, **redis_options(connection), **extra)
    return _seed_node(connection, **extra)


def _seed_node(connection: RedisConnection, **extra: Any) -> redis.Redis:
    """A plain client of the URL's server (in a cluster: the seed node)."""
    return redis.Redis.from_url(connection.url, **redis_options(connection), **extra)


def check_redis_credentials(connection: RedisConnection, timeout_s: float = 5.0) -> None:
    """PING once; refused credentials or a failed TLS handshake raise ConfigError.

    In a cluster only the seed node is asked (every node shares the ACL users when the
    cluster is set up as documented); an unreachable seed is not an error here either.
    """
    client = _seed_node(connection, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        client.ping()
    except (AuthenticationError, NoPermissionError) as exc:  # WRONGPASS, NOAUTH, NOPERM
        problem = f"the server refused the credentials: {exc}"
        if connection.security.password is None and not _url_has_password(connection):
            problem = f"the server needs a password and none is set ({exc})"
        raise ConfigError(_SOURCE, _credentials_key(connection), problem) from None
    except redis.ConnectionError as exc:
        if "SSL" in str(exc) or "certificate" in str(exc):
            raise ConfigError(
                _SOURCE, f"{ENV_PREFIX}REDIS_SSL_CAFILE", f"TLS handshake failed: {exc}"
            ) from None
    finally:
        client.close()


def _url_has_password(connection: RedisConnection) -> bool:
    parts = urlsplit(connection.url)
    return bool(parts.password or parse_qs(parts.query).get("password"))


def _credentials_key(connection: RedisConnection) -> str:
    if connection.security.password is None and _url_has_password(connection):
        return f"{ENV_PREFIX}REDIS_URL"
    return f"{ENV_PREFIX}REDIS_PASSWORD"
