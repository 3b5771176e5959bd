"""``engagement backfill``, ``engagement calibrate`` and ``engagement validate``: the commands
over event files (README calls them history files), the CLI side."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from stream.config.durations import parse_duration_ms
from stream.config.errors import ConfigError
from stream.config.settings import Settings
from stream.errors import MissingExtraError

__all__ = ["NO_SKILL_EXIT", "add_backfill", "add_calibrate", "add_validate", "parse_shares"]

_ARGS = "arguments"
# calibrate's exit status when the calibrated score has no skill (without --allow-no-skill).
NO_SKILL_EXIT = 3
# --window auto: the first is the starting point, the others are tried against it.
_AUTO_WINDOWS_DAYS: tuple[int, ...] = (30, 91, 182)


def parse_shares(text: str) -> dict[str, float]:
    """``churn_risk=0.10,very_disengaged=0.2`` as a mapping; raises ConfigError."""
    shares: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            share = float(value)
        except ValueError:
            raise ConfigError(_ARGS, "--shares", f"{part!r} is not band=share") from None
        if not 0 < share < 1:
            raise ConfigError(_ARGS, "--shares", f"share of {name} must be between 0 and 1")
        shares[name.strip()] = share
    return shares


def _history_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events",
        nargs="+",
        type=Path,
        required=True,
        metavar="FILE",
        help="history files: JSON lines (native or Segment) or CSV, gzip or not, or Parquet "
        "files or directories",
    )
    parser.add_argument(
        "--labels", type=Path, required=True, help="CSV customer_id,churned,churn_date[,first_seen]"
    )
    parser.add_argument(
        "--snapshot",
        choices=["weekly", "monthly"],
        default="weekly",
        help="snapshot moments: Mondays or first days of months (default weekly)",
    )
    parser.add_argument(
        "--horizon",
        default="30d",
        help="label: churns within this long after the snapshot (default 30d)",
    )
    split = parser.add_mutually_exclusive_group()
    split.add_argument(
        "--train-until",
        metavar="DATE",
        help="held-out period starts here (training labels end before it)",
    )
    split.add_argument(
        "--holdout-months",
        type=int,
        default=2,
        metavar="N",
        help="hold out the last N calendar months (default 2)",
    )
    parser.add_argument(
        "--report", type=Path, metavar="DIR", help="write report.md and the PNG charts here"
    )


def add_calibrate(sub: Any) -> None:
    """Register ``engagement calibrate``."""
    parser = sub.add_parser("calibrate", help="fit a scoring model to churn labels from history")
    _history_arguments(parser)
    parser.add_argument(
        "--model",
        metavar="BASE",
        help="start from this model's events and factors (default: one factor "
        "per event type seen, 1 point per event)",
    )
    parser.add_argument(
        "--shares",
        default="",
        help="band shares of the training snapshots, lowest band first, e.g. "
        "churn_risk=0.10,very_disengaged=0.2 (default 0.10/0.20/0.30/0.25)",
    )
    parser.add_argument(
        "--onboarding",
        default="14d",
        help="alert a customer still in the alert band this long after first seen (default 14d)",
    )
    parser.add_argument(
        "--window",
        default="auto",
        help="the new model's window, or auto (default): 30d, 91d or 182d, whichever ranks the "
        "later training snapshots best (with --model: the base model's)",
    )
    parser.add_argument(
        "--bucket", help="window resolution (default 1d; 7d for windows over 31 days)"
    )
    parser.add_argument(
        "--tenure-cap", type=int, default=None, metavar="DAYS",
        help="tenure counts up to this many days (default: the window's)",
    )  # fmt: skip
    parser.add_argument("--version", dest="model_version", help="version string of the new model")
    parser.add_argument("--out", type=Path, required=True, help="the model file to write")
    parser.add_argument(
        "--target-alerts-per-customer",
        type=float,
        metavar="X",
        help="alert budget: the churn_risk threshold whose alerts per retained customer on "
        "the last two training months stay within X (of the shares 0.05, 0.10, 0.15, 0.20)",
    )
    parser.add_argument(
        "--stage-dir",
        type=Path,
        metavar="DIR",
        help="keep the staged history (events.parquet, contributions.parquet) and the "
        "feature query (features.sql) here, e.g. to run the query on Spark SQL or Trino",
    )
    parser.add_argument(
        "--allow-no-skill",
        action="store_true",
        help=f"exit 0 even when the score does not beat a coin (default: exit {NO_SKILL_EXIT})",
    )
    parser.set_defaults(handler=_calibrate)


def add_validate(sub: Any) -> None:
    """Register ``engagement validate``."""
    parser = sub.add_parser("validate", help="report how well a model predicts churn")
    parser.add_argument("model", help="a model file or a shipped model name (default, demo)")
    _history_arguments(parser)
    parser.set_defaults(handler=_validate)


def add_backfill(sub: Any) -> None:
    """Register ``engagement backfill``."""
    parser = sub.add_parser(
        "backfill",
        help="load history into Redis in event time, then hand over to the live workers",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--events",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="history files (JSON lines or CSV, gzip or not)",
    )
    source.add_argument(
        "--topics",
        action="store_true",
        help="the retained input topics; commits the snapshot offsets for the "
        "consumer group (ENGAGEMENT_APP_ID)",
    )
    parser.add_argument(
        "--as-of",
        metavar="TIME",
        help="files: the moment the scores are written as of (ISO 8601 or epoch "
        "ms; default now); events after it are left to the live workers",
    )
    parser.add_argument("--step", default=None, help="replay step (default: the model's bucket)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="delete what the prefix holds first (and overwrite the group's offsets with --topics)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_backfill)


def _duration(text: str, option: str) -> int:
    try:
        return parse_duration_ms(text)
    except ValueError as exc:
        raise ConfigError(_ARGS, option, str(exc)) from None


def _bucket_for(window_ms: int) -> int:
    """A day for windows up to a month, a week beyond (the window's resolution)."""
    return 86_400_000 if window_ms <= 31 * 86_400_000 else 7 * 86_400_000


def _horizon(args: argparse.Namespace) -> int:
    return _duration(args.horizon, "--horizon")


def _train_until(args: argparse.Namespace) -> int | None:
    if not args.train_until:
        return None
    from stream.event_files.labels import parse_time_ms  # noqa: PLC0415

    try:
        return parse_time_ms(args.train_until)
    except ValueError as exc:
        raise ConfigError(_ARGS, "--train-until", str(exc)) from None


def _labels(args: argparse.Namespace) -> Any:
    from stream.event_files.labels import read_labels  # noqa: PLC0415

    try:
        return read_labels(args.labels)
    except (OSError, ValueError) as exc:
        raise ConfigError(str(args.labels), "(file)", str(exc)) from None


def _check_files(paths: list[Path]) -> None:
    for path in paths:
        if not path.is_file() and not path.is_dir():
            raise ConfigError(str(path), "(file)", "no such file or directory")


def _require_calibrate_extra(command: str) -> None:
    """calibrate and validate need numpy, scikit-learn and matplotlib (an optional extra)."""
    try:
        import matplotlib  # noqa: F401, PLC0415
        import numpy  # noqa: F401, PLC0415
        import sklearn  # noqa: F401, PLC0415
    except ImportError as exc:
        raise MissingExtraError(
            f"engagement {command} needs the optional extra 'calibrate' "
            f"(pip install 'engagement-stream[calibrate]'): {exc}"
        ) from None


def _budget(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise ConfigError(_ARGS, "--target-alerts-per-customer", "must be more than 0")
    return value


def _calibrate(args: argparse.Namespace, settings: Settings) -> int:
    _require_calibrate_extra("calibrate")
    from stream.calibrate.pipeline import CalibrationOptions, calibrate  # noqa: PLC0415

    _check_files(args.events)
    try:
        onboarding = parse_duration_ms(args.onboarding)
    except ValueError as exc:
        raise ConfigError(_ARGS, "--onboarding", str(exc)) from None
    auto = args.window == "auto"
    window = _duration("30d" if auto else args.window, "--window")
    bucket = _duration(args.bucket, "--bucket") if args.bucket else _bucket_for(window)
    window = -(-window // bucket) * bucket  # a whole number of buckets
    others = tuple((d * 86_400_000, _bucket_for(d * 86_400_000)) for d in _AUTO_WINDOWS_DAYS[1:])
    others = others if auto else ()
    options = CalibrationOptions(
        cadence=args.snapshot,
        horizon_ms=_horizon(args),
        train_until_ms=_train_until(args),
        holdout_months=args.holdout_months,
        shares=parse_shares(args.shares) if args.shares else None,
        onboarding_ms=onboarding,
        window_ms=window,
        bucket_ms=bucket,
        tenure_cap_days=args.tenure_cap or max(1, window // 86_400_000),
        other_windows=others,
        version=args.model_version,
        target_alerts_per_customer=_budget(args.target_alerts_per_customer),
    )
    try:
        model, validation, summary = calibrate(
            args.events,
            _labels(args),
            options,
            base=args.model,
            out_model=args.out,
            report_dir=args.report,
            stage_dir=args.stage_dir,
        )
    except ValueError as exc:
        raise ConfigError("calibrate", "history", str(exc)) from None
    for line in summary.lines():
        print(line, file=sys.stderr)
    verdict = validation.report.verdict
    if verdict is not None and not verdict.skill:
        print("calibrate: NO SKILL: these events do not predict churn on this history ("
              + "; ".join(verdict.reasons) + ")", file=sys.stderr)  # fmt: skip
    print(validation.markdown)
    print(f"wrote {args.out} (version {model.version})", file=sys.stderr)
    if args.report:
        print(f"wrote {args.report / 'report.md'} and its charts", file=sys.stderr)
    if verdict is not None and not verdict.skill and not args.allow_no_skill:
        return NO_SKILL_EXIT
    return 0


def _validate(args: argparse.Namespace, settings: Settings) -> int:
    _require_calibrate_extra("validate")
    from stream.calibrate.pipeline import open_history, split_for, validate  # noqa: PLC0415
    from stream.config.model_file import load_model  # noqa: PLC0415

    _check_files(args.events)
    model = load_model(args.model)
    labels = _labels(args)
    horizon = _horizon(args)
    try:
        with open_history(args.events, model) as history:
            for line in history.summary.lines():
                print(line, file=sys.stderr)
            split = split_for(history.last_ms, labels, _train_until(args), args.holdout_months)
            validation = validate(
                model,
                args.model,
                history,
                labels,
                cadence=args.snapshot,
                horizon_ms=horizon,
                split=split,
                out=args.report,
            )
    except ValueError as exc:
        raise ConfigError("validate", "history", str(exc)) from None
    print(validation.markdown)
    if args.report:
        print(f"wrote {args.report / 'report.md'} and its charts", file=sys.stderr)
    return 0


def _backfill(args: argparse.Namespace, settings: Settings) -> int:
    from stream.worker.backfill import BackfillRequest, backfill  # noqa: PLC0415

    as_of = None
    if args.as_of:
        if args.topics:
            raise ConfigError(_ARGS, "--as-of", "applies to files; --topics backfills as of now")
        from stream.event_files.labels import parse_time_ms  # noqa: PLC0415

        try:
            as_of = parse_time_ms(args.as_of)
        except ValueError as exc:
            raise ConfigError(_ARGS, "--as-of", str(exc)) from None
    step = None
    if args.step:
        try:
            step = parse_duration_ms(args.step)
        except ValueError as exc:
            raise ConfigError(_ARGS, "--step", str(exc)) from None
    if args.events:
        _check_files(args.events)
    request = BackfillRequest(
        files=tuple(args.events or ()),
        topics=args.topics,
        as_of_ms=as_of if as_of is not None else int(time.time() * 1000),
        step_ms=step,
        force=args.force,
        progress=not args.no_progress,
    )
    report = asyncio.run(backfill(settings, request))
    print("\n".join(report.lines()))
    return 0
