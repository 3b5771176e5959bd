"""The garbage collector's share of the worker's cost: the worker over one bench data set
with ``ENGAGEMENT_GC_FREEZE`` off, then on (one local stack, each in its own group).

    .venv/bin/python -m devtools.gcprobe --events 400000 --customers 100000 --cap 45

Prints, per mode, events/s and CPU µs per event (``devtools.bench``'s measurement) and the
collector's time per event from the worker's ``engagement_gc_seconds_total``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from devtools.bench import runners
from devtools.bench.main import Bench, BenchOptions, bench_stack
from devtools.localstack.worker import WorkerProcess

__all__ = ["main"]


def _total(worker: WorkerProcess, family: str) -> float:
    return sum(worker.counters(family, "").values())  # the _total samples only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--cap", type=float, default=45.0)
    parser.add_argument("--dir", type=Path, default=Path(".bench-gc"))
    args = parser.parse_args()
    options = BenchOptions(workdir=args.dir, events=args.events, customers=args.customers)
    out: dict[str, dict[str, float | None]] = {}
    with bench_stack(options) as stack:
        bench = Bench(options, stack)
        bench.produce()
        for mode in ("off", "on"):
            env = runners.worker_env(stack, bench.topics, f"gc-{mode}", options.workdir,
                                     ENGAGEMENT_GC_FREEZE=mode)  # fmt: skip
            measured, workers = runners.run_workers(f"worker gc={mode}", env, 1, bench.total,
                                                    bench.logs, cap_s=args.cap)  # fmt: skip
            gc_s = _total(workers[0], "engagement_gc_seconds")
            events = _total(workers[0], "engagement_events")
            for worker in workers:
                worker.stop()
            row = measured.to_json()
            out[mode] = {
                "events_per_s": row["events_per_s"],
                "cpu_us_per_event": row["cpu_s_per_million"],
                "gc_us_per_event": round(gc_s / events * 1e6, 1) if events else None,
            }
            print(mode, out[mode], flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
