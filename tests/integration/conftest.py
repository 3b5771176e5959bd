"""Fixtures for integration tests: the real local Kafka and Redis, and worker processes."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from redis.cluster import RedisCluster

from devtools.localstack import LocalStack
from devtools.localstack.certs import make_certificates
from devtools.localstack.secure import StackSecurity
from devtools.localstack.stack import free_port
from devtools.localstack.worker import WorkerProcess
from stream.adapters.kafka_admin import ensure_topics
from stream.adapters.kafka_security import client_options
from stream.adapters.redis_client import async_redis, sync_redis
from stream.adapters.redis_keys import customer_key
from stream.adapters.redis_store import RedisScoreStore
from stream.config.security import RedisConnection
from stream.config.settings import Settings
from tests.integration.workload import committed_offsets

pytestmark = pytest.mark.integration
_counter = itertools.count()


def wait_until(check: Callable[[], Any], timeout_s: float = 60.0, every_s: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last: {result!r})")
        time.sleep(every_s)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One Kafka broker and one Redis server for the whole test session."""
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def cluster_stack(
    stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    """A Redis Cluster of three masters on loopback, with the session's Kafka broker.

    Started only by the tests that ask for it (the ``*_on`` fixtures' cluster variant).
    """
    cluster = LocalStack(
        tmp_path_factory.mktemp("cluster"), kafka_port=stack.kafka_port, redis_cluster=3
    )
    try:
        cluster.start_redis()
        yield cluster
    finally:
        cluster.stop_redis()


@pytest.fixture(scope="session")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A second stack with Kafka SASL_SSL + mutual-TLS listeners and Redis on TLS only.

    Its passwords are distinctive, so a test can search logs and responses for them.
    """
    folder = tmp_path_factory.mktemp("secure-stack")
    security = StackSecurity(
        certs=make_certificates(folder / "certs"),
        kafka_users={"scorer": f"KafkaPw{secrets.token_hex(8)}"},
        redis_password=f"RedisPw{secrets.token_hex(8)}",
        redis_users={"scorer": f"RedisAclPw{secrets.token_hex(8)}"},
    )
    with LocalStack(folder, security=security) as running:
        yield running


@dataclass
class Deployment:
    """An isolated set of topics, Redis prefix and consumer group, plus its workers."""

    stack: LocalStack
    workdir: Path
    env: dict[str, str]
    settings: Settings
    workers: list[WorkerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.redis = sync_redis(self.settings.redis)
        self.producer = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, acks="all",
                                      **client_options(self.settings.kafka_security))  # fmt: skip

    def start_worker(self, wait_ready: bool = True, **overrides: str) -> WorkerProcess:
        """Start a worker with this deployment's environment, plus ``overrides``; each is a
        static group member of its own (``ENGAGEMENT_INSTANCE_ID`` worker-N) unless told.
        Unless ``wait_ready``, return at once (a worker planned to crash may never serve)."""
        worker = self.new_worker(f"worker-{len(self.workers)}", **overrides)
        if wait_ready:
            worker.start()
        else:
            worker.spawn()
        return worker

    def new_worker(self, member: str, **overrides: str) -> WorkerProcess:
        """A worker process, not started yet, that joins as static member ``member`` (a
        restarted worker reuses its predecessor's)."""
        port = free_port()
        env = {**self.env, "ENGAGEMENT_INSTANCE_ID": member, **overrides,
               "ENGAGEMENT_WEB_PORT": str(port)}  # fmt: skip
        worker = WorkerProcess(env, self.workdir / f"worker-{len(self.workers)}.log", port)
        self.workers.append(worker)
        return worker

    def send(self, role: str, key: str | bytes | None, value: bytes | dict[str, Any]) -> None:
        topic = {r: name for name, r in self.settings.topics.inputs.items()}[role]
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        encoded = key.encode() if isinstance(key, str) else key
        self.producer.send(topic, key=encoded, value=raw)

    def flush(self) -> None:
        self.producer.flush()

    def end_offsets(self) -> dict[tuple[str, int], int]:
        """The input topics' end offsets now, per (topic, partition)."""
        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                                 **client_options(self.settings.kafka_security))  # fmt: skip
        try:
            partitions = [TopicPartition(topic, p) for topic in self.settings.topics.inputs
                          for p in consumer.partitions_for_topic(topic) or []]  # fmt: skip
            return {(tp.topic, tp.partition): end
                    for tp, end in consumer.end_offsets(partitions).items()}  # fmt: skip
        finally:
            consumer.close()

    def drained(self, ends: dict[tuple[str, int], int]) -> bool:
        """Whether the worker group has committed every input partition up to ``ends`` (so
        the store holds every event sent before ``ends`` was read)."""
        committed = committed_offsets(self.settings.kafka_bootstrap, self.settings.app_id)
        return all(committed.get(tp, -1) >= end for tp, end in ends.items() if end > 0)

    def keys(self, pattern: str) -> list[bytes]:
        """KEYS on the server, or on every master of a cluster."""
        if isinstance(self.redis, RedisCluster):
            found: list[bytes] = self.redis.keys(pattern, target_nodes=RedisCluster.PRIMARIES)
            return found
        return list(self.redis.keys(pattern))

    def customer(self, customer_id: str) -> dict[str, str]:
        raw = self.redis.hgetall(customer_key(self.settings.redis_prefix, customer_id))
        return {k.decode(): v.decode(errors="replace") for k, v in raw.items()}

    def read(
        self, topic: str, until: Callable[[list[Any]], bool], timeout_s: float = 60
    ) -> list[Any]:
        """Read a topic from the beginning until ``until(records)`` holds."""
        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
                                 enable_auto_commit=False,
                                 **client_options(self.settings.kafka_security))  # fmt: skip
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        records: list[Any] = []
        try:

            def poll() -> bool:
                for batch in consumer.poll(timeout_ms=200).values():
                    records.extend(batch)
                return until(records)

            wait_until(poll, timeout_s, every_s=0)
        finally:
            consumer.close()
        return records

    def alerts(
        self, until: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 60
    ) -> list[dict[str, Any]]:
        topic = self.settings.topics.alerts
        records = self.read(topic, lambda rs: until([orjson.loads(r.value) for r in rs]), timeout_s)
        return [orjson.loads(r.value) for r in records]

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.producer.close()
        self.redis.close()


