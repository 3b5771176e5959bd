"""Fault suite: crashes, outages, rebalances and shutdowns lose nothing and count nothing twice.

Every scenario streams a known workload (see ``workload.py``) while something goes
wrong, then requires the stored scores and bands to equal the from-scratch reference
exactly and the alert topic to hold every expected churn-risk alert. ``FAULT_SCALE``
multiplies the sizes (``make soak`` runs with a larger one). Figures go to stdout and
to ``.fault-report.jsonl`` for the Reliability page's table; each is measured once the
run settles (events lost or double-counted from the store's applied fingerprints, alerts
from the whole alert topic read to its end offsets), then asserted.

Two scenarios run on a three-master Redis Cluster as well, smaller to keep the suite
short (``CLUSTER_SCALE``): the SIGKILL crash loop at an eighth of its size, and one master
killed and restarted (the cluster's own failure mode: part of the slots gone) at a quarter.

Sizes are chosen for signal, not volume: random SIGKILLs land wherever the worker is, and
the planned kills (``FAULT_CRASH_AT``, ``stream/worker/crashpoints.py``) make sure a kill
lands mid-batch, after the store commit and after the publish, each asserted from the
worker's exit status and log. ``test_mutations.py`` shows that size is enough: with the
commit path broken on purpose, the planned-kill scenario fails. Outages last as long as
their conditions need (retries seen failing), never a fixed time.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from devtools.localstack.worker import WorkerProcess
from stream.config.model_file import load_model
from stream.core.decode import Rejection, decode_event
from tests.integration.conftest import Deployment, short_model, wait_until
from tests.integration.hostile import HOSTILE_KINDS, hostile_messages
from tests.integration.workload import (
    Streamer,
    Workload,
    alert_ids,
    committed_events,
    committed_offsets,
    compare,
    drain_alert_ids,
    make_workload,
    silent_group,
    stored,
    tally_events,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.timeout(1200)]
MODEL = load_model("default")
SCALE = float(os.environ.get("FAULT_SCALE", "1"))
CLUSTER_SCALE = SCALE / 4
REPORT = Path(os.environ.get("FAULT_REPORT", ".fault-report.jsonl"))


def record(scenario: str, **figures: Any) -> None:
    """Print a scenario's figures and append them to the report file."""
    line = {"scenario": scenario, "scale": SCALE, **figures}
    print(f"\nFAULT {orjson.dumps(line).decode()}")
    with REPORT.open("ab") as out:
        out.write(orjson.dumps(line) + b"\n")


def send_all(d: Deployment, messages: list[tuple[str, str, dict[str, Any]]]) -> None:
    for role, key, doc in messages:
        d.send(role, key, doc)
    d.flush()


def warm_up(d: Deployment, work: Workload) -> None:
    """Send the warm-up phase and wait until every customer is stored (known, armed)."""
    send_all(d, work.warmup)
    everyone = len(work.customers)
    wait_until(lambda: stored(d.redis, d.settings.redis_prefix, work.customers) == everyone,
               timeout_s=180)  # fmt: skip


def settle(
    d: Deployment, work: Workload, also_expected: Iterable[str] = (), timeout_s: float = 300
) -> tuple[dict[str, Any], list[str]]:
    """Wait until the store equals the reference and every expected alert is published,
    then measure: events lost or double-counted in the store, and every alert on the
    topic up to its end offsets. Returns the figures and the alert ids read (in order)."""
    prefix = d.settings.redis_prefix

    def exact() -> bool:
        return compare(d.redis, prefix, work.reference(int(time.time() * 1000))).exact

    wait_until(exact, timeout_s=timeout_s, every_s=1.0)
    expected = work.expected_alert_ids() | set(also_expected)
    bootstrap, topic = d.stack.kafka_bootstrap, d.settings.topics.alerts
    alert_ids(bootstrap, topic, lambda got: expected <= set(got))  # wait for them, then:
    ids = drain_alert_ids(bootstrap, topic)
    lost, double_counted = tally_events(d.redis, prefix, work, int(time.time() * 1000))
    figures = {
        "customers": len(work.customers), "messages": work.size,
        "duplicate_deliveries": work.duplicates, "lost": lost, "double_counted": double_counted,
        "alerts_expected": len(expected), "alerts_lost": len(expected - set(ids)),
        "duplicate_alerts": len(ids) - len(set(ids)), "unexpected_alerts": len(set(ids) - expected),
    }  # fmt: skip
    assert (lost, double_counted) == (0, 0), figures
    assert figures["alerts_lost"] == 0 and figures["unexpected_alerts"] == 0, figures
    return figures, ids


