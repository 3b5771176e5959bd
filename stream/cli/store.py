"""One read against the score store, for every ``engagement`` command that queries it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from stream.config.errors import ConfigError
from stream.config.settings import Settings
from stream.core.decode import valid_customer_id
from stream.errors import UnreachableError

__all__ = ["query_store", "require_valid_id"]

T = TypeVar("T")


def query_store(settings: Settings, ask: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``ask(store)`` against the score store; an unreachable Redis is one clear error."""
    import redis  # noqa: PLC0415
    from redis.exceptions import RedisClusterException  # noqa: PLC0415 (no cluster node answered)

    try:
        return asyncio.run(ask(_store(settings)))
    except (redis.ConnectionError, redis.TimeoutError, OSError, RedisClusterException) as exc:
        address = str(settings.redacted()["redis_url"])
        raise UnreachableError("Redis", address, str(exc) or type(exc).__name__) from None


def require_valid_id(kind: str, value: str, settings: Settings) -> str:
    """``value`` if it is a valid customer or account id (the rule of the decoder and of
    the HTTP endpoints' 400, ``stream.core.decode.valid_customer_id``), else a ConfigError
    (exit 2). The id is not echoed: it may hold characters that garble a terminal."""
    if not valid_customer_id(value, settings.max_id_length):
        raise ConfigError(
            "arguments", f"{kind}_id", f"invalid {kind} id (control, invisible or format "
            f"characters, or longer than {settings.max_id_length} characters)",
        )  # fmt: skip
    return value


def _store(settings: Settings) -> Any:
    from stream.adapters.redis_client import async_redis, check_redis_credentials  # noqa: PLC0415
    from stream.adapters.redis_store import RedisScoreStore  # noqa: PLC0415

    check_redis_credentials(settings.redis)
    return RedisScoreStore(async_redis(settings.redis), settings.redis_prefix)
