"""Typed worker settings, parsed once at start-up from ``ENGAGEMENT_*`` environment variables
(or a YAML settings file, see :mod:`stream.config.sources`)."""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from stream.config.errors import ConfigError
from stream.config.secret import MASK, Secret
from stream.config.security import (
    KafkaSecurity,
    RedisConnection,
    RedisSecurity,
    read_api_token,
    read_kafka_security,
    read_redis_security,
)
from stream.config.sources import ENV_PREFIX, SettingsReader
from stream.core.decode import DecodeLimits
from stream.core.kernel import KERNEL_CHOICES

__all__ = [
    "ENV_PREFIX",
    "NO_INSTANCE_ID",
    "KafkaSecurity",
    "RedisSecurity",
    "Settings",
    "TopicNames",
]

_log = logging.getLogger("stream.config")
_TRUE = ("true", "yes", "1")
_BOOLEAN = (*_TRUE, "false", "no", "0")
#: what Kafka accepts as a ``group.instance.id`` (the legal characters of a topic name)
_INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]{1,249}")
#: ``ENGAGEMENT_INSTANCE_ID`` value that turns static group membership off
NO_INSTANCE_ID = "none"


def _host_instance_id() -> str:
    """The host name, with characters Kafka refuses in an instance id replaced."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:249] or NO_INSTANCE_ID


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Kafka topic names: three inputs, the alert output and the dead-letter queue."""

    clickstream: str = "clickstream"
    app_installs: str = "app-installs"
    sessions: str = "sessions"
    alerts: str = "engagement-alerts"
    dlq: str = "engagement-dlq"

    @property
    def inputs(self) -> dict[str, str]:
        """Input topic name -> its role (the key used in the model's ``topics`` section)."""
        return {
            self.clickstream: "clickstream",
            self.app_installs: "app_installs",
            self.sessions: "sessions",
        }


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """Everything the worker and the CLI need to connect and behave."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "es"
    redis_cluster: bool = False
    model: str = "default"
    app_id: str = "engagement-stream"
    topics: TopicNames = TopicNames()
    partitions: int = 8
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    batch_max: int = 2000
    batch_within_ms: int = 50
    sweep_interval_ms: int = 1000
    alert_bound_ms: int = 5000
    max_message_bytes: int = 65_536
    session_timeout_ms: int = 10_000
    #: the worker's static consumer-group member id (``group.instance.id``); None: dynamic
    instance_id: str | None = field(default_factory=_host_instance_id)
    shutdown_grace_ms: int = 30_000
    data_dir: str = ".engagement-data"
    log_level: str = "info"
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    redis_security: RedisSecurity = field(default_factory=RedisSecurity)
    api_token: Secret | None = None
    max_id_length: int = 128
    max_json_depth: int = 32
    gc_freeze: bool = True
    dedup_horizon_ms: int = 86_400_000
    #: which per-event kernel runs: auto, rust or python (``stream.core.kernel``)
    kernel: str = "auto"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings; every problem names the variable and what is wrong with it."""
        env = os.environ if environ is None else environ
        reader = SettingsReader(env)
        default_topics = TopicNames()
        topics = TopicNames(
            **{
                f.name: reader.text(f"TOPIC_{f.name.upper()}", getattr(default_topics, f.name))
                for f in fields(TopicNames)
            }
        )
        defaults = cls()
        redis_url = reader.text("REDIS_URL", defaults.redis_url)
        settings = cls(
            kafka_bootstrap=reader.text("KAFKA_BOOTSTRAP", defaults.kafka_bootstrap),
            redis_url=redis_url,
            redis_prefix=reader.text("REDIS_PREFIX", defaults.redis_prefix),
            redis_cluster=reader.choice("REDIS_CLUSTER", "false", set(_BOOLEAN)) in _TRUE,
            model=reader.text("MODEL", defaults.model),
            app_id=reader.text("APP_ID", defaults.app_id),
            topics=topics,
            partitions=reader.integer("PARTITIONS", defaults.partitions, 1, 10_000),
            web_host=reader.text("WEB_HOST", defaults.web_host),
            web_port=reader.integer("WEB_PORT", defaults.web_port, 1, 65_535),
            batch_max=reader.integer("BATCH_MAX", defaults.batch_max, 1, 1_000_000),
            batch_within_ms=reader.duration("BATCH_WITHIN", defaults.batch_within_ms),
            sweep_interval_ms=reader.duration("SWEEP_INTERVAL", defaults.sweep_interval_ms),
            alert_bound_ms=reader.duration("ALERT_BOUND", defaults.alert_bound_ms),
            max_message_bytes=reader.integer(
                "MAX_MESSAGE_BYTES", defaults.max_message_bytes, 64, 16_777_216
            ),
            session_timeout_ms=reader.duration("SESSION_TIMEOUT", defaults.session_timeout_ms),
            instance_id=_read_instance_id(reader),
            shutdown_grace_ms=reader.duration("SHUTDOWN_GRACE", defaults.shutdown_grace_ms),
            data_dir=reader.text("DATA_DIR", defaults.data_dir),
            log_level=reader.choice("LOG_LEVEL", defaults.log_level, {"debug", "info", "warning"}),
            kafka_security=read_kafka_security(reader),
            redis_security=read_redis_security(reader, redis_url),
            api_token=read_api_token(reader),
            max_id_length=reader.integer("MAX_ID_LENGTH", defaults.max_id_length, 1, 512),
            max_json_depth=reader.integer("MAX_JSON_DEPTH", defaults.max_json_depth, 2, 1000),
            gc_freeze=reader.choice("GC_FREEZE", "on", {"on", "off"}) == "on",
            dedup_horizon_ms=reader.duration("DEDUP_HORIZON", defaults.dedup_horizon_ms),
            kernel=reader.choice("KERNEL", defaults.kernel, set(KERNEL_CHOICES)),
        )
        reader.check_file_keys()
        settings.validate(reader)
        for note in reader.unknown_variables():
            _log.warning("%s", note)
        return settings

    def validate(self, reader: SettingsReader | None = None) -> None:
        """Check relations between settings; errors name where the setting was given."""
        where = reader or SettingsReader({})
        if self.sweep_interval_ms >= self.alert_bound_ms:
            name = "SWEEP_INTERVAL" if where.find("SWEEP_INTERVAL") else "ALERT_BOUND"
            raise where.error(
                name,
                f"{ENV_PREFIX}SWEEP_INTERVAL ({self.sweep_interval_ms} ms) must be shorter than "
                f"{ENV_PREFIX}ALERT_BOUND ({self.alert_bound_ms} ms) so window-driven alerts "
                "arrive within the bound",
            )
        if len(set(self.topics.inputs)) != 3:
            raise ConfigError("environment", f"{ENV_PREFIX}TOPIC_*", "input topics must differ")
        if "{" in self.redis_prefix or "}" in self.redis_prefix:
            raise where.error("REDIS_PREFIX", "must not contain braces")
        if self.redis_cluster:
            self._validate_cluster_url(where)

    def _validate_cluster_url(self, where: SettingsReader) -> None:
        """A cluster is reached over TCP and has only database 0."""
        parts = urlsplit(self.redis_url)
        if parts.scheme == "unix":
            raise where.error(
                "REDIS_URL",
                f"must start with redis:// or rediss:// when {ENV_PREFIX}REDIS_CLUSTER is true",
            )
        if parts.path.strip("/") not in ("", "0"):
            raise where.error(
                "REDIS_URL",
                f"must use database 0 when {ENV_PREFIX}REDIS_CLUSTER is true "
                "(a cluster has no others)",
            )

    def decode_limits(self) -> DecodeLimits:
        """The input limits the decoder enforces."""
        return DecodeLimits(
            max_bytes=self.max_message_bytes,
            max_id_length=self.max_id_length,
            max_json_depth=self.max_json_depth,
        )

    @property
    def redis(self) -> RedisConnection:
        """How the Redis clients connect (the options of ``stream.adapters.redis_client``)."""
        return RedisConnection(self.redis_url, self.redis_cluster, self.redis_security)

    def redacted(self) -> dict[str, Any]:
        """Settings for logs: secrets masked, credentials in URLs hidden."""
        shown = {f.name: _shown(getattr(self, f.name)) for f in fields(self)}
        shown["redis_url"] = _redact_url(self.redis_url)
        return shown

    def secret_values(self) -> list[str]:
        """Every secret value in these settings, for masking them in logs."""
        secrets = [self.kafka_security.sasl_password, self.redis_security.password, self.api_token]
        found = [s.reveal() for s in secrets if s is not None]
        parts = urlsplit(self.redis_url)
        url_secrets = [parts.password or "", *parse_qs(parts.query).get("password", [])]
        return found + [v for p in url_secrets if p for v in {p, unquote(p)}]

    def __repr__(self) -> str:
        return f"Settings({self.redacted()!r})"


