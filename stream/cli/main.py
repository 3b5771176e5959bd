"""``engagement``: run the worker, query scores, rescore under a new model, backfill history,
calibrate or validate a model against churn, run the simulator, the local stack, the demo or
the benchmark."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stream.config.errors import ConfigError
from stream.config.log_redaction import install_log_redaction
from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.localstack import LocalStack, StackError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        install_log_redaction(settings.secret_values())
        result: int = args.handler(args, settings)
        return result
    except (ConfigError, StackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engagement", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    worker = sub.add_parser("worker", help="run the stream worker (long-running)")
    worker.set_defaults(handler=_worker)

    score = sub.add_parser("score", help="show one customer's score, band and breakdown")
    score.add_argument("customer_id")
    score.add_argument("--json", action="store_true", help="print JSON")
    score.set_defaults(handler=_score)

    top = sub.add_parser("top", help="highest (or lowest) scoring customers, optionally in a band")
    top.add_argument("--band", help="only this band, e.g. churn_risk")
    top.add_argument("-n", type=int, default=20, help="how many (default 20)")
    top.add_argument("--lowest", action="store_true", help="lowest scores first")
    top.set_defaults(handler=_top)

    bands = sub.add_parser("bands", help="how many customers are in each band")
    bands.set_defaults(handler=_bands)

    topics = sub.add_parser("topics", help="create the topics and check co-partitioning")
    topics.set_defaults(handler=_topics)

    rescore = sub.add_parser(
        "rescore",
        help="rebuild every score under a new model into a new Redis prefix and consumer "
        "group, from the retained input (the current ENGAGEMENT_* settings name the old ones)",
    )
    rescore.add_argument("--model", required=True, help="the new model: a file or a shipped name")
    rescore.add_argument("--to-prefix", required=True, help="the new Redis key prefix (empty)")
    rescore.add_argument("--to-app-id", required=True, help="the new consumer group (app id)")
    rescore.add_argument(
        "--force",
        action="store_true",
        help="delete what the new prefix holds and overwrite the new group's offsets",
    )
    rescore.set_defaults(handler=_rescore)

    from stream.cli.history import add_backfill, add_calibrate, add_validate  # noqa: PLC0415

    add_backfill(sub)
    add_calibrate(sub)
    add_validate(sub)

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
    stack.set_defaults(handler=_stack)

    demo = sub.add_parser("demo", help="local stack + worker + simulator, then a summary")
    demo.add_argument("--customers", type=int, default=200)
    demo.add_argument("--days", type=int, default=48, help="demo days (2 s each)")
    demo.add_argument("--dir", type=Path, default=Path(".demo"), help="work folder")
    demo.set_defaults(handler=_demo)

    from stream.bench.cli import add_arguments  # noqa: PLC0415 (keeps the CLI's import light)

    bench = sub.add_parser("bench", help="benchmark the worker against its peers (make bench)")
    add_arguments(bench)
    bench.set_defaults(handler=_bench)
    return parser


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust  # noqa: PLC0415 (heavy import, only for this command)

    from stream.worker.app import build_app  # noqa: PLC0415

    print(f"engagement worker: settings {settings.redacted()}", file=sys.stderr, flush=True)
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.upper())
    worker.execute_from_commandline()
    return 0


def _store(settings: Settings) -> Any:
    from stream.adapters.redis_client import async_redis, check_redis_credentials  # noqa: PLC0415
    from stream.adapters.redis_store import RedisScoreStore  # noqa: PLC0415

    check_redis_credentials(settings)
    return RedisScoreStore(async_redis(settings), settings.redis_prefix)


def _score(args: argparse.Namespace, settings: Settings) -> int:
    view = asyncio.run(_store(settings).customer(args.customer_id))
    if view is None:
        print(f"unknown customer {args.customer_id!r}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(view, indent=2))
        return 0
    print(f"{view['customer_id']}: score {view['score']:g} ({view['band']})")
    print(f"  updated {view['updated_at']}, model {view['model_version']}")
    for factor, points in sorted(view["breakdown"].items(), key=lambda kv: -abs(kv[1])):
        print(f"  {factor:<22} {points:>+9.2f}")
    return 0


def _top(args: argparse.Namespace, settings: Settings) -> int:
    model = load_model(settings.model)
    if args.band and args.band not in model.bands.names:
        raise ConfigError("arguments", "--band", f"must be one of {list(model.bands.names)}")
    rows = asyncio.run(_store(settings).top(model.bands, args.band, args.n, args.lowest))
    for rank, (customer_id, score) in enumerate(rows, start=1):
        print(f"{rank:>4}. {customer_id:<40} {score:>9.2f}  {model.bands.band_for(score)}")
    if not rows:
        print("no customers")
    return 0


def _bands(args: argparse.Namespace, settings: Settings) -> int:
    model = load_model(settings.model)
    counts = asyncio.run(_store(settings).band_counts(model.bands))
    for band, count in counts.items():
        print(f"{band:<18} {count:>8}")
    return 0


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from stream.adapters.kafka_admin import (  # noqa: PLC0415
        ensure_topics,
        input_retention_ms,
        required_retention_ms,
    )

    model = load_model(settings.model)
    counts = ensure_topics(settings, model)
    retention = input_retention_ms(settings)
    required = required_retention_ms(model)
    for name, partitions in sorted(counts.items()):
        line = f"{name:<24} {partitions} partitions"
        if name in retention:
            kept = retention[name]
            line += ", kept forever" if kept is None else f", retention.ms {kept}"
            if kept is not None and kept < required:
                line += f" (shorter than the model's window + skew, {required}: see README)"
        print(line)
    return 0


def _rescore(args: argparse.Namespace, settings: Settings) -> int:
    from stream.cli.rescore import run_rescore  # noqa: PLC0415 (Kafka and Redis clients)

    return run_rescore(args, settings)


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    if args.history:
        from stream.sim.history import HistorySpec, write_history  # noqa: PLC0415

        spec = HistorySpec(
            customers=args.customers or 1000, days=args.days or 180, start=args.start,
            seed=args.seed,
        )  # fmt: skip
        written = write_history(spec, args.out, csv_events=args.csv)
        print(
            f"wrote {args.out / written['file']} ({written['events']} events of "
            f"{written['customers']} customers) and {args.out / 'labels.csv'} "
            f"({written['churned']} churned)"
        )
        return 0
    from stream.adapters.kafka_security import client_options  # noqa: PLC0415
    from stream.sim.run import simulate  # noqa: PLC0415

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
    from stream.localstack.tools import ensure_kafka_jars, ensure_program  # noqa: PLC0415

    if args.action == "prepare":
        for program in ("redis-server", "java"):
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
    from stream.localstack.secure import StackSecurity  # noqa: PLC0415

    security = StackSecurity.generate(args.dir / "certs") if args.secure else None
    stack = LocalStack(args.dir, security=security)
    stack.start()
    stack.processes.clear()  # leave them running; 'stack down' stops them by pid
    for key, value in stack.env().items():
        print(f"export {key}={value}")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from stream.cli.demo import run_demo  # noqa: PLC0415

    return run_demo(args.dir, customers=args.customers, days=args.days)


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from stream.bench.cli import run  # noqa: PLC0415

    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
