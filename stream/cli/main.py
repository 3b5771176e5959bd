"""``engagement``: run the worker, query scores and bands, create topics, rescore under a new
model, backfill history, calibrate or validate a model against churn, serve the web page. In
a development checkout it also runs the local stack, the simulator, the demo and the
benchmark (the ``devtools`` package)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any, TypeVar

from stream import __version__
from stream.cli.accounts import add_account_commands
from stream.cli.store import query_store, require_valid_id
from stream.config.log_redaction import install_log_redaction
from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.errors import ConfigError, EngagementError
from stream.worker.exits import EXIT_CONFIG

T = TypeVar("T")

_DESCRIPTION = (
    "Live customer engagement scores and churn-risk alerts from Kafka event streams: run the "
    "worker, query scores, bands and accounts, create topics, rescore under a new model, "
    "backfill history, calibrate or validate a model against churn, serve the web page. In a "
    "development checkout also the local stack, the simulator, the demo and the benchmark."
)

__all__ = ["COMMANDS_GROUP", "build_parser", "main", "run"]

#: entry-point group of further ``engagement`` subcommands: ``add(subparsers)`` callables
COMMANDS_GROUP = "engagement.commands"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run a parsed command's handler with the settings; an ``EngagementError`` is one
    ``error:`` line and exit status 2."""
    try:
        settings = Settings.from_env()
        install_log_redaction(settings.secret_values())
        result: int = args.handler(args, settings)
        return result
    except EngagementError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def build_parser(*, development: bool = True) -> argparse.ArgumentParser:
    """The ``engagement`` parser; ``development=False`` leaves out the devtools commands
    (the service's own commands only, as in the worker image)."""
    parser = argparse.ArgumentParser(prog="engagement", description=_DESCRIPTION)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}",
        help="print the installed version and exit",
    )  # fmt: skip
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    worker = sub.add_parser(
        "worker",
        help="run the stream worker (long-running): the stored totals count each event exactly "
        "once; each alert fires once per crossing and is published at least once (drop "
        "duplicates by alert_id)",
    )
    worker.set_defaults(handler=_worker)

    score = sub.add_parser("score", help="show one customer's score, band and breakdown")
    score.add_argument("customer_id")
    score.add_argument("--json", action="store_true", help="print JSON")
    score.add_argument(
        "--history", action="store_true", help="also print the score history and model changes"
    )
    score.set_defaults(handler=_score)

    top = sub.add_parser("top", help="highest (or lowest) scoring customers, optionally in a band")
    top.add_argument("--band", help="only this band, e.g. churn_risk")
    top.add_argument("-n", type=int, default=20, help="how many (default 20)")
    top.add_argument("--lowest", action="store_true", help="lowest scores first")
    top.set_defaults(handler=_top)

    bands = sub.add_parser("bands", help="how many customers are in each band")
    bands.set_defaults(handler=_bands)
    add_account_commands(sub)

    page = sub.add_parser(
        "web", help="serve the read-only live page for customer-success teams (and its JSON API)"
    )
    page.add_argument("--host", help="listen address (default: ENGAGEMENT_WEB_HOST)")
    page.add_argument("--port", type=int, default=6080, help="listen port (default 6080)")
    page.add_argument(
        "--snapshot-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="store the band counts for the over-time chart this often (0: never; default 60)",
    )
    page.set_defaults(handler=_web)

    migrate = sub.add_parser(
        "migrate-keys",
        help="move the Redis keys of customers whose id contains '%%' to the escaped key "
        "layout (run once with the workers stopped; see the Redis keys reference)",
    )
    migrate.set_defaults(handler=_migrate_keys)

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

    from stream.cli.offline import add_backfill, add_calibrate, add_validate  # noqa: PLC0415

    add_backfill(sub)
    add_calibrate(sub)
    add_validate(sub)

    from stream.cli.segments import add_segments  # noqa: PLC0415

    add_segments(sub)

    if development:
        add_development_commands(sub)
    return parser