def short_model(tmp: Path, window: str = "20s", bucket: str = "1s") -> Path:
    """A copy of the default model with a short window, for time-driven tests."""
    source = Path(__file__).parents[2] / "stream/config/models/default.yaml"
    doc = yaml.safe_load(source.read_text())
    doc.update(version=f"test-{window}", window=window, bucket=bucket)
    doc["returning_visit"]["away"] = bucket
    doc["alerts"]["cooldown"] = "1s"
    path = tmp / "model.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


StoreScenario = Callable[[RedisScoreStore], Awaitable[None]]


@pytest.fixture
def on_store(stack: LocalStack, request: pytest.FixtureRequest) -> Callable[[StoreScenario], None]:
    """Run a scenario against a store on the shared Redis, under an empty prefix of its own
    (the test module's and the test's names)."""

    def run(scenario: StoreScenario) -> None:
        async def main() -> None:
            client = async_redis(RedisConnection(stack.redis_url))
            try:
                module = request.module.__name__.rsplit(".", 1)[-1]
                store = RedisScoreStore(client, f"{module}-{request.node.name}")
                await store.clear()
                await scenario(store)
            finally:
                await client.aclose()

        asyncio.run(main())

    return run


@pytest.fixture
def deploy(stack: LocalStack, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """Factory for isolated deployments on the shared stack."""
    yield from _deployments(stack, tmp_path)


@pytest.fixture
def cluster_deploy(
    cluster_stack: LocalStack, tmp_path: Path
) -> Iterator[Callable[..., Deployment]]:
    """Factory for isolated deployments on the Redis Cluster (and the shared Kafka)."""
    yield from _deployments(cluster_stack, tmp_path)


@pytest.fixture(params=["redis", "redis-cluster"])
def deploy_on(request: pytest.FixtureRequest) -> Callable[..., Deployment]:
    """``deploy`` on one Redis server, then on the three-master Redis Cluster."""
    name = "cluster_deploy" if request.param == "redis-cluster" else "deploy"
    factory: Callable[..., Deployment] = request.getfixturevalue(name)
    return factory


@pytest.fixture
def secure_deploy(secure_stack: LocalStack, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """Factory for isolated deployments on the secure stack (SASL_SSL, Redis TLS)."""
    yield from _deployments(secure_stack, tmp_path)


def _deployments(stack: LocalStack, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    made: list[Deployment] = []

    def make(model: str = "default", on: LocalStack | None = None, **extra: str) -> Deployment:
        target = on or stack
        tag = f"t{next(_counter)}-{uuid.uuid4().hex[:6]}"
        env = {
            **target.env(), "ENGAGEMENT_MODEL": model, "ENGAGEMENT_APP_ID": f"app-{tag}",
            "ENGAGEMENT_REDIS_PREFIX": f"es-{tag}", "ENGAGEMENT_PARTITIONS": "4",
            "ENGAGEMENT_DATA_DIR": str(tmp_path / f"data-{tag}"),
            "ENGAGEMENT_LOG_LEVEL": "warning", **extra,
        }  # fmt: skip
        for topic in ("CLICKSTREAM", "APP_INSTALLS", "SESSIONS", "ALERTS", "DLQ"):
            env[f"ENGAGEMENT_TOPIC_{topic}"] = f"{topic.lower().replace('_', '-')}-{tag}"
        settings = Settings.from_env(env)
        ensure_topics(settings)
        deployment = Deployment(target, tmp_path, env, settings)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()
