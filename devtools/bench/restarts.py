"""How long scoring stops when workers restart: the timings of the restart scenarios.

A worker is a static member of its consumer group (``ENGAGEMENT_INSTANCE_ID``); a restarted
one reuses its predecessor's id. ``Progress`` polls the ``engagement_events_total`` counters
of the group's workers every 50 ms from a thread of its own, and each scenario reports:

- ``restart_to_first_batch_s``: from starting the replacement process to its first
  completed batch (input is waiting: the scenario releases more when it restarts);
- ``longest_gap_s``: the longest time in which no worker of the group completed a batch,
  from the last batch before the stop or kill to the first batch after the restart (for
  the rolling restart: over the whole roll).

The fault suite (``tests/integration/test_restarts.py``) runs these scenarios with exact
totals checked; ``python -m devtools.bench.restart_bench`` (``make bench-restarts``) runs them
for several rounds on the local stack and prints the medians.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from devtools.localstack.worker import WorkerProcess

__all__ = [
    "MAX_WAIT_S",
    "Progress",
    "Stop",
    "histogram_p99_s",
    "restart",
    "rolling_restart",
]

#: no scenario may wait longer than this for a worker's first batch
MAX_WAIT_S = 30.0
_POLL_S = 0.05

#: how the running worker ends: SIGKILL, SIGKILL and a replacement SIGKILLed as soon as its
#: web server answers (while it joins the group), or SIGTERM (waiting for its exit)
Stop = Literal["sigkill", "sigkill_joining", "sigterm"]

Spawn = Callable[[str], WorkerProcess]  # start a worker process as static member ``member``
Feed = Callable[[], None]  # release the next chunk of input


@dataclass
class Progress:
    """Polls the group's workers: when each first completed a batch, and when the group's
    total grew."""

    workers: list[WorkerProcess] = field(default_factory=list)
    grew_at: list[float] = field(default_factory=list)
    first_at: dict[int, float] = field(default_factory=dict)
    tick: Callable[[], None] | None = None
    tick_every_s: float = 0.5
    _done: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def watch(self, worker: WorkerProcess) -> None:
        self.workers.append(worker)

    def first_batch(self, worker: WorkerProcess, timeout_s: float = MAX_WAIT_S) -> float:
        """When ``worker`` first completed a batch (monotonic seconds); fails past
        ``timeout_s`` (a restart that waits that long is a failure, not a slow result)."""
        deadline = time.monotonic() + timeout_s
        while id(worker) not in self.first_at:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no batch from {worker.log_path.name} within {timeout_s:.0f}s"
                )
            if not worker.alive:
                raise AssertionError(f"{worker.log_path.name} exited; see {worker.log_path}")
            time.sleep(_POLL_S)
        return self.first_at[id(worker)]

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without a batch anywhere in the group between the last batch
        before ``start`` and the first one at or after ``end``."""
        marks = list(self.grew_at)
        before = [m for m in marks if m < start]
        after = [m for m in marks if m >= end]
        inside = [m for m in marks if start <= m < end]
        span = before[-1:] + inside + after[:1]
        return max((b - a for a, b in itertools.pairwise(span)), default=0.0)

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if self.tick is not None and now >= next_tick:
                self.tick()
                next_tick = now + self.tick_every_s
            grew = False
            for worker in list(self.workers):
                done = worker.events_done() if worker.alive else None
                if done is None:
                    continue
                if done > self._done.get(id(worker), 0.0):
                    grew = True
                    self._done[id(worker)] = done
                    self.first_at.setdefault(id(worker), time.monotonic())
            if grew:
                self.grew_at.append(time.monotonic())
            self._stop.wait(_POLL_S)


