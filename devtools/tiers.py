"""The test tiers: which tests each `make` target runs, and how long it took.

``python -m devtools.tiers unit integration faults`` runs the named tiers in order, each
as one pytest session, prints each tier's counts and duration as it ends, then a summary
with a last line ``tiers: N passed, N failed``. It exits non-zero when a tier failed.

- unit: ``tests/unit`` (the pure core, codecs, config, CLI, calibration maths); no service.
- integration: ``tests/deploy`` and ``tests/integration`` less the fault suite and the bench
  guard; one Kafka, one Redis, a Redis Cluster, Prometheus and Chromium.
- faults: the fault suite (``-m fault``) at gate size, with stacks of its own to kill.
- soak: the fault suite at ``FAULT_SCALE=10`` and the unit properties at the ``nightly``
  Hypothesis profile.
- bench-check: the benchmark regression guard (``-m bench``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

__all__ = ["TIERS", "Outcome", "Tier", "TierSpec", "main", "run_tier"]

Tier = Literal["unit", "integration", "faults", "soak", "bench-check"]


@dataclass(frozen=True)
class TierSpec:
    """The pytest selection of one tier and the environment it runs in."""

    paths: tuple[str, ...]
    marks: str
    env: dict[str, str] = field(default_factory=dict)
    processes: int = 1  # pytest-xdist workers; 1 runs in-process
    # How xdist shares tests out: "load" test by test, "loadfile" a module (and its
    # module-scoped stacks) in one process; each process starts its own session stack.
    dist: Literal["load", "loadfile"] = "load"


TIERS: dict[Tier, TierSpec] = {
    "unit": TierSpec(("tests/unit",), "unit", processes=2),
    # Four processes on two cores: these tiers mostly wait (on Kafka, on worker start-ups,
    # on session timeouts; a gate at three used 1.2 of the 2 cores on average), so the
    # extra processes overlap the waits.
    "integration": TierSpec(
        ("tests/deploy", "tests/integration"),
        "not fault and not bench",
        processes=4,
        dist="loadfile",
    ),
    # By test, not by file: the fault suite's scenarios are few and long.
    "faults": TierSpec(("tests/integration",), "fault and not bench", processes=4),
    "soak": TierSpec(
        ("tests/unit", "tests/integration"),
        "(unit or fault) and not bench",
        env={"FAULT_SCALE": "10", "HYPOTHESIS_PROFILE": "nightly"},
        processes=3,
    ),
    "bench-check": TierSpec(("tests/integration",), "bench"),
}


@dataclass(frozen=True)
class Outcome:
    """What one tier's pytest session reported."""

    tier: Tier
    passed: int
    failed: int
    skipped: int
    seconds: float
    returncode: int

    @property
    def ok(self) -> bool:
        # pytest's 5 is "no tests collected": a tier that runs nothing is a broken tier.
        return self.returncode == 0 and self.failed == 0 and self.passed > 0

    def line(self) -> str:
        verdict = "ok" if self.ok else f"FAILED (pytest exit {self.returncode})"
        return (
            f"tier {self.tier}: {self.passed} passed, {self.failed} failed, "
            f"{self.skipped} skipped in {self.seconds:.0f} s: {verdict}"
        )


def _command(spec: TierSpec, report: Path, extra: list[str]) -> list[str]:
    command = [sys.executable, "-m", "pytest", *spec.paths, "-m", spec.marks, "-q"]
    command += ["--junitxml", str(report), "-o", "junit_family=xunit2"]
    # Its own temporary folder (worker logs, broker data) kept after the run for a look,
    # out of reach of other pytest sessions' clean-up of /tmp/pytest-of-*.
    command += ["--basetemp", str(report.parent / f"tmp-{report.stem}")]
    if spec.processes > 1:
        command += ["-n", str(spec.processes), "--dist", spec.dist]
    return command + extra


def _counts(report: Path) -> tuple[int, int, int]:
    """Passed, failed (failures and errors) and skipped from a JUnit XML report."""
    if not report.exists():
        return 0, 0, 0
    suites = ET.parse(report).getroot()
    total = failed = skipped = 0
    for suite in suites.iter("testsuite"):
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return total - failed - skipped, failed, skipped


def run_tier(tier: Tier, extra: list[str], artifacts: Path) -> Outcome:
    """Run one tier's pytest session and read back its counts."""
    spec = TIERS[tier]
    artifacts.mkdir(parents=True, exist_ok=True)
    report = artifacts / f"tier-{tier}.xml"
    report.unlink(missing_ok=True)
    print(f"\n=== tier {tier}: pytest {' '.join(spec.paths)} -m '{spec.marks}'", flush=True)
    started = time.monotonic()
    env = {**os.environ, **spec.env}
    returncode = subprocess.run(_command(spec, report, extra), env=env, check=False).returncode
    outcome = Outcome(tier, *_counts(report), time.monotonic() - started, returncode)
    print(outcome.line(), flush=True)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.tiers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("tiers", nargs="+", choices=get_args(Tier), metavar="TIER",
                        help=f"one or more of: {', '.join(get_args(Tier))}")  # fmt: skip
    parser.add_argument("--artifacts", type=Path, default=Path(".artifacts"),
                        help="where the JUnit reports go (default .artifacts)")  # fmt: skip
    args, extra = parser.parse_known_args(argv)
    started = time.monotonic()
    outcomes = [run_tier(tier, extra, args.artifacts) for tier in args.tiers]
    print("\n" + "\n".join(o.line() for o in outcomes))
    print(f"all tiers took {time.monotonic() - started:.0f} s")
    passed, failed = sum(o.passed for o in outcomes), sum(o.failed for o in outcomes)
    print(f"tiers: {passed} passed, {failed} failed")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
