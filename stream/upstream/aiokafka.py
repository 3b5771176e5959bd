"""aiokafka internals (pinned ``aiokafka==0.14.0``).

Relies on ``aiokafka.conn.create_conn(host, port, *, request_timeout_ms, **client options)``
opening one connection and completing its TLS handshake and SASL login before it returns,
raising ``ssl.SSLError`` or a ``KafkaError`` whose ``errno`` names a refused login.

Why: the clients' public interfaces (``AIOKafkaClient.bootstrap``, the consumer and the
producer) retry a refused TLS handshake or login quietly until a generic timeout, so the
worker could not say which setting is wrong. ``aiokafka.conn`` is not part of aiokafka's
documented surface (it is missing from ``aiokafka.__all__``).
``tests/unit/test_upstream_aiokafka.py`` pins the signature.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Connection", "connect_once"]


class Connection(Protocol):
    """What the caller does with the connection: close it."""

    def close(self) -> Any: ...


async def connect_once(host: str, port: int, timeout_s: float, **options: Any) -> Connection:
    """One connection to ``host:port``, logged in with the client ``options``."""
    from aiokafka.conn import create_conn  # noqa: PLC0415 (only when credentials are checked)

    conn: Connection = await create_conn(
        host, port, request_timeout_ms=int(timeout_s * 1000), **options
    )
    return conn
