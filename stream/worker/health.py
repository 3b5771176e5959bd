"""Liveness and readiness, as Kubernetes probes see them.

Liveness answers "would a restart help?": only a crashed agent or a stuck probe loop
makes the worker not alive. A Redis or Kafka outage does not (a restart cannot fix
it, and the worker heals itself when the dependency returns).

Readiness answers "is this worker doing its job right now?": Redis and Kafka answered
the last probe, the last batch or sweep succeeded, and the worker keeps up (the window
sweeper is not behind and batches keep completing while there is lag).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Health", "Probe", "messages_waiting"]


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
    probes: dict[str, Probe] = field(default_factory=dict)
    processing_ok: bool = True
    processing_error: str | None = None
    last_progress_ms: int = 0
    last_sweep_ms: int = 0
    sweep_behind_ms: int = 0
    lag: int = 0
    agent_crashed: str | None = None
    rebalancing_since_ms: int | None = None

    def __post_init__(self) -> None:
        self.last_progress_ms = self.last_sweep_ms = self.clock_ms()

    def record_probe(self, name: str, ok: bool, detail: str = "ok") -> None:
        """Store the outcome of a dependency check (``redis``, ``kafka``)."""
        self.probes[name] = Probe(ok, detail, self.clock_ms())

    def record_progress(self) -> None:
        """A batch completed."""
        self.last_progress_ms = self.clock_ms()

    def record_sweep(self, behind_ms: int) -> None:
        """A window sweep completed; the oldest due customer had waited ``behind_ms``."""
        self.last_sweep_ms = self.clock_ms()
        self.sweep_behind_ms = behind_ms

    def record_rebalancing(self, rebalancing: bool) -> None:
        """Whether the consumer group is rebalancing now (no batch runs meanwhile)."""
        if not rebalancing:
            self.rebalancing_since_ms = None
        elif self.rebalancing_since_ms is None:
            self.rebalancing_since_ms = self.clock_ms()

    def record_processing(self, ok: bool, error: str | None = None) -> None:
        """The outcome of the last batch or sweep attempt (failed ones are retried)."""
        self.processing_ok, self.processing_error = ok, error

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """Alive unless the agent crashed or the probe loop stopped running."""
        now = self.clock_ms()
        stale = [n for n, p in self.probes.items() if now - p.at_ms > 10 * self.probe_interval_ms]
        alive = self.agent_crashed is None and not stale
        return alive, {"alive": alive, "agent_crashed": self.agent_crashed, "stale_probes": stale}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when every check passes; the body says which one failed and why."""
        checks = {name: self._probe_check(name) for name in ("redis", "kafka")}
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

    def _keeping_up(self) -> tuple[bool, str]:
        if self.sweep_behind_ms > self.max_sweep_behind_ms:
            return False, f"window sweeper {self.sweep_behind_ms} ms behind"
        since_sweep = self.clock_ms() - self.last_sweep_ms
        if since_sweep > self.stall_ms:
            return False, f"no window sweep completed for {since_sweep} ms"
        idle = self.clock_ms() - self.last_progress_ms
        if self.lag > 0 and idle > self.stall_ms:
            return False, f"{self.lag} messages waiting, no batch completed for {idle} ms" + (
                self._waiting_on()
            )
        return True, "ok"

    def _waiting_on(self) -> str:
        if self.rebalancing_since_ms is None:
            return ""
        since = self.clock_ms() - self.rebalancing_since_ms
        return f"; the consumer group has been rebalancing for {since} ms"
