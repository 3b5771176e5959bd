"""Keep Python's cyclic garbage collector off the worker's long-lived state.

The worker caches the last committed state of up to 200,000 customers (several objects
each), and every batch replaces about one state per event. CPython's full collections
walk every tracked object, and they run each time the objects that survived younger
collections grow by a quarter, so with a large cache they cost tens of µs per event.

After each batch the tuner *freezes* everything alive (``gc.freeze()``: moved to a
permanent generation that collections skip; objects there are still freed by reference
counting as soon as nothing refers to them, which is how replaced states go). Only cyclic
garbage among frozen objects would wait, so every ``full_every_s`` the tuner unfreezes,
runs one full collection and freezes again.

It also raises the young generation's threshold (``young_threshold`` net new container
objects, Python's default is 700) so a batch's new states are frozen before any
collection has walked them: with the default, the young collections of a batch of
2,000 events walked each new state once or twice, about a tenth of the worker's CPU.
``GcClock`` measures the time spent in the collector (``engagement_gc_seconds_total``).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

__all__ = ["GcClock", "GcTuner"]


class GcClock:
    """Accumulates the wall time the cyclic collector runs (via ``gc.callbacks``)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.seconds = 0.0
        self.collections = 0
        self._began: float | None = None
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._callback)
            self._installed = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = self.clock()
        elif self._began is not None:
            self.seconds += self.clock() - self._began
            self.collections += 1
            self._began = None


class GcTuner:
    """Freezes the heap after each batch; one full collection every ``full_every_s``."""

    def __init__(
        self,
        enabled: bool = True,
        full_every_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        young_threshold: int = 100_000,
    ) -> None:
        self.enabled = enabled
        self.young_threshold = young_threshold
        self.full_every_s = full_every_s
        self.clock = clock
        self.last_full = clock()
        self.full_collections = 0

    def after_batch(self) -> None:
        """Call between batches, when only long-lived objects should be alive."""
        if not self.enabled:
            return
        young, *older = gc.get_threshold()
        if young < self.young_threshold:
            gc.set_threshold(self.young_threshold, *older)
        if self.clock() - self.last_full >= self.full_every_s:
            gc.unfreeze()
            gc.collect()
            self.last_full = self.clock()
            self.full_collections += 1
        gc.freeze()