def scored(worker: WorkerProcess) -> float:
    return worker.counters("engagement_events", "outcome").get("scored", 0.0)


def test_crash_loop_of_sigkills_loses_nothing(deploy: Callable[..., Deployment]) -> None:
    """SIGKILLs at random moments while events stream in leave exact scores (six at gate
    size, with 40k events; the planned kills below make sure of each protocol step)."""
    work = make_workload(MODEL, int(1500 * SCALE), int(40_000 * SCALE), seed=11)
    kills = int(6 * SCALE)
    d = deploy(ENGAGEMENT_SESSION_TIMEOUT="2s")
    d.start_worker()
    warm_up(d, work)
    streamer = Streamer(lambda m: d.send(*m), d.flush, work.main, chunks=kills)
    rng = random.Random(5)
    busy_at_kill = 0
    for _ in range(kills):
        streamer.release()
        time.sleep(rng.uniform(0.2, 2.5))  # a random kill point, not a synchronisation
        busy_at_kill += not streamer.done or scored(d.workers[-1]) == 0
        d.workers[-1].kill()
        d.start_worker()
    streamer.join()
    figures, _ = settle(d, work)
    assert busy_at_kill >= kills // 2, "most kills must hit a worker with work to do"
    record("crash loop (SIGKILL)", kills=kills, **figures)


# Each planned kill, in order: the worker SIGKILLs itself at that step of the protocol.
PLANNED_KILLS = ("mid_batch:2", "after_store_commit:2", "after_publish:1", "after_store_commit:1")


PLANNED_KILLS_ENV = {"ENGAGEMENT_SESSION_TIMEOUT": "2s", "ENGAGEMENT_BATCH_MAX": "500"}


def planned_kills_workload() -> Workload:
    return make_workload(MODEL, int(800 * SCALE), int(20_000 * SCALE), seed=31, prefix="p")


def warm_up_then_send(d: Deployment, work: Workload) -> None:
    """Warm up with a plain worker, stop it, then send the main phase for the planned kills.

    Every churner is known before its uninstall is read (an uninstall processed before the
    customer's warm-up, from another topic, finds no previous band and by design alerts
    nothing; then no worker ever publishes and after_publish is never reached)."""
    warmer = d.start_worker()
    warm_up(d, work)
    warmer.stop(signal.SIGTERM, timeout_s=40)
    assert warmer.proc is not None and warmer.proc.returncode == 0, warmer.log_path
    send_all(d, work.main)


def kill_at_each_step(d: Deployment, plans: Iterable[str] = PLANNED_KILLS) -> list[str]:
    """Run one worker per plan until it kills itself at its crash point (asserted from its
    exit status and log), then one worker without a plan. Returns the steps hit: a worker
    that finds nothing left to do before its point (the group has committed every input
    offset) is stopped instead, and its step is missing from the list."""
    ends = d.end_offsets()
    hit = []
    for plan in plans:
        worker = d.start_worker(wait_ready=False, FAULT_CRASH_AT=plan)
        wait_until(lambda w=worker: not w.alive or d.drained(ends), timeout_s=180, every_s=0.5)
        if worker.alive:
            worker.stop(signal.SIGTERM)
            continue
        returncode = worker.wait_exit()
        point = plan.partition(":")[0]
        assert returncode == -signal.SIGKILL, f"{plan}: exit {returncode}; see {worker.log_path}"
        assert f"crash point {point} reached" in worker.log_text(), worker.log_path
        hit.append(point)
    d.start_worker()
    return hit


def test_kills_at_each_step_of_the_commit_protocol_lose_nothing(
    deploy: Callable[..., Deployment],
) -> None:
    """A kill lands for certain mid-batch, after the store commit (before the publish and
    the offset commit) and after the publish (before the outbox is cleared): each replay
    after a restart counts nothing twice, loses nothing, and every alert fires once."""
    work = planned_kills_workload()
    d = deploy(**PLANNED_KILLS_ENV)
    warm_up_then_send(d, work)
    hit = kill_at_each_step(d)
    figures, _ = settle(d, work)
    assert set(hit) == {"mid_batch", "after_store_commit", "after_publish"}
    # The last worker resumed partitions its predecessors finished: nothing waits there.
    last = d.workers[-1]
    wait_until(lambda: not any(v for _, v in last.samples("engagement_consumer_lag")))
    record("planned kills at each step", kills=len(hit), **figures)


