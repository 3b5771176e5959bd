"""Deterministic crash points: the fault suite's way to kill a worker at a known step.

A SIGKILL from outside lands wherever the worker happens to be; the fault suite also needs
each step of the exactly-once protocol hit for certain, at a small size. With
``FAULT_CRASH_AT=point:n[,point:n...]`` the worker SIGKILLs itself the n-th time it
reaches ``point`` (counted from its start), after logging the point to stderr:

- ``mid_batch``: a commit round of the batch is decoded and evaluated and not yet stored
  (after a conflict round, what the earlier round stored stays stored);
- ``after_store_commit``: states, fingerprints and the alert outbox are in Redis, no alert
  is published and no offset committed;
- ``after_publish``: the alerts are on the alert topic, the outbox not yet cleared and no
  offset committed (a redelivery publishes them again, under the same ``alert_id``).

Unset (always, outside the fault suite), ``reached`` returns at once. The plan is read once,
when the worker's app is assembled (``crash_plan()``).
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from collections.abc import Mapping
from typing import Literal, get_args

__all__ = ["ENV", "CrashPlan", "CrashPoint", "crash_plan"]

ENV = "FAULT_CRASH_AT"
CrashPoint = Literal["mid_batch", "after_store_commit", "after_publish"]


class CrashPlan:
    """When to kill this process: the n-th arrival at each named point."""

    __slots__ = ("_at", "_seen")

    def __init__(self, at: Mapping[CrashPoint, int]) -> None:
        self._at = dict(at)
        self._seen: Counter[CrashPoint] = Counter()

    @classmethod
    def parse(cls, text: str) -> CrashPlan:
        """``point:n,point:n``; a point without ``:n`` means its first arrival."""
        at: dict[CrashPoint, int] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, count = item.partition(":")
            if name not in get_args(CrashPoint):
                raise ValueError(f"{ENV}: unknown crash point {name!r}")
            if count and not (count.isdigit() and int(count) > 0):
                raise ValueError(f"{ENV}: {item!r} needs a positive count")
            at[name] = int(count or 1)  # type: ignore[index]
        return cls(at)

    def reached(self, point: CrashPoint) -> None:
        """Count an arrival at ``point``; SIGKILL this process if it is the planned one."""
        if not self._at:
            return
        self._seen[point] += 1
        if self._seen[point] == self._at.get(point):
            sys.stderr.write(f"crash point {point} reached ({self._seen[point]}): SIGKILL\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def crash_plan(env: Mapping[str, str] = os.environ) -> CrashPlan:
    """The plan in the environment (none when ``FAULT_CRASH_AT`` is unset; the name is the fault
    suite's, like its ``FAULT_SCALE``, not a worker setting)."""
    return CrashPlan.parse(env.get(ENV, ""))
