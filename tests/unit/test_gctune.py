"""The garbage-collector tuning: freeze after a batch, a full collection when due."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from stream.worker.gctune import GcClock, GcTuner


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_after_batch_raises_the_young_threshold_only() -> None:
    gc.set_threshold(700, 10, 10)
    GcTuner(young_threshold=50_000).after_batch()
    assert gc.get_threshold() == (50_000, 10, 10)
    GcTuner(young_threshold=1_000).after_batch()  # never lowered
    assert gc.get_threshold() == (50_000, 10, 10)


def test_disabled_tuner_keeps_the_thresholds() -> None:
    gc.set_threshold(700, 10, 10)
    GcTuner(enabled=False).after_batch()
    assert gc.get_threshold() == (700, 10, 10)


def test_after_batch_freezes_what_is_alive() -> None:
    kept = [{"n": n} for n in range(1000)]
    GcTuner().after_batch()
    assert gc.get_freeze_count() >= len(kept)


def test_disabled_tuner_freezes_nothing() -> None:
    GcTuner(enabled=False).after_batch()
    assert gc.get_freeze_count() == 0


def test_a_full_collection_frees_frozen_cycles_when_due() -> None:
    now = [0.0]
    tuner = GcTuner(full_every_s=60.0, clock=lambda: now[0])

    class Node:
        other: object = None

    def cycle() -> None:
        a, b = Node(), Node()
        a.other, b.other = b, a

    cycle()  # garbage, but in a cycle: only the collector frees it
    tuner.after_batch()
    frozen = gc.get_freeze_count()
    assert tuner.full_collections == 0
    now[0] = 61.0
    tuner.after_batch()
    assert tuner.full_collections == 1
    assert gc.get_freeze_count() < frozen
    assert not any(type(o) is Node for o in gc.get_objects())


def test_clock_measures_collections() -> None:
    clock = GcClock()
    clock.install()
    try:
        gc.collect()
    finally:
        clock.uninstall()
    assert clock.collections >= 1
    assert clock.seconds > 0
    counted = clock.collections
    gc.collect()
    assert clock.collections == counted  # uninstalled: no longer counting
