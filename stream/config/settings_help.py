"""What each setting means: the source of the settings reference (docs/reference/settings.md,
written by ``python -m devtools.docs``).

Keys are the variable names without ``ENGAGEMENT_``. Each entry names the attribute of
:class:`~stream.config.settings.Settings` that holds the setting, so the page shows the
default the code has. A setting that :meth:`Settings.from_env` reads without an entry here
(or an entry for a setting it no longer reads) fails the generator, and with it the unit test
that keeps the committed page current.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["HELP", "SettingHelp"]

Section = Literal["general", "security"]


@dataclass(frozen=True, slots=True)
class SettingHelp:
    """One setting: where its value lives and what it means."""

    attribute: str
    """Dotted attribute path on ``Settings`` (``kafka_security.protocol``)."""
    meaning: str
    section: Section = "general"
    shown: str | None = None
    """The default as the page shows it, when the attribute's value does not say it."""


_SECURITY: Section = "security"

HELP: dict[str, SettingHelp] = {
    "KAFKA_BOOTSTRAP": SettingHelp("kafka_bootstrap", "Kafka bootstrap servers"),
    "REDIS_URL": SettingHelp("redis_url", "Redis URL (credentials in it are redacted in logs)"),
    "REDIS_PREFIX": SettingHelp("redis_prefix", "key prefix of every Redis key (no braces)"),
    "REDIS_CLUSTER": SettingHelp(
        "redis_cluster",
        "`true`: `ENGAGEMENT_REDIS_URL` names a seed node of a Redis Cluster "
        "(see [Scaling out and Redis Cluster](../guides/scaling.md#redis-cluster))",
    ),
    "MODEL": SettingHelp(
        "model",
        "a model file path, or a shipped model: `default`, `demo` "
        "(see [the model file](model-file.md))",
    ),
    "APP_ID": SettingHelp("app_id", "Faust app id = Kafka consumer group"),
    "TOPIC_CLICKSTREAM": SettingHelp("topics.clickstream", "input topic"),
    "TOPIC_APP_INSTALLS": SettingHelp("topics.app_installs", "input topic"),
    "TOPIC_SESSIONS": SettingHelp("topics.sessions", "input topic"),
    "TOPIC_ALERTS": SettingHelp("topics.alerts", "alert output topic"),
    "TOPIC_DLQ": SettingHelp("topics.dlq", "dead-letter topic"),
    "PARTITIONS": SettingHelp("partitions", "partitions of the topics the worker creates"),
    "WEB_HOST": SettingHelp("web_host", "listen address of the worker's web endpoints"),
    "WEB_PORT": SettingHelp("web_port", "listen port of the worker's web endpoints"),
    "BATCH_MAX": SettingHelp(
        "batch_max", "messages per batch at most (also the most one fetch returns)"
    ),
    "BATCH_WITHIN": SettingHelp(
        "batch_within_ms",
        "longest a batch waits, from its first message, to catch up with the broker; it is "
        "processed sooner once every partition has had a fetch reply since it began, or it "
        "holds `BATCH_MAX` "
        "(see [adaptive batching](../concepts/worker.md#how-the-worker-consumes))",
    ),
    "SWEEP_INTERVAL": SettingHelp("sweep_interval_ms", "period of the window sweeper"),
    "ALERT_BOUND": SettingHelp(
        "alert_bound_ms",
        "promised bound from a window-driven crossing to its alert; must exceed `SWEEP_INTERVAL`",
    ),
    "MAX_MESSAGE_BYTES": SettingHelp(
        "max_message_bytes", "larger messages are dead-lettered (`too_large`)"
    ),
    "INSTANCE_ID": SettingHelp(
        "instance_id",
        "the worker's static member id in its consumer group (Kafka group.instance.id): the "
        "same across restarts of one worker, different for every worker of a group; 'none' "
        "for a dynamic member",
        shown="the host name (on Kubernetes, the pod name)",
    ),
    "SESSION_TIMEOUT": SettingHelp(
        "session_timeout_ms", "consumer session timeout (how fast a dead worker's partitions move)"
    ),
    "SHUTDOWN_GRACE": SettingHelp(
        "shutdown_grace_ms",
        "on SIGTERM, time to finish the in-flight batch; past it the worker exits without "
        "committing it. Also the longest a revoke waits for the in-flight batch; past it the "
        "batch is abandoned uncommitted (the new owner replays it)",
    ),
    "DATA_DIR": SettingHelp("data_dir", "Faust's local data folder"),
    "LOG_LEVEL": SettingHelp("log_level", "`debug`, `info` or `warning`"),
    "KAFKA_SECURITY_PROTOCOL": SettingHelp(
        "kafka_security.protocol",
        "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`",
        _SECURITY,
    ),
    "KAFKA_SASL_MECHANISM": SettingHelp(
        "kafka_security.sasl_mechanism",
        "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (required with `SASL_*`)",
        _SECURITY,
    ),
    "KAFKA_SASL_USERNAME": SettingHelp(
        "kafka_security.sasl_username", "SASL user (required with `SASL_*`)", _SECURITY
    ),
    "KAFKA_SASL_PASSWORD": SettingHelp(
        "kafka_security.sasl_password", "SASL password (required with `SASL_*`)", _SECURITY
    ),
    "KAFKA_SSL_CAFILE": SettingHelp(
        "kafka_security.ssl_cafile",
        "PEM CA bundle that signed the brokers' certificates",
        _SECURITY,
        shown="system CAs",
    ),
    "KAFKA_SSL_CERTFILE": SettingHelp(
        "kafka_security.ssl_certfile",
        "PEM client certificate (mutual TLS); with `KAFKA_SSL_KEYFILE`, both or neither",
        _SECURITY,
    ),
    "KAFKA_SSL_KEYFILE": SettingHelp(
        "kafka_security.ssl_keyfile", "PEM unencrypted client key (mutual TLS)", _SECURITY
    ),
    "REDIS_USERNAME": SettingHelp(
        "redis_security.username",
        "Redis ACL user, if not in the URL (needs a password)",
        _SECURITY,
    ),
    "REDIS_PASSWORD": SettingHelp(
        "redis_security.password", "Redis password, if not in the URL (not both)", _SECURITY
    ),
    "REDIS_SSL_CAFILE": SettingHelp(
        "redis_security.ssl_cafile", "PEM CA for `rediss://`", _SECURITY, shown="system CAs"
    ),
    "REDIS_SSL_CERTFILE": SettingHelp(
        "redis_security.ssl_certfile", "PEM client certificate for `rediss://`", _SECURITY
    ),
    "REDIS_SSL_KEYFILE": SettingHelp(
        "redis_security.ssl_keyfile", "PEM client key for `rediss://`", _SECURITY
    ),
    "API_TOKEN": SettingHelp(
        "api_token",
        "bearer token required by `GET /customers/{id}` and `engagement web` "
        "(at least 16 printable ASCII characters)",
        _SECURITY,
    ),
    "MAX_ID_LENGTH": SettingHelp(
        "max_id_length",
        "longest customer / account / event id in characters (1-512); longer is "
        "dead-lettered (customer and account ids are also bounded to 4 x this in UTF-8 bytes)",
    ),
    "MAX_JSON_DEPTH": SettingHelp(
        "max_json_depth", "deepest JSON nesting (2-1000); deeper is dead-lettered `too_deep`"
    ),
    "GC_FREEZE": SettingHelp(
        "gc_freeze",
        "`on`: freeze the heap after each batch so the garbage collector skips the state "
        "cache (see [How the worker consumes](../concepts/worker.md#how-the-worker-consumes)); "
        "`off`: Python's defaults",
        shown="on",
    ),
    "KERNEL": SettingHelp(
        "kernel",
        "which per-event kernel runs: `auto` takes the compiled one (`kernel/`, built by "
        "`make install`) when it is built and the pure-Python core otherwise, `rust` requires "
        "the compiled one (start-up fails when it is not built), `python` never loads it "
        "(see [The compiled kernel](../concepts/kernel.md))",
    ),
    "DEDUP_HORIZON": SettingHelp(
        "dedup_horizon_ms",
        "how long the worker keeps an applied event's fingerprint to recognise a producer "
        "re-send of it (see [Exactly-once accounting](../concepts/exactly-once.md)); Kafka "
        "redeliveries are recognised by offset whatever this is. Longer costs 12 bytes per "
        "event kept; the window length (`30d`) keeps every fingerprint as long as its event "
        "counts",
    ),
}
