"""Measure a consuming process from outside: events per second, CPU seconds per million
events and peak RSS of the contender's own processes, plus the broker's and Redis's CPU
over the same span. Progress is polled; the timed span starts at the first progress seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["Measurement", "cpu_seconds", "measure", "peak_rss_mb", "percentile"]


@dataclass(slots=True)
class Measurement:
    """One contender's run over (part of) the data set."""

    name: str
    events: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    complete: bool
    processes: int = 1
    stack_cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Events per second over the timed span."""
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_million(self) -> float:
        """CPU seconds of the contender's processes per million events."""
        return self.cpu_seconds / self.events * 1e6 if self.events else math.inf

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            events_per_s=round(self.rate, 1),
            cpu_s_per_million=round(self.cpu_per_million, 2),
            events_per_cpu_s=round(self.events / self.cpu_seconds, 1) if self.cpu_seconds else 0,
            cpu_utilisation=round(self.cpu_seconds / self.seconds, 3) if self.seconds else 0,
            stack_cpu_s_per_million={
                name: round(cpu / self.events * 1e6, 2) if self.events else None
                for name, cpu in self.stack_cpu_seconds.items()
            },
        )
        return data


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of the given processes (all their threads)."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(
    name: str,
    progress: Callable[[], int],
    pids: Sequence[int],
    expect: int,
    *,
    cap_s: float,
    every_s: float = 0.02,
    start_timeout_s: float = 120.0,
    alive: Callable[[], bool] = lambda: True,
    stack_pids: Mapping[str, int] | None = None,
    ready: Callable[[], bool] = lambda: True,
) -> Measurement:
    """Poll ``progress`` until it reaches ``expect`` (or ``cap_s`` passed since it started).

    The timed span runs from the first poll that sees progress (and ``ready``) to the
    poll that sees completion, so start-up and group joins are excluded alike for all.
    """
    stack = dict(stack_pids or {})
    deadline = time.monotonic() + start_timeout_s
    start: tuple[float, int, float, dict[str, float]] | None = None
    while True:
        if not alive():
            raise RuntimeError(f"{name}: the contender process exited before finishing")
        count = progress()
        now = time.monotonic()
        if start is None:
            if count > 0 and ready():
                start = (now, count, cpu_seconds(pids), _stack_cpu(stack))
            elif now > deadline:
                raise RuntimeError(f"{name}: no progress within {start_timeout_s:.0f}s")
        elif count >= expect or now - start[0] >= cap_s:
            break
        time.sleep(every_s)
    began, first, cpu0, stack0 = start
    stack1 = _stack_cpu(stack)
    return Measurement(
        name=name,
        events=count - first,
        seconds=now - began,
        cpu_seconds=cpu_seconds(pids) - cpu0,
        peak_rss_mb=max((peak_rss_mb(pid) for pid in pids), default=0.0),
        complete=count >= expect,
        processes=len(pids),
        stack_cpu_seconds={k: round(stack1[k] - stack0[k], 3) for k in stack},
    )


def _stack_cpu(stack: Mapping[str, int]) -> dict[str, float]:
    return {name: cpu_seconds([pid]) for name, pid in stack.items()}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
