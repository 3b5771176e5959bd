"""Start and stop a single-node KRaft Kafka broker and a redis-server on loopback.

Ports are free ones picked at start (or given); data lives in a work folder, so a broker
restarted on the same folder keeps its log. ``stop`` terminates both processes and
waits for them; nothing is left running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from stream.localstack.tools import KAFKA_VERSION, StackError, ensure_kafka_jars, ensure_program

__all__ = ["LocalStack", "free_port"]

_STATE_FILE = "stack.json"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LocalStack:
    """Kafka and Redis for the demo and the integration tests."""

    workdir: Path
    kafka_port: int = 0
    redis_port: int = 0
    controller_port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self.kafka_port = self.kafka_port or free_port()
        self.redis_port = self.redis_port or free_port()
        self.controller_port = self.controller_port or free_port()

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        """Environment variables that point the worker and CLI at this stack."""
        return {
            "ENGAGEMENT_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "ENGAGEMENT_REDIS_URL": self.redis_url,
        }

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, timeout_s: float = 90.0) -> None:
        """Prepare tools, then start Redis and Kafka and wait until both answer."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.start_redis(timeout_s)
            self.start_kafka(timeout_s)
        except BaseException:
            self.stop()
            raise
        self._save_state()

    def start_redis(self, timeout_s: float = 30.0) -> None:
        server = ensure_program("redis-server")
        data = self.workdir / "redis"
        data.mkdir(exist_ok=True)
        command = [
            server, "--port", str(self.redis_port), "--bind", "127.0.0.1",
            "--dir", str(data), "--save", "", "--appendonly", "yes",
            "--appendfsync", "everysec", "--daemonize", "no", "--loglevel", "warning",
            "--logfile", str(data / "redis.log"),
        ]  # fmt: skip
        self.processes["redis"] = self._spawn(command, data / "redis.out")
        self._wait("redis", "Redis", self._redis_answers, timeout_s)

    def start_kafka(self, timeout_s: float = 90.0) -> None:
        jars = ensure_kafka_jars() / "libs"
        java = ensure_program("java")
        data = self.workdir / "kafka"
        config = self._write_kafka_config(data)
        classpath = f"{jars}/*"
        if not (data / "log" / "meta.properties").exists():
            cluster_id = _cluster_id()
            formatting = subprocess.run(
                [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
                 "-t", cluster_id, "-c", str(config), "--ignore-formatted"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if formatting.returncode != 0:
                raise StackError(f"formatting the Kafka log dir failed:\n{formatting.stderr}")
        command = [
            java, "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={data / 'log4j2.properties'}",
            "-cp", classpath, "kafka.Kafka", str(config),
        ]  # fmt: skip
        self.processes["kafka"] = self._spawn(command, data / "kafka.out")
        self._wait("kafka", f"Kafka {KAFKA_VERSION}", self._kafka_answers, timeout_s)

    def ensure_running(self) -> None:
        """Start whichever of the two servers is not running (after fault tests)."""
        for name, start in (("redis", self.start_redis), ("kafka", self.start_kafka)):
            proc = self.processes.get(name)
            if proc is None or proc.poll() is not None:
                start()

    def stop_redis(self, kill: bool = False) -> None:
        """Stop redis-server; ``kill`` sends SIGKILL (a crash) instead of SIGTERM."""
        self._terminate("redis", sig=signal.SIGKILL if kill else signal.SIGTERM)

    def stop_kafka(self) -> None:
        self._terminate("kafka")

    def stop(self) -> None:
        """Stop both servers and wait for them to exit."""
        self._terminate("kafka")
        self._terminate("redis")
        (self.workdir / _STATE_FILE).unlink(missing_ok=True)

    @classmethod
    def stop_saved(cls, workdir: Path) -> bool:
        """Stop a stack started earlier in ``workdir`` by another process."""
        state_file = Path(workdir) / _STATE_FILE
        if not state_file.exists():
            return False
        state = json.loads(state_file.read_text())
        for pid in state.get("pids", {}).values():
            _kill_group(int(pid))
        state_file.unlink()
        return True

    @classmethod
    def saved(cls, workdir: Path) -> dict[str, object] | None:
        """The ports and pids of a stack started earlier in ``workdir``, if any."""
        state_file = Path(workdir) / _STATE_FILE
        if not state_file.exists():
            return None
        state: dict[str, object] = json.loads(state_file.read_text())
        return state

    def _save_state(self) -> None:
        state = {
            "kafka_bootstrap": self.kafka_bootstrap,
            "redis_url": self.redis_url,
            "pids": {name: proc.pid for name, proc in self.processes.items()},
        }
        (self.workdir / _STATE_FILE).write_text(json.dumps(state, indent=2))

    def _spawn(self, command: list[str], output: Path) -> subprocess.Popen[bytes]:
        with output.open("ab") as sink:
            return subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _terminate(self, name: str, grace_s: float = 20.0, sig: int = signal.SIGTERM) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait(5)

    def _wait(self, name: str, what: str, probe: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is not None:
                raise StackError(f"{what} exited with code {proc.returncode}; see {self.workdir}")
            if probe():
                return
            time.sleep(0.2)
        raise StackError(f"{what} did not become ready within {timeout_s:.0f}s; see {self.workdir}")

    def _redis_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _kafka_answers(self) -> bool:
        from kafka.admin import KafkaAdminClient  # noqa: PLC0415 (slow import, only here)

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.kafka_bootstrap, request_timeout_ms=3000
            )
        except Exception:
            return False
        try:
            admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            admin.close()

    def _write_kafka_config(self, data: Path) -> Path:
        data.mkdir(parents=True, exist_ok=True)
        (data / "log4j2.properties").write_text(
            "rootLogger.level = WARN\n"
            "rootLogger.appenderRef.file.ref = file\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {data / 'server.log'}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        )
        config = data / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.kafka_port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={data / 'log'}",
                    "num.partitions=4",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    # lets tests use short consumer session timeouts (fast failover)
                    "group.min.session.timeout.ms=1000",
                    "auto.create.topics.enable=true",
                    "",
                ]
            )
        )
        return config


def _cluster_id() -> str:
    import base64  # noqa: PLC0415

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _kill_group(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + (20 if sig == signal.SIGTERM else 5)
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
