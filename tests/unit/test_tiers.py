"""The test tiers: each tier's selection, its counts read back from JUnit XML, the verdict,
and the Hypothesis example counts every property test takes from the tier's profile."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from devtools.tiers import TIERS, Outcome, _command, _counts
from tests.profiles import PROFILE, examples

_TESTS = Path(__file__).parents[1]

_REPORT = """<?xml version="1.0" encoding="utf-8"?><testsuites>
<testsuite name="pytest" errors="1" failures="2" skipped="3" tests="20" time="1.0"/>
<testsuite name="pytest" errors="0" failures="0" skipped="0" tests="5" time="1.0"/>
</testsuites>"""


def test_counts_are_read_from_the_junit_report(tmp_path: Path) -> None:
    report = tmp_path / "tier.xml"
    report.write_text(_REPORT)
    assert _counts(report) == (25 - 3 - 3, 3, 3)
    assert _counts(tmp_path / "missing.xml") == (0, 0, 0)


@pytest.mark.parametrize(
    ("returncode", "passed", "failed", "ok"),
    [(0, 10, 0, True), (1, 10, 1, False), (0, 0, 0, False), (5, 0, 0, False), (0, 3, 1, False)],
)
def test_a_tier_is_ok_only_when_tests_ran_and_none_failed(
    returncode: int, passed: int, failed: int, ok: bool
) -> None:
    outcome = Outcome("unit", passed, failed, 0, 1.0, returncode)
    assert outcome.ok is ok
    assert ("FAILED" in outcome.line()) is not ok


def test_the_gate_tiers_split_the_suite_without_overlap() -> None:
    """Every test is in exactly one of unit, integration, faults, bench-check (by marker)."""
    marks = {tier: TIERS[tier].marks for tier in ("unit", "integration", "faults", "bench-check")}
    assert marks["unit"] == "unit"
    assert "not fault" in marks["integration"] and "not bench" in marks["integration"]
    assert marks["faults"].startswith("fault") and "not bench" in marks["faults"]
    assert TIERS["soak"].env == {"FAULT_SCALE": "10", "HYPOTHESIS_PROFILE": "nightly"}
    command = _command(TIERS["integration"], Path("/tmp/r.xml"), ["-x"])
    assert command[-1] == "-x" and "--junitxml" in command and "-n" in command


def test_example_counts_scale_with_the_profile_and_keep_a_floor() -> None:
    scale = {"ci": 0.3, "nightly": 5.0}[PROFILE]  # the gate's profile, and make soak's
    assert examples(1000) == round(1000 * scale)
    assert examples(40) == max(20, round(40 * scale))  # never below 20
    assert examples(10) == max(10, round(10 * scale))  # (or the count named, if smaller)


def test_every_property_test_takes_its_count_from_the_profile() -> None:
    """A literal ``max_examples=N`` would not grow in ``make soak``."""
    literal = []
    for path in sorted(_TESTS.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            named = isinstance(node, ast.keyword) and node.arg == "max_examples"
            if named and isinstance(node.value, ast.Constant):
                literal.append(f"{path.relative_to(_TESTS)}:{node.value.lineno}")
    assert literal == []