def restart(
    worker: WorkerProcess,
    member: str,
    how: Stop,
    spawn: Spawn,
    feed: Feed,
    progress: Progress,
) -> tuple[WorkerProcess, dict[str, float]]:
    """Give ``worker`` a backlog (``feed``), stop it ``how`` once it is working through
    it, start its replacement as the same static member at once with more input waiting,
    and time it; returns the replacement and the figures."""
    progress.first_batch(worker)
    before = worker.events_done() or 0.0
    feed()
    deadline = time.monotonic() + MAX_WAIT_S
    while (worker.events_done() or 0.0) <= before:  # mid-backlog
        assert time.monotonic() < deadline, "the worker never started on its backlog"
        time.sleep(0.01)
    stopped_at = time.monotonic()
    if how == "sigterm":
        worker.stop(signal.SIGTERM, timeout_s=40)
    else:
        worker.kill()
    if how == "sigkill_joining":
        joining = spawn(member)
        deadline = time.monotonic() + MAX_WAIT_S
        while joining.status("/ready") is None and joining.alive:  # its web server is up
            assert time.monotonic() < deadline, "the replacement's web server never answered"
            time.sleep(0.02)
        joining.kill()
    started_at = time.monotonic()
    replacement = spawn(member)
    feed()  # work is waiting when it is up
    progress.watch(replacement)
    first = progress.first_batch(replacement)
    return replacement, {
        "stop_s": round(started_at - stopped_at, 2),
        "restart_to_first_batch_s": round(first - started_at, 2),
        "longest_gap_s": round(progress.longest_gap(stopped_at, first), 2),
    }


def rolling_restart(
    workers: Sequence[WorkerProcess],
    members: Sequence[str],
    spawn: Spawn,
    progress: Progress,
    settle_s: float = 2.0,
) -> tuple[list[WorkerProcess], dict[str, float]]:
    """SIGTERM and restart each worker in turn (as its own static member), the next one
    ``settle_s`` after the previous replacement's first batch; input keeps flowing through
    ``progress.tick``. Returns the replacements and the figures of the whole roll: the
    slowest restart, the longest pause of one member's partitions (its last batch before
    the stop to its replacement's first), the longest gap of the whole group, and the p99
    event-to-store latency of the events stored during the roll."""
    began = time.monotonic()
    latency = [_latency_buckets(w, negate=True) for w in workers]
    replacements: list[WorkerProcess] = []
    restarts: list[float] = []
    pauses: list[float] = []
    for worker, member in zip(workers, members, strict=True):
        progress.first_batch(worker)
        latency.append(_latency_buckets(worker))
        stopped_at = time.monotonic()
        worker.stop(signal.SIGTERM, timeout_s=40)
        started_at = time.monotonic()
        replacement = spawn(member)
        progress.watch(replacement)
        first = progress.first_batch(replacement)
        restarts.append(first - started_at)
        pauses.append(first - max([m for m in progress.grew_at if m < stopped_at] or [began]))
        replacements.append(replacement)
        time.sleep(settle_s)  # steady running between the restarts, as a rollout would
    ended = time.monotonic()
    latency += [_latency_buckets(w) for w in replacements]
    merged: dict[float, float] = {}
    for buckets in latency:
        for bound, count in buckets.items():
            merged[bound] = merged.get(bound, 0.0) + count
    return replacements, {
        "roll_s": round(ended - began, 1),
        "restart_to_first_batch_max_s": round(max(restarts), 2),
        "member_pause_max_s": round(max(pauses), 2),
        "longest_gap_s": round(progress.longest_gap(began, ended), 2),
        "event_to_store_p99_s": histogram_p99_s(merged),
    }


def _latency_buckets(worker: WorkerProcess, *, negate: bool = False) -> dict[float, float]:
    """The worker's cumulative event-to-store histogram (``le`` -> count), negated for a
    baseline to subtract."""
    sign = -1.0 if negate else 1.0
    return {
        float(labels["le"]): sign * value
        for labels, value in worker.samples("engagement_event_to_store_seconds")
        if "le" in labels
    }


def histogram_p99_s(buckets: dict[float, float]) -> float:
    """The 99th percentile of a cumulative histogram (``le`` bound -> count) as the upper
    bound of the bucket holding it."""
    ordered = sorted(buckets.items())
    total = ordered[-1][1] if ordered else 0.0
    for bound, count in ordered:
        if total and count >= 0.99 * total:
            return bound
    return float("nan")