def _read_instance_id(reader: SettingsReader) -> str | None:
    """The static member id: ``ENGAGEMENT_INSTANCE_ID``, else the host name (a pod's name on
    Kubernetes); ``none`` turns static membership off."""

    def parse(raw: str) -> str:
        if not _INSTANCE_ID.fullmatch(raw):
            raise ValueError(
                f"{raw!r} is not a Kafka group instance id (1 to 249 of A-Z a-z 0-9 . _ -)"
            )
        return raw

    value = reader.parsed("INSTANCE_ID", _host_instance_id(), parse)
    return None if value.lower() == NO_INSTANCE_ID else value


def _shown(value: Any) -> Any:
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, KafkaSecurity | RedisSecurity | TopicNames):
        return {f.name: _shown(getattr(value, f.name)) for f in fields(value)}
    return value


def _redact_url(url: str) -> str:
    """The URL without user info and without a ``password`` query parameter."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = f"{MASK}@{rest.rpartition('@')[2]}"
    path, mark, query = rest.partition("?")
    if mark:
        pairs = [p.partition("=") for p in query.split("&")]
        query = "&".join(
            f"{k}={MASK}" if k.lower() in ("password", "username") else f"{k}{eq}{v}"
            for k, eq, v in pairs
        )
    return f"{scheme}{sep}{path}{mark}{query}"
