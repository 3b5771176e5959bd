"""Start contenders as their own processes and measure them: the peers (progress read
from their ``progress N`` lines) and the project's worker (progress read from the
``engagement_events_total`` counters in /metrics, completion confirmed by the committed
consumer-group offsets reaching the end offsets)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from devtools.bench.contenders.common import ContenderConfig
from devtools.bench.measure import Measurement, measure
from devtools.localstack import LocalStack
from devtools.localstack.stack import free_port
from devtools.localstack.worker import WorkerProcess
from stream.config.settings import TopicNames

__all__ = [
    "PEERS",
    "PeerProcess",
    "group_lag",
    "run_peer",
    "run_workers",
    "stack_pids",
    "start_workers",
    "wait_for_commits",
    "worker_env",
    "worker_progress",
]

# Contender name -> module run as ``python -m``.
PEERS = {
    "raw-aiokafka": "devtools.bench.contenders.raw",
    "quixstreams": "devtools.bench.contenders.quix",
    "faust-naive": "devtools.bench.contenders.faust_naive",
}


class PeerProcess:
    """A peer contender process whose ``progress N`` stdout lines are followed."""

    def __init__(self, module: str, config: ContenderConfig, log_path: Path) -> None:
        self.log_path = log_path
        self.expect = config.expect
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, config.to_json()],
                stdout=subprocess.PIPE, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        self.count = 0
        self._reader = threading.Thread(target=self._follow, daemon=True)
        self._reader.start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(b"progress "):
                self.count = int(line.split()[1])

    def alive(self) -> bool:
        """Running, or exited after reporting everything it was asked to consume."""
        if self.proc.poll() is None:
            return True
        self._reader.join(5)  # the last progress line may still be in the pipe
        return self.count >= self.expect

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)


def stack_pids(stack: LocalStack) -> dict[str, int]:
    """The broker's and Redis's process ids, to account their CPU per contender."""
    return {name: proc.pid for name, proc in stack.processes.items()}


def run_peer(
    name: str,
    config: ContenderConfig,
    log_dir: Path,
    *,
    cap_s: float,
    stack: Mapping[str, int] | None = None,
) -> Measurement:
    """Run one peer contender in its own process until done (or capped) and measure it."""
    peer = PeerProcess(PEERS[name], config, log_dir / f"{name}.log")
    try:
        return measure(
            name, lambda: peer.count, [peer.proc.pid], config.expect,
            cap_s=cap_s, alive=peer.alive, stack_pids=stack,
        )  # fmt: skip
    finally:
        peer.stop()


def worker_env(
    stack: LocalStack, topics: TopicNames, tag: str, workdir: Path, **extra: str
) -> dict[str, str]:
    """Environment for a worker on the benchmark topics with its own group and prefix."""
    return {
        **stack.env(),
        "ENGAGEMENT_MODEL": "default",
        "ENGAGEMENT_APP_ID": f"bench-{tag}",
        "ENGAGEMENT_REDIS_PREFIX": f"bench-{tag}",
        "ENGAGEMENT_TOPIC_CLICKSTREAM": topics.clickstream,
        "ENGAGEMENT_TOPIC_APP_INSTALLS": topics.app_installs,
        "ENGAGEMENT_TOPIC_SESSIONS": topics.sessions,
        "ENGAGEMENT_TOPIC_ALERTS": topics.alerts,
        "ENGAGEMENT_TOPIC_DLQ": topics.dlq,
        "ENGAGEMENT_DATA_DIR": str(workdir / f"worker-{tag}"),
        "ENGAGEMENT_LOG_LEVEL": "warning",
        **extra,
    }


def start_workers(env: Mapping[str, str], count: int, log_dir: Path) -> list[WorkerProcess]:
    """Start ``count`` worker processes of one group at once; return when all are ready."""
    workers = []
    for number in range(count):
        port = free_port()
        # One static group member each (the default, the host name, would fence all but one).
        worker_env_ = {**env, "ENGAGEMENT_INSTANCE_ID": f"worker-{number}",
                       "ENGAGEMENT_WEB_PORT": str(port)}  # fmt: skip
        log = log_dir / f"{env['ENGAGEMENT_APP_ID']}-{number}.log"
        workers.append(WorkerProcess(worker_env_, log, port))
    threads = [threading.Thread(target=w.start) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    missing = [w.log_path for w in workers if w.get("/ready") is None]
    if missing:
        for worker in workers:
            worker.stop()
        raise RuntimeError(f"worker(s) did not start; see {missing}")
    return workers


def worker_progress(worker: WorkerProcess) -> int:
    """Input messages the worker has accounted for (every outcome)."""
    return int(sum(worker.counters("engagement_events", "outcome").values()))


def run_workers(
    name: str,
    env: Mapping[str, str],
    count: int,
    expect: int,
    log_dir: Path,
    *,
    cap_s: float,
    stack: Mapping[str, int] | None = None,
) -> tuple[Measurement, list[WorkerProcess]]:
    """Run ``count`` workers in one group over the topics; measure them; leave them running.

    With several workers the timed span starts once every worker has made progress,
    so it measures the group after the partitions have been divided.
    """
    workers = start_workers(env, count, log_dir)
    pids = [w.proc.pid for w in workers if w.proc is not None]
    last: dict[int, int] = {}

    def progress() -> int:
        for number, worker in enumerate(workers):
            last[number] = max(last.get(number, 0), worker_progress(worker))
        return sum(last.values())

    try:
        result = measure(
            name, progress, pids, expect, cap_s=cap_s, every_s=0.1,
            alive=lambda: all(w.proc is not None and w.proc.poll() is None for w in workers),
            stack_pids=stack, ready=lambda: all(v > 0 for v in last.values()),
        )  # fmt: skip
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return result, workers


def group_lag(bootstrap: str, group: str, topics: Sequence[str]) -> int:
    """Messages not yet committed by the consumer group on the given topics."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        committed = admin.list_group_offsets(group)[group]  # kafka-python 3: by group
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = consumer.end_offsets(partitions)
        lag = 0
        for tp in partitions:
            meta = committed.get(tp)
            lag += ends[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return lag
    finally:
        consumer.close()
        admin.close()


def wait_for_commits(
    bootstrap: str, group: str, topics: Sequence[str], timeout_s: float = 30.0
) -> int:
    """Poll until the group has committed the end offsets; return the remaining lag."""
    deadline = time.monotonic() + timeout_s
    while True:
        lag = group_lag(bootstrap, group, topics)
        if lag == 0 or time.monotonic() > deadline:
            return lag
        time.sleep(0.5)