def test_crash_loop_on_the_redis_cluster_loses_nothing(
    cluster_deploy: Callable[..., Deployment],
) -> None:
    """The crash loop at an eighth of the size, with the store on a three-master cluster."""
    work = make_workload(MODEL, int(5000 * CLUSTER_SCALE / 2), int(200_000 * CLUSTER_SCALE / 2),
                         seed=21, prefix="k")  # fmt: skip
    kills = max(3, int(20 * CLUSTER_SCALE / 2))
    d = cluster_deploy(ENGAGEMENT_SESSION_TIMEOUT="2s")
    d.start_worker()
    warm_up(d, work)
    streamer = Streamer(lambda m: d.send(*m), d.flush, work.main, chunks=kills)
    rng = random.Random(21)
    for _ in range(kills):
        streamer.release()
        time.sleep(rng.uniform(0.2, 2.5))  # a random kill point, not a synchronisation
        d.workers[-1].kill()
        d.start_worker()
    streamer.join()
    figures, _ = settle(d, work)
    record("crash loop (SIGKILL), Redis Cluster of 3 masters", kills=kills, **figures)


def test_two_workers_one_killed_partitions_move_and_window_alerts_fire_once(
    deploy: Callable[..., Deployment], tmp_path: Path
) -> None:
    """SIGKILL one of two workers: scores stay exact and every alert fires once (published at
    least once, duplicates counted in the report)."""
    model_path = short_model(tmp_path, window="600s", bucket="1s")
    model = load_model(str(model_path))
    d = deploy(model=str(model_path), ENGAGEMENT_SESSION_TIMEOUT="2s")
    first, second = d.start_worker(), d.start_worker()
    # "now" once both workers run: the early group has 10 s left in its window, which two
    # worker start-ups on a loaded 2-core machine can use up.
    now = int(time.time() * 1000)
    work = make_workload(model, int(600 * SCALE), int(30_000 * SCALE), seed=14, prefix="t",
                         now_ms=now, warmup_age_ms=5000, spread_ms=10_000)  # fmt: skip
    # The early group's window ends ~20 s after "now", both workers running; the late one's
    # ~40 s after it, after the kill. Events sent after their window ended would be too old.
    early = silent_group(model, int(100 * SCALE), "se", now - 580_000)
    late = silent_group(model, int(100 * SCALE), "sl", now - 560_000)
    send_all(d, [m for s in (early, late) for m in s.messages])
    warm_up(d, work)
    streamer = Streamer(lambda m: d.send(*m), d.flush, work.main, chunks=4)
    streamer.release(2)
    window_ids = {a for s in (early, late) for a in s.alert_ids}
    early_ids = set(early.alert_ids)
    alert_ids(d.stack.kafka_bootstrap, d.settings.topics.alerts, lambda got: early_ids <= set(got))
    second.kill()
    streamer.release_all()
    streamer.join()
    figures, ids = settle(d, work, also_expected=window_ids)
    window_seen = [i for i in ids if i in window_ids]
    # Each window alert fired (its deterministic id is there, and settle found no unexpected
    # id); it is published at least once: the kill may land between a publish and the
    # outbox clear, and the survivor then publishes those alerts again under the same ids.
    assert set(window_seen) == window_ids, "every window alert fires"
    silent = {c: ("0", "churn_risk") for s in (early, late) for c in s.customers}
    assert compare(d.redis, d.settings.redis_prefix, silent).exact
    assert first.alive
    record("two workers, one SIGKILLed", window_alerts=len(window_ids),
           window_alert_duplicates=len(window_seen) - len(window_ids), **figures)  # fmt: skip


