"""Security settings: Kafka TLS and SASL, Redis credentials and TLS, and the API token.

Every combination that cannot work (SASL without a username, TLS files without TLS, a
password given twice) is refused at start-up with the offending key; no message ever
contains a secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from stream.config.secret import Secret
from stream.config.sources import ENV_PREFIX, SettingsReader

__all__ = [
    "KAFKA_PROTOCOLS",
    "SASL_MECHANISMS",
    "KafkaSecurity",
    "RedisConnection",
    "RedisSecurity",
    "read_api_token",
    "read_kafka_security",
    "read_redis_security",
]

KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_TOKEN_PATTERN = re.compile(r"[!-~]{16,}")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How every Kafka client connects: protocol, SASL credentials, TLS files (PEM)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True, slots=True)
class RedisSecurity:
    """Redis credentials kept out of the URL, and TLS files for ``rediss://`` (PEM)."""

    username: str | None = None
    password: Secret | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


@dataclass(frozen=True, slots=True)
class RedisConnection:
    """What the Redis clients need to connect (``stream.adapters.redis_client``): the URL,
    whether it names a cluster's seed node, and the credentials and TLS files. Built from
    the settings at the edge (``Settings.redis``); the adapters never see the settings."""

    url: str = "redis://127.0.0.1:6379/0"
    cluster: bool = False
    security: RedisSecurity = RedisSecurity()


def read_kafka_security(reader: SettingsReader) -> KafkaSecurity:
    """Kafka security settings, checked for consistency."""
    protocol_key = f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL"
    protocol = reader.choice(
        "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", set(KAFKA_PROTOCOLS), upper=True
    )
    security = KafkaSecurity(
        protocol=protocol,
        sasl_mechanism=reader.choice("KAFKA_SASL_MECHANISM", "", set(SASL_MECHANISMS), upper=True)
        or None,
        sasl_username=reader.optional("KAFKA_SASL_USERNAME"),
        sasl_password=reader.secret("KAFKA_SASL_PASSWORD"),
        ssl_cafile=reader.path("KAFKA_SSL_CAFILE"),
        ssl_certfile=reader.path("KAFKA_SSL_CERTFILE"),
        ssl_keyfile=reader.path("KAFKA_SSL_KEYFILE"),
    )
    sasl = {
        "KAFKA_SASL_MECHANISM": security.sasl_mechanism,
        "KAFKA_SASL_USERNAME": security.sasl_username,
        "KAFKA_SASL_PASSWORD": security.sasl_password,
    }
    for name, value in sasl.items():
        if security.uses_sasl and value is None:
            raise reader.error(name, f"is required when {protocol_key} is {protocol}")
        if not security.uses_sasl and value is not None:
            raise reader.error(
                name,
                f"is set but {protocol_key} is {protocol}; SASL needs SASL_SSL or SASL_PLAINTEXT",
            )
    tls = {
        "KAFKA_SSL_CAFILE": security.ssl_cafile,
        "KAFKA_SSL_CERTFILE": security.ssl_certfile,
        "KAFKA_SSL_KEYFILE": security.ssl_keyfile,
    }
    for name, value in tls.items():
        if not security.uses_tls and value is not None:
            raise reader.error(
                name, f"is set but {protocol_key} is {protocol}; TLS needs SSL or SASL_SSL"
            )
    _check_pair(reader, "KAFKA_SSL", security.ssl_certfile, security.ssl_keyfile)
    return security


def read_redis_security(reader: SettingsReader, redis_url: str) -> RedisSecurity:
    """Redis credentials and TLS files, checked against the URL."""
    url_key = f"{ENV_PREFIX}REDIS_URL"
    try:
        parts = urlsplit(redis_url)
        url_username = parts.username or parse_qs(parts.query).get("username", [None])[0]
        url_password = parts.password or parse_qs(parts.query).get("password", [None])[0]
    except ValueError:
        raise reader.error("REDIS_URL", "is not a valid URL") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise reader.error("REDIS_URL", "must start with redis://, rediss:// or unix://")
    security = RedisSecurity(
        username=reader.optional("REDIS_USERNAME"),
        password=reader.secret("REDIS_PASSWORD"),
        ssl_cafile=reader.path("REDIS_SSL_CAFILE"),
        ssl_certfile=reader.path("REDIS_SSL_CERTFILE"),
        ssl_keyfile=reader.path("REDIS_SSL_KEYFILE"),
    )
    if security.password is not None and url_password is not None:
        raise reader.error("REDIS_PASSWORD", f"is set and {url_key} holds a password too")
    if security.username is not None and url_username is not None:
        raise reader.error("REDIS_USERNAME", f"is set and {url_key} holds a user name too")
    if security.username is not None and security.password is None and url_password is None:
        raise reader.error("REDIS_USERNAME", f"needs a password ({ENV_PREFIX}REDIS_PASSWORD)")
    tls = {
        "REDIS_SSL_CAFILE": security.ssl_cafile,
        "REDIS_SSL_CERTFILE": security.ssl_certfile,
        "REDIS_SSL_KEYFILE": security.ssl_keyfile,
    }
    for name, value in tls.items():
        if parts.scheme != "rediss" and value is not None:
            raise reader.error(name, f"is set but {url_key} does not start with rediss://")
    _check_pair(reader, "REDIS_SSL", security.ssl_certfile, security.ssl_keyfile)
    return security


def read_api_token(reader: SettingsReader) -> Secret | None:
    """The optional bearer token of the query endpoints."""
    token = reader.secret("API_TOKEN")
    if token is not None and not _TOKEN_PATTERN.fullmatch(token.reveal()):
        raise reader.error("API_TOKEN", "must be at least 16 printable ASCII characters, no spaces")
    return token


def _check_pair(
    reader: SettingsReader, prefix: str, certfile: str | None, keyfile: str | None
) -> None:
    if certfile is not None and keyfile is None:
        raise reader.error(
            f"{prefix}_KEYFILE", f"is required with {ENV_PREFIX}{prefix}_CERTFILE (client key)"
        )
    if keyfile is not None and certfile is None:
        raise reader.error(
            f"{prefix}_CERTFILE", f"is required with {ENV_PREFIX}{prefix}_KEYFILE (client cert)"
        )
