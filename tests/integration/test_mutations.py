"""The fault suite's gate size is enough: with the commit path broken on purpose, the
planned-kill scenario (``test_faults.py``) at the size ``make test`` runs finds events lost
or counted twice. The broken variants live in ``mutants/sitecustomize.py``. A mutant may
also keep a planned kill from landing (acknowledged early, the backlog is gone before the
publish): the scenario then goes on, and the store must still show the damage."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import Deployment, wait_until
from tests.integration.test_faults import (
    PLANNED_KILLS_ENV,
    kill_at_each_step,
    planned_kills_workload,
    warm_up_then_send,
)
from tests.integration.workload import compare, tally_events

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(1200)]
MUTANTS = Path(__file__).parent / "mutants"


@pytest.mark.parametrize("mutation", ["skip_fingerprint_check", "ack_before_commit"])
def test_the_gate_size_fault_scenario_catches_a_broken_commit_path(
    deploy: Callable[..., Deployment], mutation: str
) -> None:
    work = planned_kills_workload()
    d = deploy(**PLANNED_KILLS_ENV, FAULT_MUTATION=mutation, PYTHONPATH=str(MUTANTS))
    warm_up_then_send(d, work)
    kill_at_each_step(d)
    ends = d.end_offsets()
    wait_until(lambda: d.drained(ends), timeout_s=300)
    prefix = d.settings.redis_prefix

    def caught() -> tuple[int, int, bool] | None:
        now = int(time.time() * 1000)
        lost, double = tally_events(d.redis, prefix, work, now)
        exact = compare(d.redis, prefix, work.reference(now)).exact
        return (lost, double, exact) if lost or double or not exact else None

    lost, double, exact = wait_until(caught, timeout_s=60, every_s=1.0)
    print(f"\nMUTANT {mutation}: lost {lost}, double-counted {double}, scores exact: {exact}")
