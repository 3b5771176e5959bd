"""The development commands: the local stack, the simulator, the demo and the benchmark.

``engagement`` offers them as subcommands through the ``engagement.commands`` entry point
(``pyproject.toml``) when this package is importable (the development virtualenv made by
``make install``); ``python -m devtools`` runs them directly. The service never imports
this package.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stream.config.model_file import load_model
from stream.config.settings import Settings

__all__ = ["add_commands", "main"]


def add_commands(sub: Any) -> None:
    """Add ``simulate``, ``stack``, ``demo`` and ``bench`` to an argparse subparsers object."""
    sim = sub.add_parser(
        "simulate",
        help="produce simulated customers' events in real time, or (--history) write "
        "labelled history files offline",
    )
    sim.add_argument("--customers", type=int, default=None, help="default 200 (history: 1000)")
    sim.add_argument("--days", type=int, default=None, help="model days (history: 180)")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument(
        "--history",
        action="store_true",
        help="write events.jsonl.gz and labels.csv to --out instead of producing to Kafka",
    )
    sim.add_argument("--out", type=Path, default=Path("sim-history"), help="--history folder")
    sim.add_argument("--csv", action="store_true", help="--history: events.csv.gz instead")
    sim.add_argument("--start", default="2026-01-01", help="--history: first day (UTC)")
    sim.add_argument(
        "--no-skill",
        action="store_true",
        help="--history: churn independent of behaviour (nothing for calibrate to find)",
    )
    sim.set_defaults(handler=_simulate)

    stack = sub.add_parser("stack", help="local Kafka + Redis on loopback (no Docker)")
    stack.add_argument("action", choices=["up", "down", "status", "prepare"])
    stack.add_argument("--dir", type=Path, default=Path(".stack"), help="work folder")
    stack.add_argument(
        "--secure",
        action="store_true",
        help="Kafka over SASL_SSL and mutual TLS, Redis over TLS with passwords "
        "(throwaway certificates and passwords in the work folder)",
    )
    stack.add_argument("--redis-cluster", type=int, default=0, metavar="MASTERS",
                       help="Redis as a Redis Cluster of this many masters (e.g. 3)")  # fmt: skip
    stack.set_defaults(handler=_stack)

    demo = sub.add_parser("demo", help="local stack + worker + simulator, then a summary")
    demo.add_argument("--customers", type=int, default=200)
    demo.add_argument("--days", type=int, default=48, help="demo days (2 s each)")
    demo.add_argument("--dir", type=Path, default=Path(".demo"), help="work folder")
    demo.add_argument("--redis-cluster", type=int, default=0, metavar="MASTERS",
                      help="scores in a local Redis Cluster of this many masters")  # fmt: skip
    demo.add_argument(
        "--serve",
        action="store_true",
        help="after the summary, keep the stack, the worker, the simulated customers and the "
        "web page up until Ctrl-C",
    )
    demo.set_defaults(handler=_demo)

    from devtools.bench.cli import add_arguments  # noqa: PLC0415 (keeps the CLI's import light)

    bench = sub.add_parser("bench", help="benchmark the worker against its peers (make bench)")
    add_arguments(bench)
    bench.set_defaults(handler=_bench)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m devtools COMMAND``: these commands without the product's CLI (which
    offers them too, through its ``engagement.commands`` entry point)."""
    from stream.cli.main import run  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m devtools", description=__doc__)
    add_commands(parser.add_subparsers(required=True, metavar="COMMAND"))
    return run(parser.parse_args(list(sys.argv[1:] if argv is None else argv)))


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    if args.history:
        from devtools.sim.event_files import HistorySpec, write_history  # noqa: PLC0415

        spec = HistorySpec(
            customers=args.customers or 1000, days=args.days or 180, start=args.start,
            seed=args.seed, no_skill=args.no_skill,
        )  # fmt: skip
        written = write_history(spec, args.out, csv_events=args.csv)
        print(
            f"wrote {args.out / written['file']} ({written['events']} events of "
            f"{written['customers']} customers) and {args.out / 'labels.csv'} "
            f"({written['churned']} churned)"
        )
        return 0
    from devtools.sim.run import simulate  # noqa: PLC0415
    from stream.adapters.kafka_security import client_options  # noqa: PLC0415

    model = load_model(settings.model)
    stats, _ = simulate(
        settings.kafka_bootstrap,
        settings.topics,
        customers=args.customers or 200,
        days=args.days or 50,
        day_ms=model.bucket_ms,
        window_ms=model.window_ms,
        seed=args.seed,
        on_day=lambda day, s: print(f"day {day + 1}: {s.events} events sent", flush=True),
        client_options=client_options(settings.kafka_security),
    )
    print(f"sent {stats.events} events, {stats.duplicates} duplicates, {stats.malformed} malformed")
    return 0


def _stack(args: argparse.Namespace, settings: Settings) -> int:
    from devtools.localstack import LocalStack  # noqa: PLC0415
    from devtools.localstack.tools import ensure_kafka_jars, ensure_program  # noqa: PLC0415

    if args.action == "prepare":
        for program in ("redis-server", "java", "chromium"):
            ensure_program(program)
        print(f"Kafka jars in {ensure_kafka_jars()}")
        return 0
    if args.action == "down":
        stopped = LocalStack.stop_saved(args.dir)
        print("stopped" if stopped else f"no stack running in {args.dir}")
        return 0
    if args.action == "status":
        state = LocalStack.saved(args.dir)
        print(json.dumps(state, indent=2) if state else f"no stack running in {args.dir}")
        return 0
    if LocalStack.saved(args.dir):
        print(f"a stack is already running in {args.dir}; 'engagement stack down' first")
        return 1
    from devtools.localstack.secure import StackSecurity  # noqa: PLC0415

    security = StackSecurity.generate(args.dir / "certs") if args.secure else None
    stack = LocalStack(args.dir, security=security, redis_cluster=args.redis_cluster)
    stack.start()
    stack.processes.clear()  # leave them running; 'stack down' stops them by pid
    for key, value in stack.env().items():
        print(f"export {key}={value}")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from devtools.demo import run_demo  # noqa: PLC0415

    return run_demo(
        args.dir,
        customers=args.customers,
        days=args.days,
        redis_cluster=args.redis_cluster,
        serve=args.serve,
    )


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from devtools.bench.cli import run  # noqa: PLC0415

    return run(args)
