"""Liveness and readiness verdicts from probe results and progress marks."""

from __future__ import annotations

from stream.worker.health import Health, messages_waiting


class Clock:
    """A hand-driven clock in milliseconds."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def _healthy(clock: Clock) -> Health:
    health = Health(clock, probe_interval_ms=2000, max_sweep_behind_ms=5000, stall_ms=30_000)
    health.record_probe("redis", True)
    health.record_probe("kafka", True)
    health.record_group("member")
    return health


def test_ready_when_every_check_passes() -> None:
    """Fresh successful probes, no failed batch and no backlog mean ready."""
    ready, body = _healthy(Clock()).readiness()
    assert ready
    assert all(check["ok"] for check in body["checks"].values())


def test_not_ready_before_the_first_probe() -> None:
    """A worker that has not reached its dependencies yet is not ready."""
    ready, body = Health(Clock()).readiness()
    assert not ready
    assert body["checks"]["redis"] == {"ok": False, "detail": "not checked yet"}


def test_a_failed_dependency_probe_makes_the_worker_not_ready() -> None:
    """Redis not answering shows up under its own name with the error kind."""
    clock = Clock()
    health = _healthy(clock)
    health.record_probe("redis", False, "ConnectionError")
    ready, body = health.readiness()
    assert not ready
    assert body["checks"]["redis"] == {"ok": False, "detail": "ConnectionError"}
    assert body["checks"]["kafka"]["ok"]


def test_a_stale_successful_probe_no_longer_counts() -> None:
    """A probe older than three intervals is treated as failed."""
    clock = Clock()
    health = _healthy(clock)
    clock.now += 6001
    ready, body = health.readiness()
    assert not ready
    assert "6001 ms ago" in body["checks"]["kafka"]["detail"]


def test_a_failing_batch_makes_the_worker_not_ready_until_one_succeeds() -> None:
    """Processing failures flip readiness; the next success flips it back."""
    health = _healthy(Clock())
    health.record_processing(False, "batch: ConnectionError")
    assert not health.readiness()[0]
    health.record_processing(True)
    assert health.readiness()[0]


def test_a_sweeper_behind_the_alert_bound_is_not_keeping_up() -> None:
    """Window alerts would be late, so the worker is not ready."""
    health = _healthy(Clock())
    health.record_sweep(5001)
    ready, body = health.readiness()
    assert not ready
    assert body["checks"]["keeping_up"]["detail"] == "window sweeper 5001 ms behind"
    health.record_sweep(10)
    assert health.readiness()[0]


def test_backlog_without_progress_is_a_stall() -> None:
    """Lag with no batch completed for longer than the stall limit is not keeping up."""
    clock = Clock()
    health = _healthy(clock)
    health.lag = 10
    clock.now += 30_001
    health.record_probe("redis", True)
    health.record_probe("kafka", True)
    health.record_sweep(0)
    assert not health.readiness()[0]
    health.record_progress()
    assert health.readiness()[0]


def test_idle_without_backlog_is_fine() -> None:
    """No lag and no batches for a long time is a quiet stream, not a stall."""
    clock = Clock()
    health = _healthy(clock)
    clock.now += 120_000
    health.record_probe("redis", True)
    health.record_probe("kafka", True)
    health.record_sweep(0)
    assert health.readiness()[0]


def test_liveness_survives_outages_but_not_a_crashed_agent() -> None:
    """A dependency outage keeps the worker alive; a crashed agent does not."""
    health = _healthy(Clock())
    health.record_probe("redis", False, "ConnectionError")
    assert health.liveness()[0]
    health.agent_crashed = "agent score: RuntimeError"
    alive, body = health.liveness()
    assert not alive
    assert body["agent_crashed"] == "agent score: RuntimeError"


def test_liveness_fails_when_the_probe_loop_stops() -> None:
    """Probes that stopped running for ten intervals mean the event loop is wedged."""
    clock = Clock()
    health = _healthy(clock)
    clock.now += 20_001
    alive, body = health.liveness()
    assert not alive
    assert sorted(body["stale_probes"]) == ["kafka", "redis"]


def test_a_partition_resumed_at_its_end_has_nothing_waiting() -> None:
    """A worker that processed nothing of a partition it resumed at the end offset (a
    restart after the group caught up, or a rebalance that hands a finished partition
    back) has nothing to do there: the whole partition is not waiting."""
    assert messages_waiting(492, None, 492) == 0
    assert messages_waiting(500, None, 492) == 8


def test_messages_waiting_counts_from_the_later_of_processed_and_resumed() -> None:
    assert messages_waiting(100, 89, 40) == 10  # processed past the resume point
    assert messages_waiting(100, 30, 40) == 60  # the resume point is later
    assert messages_waiting(100, None, 0) == 100  # never committed: from the start
    assert messages_waiting(100, 99, 100) == 0


def test_not_ready_until_the_first_assignment_and_it_says_so() -> None:
    """A new worker is joining its group; assigned, it resumes; its first batch (or Faust's
    rebalance flag clearing) makes it a member, and only then ready."""
    clock = Clock()
    health = Health(clock)
    health.record_probe("redis", True)
    health.record_probe("kafka", True)
    clock.now += 1500
    ready, body = health.readiness()
    assert not ready
    assert body["checks"]["group"] == {"ok": False, "detail": "joining consumer group for 1500 ms"}
    health.record_group("rebalancing")  # the first join's revoke: still the first join
    assert health.readiness()[1]["checks"]["group"]["detail"].startswith("joining")
    health.record_group("resuming")
    clock.now += 200
    assert health.readiness()[1]["checks"]["group"]["detail"] == (
        "partitions assigned, resuming fetches for 200 ms"
    )
    health.record_progress()
    assert health.readiness()[0]


def test_a_rebalance_says_it_waits_for_the_assignment() -> None:
    """A member whose partitions were revoked waits for its new assignment, and says so
    with how long it has waited (the detail a stuck rebalance shows in /ready)."""
    clock = Clock()
    health = _healthy(clock)
    health.record_group("rebalancing")
    clock.now += 273_803
    health.record_probe("redis", True)
    health.record_probe("kafka", True)
    ready, body = health.readiness()
    assert not ready
    assert body["checks"]["group"]["detail"] == (
        "rebalancing: waiting for partition assignment for 273803 ms"
    )
    health.record_group("resuming")
    health.record_group("member")
    health.record_sweep(0)
    assert health.readiness()[0]


def _probes_ok(health: Health) -> None:
    health.record_probe("redis", True)
    health.record_probe("kafka", True)


def test_a_worker_stuck_out_of_its_group_is_not_alive() -> None:
    """Assigned but never resuming (or never assigned) for longer than the bound, with
    Redis and Kafka answering: a restart helps, so liveness fails and says why."""
    clock = Clock()
    health = _healthy(clock)
    health.record_group("rebalancing")
    health.record_group("resuming")
    clock.now += 90_001
    _probes_ok(health)
    alive, body = health.liveness()
    assert not alive
    assert body["stuck"] == "partitions assigned, resuming fetches for 90001 ms"
    health.record_group("member")
    assert health.liveness()[0]


def test_a_worker_out_of_its_group_during_an_outage_is_still_alive() -> None:
    """Kafka not answering explains the wait: a restart would not help."""
    clock = Clock()
    health = _healthy(clock)
    health.record_group("rebalancing")
    clock.now += 200_000
    health.record_probe("redis", True)
    health.record_probe("kafka", False, "KafkaConnectionError")
    assert health.liveness()[0]
    health.record_probe("kafka", True)
    assert not health.liveness()[0]


def test_a_short_rebalance_is_not_stuck() -> None:
    """Within the bound a rebalance only makes the worker not ready."""
    clock = Clock()
    health = _healthy(clock)
    health.record_group("rebalancing")
    clock.now += 60_000
    _probes_ok(health)
    health.record_sweep(0)
    assert health.liveness()[0]
    assert not health.readiness()[0]
