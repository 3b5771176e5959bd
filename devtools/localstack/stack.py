"""Start and stop a single-node KRaft Kafka broker and a redis-server on loopback.

With ``redis_cluster=N`` Redis is instead a Redis Cluster of N masters (see ``cluster``);
``redis_url`` then names the first master, the seed the clients discover the rest from.

Ports are free ones picked at start (or given); data lives in a work folder, so a broker
restarted on the same folder keeps its log. ``stop`` terminates both processes and
waits for them; nothing is left running. With a ``StackSecurity`` the broker also listens
with SASL_SSL and mutual TLS, and Redis only with TLS and passwords (see ``secure``).
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

import redis

from devtools.localstack.cluster import form_cluster, node_command
from devtools.localstack.secure import StackSecurity, write_secret
from devtools.localstack.tools import KAFKA_VERSION, StackError, ensure_kafka_jars, ensure_program

__all__ = ["LocalStack", "free_port"]

_STATE_FILE = "stack.json"


# Servers listen below the kernel's ephemeral range (32768 and up on Linux), so no client
# connection's source port can take a port between its pick and its bind; a Redis Cluster
# node's bus port (+10000) stays below it too.
_LISTEN_LOW, _LISTEN_HIGH = 12_000, 22_768
_picked: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the ephemeral
    range, never handed out twice by this process; processes start their search at
    different places (by pid), so parallel test sessions rarely meet."""
    span = _LISTEN_HIGH - _LISTEN_LOW
    start = (os.getpid() * 7919 + len(_picked) * 13) % span
    for step in range(span):
        port = _LISTEN_LOW + (start + step) % span
        if port in _picked or not _bindable(port):
            continue
        _picked.add(port)
        return port
    raise StackError(f"no free port between {_LISTEN_LOW} and {_LISTEN_HIGH} on 127.0.0.1")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class LocalStack:
    """Kafka and Redis for the demo and the integration tests."""

    workdir: Path
    kafka_port: int = 0
    redis_port: int = 0
    controller_port: int = 0
    security: StackSecurity | None = None
    sasl_ssl_port: int = 0
    ssl_port: int = 0
    redis_cluster: int = 0  # masters of a Redis Cluster; 0: one plain redis-server
    cluster_ports: list[int] = field(default_factory=list)
    bus_ports: dict[int, int] = field(default_factory=dict)  # cluster bus port per master
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self.kafka_port = self.kafka_port or free_port()
        self.redis_port = self.redis_port or free_port()
        if self.redis_cluster:
            if self.security is not None:
                raise StackError("a secure stack runs one Redis server, not a cluster")
            others = self.cluster_ports[1 : self.redis_cluster]
            others += [free_port() for _ in range(self.redis_cluster - 1 - len(others))]
            self.cluster_ports = [self.redis_port, *others]
        self.controller_port = self.controller_port or free_port()
        if self.security is not None:
            self.sasl_ssl_port = self.sasl_ssl_port or free_port()
            self.ssl_port = self.ssl_port or free_port()

    @property
    def kafka_bootstrap(self) -> str:
        """The PLAINTEXT listener (always there; the broker uses it itself)."""
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def redis_url(self) -> str:
        scheme = "redis" if self.security is None else "rediss"
        return f"{scheme}://127.0.0.1:{self.redis_port}/0"

    @property
    def redis_nodes(self) -> dict[str, int]:
        """Process name -> port of each Redis server (one, or each master of the cluster)."""
        if not self.redis_cluster:
            return {"redis": self.redis_port}
        return {f"redis-{i}": port for i, port in enumerate(self.cluster_ports)}

    def env(self) -> dict[str, str]:
        """Environment variables that point the worker and CLI at this stack.

        For a secure stack: Kafka over SASL_SSL with SCRAM-SHA-512 as its first user,
        Redis over TLS as the default user; passwords are given as ``*_FILE`` paths.
        """
        if self.security is None:
            return {
                "ENGAGEMENT_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
                "ENGAGEMENT_REDIS_URL": self.redis_url,
                **({"ENGAGEMENT_REDIS_CLUSTER": "true"} if self.redis_cluster else {}),
            }
        certs, folder = self.security.certs, self.workdir / "secrets"
        user, password = next(iter(self.security.kafka_users.items()))
        return {
            "ENGAGEMENT_KAFKA_BOOTSTRAP": self.sasl_ssl_bootstrap,
            "ENGAGEMENT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ENGAGEMENT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "ENGAGEMENT_KAFKA_SASL_USERNAME": user,
            "ENGAGEMENT_KAFKA_SASL_PASSWORD_FILE": str(
                write_secret(folder, f"kafka-{user}", password)
            ),
            "ENGAGEMENT_KAFKA_SSL_CAFILE": str(certs.ca),
            "ENGAGEMENT_REDIS_URL": self.redis_url,
            "ENGAGEMENT_REDIS_PASSWORD_FILE": str(
                write_secret(folder, "redis-default", self.security.redis_password)
            ),
            "ENGAGEMENT_REDIS_SSL_CAFILE": str(certs.ca),
            "ENGAGEMENT_REDIS_SSL_CERTFILE": str(certs.client_cert),
            "ENGAGEMENT_REDIS_SSL_KEYFILE": str(certs.client_key),
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
        """Start every Redis server that is not running (a cluster is formed on first start
        and waited for until every master reports it up)."""
        for name, port in self.redis_nodes.items():
            proc = self.processes.get(name)
            if proc is None or proc.poll() is not None:
                self._start_redis_node(name, port, timeout_s)
        if self.redis_cluster:
            bus = [self.bus_ports[port] for port in self.cluster_ports]
            form_cluster(self.cluster_ports, bus, timeout_s)

    def _start_redis_node(self, name: str, port: int, timeout_s: float) -> None:
        server = ensure_program("redis-server")
        data = self.workdir / name
        data.mkdir(exist_ok=True)
        if self.security is None:
            command = [server, "--port", str(port)]
        else:
            conf = write_secret(data, "secure.conf", self.security.redis_config(port))
            command = [server, str(conf)]
        if self.redis_cluster:
            command += node_command(self.bus_ports.setdefault(port, free_port()), data)
        command += [
            "--bind", "127.0.0.1",
            "--dir", str(data), "--save", "", "--appendonly", "yes",
            "--appendfsync", "everysec", "--daemonize", "no", "--loglevel", "warning",
            # compact hashes for customers (see docs/reference/redis-keys.md)
            "--hash-max-listpack-value", "1024",
            "--logfile", str(data / "redis.log"),
        ]  # fmt: skip
        self.processes[name] = self._spawn(command, data / "redis.out")
        self._wait(name, f"Redis on port {port}", lambda: self._redis_answers(port), timeout_s)

    def start_kafka(self, timeout_s: float = 90.0) -> None:
        jars = ensure_kafka_jars() / "libs"
        java = ensure_program("java")
        data = self.workdir / "kafka"
        config = self._write_kafka_config(data)
        classpath = f"{jars}/*"
        if not (data / "log" / "meta.properties").exists():
            cluster_id = _cluster_id()
            users = self.security.format_arguments() if self.security else []
            formatting = subprocess.run(
                [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
                 f"--cluster-id={cluster_id}", "-c", str(config), "--ignore-formatted", *users],
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
        for names, start in ((list(self.redis_nodes), self.start_redis),
                             (["kafka"], self.start_kafka)):  # fmt: skip
            procs = [self.processes.get(name) for name in names]
            if any(proc is None or proc.poll() is not None for proc in procs):
                start()

    def stop_redis(self, kill: bool = False, node: int | None = None) -> None:
        """Stop redis-server (every master of a cluster, or only master ``node``);
        ``kill`` sends SIGKILL (a crash) instead of SIGTERM."""
        names = list(self.redis_nodes)
        for name in names if node is None else [names[node]]:
            self._terminate(name, sig=signal.SIGKILL if kill else signal.SIGTERM)

    def stop_kafka(self) -> None:
        self._terminate("kafka")

    def stop(self) -> None:
        """Stop both servers and wait for them to exit."""
        self._terminate("kafka")
        self.stop_redis()
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
            "redis_cluster": self.redis_cluster > 0,
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

    def _redis_answers(self, port: int) -> bool:
        if self.security is not None:
            return self._secure_redis_answers(self.security)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _secure_redis_answers(self, security: StackSecurity) -> bool:
        client = redis.Redis(
            host="127.0.0.1", port=self.redis_port, password=security.redis_password,
            ssl=True, ssl_ca_certs=str(security.certs.ca),
            ssl_certfile=str(security.certs.client_cert),
            ssl_keyfile=str(security.certs.client_key),
            socket_timeout=1, socket_connect_timeout=1,
        )  # fmt: skip
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

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
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.kafka_port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data / "log"),
            "num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # lets tests use short consumer session timeouts (fast failover)
            "group.min.session.timeout.ms": "1000",
            "auto.create.topics.enable": "true",
        }
        if self.security is not None:
            extra = self.security.kafka_properties(self.sasl_ssl_port, self.ssl_port)
            props["advertised.listeners"] += f",{extra['listeners']}"
            for key in ("listeners", "listener.security.protocol.map"):
                props[key] += f",{extra.pop(key)}"
            props.update(extra)
        # The file may hold PLAIN passwords: owner-only.
        config = write_secret(
            data, "server.properties", "\n".join(f"{k}={v}" for k, v in props.items())
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
