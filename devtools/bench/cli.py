"""Command-line options of ``engagement bench`` / ``python -m devtools.bench``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from devtools.bench.names import ALL_CONTENDERS, ALL_PHASES

if TYPE_CHECKING:
    from devtools.bench.main import BenchOptions

__all__ = ["DEFAULT_EXPERIMENTS", "add_arguments", "options_from", "run"]

# Configuration-only variants tried by ``--profile`` unless ``--experiment`` is given.
DEFAULT_EXPERIMENTS = (
    "",
    "BATCH_MAX=500",
    "BATCH_MAX=10000",
    "BATCH_WITHIN=10ms",
    "BATCH_WITHIN=250ms",
    "BATCH_MAX=10000,BATCH_WITHIN=250ms",
    "PARTITIONS=1",
    "PARTITIONS=32",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to ``parser``."""
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the data set")
    parser.add_argument("--customers", type=int, default=100_000, help="distinct customers")
    parser.add_argument("--partitions", type=int, default=8, help="partitions per input topic")
    parser.add_argument("--cap", type=float, default=75.0,
                        help="seconds a contender is measured at most (default 75)")  # fmt: skip
    parser.add_argument("--only", default=",".join(ALL_CONTENDERS),
                        help="contenders, comma-separated (default: all)")  # fmt: skip
    parser.add_argument("--phases", default=",".join(ALL_PHASES),
                        help="extra phases (default: all; '' for none)")  # fmt: skip
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--sweep-stored", type=int, default=1_000_000,
                        help="synthetic customers stored for the sweeper phase")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the worker, then configuration experiments")  # fmt: skip
    parser.add_argument("--profile-seconds", type=float, default=25.0)
    parser.add_argument("--experiment", action="append", default=None, metavar="K=V,K=V",
                        help="worker environment for --profile (ENGAGEMENT_ implied)")  # fmt: skip
    parser.add_argument("--dir", type=Path, default=Path(".bench"), help="work folder")
    parser.add_argument("--output", type=Path, default=None,
                        help="results JSON (default bench/results/latest.json, or "
                             "bench/results/profile.json with --profile)")  # fmt: skip


def _experiment(text: str) -> dict[str, str]:
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    return {f"ENGAGEMENT_{key.strip().removeprefix('ENGAGEMENT_')}": value for key, value in pairs}


def _names(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what}: {unknown}; choose from {list(allowed)}")
    return names


def options_from(args: argparse.Namespace) -> BenchOptions:
    """Options from parsed arguments."""
    from devtools.bench.main import BenchOptions  # noqa: PLC0415 (heavy; only when running)

    default_output = "profile.json" if args.profile else "latest.json"
    experiments = args.experiment if args.experiment is not None else DEFAULT_EXPERIMENTS
    return BenchOptions(
        workdir=args.dir,
        output=args.output or Path("bench/results") / default_output,
        events=args.events,
        customers=args.customers,
        partitions=args.partitions,
        cap_s=args.cap,
        contenders=_names(args.only, ALL_CONTENDERS, "contender"),
        phases=_names(args.phases, ALL_PHASES, "phase"),
        latency_s=args.latency_seconds,
        sweep_stored=args.sweep_stored,
        profile_s=args.profile_seconds,
        experiments=tuple(_experiment(e) for e in experiments),
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark (or the profile) as the arguments say."""
    from devtools.bench.diagnose import run_profile  # noqa: PLC0415
    from devtools.bench.main import run_bench  # noqa: PLC0415

    options = options_from(args)
    if args.profile:
        run_profile(options)
    else:
        run_bench(options)
    return 0
