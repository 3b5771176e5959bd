"""The worker's stage timings: each message's time in Kafka and waiting for its batch,
a batch's laps, and the per-batch stages a processed batch records."""

from __future__ import annotations

import asyncio
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.adapters.metrics import Metrics
from stream.config.settings import TopicNames
from stream.ports import Incoming
from stream.worker.processor import BatchProcessor
from stream.worker.stages import BATCH_STAGES, BatchStages, fetch_waits
from tests.doubles import CrashPlan, MemoryScoreStore, RecordingPublisher
from tests.factories import NOW_MS, default_model, native
from tests.profiles import examples


def _message(offset: int, timestamp_ms: int) -> Incoming:
    return Incoming("t", 0, offset, b"k", b"v", timestamp_ms)


@st.composite
def _batches(draw: st.DrawFn) -> tuple[list[Incoming], list[tuple[int, int]], int]:
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=5))
    arrived = sorted(draw(st.lists(st.integers(0, 10_000), min_size=len(sizes),
                                   max_size=len(sizes))))  # fmt: skip
    batch: list[Incoming] = []
    arrivals: list[tuple[int, int]] = []
    for size, at in zip(sizes, arrived, strict=True):
        arrivals.append((len(batch), at))
        batch += [_message(len(batch), draw(st.integers(0, 12_000))) for _ in range(size)]
    return batch, arrivals, arrived[-1] + draw(st.integers(0, 5_000))


@settings(max_examples=examples(200))
@given(_batches())
def test_fetch_waits_match_a_message_by_message_reference(
    case: tuple[list[Incoming], list[tuple[int, int]], int],
) -> None:
    batch, arrivals, closed_ms = case
    in_kafka, waiting = fetch_waits(batch, arrivals, closed_ms)
    for index, message in enumerate(batch):
        arrived_ms = max(at for start, at in arrivals if start <= index)
        assert in_kafka[index] == max(0, arrived_ms - message.timestamp_ms) / 1000
        assert waiting[index] == (closed_ms - arrived_ms) / 1000
    assert len(in_kafka) == len(waiting) == len(batch)


def test_laps_charge_the_time_since_the_previous_lap() -> None:
    stages = BatchStages()
    time.sleep(0.02)
    stages.lap("store")
    stages.lap("process")
    assert stages.spent["store"] >= 0.02 > stages.spent["process"]
    assert set(stages.spent) == set(BATCH_STAGES)


def _processed(batches: int) -> Metrics:
    model = default_model()
    metrics = Metrics()
    processor = BatchProcessor(model, MemoryScoreStore(), RecordingPublisher(CrashPlan()),
                               TopicNames(), clock_ms=lambda: NOW_MS, metrics=metrics)  # fmt: skip
    for n in range(batches):
        value = native("page_view", f"c{n}", NOW_MS - 1000)
        asyncio.run(processor.process([Incoming(TopicNames().clickstream, 0, n, b"c", value,
                                                NOW_MS - 1000)]))  # fmt: skip
    asyncio.run(processor.sweep([0]))  # a sweep is not a batch of messages: not timed
    return metrics


def _count(metrics: Metrics, stage: str) -> float:
    samples = next(iter(metrics.stage.labels(stage).collect())).samples
    return float(next(s.value for s in samples if s.name.endswith("_count")))


def test_each_processed_batch_records_its_stages_once() -> None:
    metrics = _processed(3)
    assert [_count(metrics, stage) for stage in ("process", "store", "publish")] == [3, 3, 3]
    assert _count(metrics, "accounts") == 0  # the default model has no accounts