def add_development_commands(sub: Any) -> None:
    """Offer the commands registered under the ``engagement.commands`` entry-point group
    (the development tools of a checkout register stack, simulate, demo and bench there).

    Their package (``devtools``) is importable only in a checkout's virtualenv
    (``make install``); the worker image holds the service only, so there a registered
    command whose module cannot be imported is left out.
    """
    for entry in entry_points(group=COMMANDS_GROUP):
        try:
            add_commands = entry.load()
        except ImportError:
            continue
        add_commands(sub)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust  # noqa: PLC0415 (heavy import, only for this command)

    from stream.worker.app import build_app  # noqa: PLC0415
    from stream.worker.exits import worker_exit_code  # noqa: PLC0415

    print(f"engagement worker: settings {settings.redacted()}", file=sys.stderr, flush=True)
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.upper())
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:  # mode always ends this way, crashed or not
        return worker_exit_code(worker.crash_reason, stopped.code)


def _score(args: argparse.Namespace, settings: Settings) -> int:
    customer_id = require_valid_id("customer", args.customer_id, settings)
    view = query_store(settings, lambda store: store.customer(customer_id))
    if view is None:
        print(f"unknown customer {args.customer_id!r}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(view, indent=2))
        return 0
    print(f"{view['customer_id']}: score {view['score']:g} ({view['band']})")
    print(f"  updated {view['updated_at']}, model {view['model_version']}")
    if view.get("account") is not None:
        print(f"  account {view['account']}")
    if view.get("traits"):
        traits = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in
                           sorted(view["traits"].items()))  # fmt: skip
        print(f"  traits  {traits}")
    for factor, points in sorted(view["breakdown"].items(), key=lambda kv: -abs(kv[1])):
        print(f"  {factor:<22} {points:>+9.2f}")
    _print_trend(view.get("trend"))
    if args.history:
        _print_history(view.get("history"))
    return 0


def _print_trend(trend: dict[str, Any] | None) -> None:
    if not trend:
        return
    parts = [
        f"{label} {trend[key]:+g}" if trend[key] is not None else f"{label} n/a"
        for label, key in (("7d", "change_7d"), ("30d", "change_30d"))
    ]
    if trend["top_factor"] is not None:
        parts.append(f"most changed {trend['top_factor']} {trend['top_factor_change']:+g}")
    print(f"  trend: {', '.join(parts)}")


def _print_history(history: dict[str, Any] | None) -> None:
    from stream.adapters.codec import iso_ms  # noqa: PLC0415

    if not history:
        print("  no history")
        return
    events = [(start, f"{iso_ms(start)[:10]}  {score:>9.2f}") for start, score in history["points"]]
    events += [(m["at_ms"], f"{m['at'][:10]}  model -> {m['model_version']}")
               for m in history["markers"]]  # fmt: skip
    print("  history:")
    for _, line in sorted(events, key=lambda item: item[0]):
        print(f"    {line}")


def _top(args: argparse.Namespace, settings: Settings) -> int:
    model = load_model(settings.model)
    if args.band and args.band not in model.bands.names:
        raise ConfigError("arguments", "--band", f"must be one of {list(model.bands.names)}")
    rows = query_store(
        settings, lambda store: store.top(model.bands, args.band, args.n, args.lowest)
    )
    for rank, (customer_id, score) in enumerate(rows, start=1):
        print(f"{rank:>4}. {customer_id:<40} {score:>9.2f}  {model.bands.band_for(score)}")
    if not rows:
        print("no customers")
    return 0


def _bands(args: argparse.Namespace, settings: Settings) -> int:
    model = load_model(settings.model)
    counts = query_store(settings, lambda store: store.band_counts(model.bands))
    for band, count in counts.items():
        print(f"{band:<18} {count:>8}")
    return 0


def _migrate_keys(args: argparse.Namespace, settings: Settings) -> int:
    moved, kept = query_store(settings, lambda store: store.migrate_legacy_keys())
    print(f"moved {moved} keys to the escaped layout")
    if kept:
        print(f"left {kept} old keys whose new key already exists (inspect them by hand)")
    return 0


def _web(args: argparse.Namespace, settings: Settings) -> int:
    from stream.web.run import run_web  # noqa: PLC0415 (aiohttp, only for this command)

    return run_web(settings, args.host or settings.web_host, args.port, args.snapshot_every)


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
                line += (
                    f" (shorter than the model's window + skew, {required}: see the rescore guide)"
                )
        print(line)
    return 0


def _rescore(args: argparse.Namespace, settings: Settings) -> int:
    from stream.cli.rescore import run_rescore  # noqa: PLC0415 (Kafka and Redis clients)

    return run_rescore(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
