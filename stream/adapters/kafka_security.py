"""Kafka client options from the security settings, shared by every Kafka client here.

kafka-python (topic admin, CLI producer) and aiokafka (publisher) take the same option
names: ``security_protocol``, ``ssl_context`` and ``sasl_*``; Faust takes a credentials
object built from the same TLS context. ``check_kafka_credentials`` connects once before
the clients start, because they retry a refused login quietly until a generic timeout.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from stream.config.errors import ConfigError
from stream.config.security import KafkaSecurity
from stream.config.sources import ENV_PREFIX

__all__ = ["check_kafka_credentials", "client_options", "faust_credentials", "ssl_context"]

_SOURCE = "kafka"


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """A verifying TLS context (CA file or system CAs, optional client cert), or None."""
    if not security.uses_tls:
        return None
    try:
        context = ssl.create_default_context(cafile=security.ssl_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise _tls_file_error("KAFKA_SSL_CAFILE", "a PEM CA certificate", exc) from None
    if security.ssl_certfile:
        try:
            context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise _tls_file_error(
                "KAFKA_SSL_CERTFILE", "a PEM certificate matching its key", exc
            ) from None
    return context


def client_options(security: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for kafka-python and aiokafka clients."""
    options: dict[str, Any] = {"security_protocol": security.protocol}
    context = ssl_context(security)
    if context is not None:
        options["ssl_context"] = context
    if security.uses_sasl and security.sasl_password is not None:
        options.update(
            sasl_mechanism=security.sasl_mechanism,
            sasl_plain_username=security.sasl_username,
            sasl_plain_password=security.sasl_password.reveal(),
        )
    return options


def faust_credentials(security: KafkaSecurity) -> Any:
    """Faust ``broker_credentials`` for these settings (None for PLAINTEXT)."""
    from faust.auth import SASLCredentials, SSLCredentials  # noqa: PLC0415 (heavy import)

    context = ssl_context(security)
    if security.uses_sasl and security.sasl_password is not None:
        return SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password.reveal(),
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    return SSLCredentials(context) if context is not None else None


def check_kafka_credentials(bootstrap: str, security: KafkaSecurity, timeout_s: float = 15) -> None:
    """Log in to the first bootstrap server once; a TLS or login refusal is a ConfigError.

    An unreachable broker is not an error here: the clients retry it themselves.
    """
    if security.protocol == "PLAINTEXT":
        return
    host, _, port = bootstrap.split(",", maxsplit=1)[0].strip().rpartition(":")
    asyncio.run(_probe(host or "localhost", int(port or 9092), security, timeout_s))


async def _probe(host: str, port: int, security: KafkaSecurity, timeout_s: float) -> None:
    from aiokafka.errors import KafkaError  # noqa: PLC0415

    from stream.upstream.aiokafka import connect_once  # noqa: PLC0415

    where = f"{host}:{port}"
    try:
        conn = await asyncio.wait_for(
            connect_once(host, port, timeout_s, **client_options(security)), timeout_s
        )
    except ssl.SSLCertVerificationError as exc:
        raise ConfigError(
            _SOURCE,
            f"{ENV_PREFIX}KAFKA_SSL_CAFILE",
            f"TLS handshake with {where} failed: {exc.verify_message}",
        ) from None
    except ssl.SSLError as exc:
        raise ConfigError(
            _SOURCE,
            f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL",
            f"TLS handshake with {where} failed: {exc.reason}",
        ) from None
    except KafkaError as exc:
        if getattr(exc, "errno", None) not in (33, 34, 58):  # SASL mechanism, state, login
            return
        raise ConfigError(
            _SOURCE,
            f"{ENV_PREFIX}KAFKA_SASL_PASSWORD",
            f"{where} refused {security.sasl_mechanism} login as {security.sasl_username!r}: {exc}",
        ) from None
    except (OSError, TimeoutError):
        return
    conn.close()


def _tls_file_error(name: str, expected: str, exc: Exception) -> ConfigError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ConfigError(_SOURCE, f"{ENV_PREFIX}{name}", f"cannot load {expected}: {reason}")
