"""Crash points: parsed strictly, inert when unset, and a real SIGKILL at the planned arrival."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from stream.worker.crashpoints import CrashPlan, crash_plan

_SCRIPT = """
from stream.worker.crashpoints import crash_plan
plan = crash_plan()
for n in range(1, 5):
    plan.reached("mid_batch")
    plan.reached("after_publish")
    print("survived", n, flush=True)
"""


def _run(plan: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _SCRIPT], env={"FAULT_CRASH_AT": plan},
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_the_process_is_killed_at_the_planned_arrival_and_not_before() -> None:
    done = _run("after_publish:3")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split("\n")[:-1] == ["survived 1", "survived 2"]
    assert "crash point after_publish reached (3): SIGKILL" in done.stderr


def test_without_a_plan_nothing_is_killed() -> None:
    done = _run("")
    assert done.returncode == 0 and done.stdout.count("survived") == 4
    plan = crash_plan({})
    for _ in range(10):
        plan.reached("after_store_commit")


@pytest.mark.parametrize("text", ["nowhere:1", "mid_batch:0", "mid_batch:x", "after_publish:-1"])
def test_a_malformed_plan_is_refused_with_the_variable_named(text: str) -> None:
    with pytest.raises(ValueError, match="FAULT_CRASH_AT"):
        CrashPlan.parse(text)


def test_a_point_without_a_count_means_its_first_arrival() -> None:
    assert _run("mid_batch").stdout == ""
