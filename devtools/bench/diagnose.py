"""``engagement bench --profile``: where the worker's time goes. Samples the worker with
py-spy at full load on the benchmark's data set and at half load under the paced producer,
reads Redis's per-command server time, and runs configuration-only experiments
(environment variables the worker already accepts), each on the same data."""

from __future__ import annotations

import threading
import time
from typing import Any

from devtools.bench import dataset, profile, report, runners
from devtools.bench.latency import run_latency
from devtools.bench.main import Bench, BenchOptions, bench_stack, say, topics_named
from devtools.bench.measure import cpu_seconds
from stream.adapters.kafka_admin import ensure_topics
from stream.config.settings import Settings

__all__ = ["run_profile"]

_EXPERIMENT_EVENTS = 300_000


def run_profile(options: BenchOptions) -> dict[str, Any]:
    """Profile the worker on the data set, then try configuration-only variants."""
    with bench_stack(options) as stack:
        bench = Bench(options, stack)
        bench.produce()
        out: dict[str, Any] = {"dataset": bench.results["dataset"]}
        out["profile"] = _profile(bench)
        out["experiments"] = [_experiment(bench, n, env) for n, env in
                              enumerate(options.experiments)]  # fmt: skip
        rates = [row["events_per_s"] for row in out["experiments"] if not row["env"]]
        out["half_load"] = _profile_half_load(bench, rates[0] / 2 if rates else 1500.0)
    report.write(out, options.output)
    say(f"\nProfile and experiments in {options.output}")
    return out


def _profile(bench: Bench) -> dict[str, Any]:
    say(f"Profiling the worker with py-spy for {bench.options.profile_s:.0f} s...")
    env = runners.worker_env(bench.stack, bench.topics, "prof", bench.options.workdir)
    workers = runners.start_workers(env, 1, bench.logs)
    worker = workers[0]
    try:
        while runners.worker_progress(worker) < 2000:
            time.sleep(0.1)
        bench.redis.config_resetstat()
        before = runners.worker_progress(worker)
        pid = worker.proc.pid if worker.proc else 0
        raw = profile.record(pid, bench.options.profile_s, bench.logs / "py-spy-worker.txt")
        events = runners.worker_progress(worker) - before
    finally:
        worker.stop()
    summary = profile.summarize(raw)
    summary["events_while_sampling"] = events
    summary["redis_commandstats"] = profile.commandstats(bench.redis, events)
    for category, share in summary["main_thread_share"].items():
        say(f"  {share:6.1%}  {category}")
    return summary


def _profile_half_load(bench: Bench, rate: float) -> dict[str, Any]:
    """Sample the worker while the paced producer offers ``rate`` events/s."""
    say(f"Profiling the worker at {rate:,.0f} events/s offered...")
    topics = topics_named("bench-half")
    bench.make_topics(topics)
    env = runners.worker_env(bench.stack, topics, "half", bench.options.workdir)
    worker = runners.start_workers(env, 1, bench.logs)[0]
    pid = worker.proc.pid if worker.proc else 0
    seconds = bench.options.profile_s
    out = bench.logs / "py-spy-worker-half-load.txt"
    sampler = threading.Thread(target=lambda: profile.record(pid, seconds, out))
    try:
        latency = run_latency(
            bench.stack.kafka_bootstrap, bench.redis, topics, worker, "bench-half", rate=rate,
            seconds=seconds + 5, population=bench.options.customers,
            cpu_of_worker=lambda: cpu_seconds([pid]), before_load=sampler.start,
        )  # fmt: skip
    finally:
        sampler.join()
        worker.stop()
    summary = profile.summarize(out)
    summary["latency"] = latency.to_json()
    say(f"  main thread idle {summary['main_thread_share'].get('idle (event loop waiting)', 0):.0%}"
        f", consumer thread busy {summary['other_threads_busy_share']:.0%}, worker CPU "
        f"{latency.worker_cpu_utilisation:.0%}")  # fmt: skip
    return summary


def _experiment(bench: Bench, number: int, extra: dict[str, str]) -> dict[str, Any]:
    """The worker with extra environment variables, on the data set (or, for a different
    ``ENGAGEMENT_PARTITIONS``, on a part of it produced to topics with that many)."""
    label = " ".join(f"{k.removeprefix('ENGAGEMENT_')}={v}" for k, v in extra.items()) or "defaults"
    say(f"Experiment {label}...")
    topics, total = bench.topics, bench.total
    partitions = int(extra.get("ENGAGEMENT_PARTITIONS", bench.options.partitions))
    if partitions != bench.options.partitions:
        topics = topics_named(f"bench-p{partitions}")
        ensure_topics(Settings(kafka_bootstrap=bench.stack.kafka_bootstrap, topics=topics,
                               partitions=partitions))  # fmt: skip
        events = min(bench.total, _EXPERIMENT_EVENTS)
        customers = min(bench.options.customers, events // 10)
        source = dataset.records(customers, events, now_ms=int(time.time() * 1000))
        total = sum(dataset.produce(bench.stack.kafka_bootstrap, topics, source).values())
    env = runners.worker_env(bench.stack, topics, f"x{number}", bench.options.workdir, **extra)
    measurement, workers = runners.run_workers(
        label, env, 1, total, bench.logs, cap_s=bench.options.cap_s, stack=bench.stack_pids
    )
    for worker in workers:
        worker.stop()
    row = measurement.to_json()
    say(f"  {row['events_per_s']:,.0f} events/s, {row['cpu_s_per_million']:.1f} CPU s/M events")
    return {"env": extra, **row}
