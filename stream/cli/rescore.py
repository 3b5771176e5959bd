"""``engagement rescore``: rebuild every score under a new model into a new prefix, then
print what was done and the exact switch-over steps."""

from __future__ import annotations

import argparse
import asyncio
import sys

from stream.config.model_file import load_model
from stream.config.settings import Settings
from stream.worker.rescore import RescoreReport, Target, rescore

__all__ = ["run_rescore", "summary", "switch_over"]


def run_rescore(args: argparse.Namespace, settings: Settings) -> int:
    """Run the rescore described by the command line; print its summary."""
    old_model = load_model(settings.model)
    target = Target(load_model(args.model), args.to_prefix, args.to_app_id)
    print(
        f"rescore: {old_model.version} (prefix {settings.redis_prefix}, group {settings.app_id})"
        f" -> {target.model.version} (prefix {target.prefix}, group {target.app_id})",
        file=sys.stderr,
        flush=True,
    )
    report = asyncio.run(rescore(settings, old_model, target, force=args.force))
    if old_model.version == target.model.version:
        report.warnings.append(
            f"old and new model share the version {old_model.version!r}: give a changed model "
            "a new version, so that alerts and stored scores tell them apart"
        )
    print(summary(report, target))
    print()
    print(switch_over(settings, args.model, target))
    return 0


def summary(report: RescoreReport, target: Target) -> str:
    """What the rescore read, rebuilt and wrote, and the band distribution old vs new."""
    rejected = ", ".join(f"{reason} {n}" for reason, n in report.rejected.most_common())
    lines = [
        f"read {report.messages} messages below the snapshot of {report.partitions} "
        "partitions per input topic",
        f"  scored     {report.scored} events",
        f"  duplicate  {report.duplicates} (repeated deliveries, counted once)",
        f"  rejected   {report.rejected.total()}" + (f": {rejected}" if rejected else ""),
        f"customers: {report.rebuilt} rebuilt from events, {report.carried} carried over "
        "without a live event (score 0)",
    ]
    if report.cleared_keys:
        lines.append(f"--force: deleted {report.cleared_keys} keys of prefix {target.prefix}")
    lines += _bands(report)
    if report.entered_alert_band:
        band = target.model.alerts.band
        lines.append(
            f"{report.entered_alert_band} customers are in {band} under "
            f"{report.new_version} and were not before; no alert was published for them "
            f"(list them: ENGAGEMENT_REDIS_PREFIX={target.prefix} engagement top --band {band})"
        )
    lines += [f"warning: {w}" for w in report.warnings]
    lines.append(f"consumer group {target.app_id} starts at the snapshot offsets")
    return "\n".join(lines)


def _bands(report: RescoreReport) -> list[str]:
    names = list(dict.fromkeys([*report.bands_old, *report.bands_new]))
    old, new = f"old ({report.old_version})", f"new ({report.new_version})"
    width = max(len(n) for n in [*names, "band"])
    rows = [f"  {'band':<{width}}  {old:>{len(old)}}  {new:>{len(new)}}"]
    for name in names:
        before = report.bands_old.get(name, "-")
        after = report.bands_new.get(name, "-")
        rows.append(f"  {name:<{width}}  {before:>{len(old)}}  {after:>{len(new)}}")
    return rows


def switch_over(settings: Settings, model_arg: str, target: Target) -> str:
    """The steps that move production to the rebuilt scores."""
    return "\n".join(
        [
            "Switch over:",
            "  1. Start workers with the new model, prefix and consumer group (all other",
            "     settings unchanged):",
            f"       ENGAGEMENT_MODEL={model_arg} ENGAGEMENT_REDIS_PREFIX={target.prefix} "
            f"ENGAGEMENT_APP_ID={target.app_id}",
            "     They continue from the snapshot offsets, so no event is missed or counted",
            "     twice; wait until they are ready and their engagement_consumer_lag is low.",
            f"  2. Stop the old workers (ENGAGEMENT_APP_ID={settings.app_id}). Until then both",
            "     publish alerts; each alert carries its model_version.",
            f"  3. Point readers at prefix {target.prefix} (ENGAGEMENT_REDIS_PREFIX for",
            "     `engagement score|top|bands`, dashboards, anything reading Redis); every",
            f"     customer's model_version field there says {target.model.version}.",
            f"  Roll back: start the old workers again; prefix {settings.redis_prefix} and group",
            f"  {settings.app_id} were not touched and continue from their own offsets.",
            "  Clean up later: delete the old prefix's keys and the old consumer group.",
        ]
    )
