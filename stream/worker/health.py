"""Liveness and readiness, as Kubernetes probes see them.

Liveness answers "would a restart help?": a crashed agent, a stuck probe loop, or a
stuck pipeline make the worker not alive. A pipeline is stuck when, with Redis and Kafka
answering and no batch failing, the worker has been out of its group (joining, waiting for
an assignment, or not resuming its fetches after one) for longer than ``stuck_ms``: nothing
outside the worker explains such a wait (the broker drops a member that does not rejoin
within the rebalance timeout, 60 s), and a restart (a static member rejoins in seconds)
ends it. A Redis or Kafka outage
does not make the worker not alive (a restart cannot fix it, and the worker heals itself
when the dependency returns).

Readiness answers "is this worker doing its job right now?": Redis and Kafka answered
the last probe, the worker is a member of its consumer group with its partitions (not
joining it, nor waiting for an assignment in a rebalance), the last batch or sweep
succeeded, and the worker keeps up (the window sweeper is not behind and batches keep
completing while there is lag).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["GroupPhase", "Health", "Probe", "messages_waiting"]

#: where the worker stands in its consumer group: before its first assignment, in a later
#: rebalance before the new assignment, assigned but not fetching yet, or fetching
GroupPhase = Literal["joining", "rebalancing", "resuming", "member"]
_WAITING = {
    "joining": "joining consumer group",
    "rebalancing": "rebalancing: waiting for partition assignment",
    "resuming": "partitions assigned, resuming fetches",
}


def messages_waiting(highwater: int, last_processed: int | None, resumed_from: int) -> int:
    """Messages of one partition this worker still has to process: from the later of the
    one after the last it processed and the committed offset it resumed the partition
    from at its assignment, up to the high watermark (the next offset to be written).

    The resume point matters: a partition assigned at its end offset has nothing waiting
    although this worker never processed a message of it (a restart after the group
    caught up, or a rebalance that hands a finished partition back)."""
    start = resumed_from if last_processed is None else max(last_processed + 1, resumed_from)
    return max(0, highwater - start)


@dataclass(slots=True)
class Probe:
    """The last result of one dependency check."""

    ok: bool = False
    detail: str = "not checked yet"
    at_ms: int = 0


@dataclass(slots=True)
class Health:
    """Collects probe results and progress marks, and judges liveness and readiness."""

    clock_ms: Callable[[], int]
    probe_interval_ms: int = 2000
    max_sweep_behind_ms: int = 5000
    stall_ms: int = 30_000
    stuck_ms: int = 90_000
    probes: dict[str, Probe] = field(default_factory=dict)
    processing_ok: bool = True
    processing_error: str | None = None
    last_progress_ms: int = 0
    last_sweep_ms: int = 0
    sweep_behind_ms: int = 0
    lag: int = 0
    agent_crashed: str | None = None
    group_phase: GroupPhase = "joining"
    group_phase_ms: int = 0

    def __post_init__(self) -> None:
        self.last_progress_ms = self.last_sweep_ms = self.group_phase_ms = self.clock_ms()

    def record_group(self, phase: GroupPhase) -> None:
        """The worker's place in its consumer group changed (kept since when it did)."""
        if phase == "rebalancing" and self.group_phase == "joining":
            return  # the first join is still the first join
        if phase != self.group_phase:
            self.group_phase, self.group_phase_ms = phase, self.clock_ms()

    def record_probe(self, name: str, ok: bool, detail: str = "ok") -> None:
        """Store the outcome of a dependency check (``redis``, ``kafka``)."""
        self.probes[name] = Probe(ok, detail, self.clock_ms())

    def record_progress(self) -> None:
        """A batch completed (so the fetches of an assignment flow again)."""
        self.last_progress_ms = self.clock_ms()
        if self.group_phase == "resuming":
            self.record_group("member")

    def record_sweep(self, behind_ms: int) -> None:
        """A window sweep completed; the oldest due customer had waited ``behind_ms``."""
        self.last_sweep_ms = self.clock_ms()
        self.sweep_behind_ms = behind_ms

    def record_processing(self, ok: bool, error: str | None = None) -> None:
        """The outcome of the last batch or sweep attempt (failed ones are retried)."""
        self.processing_ok, self.processing_error = ok, error

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """Alive unless the agent crashed, the probe loop stopped running or the pipeline
        is stuck."""
        now = self.clock_ms()
        stale = [n for n, p in self.probes.items() if now - p.at_ms > 10 * self.probe_interval_ms]
        stuck = self._stuck()
        alive = self.agent_crashed is None and not stale and stuck is None
        return alive, {"alive": alive, "agent_crashed": self.agent_crashed, "stale_probes": stale,
                       "stuck": stuck}  # fmt: skip

    def _stuck(self) -> str | None:
        """Why the pipeline waits on nothing outside the worker, past ``stuck_ms``."""
        healthy = all(self._probe_check(n)[0] for n in ("redis", "kafka")) and self.processing_ok
        if not healthy:
            return None  # an outage or a failing batch: a restart would not help
        now = self.clock_ms()
        out_of_group = now - self.group_phase_ms
        if self.group_phase != "member" and out_of_group > self.stuck_ms:
            return f"{_WAITING[self.group_phase]} for {out_of_group} ms"
        return None

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when every check passes; the body says which one failed and why."""
        checks = {name: self._probe_check(name) for name in ("redis", "kafka")}
        checks["group"] = self._group_check()
        checks["processing"] = (self.processing_ok, self.processing_error or "ok")
        checks["keeping_up"] = self._keeping_up()
        ready = all(ok for ok, _ in checks.values())
        body = {
            "ready": ready,
            "checks": {n: {"ok": ok, "detail": detail} for n, (ok, detail) in checks.items()},
        }
        return ready, body

    def _probe_check(self, name: str) -> tuple[bool, str]:
        probe = self.probes.get(name, Probe())
        if not probe.ok:
            return False, probe.detail
        age = self.clock_ms() - probe.at_ms
        if age > 3 * self.probe_interval_ms:
            return False, f"last successful check {age} ms ago"
        return True, "ok"

    def _group_check(self) -> tuple[bool, str]:
        if self.group_phase == "member":
            return True, "ok"
        waited = self.clock_ms() - self.group_phase_ms
        return False, f"{_WAITING[self.group_phase]} for {waited} ms"

    def _keeping_up(self) -> tuple[bool, str]:
        if self.sweep_behind_ms > self.max_sweep_behind_ms:
            return False, f"window sweeper {self.sweep_behind_ms} ms behind"
        since_sweep = self.clock_ms() - self.last_sweep_ms
        if since_sweep > self.stall_ms:
            return False, f"no window sweep completed for {since_sweep} ms"
        idle = self.clock_ms() - self.last_progress_ms
        if self.lag > 0 and idle > self.stall_ms:
            return False, f"{self.lag} messages waiting, no batch completed for {idle} ms"
        return True, "ok"
