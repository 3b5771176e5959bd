"""Create the project's topics and check that the input topics are co-partitioned.

Input topics are created with a ``retention.ms`` that keeps every event as long as it can
count in the model's window, so scores can be rebuilt from them (``engagement rescore``).
"""

from __future__ import annotations

import contextlib

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from stream.adapters.kafka_security import check_kafka_credentials, client_options
from stream.config.errors import ConfigError
from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.core.model import ScoringModel

__all__ = ["ensure_topics", "input_retention_ms", "required_retention_ms"]


def required_retention_ms(model: ScoringModel) -> int:
    """How long input messages must be kept so that every event still counting is there.

    An event counts until its bucket's start plus the window, and its time may be up to
    ``max_future_skew`` after the message's own timestamp, from which retention counts.
    """
    return model.window_ms + model.max_future_skew_ms


def ensure_topics(
    settings: Settings, model: ScoringModel | None = None, timeout_s: float = 30.0
) -> dict[str, int]:
    """Create missing topics; return partition counts. Inputs must share one count.

    Input topics are created with ``retention.ms`` of at least the window of ``model``
    (default: the configured one); existing topics are left as they are.
    """
    retention = str(required_retention_ms(model or load_model(settings.model)))
    input_names = set(settings.topics.inputs)
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
        missing = [
            NewTopic(n, settings.partitions, 1,
                     topic_configs={"retention.ms": retention} if n in input_names else {})
            for n in names
            if n not in existing
        ]  # fmt: skip
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


def input_retention_ms(settings: Settings) -> dict[str, int | None]:
    """Each input topic's ``retention.ms`` (None: kept forever)."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.app_id}-admin",
        **client_options(settings.kafka_security),
    )
    try:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": None})
            for topic in settings.topics.inputs
        ]
        described = admin.describe_configs(resources, config_filter="all")["topic"]
    finally:
        admin.close()
    found: dict[str, int | None] = {}
    for topic in settings.topics.inputs:
        value = int(described[topic]["retention.ms"]["value"])
        found[topic] = None if value < 0 else value
    return found
