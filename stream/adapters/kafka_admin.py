"""Create the project's topics and check that the input topics are co-partitioned."""

from __future__ import annotations

import contextlib

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from stream.adapters.kafka_security import check_kafka_credentials, client_options
from stream.config.errors import ConfigError
from stream.config.settings import Settings

__all__ = ["ensure_topics"]


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, int]:
    """Create missing topics; return partition counts. Inputs must share one count."""
    names = [*settings.topics.inputs, settings.topics.alerts, settings.topics.dlq]
    check_kafka_credentials(settings.kafka_bootstrap, settings.kafka_security)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.app_id}-admin",
        request_timeout_ms=int(timeout_s * 1000),
        **client_options(settings.kafka_security),
    )
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(n, settings.partitions, 1) for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                admin.create_topics(missing, timeout_ms=int(timeout_s * 1000))
        counts = {
            meta.get("name", meta.get("topic")): len(meta["partitions"])
            for meta in admin.describe_topics(names)
        }
    finally:
        admin.close()
    inputs = {name: counts.get(name, 0) for name in settings.topics.inputs}
    if len(set(inputs.values())) != 1:
        raise ConfigError(
            "kafka",
            "input topics",
            f"must have the same number of partitions (co-partitioned), found {inputs}",
        )
    return counts