def test_sigterm_finishes_the_batch_commits_and_exits_within_grace(
    deploy: Callable[..., Deployment],
) -> None:
    """After SIGTERM the store holds exactly the committed prefix of every partition."""
    work = make_workload(MODEL, int(500 * SCALE), int(30_000 * SCALE), seed=15, prefix="g")
    d = deploy(ENGAGEMENT_SESSION_TIMEOUT="2s", ENGAGEMENT_SHUTDOWN_GRACE="20s")
    worker = d.start_worker()
    warm_up(d, work)
    streamer = Streamer(lambda m: d.send(*m), d.flush, work.main, chunks=2)
    streamer.release()
    wait_until(lambda: scored(worker) > len(work.warmup) + 100, every_s=0.05)
    asked = time.monotonic()
    worker.stop(signal.SIGTERM, timeout_s=25)
    took_s = time.monotonic() - asked
    assert worker.proc is not None and worker.proc.returncode == 0
    assert took_s < 20, f"shutdown took {took_s:.1f}s, beyond the 20 s grace"
    committed = committed_offsets(d.stack.kafka_bootstrap, d.settings.app_id)
    prefix_events = committed_events(d.stack.kafka_bootstrap, d.settings.topics.inputs, committed)
    partial = Workload(work.model, list(prefix_events), [], [], [], prefix_events)
    outcome = compare(d.redis, d.settings.redis_prefix, partial.reference(int(time.time() * 1000)))
    assert outcome.exact, f"{len(outcome.wrong)} customers differ from the committed prefix"
    untouched = [c for c in work.customers if c not in prefix_events]
    assert stored(d.redis, d.settings.redis_prefix, untouched) == 0
    d.start_worker()
    streamer.release_all()
    streamer.join()
    figures, _ = settle(d, work)
    record("SIGTERM mid-stream", shutdown_s=round(took_s, 1), **figures)


def test_late_and_out_of_order_events_score_and_too_old_ones_are_dead_lettered(
    deploy: Callable[..., Deployment],
) -> None:
    """Events from all over the 30-day window, shuffled, score exactly; older ones go to the DLQ."""
    day = 86_400_000
    work = make_workload(MODEL, int(300 * SCALE), int(15_000 * SCALE), seed=17, prefix="l",
                         spread_ms=29 * day)  # fmt: skip
    rng = random.Random(17)
    now = int(time.time() * 1000)
    too_old = [("clickstream", c, {"event_id": f"{c}-old{n}", "customer_id": c,
                "type": "page_view", "timestamp": now - rng.randrange(31 * day, 400 * day)})
               for n, c in enumerate(rng.choices(work.customers, k=int(200 * SCALE)))]  # fmt: skip
    d = deploy()
    worker = d.start_worker()
    warm_up(d, work)
    mixed = work.main + too_old
    rng.shuffle(mixed)
    send_all(d, mixed)
    figures, _ = settle(d, work)
    records = d.read(d.settings.topics.dlq, lambda rs: len(rs) >= len(too_old))
    assert len(records) == len(too_old)
    assert {dict(r.headers)["dlq.reason"] for r in records} == {b"too_old"}
    wait_until(lambda: worker.counters("engagement_dead_letters", "reason")
               == {"too_old": float(len(too_old))})  # fmt: skip
    record("late and out-of-order (29 days, shuffled)", too_old_dead_lettered=len(too_old),
           **figures)  # fmt: skip


def test_hostile_input_is_dead_lettered_and_good_events_still_score(
    deploy: Callable[..., Deployment],
) -> None:
    """Thousands of malformed messages of every kind between good ones: the same worker
    keeps scoring (2,000 at gate size, each kind many times)."""
    work = make_workload(MODEL, int(500 * SCALE), int(10_000 * SCALE), seed=18, prefix="h")
    rng = random.Random(18)
    now = int(time.time() * 1000)
    bad = hostile_messages(rng, int(2_000 * SCALE), work.customers, now)
    expected = Counter()
    for kind, (role, key, value) in bad:
        outcome = decode_event(value, key=key, topic_role=role, model=MODEL, now_ms=now,
                               fallback_id="x")  # fmt: skip
        assert isinstance(outcome, Rejection), f"a {kind} message decoded as a valid event"
        expected[outcome.reason] += 1
    d = deploy()
    worker = d.start_worker()
    pid = worker.proc.pid  # type: ignore[union-attr]
    warm_up(d, work)
    mixed: list[tuple[str, bytes | str | None, Any]] = [*work.main, *(m for _, m in bad)]
    rng.shuffle(mixed)
    for role, key, value in mixed:
        d.send(role, key, value)
    d.flush()
    figures, _ = settle(d, work)
    records = d.read(d.settings.topics.dlq, lambda rs: len(rs) >= len(bad), timeout_s=180)
    assert len(records) == len(bad)
    got = Counter(dict(r.headers)["dlq.reason"].decode() for r in records)
    assert got == expected
    assert all(dict(r.headers)["dlq.detail"] for r in records)
    assert worker.alive and worker.proc.pid == pid  # type: ignore[union-attr]
    assert worker.status("/health")[0] == 200  # type: ignore[index]
    record("hostile input", malformed=len(bad), kinds=len(HOSTILE_KINDS),
           reasons=dict(sorted(got.items())), **figures)  # fmt: skip
