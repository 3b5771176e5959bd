"""Typed worker settings, parsed once at start-up from ``ENGAGEMENT_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from stream.config.durations import parse_duration_ms
from stream.config.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "TopicNames"]

ENV_PREFIX = "ENGAGEMENT_"
_T = TypeVar("_T")


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


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the worker and the CLI need to connect and behave."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "es"
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
    shutdown_grace_ms: int = 30_000
    data_dir: str = ".engagement-data"
    log_level: str = "info"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings; every problem names the variable and what is wrong with it."""
        env = os.environ if environ is None else environ
        reader = _EnvReader(env)
        default_topics = TopicNames()
        topics = TopicNames(
            **{
                f.name: reader.text(f"TOPIC_{f.name.upper()}", getattr(default_topics, f.name))
                for f in fields(TopicNames)
            }
        )
        defaults = cls()
        settings = cls(
            kafka_bootstrap=reader.text("KAFKA_BOOTSTRAP", defaults.kafka_bootstrap),
            redis_url=reader.text("REDIS_URL", defaults.redis_url),
            redis_prefix=reader.text("REDIS_PREFIX", defaults.redis_prefix),
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
            shutdown_grace_ms=reader.duration("SHUTDOWN_GRACE", defaults.shutdown_grace_ms),
            data_dir=reader.text("DATA_DIR", defaults.data_dir),
            log_level=reader.choice("LOG_LEVEL", defaults.log_level, {"debug", "info", "warning"}),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check relations between settings."""
        if self.sweep_interval_ms >= self.alert_bound_ms:
            raise ConfigError(
                "environment",
                f"{ENV_PREFIX}SWEEP_INTERVAL",
                f"must be shorter than {ENV_PREFIX}ALERT_BOUND ({self.alert_bound_ms} ms) "
                "so window-driven alerts arrive within the bound",
            )
        if len(set(self.topics.inputs)) != 3:
            raise ConfigError("environment", f"{ENV_PREFIX}TOPIC_*", "input topics must differ")
        if "{" in self.redis_prefix or "}" in self.redis_prefix:
            raise ConfigError("environment", f"{ENV_PREFIX}REDIS_PREFIX", "must not contain braces")

    def redacted(self) -> dict[str, Any]:
        """Settings for logs, with credentials in URLs hidden."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["redis_url"] = _redact_url(self.redis_url)
        return shown


def _redact_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"


class _EnvReader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _get(self, name: str, default: _T, parse: Callable[[str], _T]) -> _T:
        key = ENV_PREFIX + name
        raw = self.env.get(key)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError("environment", key, str(exc)) from None

    def text(self, name: str, default: str) -> str:
        return self._get(name, default, str)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        def parse(raw: str) -> int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{raw!r} is not a whole number") from None
            if not low <= value <= high:
                raise ValueError(f"{value} is outside {low}..{high}")
            return value

        return self._get(name, default, parse)

    def duration(self, name: str, default: int) -> int:
        return self._get(name, default, parse_duration_ms)

    def choice(self, name: str, default: str, allowed: set[str]) -> str:
        def parse(raw: str) -> str:
            if raw.lower() not in allowed:
                raise ValueError(f"{raw!r} is not one of {sorted(allowed)}")
            return raw.lower()

        return self._get(name, default, parse)
