"""``python -m devtools.bench.restart_bench`` (``make bench-restarts``): the restart
scenarios of ``devtools.bench.restarts`` for several rounds on the local stack, medians
printed and written to ``bench/results/restarts.json``.

Each round uses a consumer group, topics (4 partitions each) and Redis prefix of its own:
one worker with a backlog is SIGKILLed and restarted, SIGKILLed with its replacement killed
while it joins, SIGTERMed and restarted; then two workers take a steady stream
(``--rate`` events per second) while each is SIGTERMed and restarted in turn, with the
Kubernetes manifest's 30 s session timeout. Worker logs (info level) stay in ``--dir``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer

from devtools.bench.restarts import Progress, restart, rolling_restart
from devtools.localstack import LocalStack
from devtools.localstack.stack import free_port
from devtools.localstack.worker import WorkerProcess
from stream.adapters.kafka_admin import ensure_topics
from stream.config.settings import Settings

__all__ = ["Feeder", "main"]

_KINDS = [("clickstream", "page_view"), ("app_installs", "app_open"), ("sessions", "session_end")]


class Feeder:
    """Sends chunks of fresh events (three topics, ``customers`` customers) from a thread."""

    def __init__(self, settings: Settings, chunk: int, customers: int = 2000) -> None:
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        self.topics = {role: name for name, role in settings.topics.inputs.items()}
        self.chunk, self.customers, self.sent = chunk, customers, 0
        self._pending = threading.Semaphore(0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Queue one more chunk."""
        self._pending.release()

    def close(self) -> None:
        self._stop.set()
        self._pending.release()
        self._thread.join(30)
        self.producer.close()

    def _run(self) -> None:
        while True:
            self._pending.acquire()
            if self._stop.is_set():
                return
            now = int(time.time() * 1000)
            for _ in range(self.chunk):
                self.sent += 1
                role, kind = _KINDS[self.sent % 3]
                customer = f"b{self.sent % self.customers:06d}"
                doc = {"event_id": f"e{self.sent}", "customer_id": customer, "type": kind,
                       "timestamp": now}  # fmt: skip
                self.producer.send(self.topics[role], key=customer.encode(),
                                   value=orjson.dumps(doc))  # fmt: skip
            self.producer.flush()


def _group(stack: LocalStack, workdir: Path, **extra: str) -> tuple[dict[str, str], Settings]:
    tag = uuid.uuid4().hex[:8]
    env = {**stack.env(), "ENGAGEMENT_APP_ID": f"restarts-{tag}",
           "ENGAGEMENT_REDIS_PREFIX": f"restarts-{tag}", "ENGAGEMENT_PARTITIONS": "4",
           "ENGAGEMENT_DATA_DIR": str(workdir / f"data-{tag}"),
           "ENGAGEMENT_LOG_LEVEL": "info", **extra}  # fmt: skip
    for topic in ("CLICKSTREAM", "APP_INSTALLS", "SESSIONS", "ALERTS", "DLQ"):
        env[f"ENGAGEMENT_TOPIC_{topic}"] = f"{topic.lower().replace('_', '-')}-{tag}"
    settings = Settings.from_env(env)
    ensure_topics(settings)
    return env, settings


def _spawner(env: dict[str, str], logs: Path) -> Callable[[str], WorkerProcess]:
    count = 0

    def spawn(member: str) -> WorkerProcess:
        nonlocal count
        count += 1
        port = free_port()
        worker = WorkerProcess({**env, "ENGAGEMENT_INSTANCE_ID": member,
                                "ENGAGEMENT_WEB_PORT": str(port)},
                               logs / f"{env['ENGAGEMENT_APP_ID']}-{count}.log", port)  # fmt: skip
        worker.spawn()
        return worker

    return spawn


def one_round(stack: LocalStack, workdir: Path, backlog: int, rate: int) -> dict[str, Any]:
    """The three single-worker restarts and the rolling restart of two workers."""
    figures: dict[str, Any] = {}
    env, settings = _group(stack, workdir)
    spawn = _spawner(env, workdir)
    feeder = Feeder(settings, backlog)
    worker = spawn("worker-0")
    worker.wait_ready()
    try:
        with Progress() as progress:
            progress.watch(worker)
            feeder.release()
            for how in ("sigkill", "sigkill_joining", "sigterm"):
                worker, figures[how] = restart(worker, "worker-0", how, spawn, feeder.release,
                                               progress)  # fmt: skip
    finally:
        worker.stop()
        feeder.close()
    env, settings = _group(stack, workdir, ENGAGEMENT_SESSION_TIMEOUT="30s")  # as on k8s
    spawn = _spawner(env, workdir)
    ticks_per_s = 4
    feeder = Feeder(settings, max(1, rate // ticks_per_s))
    workers = [spawn("worker-0"), spawn("worker-1")]
    try:
        for w in workers:
            w.wait_ready()
        with Progress(tick=feeder.release, tick_every_s=1 / ticks_per_s) as progress:
            for w in workers:
                progress.watch(w)
            time.sleep(3)  # steady state first
            workers, figures["rolling"] = rolling_restart(workers, ["worker-0", "worker-1"],
                                                          spawn, progress)  # fmt: skip
    finally:
        for w in workers:
            w.stop()
        feeder.close()
    return figures


def _medians(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    medians: dict[str, dict[str, float]] = {}
    for scenario, first in rounds[0].items():
        values = {key: [r[scenario][key] for r in rounds] for key in first}
        medians[scenario] = {key: round(statistics.median(v), 2) for key, v in values.items()}
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.restart_bench",
                                     description="Restart timings, median of rounds.")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=20_000,
                        help="events released before each stop and at each restart")  # fmt: skip
    parser.add_argument("--rate", type=int, default=2000,
                        help="events per second during the rolling restart")  # fmt: skip
    parser.add_argument("--output", type=Path, default=Path("bench/results/restarts.json"))
    parser.add_argument("--dir", type=Path, default=Path(".bench/restarts"),
                        help="work folder: the stack and the worker logs")  # fmt: skip
    args = parser.parse_args(argv)
    rounds: list[dict[str, Any]] = []
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    workdir = args.dir
    workdir.mkdir(parents=True, exist_ok=True)
    with LocalStack(Path(tempfile.mkdtemp(prefix="stack-", dir=workdir))) as stack:
        for number in range(args.rounds):
            rounds.append(one_round(stack, workdir, args.backlog, args.rate))
            print(f"round {number + 1}: {json.dumps(rounds[-1])}", flush=True)
    medians = _medians(rounds)
    result = {"rounds": rounds, "median": medians, "backlog": args.backlog, "rate": args.rate,
              "started_at": started_at}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median of {args.rounds} rounds:")
    for scenario, values in medians.items():
        print(f"  {scenario:16} " + ", ".join(f"{k} {v}" for k, v in values.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
