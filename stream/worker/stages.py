"""Where an event's time goes in the worker: the stages ``engagement_stage_seconds`` times.

Per event: ``kafka`` (from the message's Kafka timestamp to the fetch reply that brought
it) and ``batch`` (from that reply to the batch closing). Per batch: ``process`` (decoding
and scoring, in the worker's own CPU), ``store`` (Redis loads, commits and index writes),
``publish`` (alerts and dead letters, until Kafka acknowledged them), ``accounts`` (the
account roll-up, models with accounts only) and ``offset_commit`` (one commit of the
finished batches' offsets). Comparing them with the end-to-end latency tells the host's
noise (a slow Kafka ack, a batch waiting for the CPU) from the design's own costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Literal, get_args

from stream.ports import Incoming

__all__ = [
    "BATCH_STAGES",
    "STAGES",
    "BatchStages",
    "Stage",
    "StageObserver",
    "fetch_waits",
    "unobserved",
]

Stage = Literal["kafka", "batch", "process", "store", "publish", "accounts", "offset_commit"]
STAGES: tuple[Stage, ...] = get_args(Stage)
#: the stages a processed batch is split into (``BatchStages``)
BATCH_STAGES: tuple[Stage, ...] = ("process", "store", "publish", "accounts")

#: told the seconds of one or more observations of a stage
StageObserver = Callable[[Stage, Sequence[float]], None]


def unobserved(_stage: Stage, _seconds: Sequence[float]) -> None:
    """The observer that keeps nothing (the default outside the worker)."""
    return None


class BatchStages:
    """A batch's time split into stages by laps: ``lap(stage)`` charges the time since the
    previous lap (or the start) to ``stage``."""

    __slots__ = ("_since", "spent")

    def __init__(self) -> None:
        self.spent: dict[Stage, float] = dict.fromkeys(BATCH_STAGES, 0.0)
        self._since = perf_counter()

    def lap(self, stage: Stage) -> None:
        now = perf_counter()
        self.spent[stage] += now - self._since
        self._since = now


def fetch_waits(
    batch: Sequence[Incoming], arrivals: Sequence[tuple[int, int]], closed_ms: int
) -> tuple[list[float], list[float]]:
    """Each message's seconds in Kafka and waiting for its batch to close.

    ``arrivals`` holds, per fetch reply that added to the batch, the index of its first
    message in ``batch`` and the wall-clock millisecond it arrived, in order."""
    in_kafka: list[float] = []
    waiting: list[float] = []
    ends = [start for start, _ in arrivals[1:]] + [len(batch)]
    for (start, arrived_ms), end in zip(arrivals, ends, strict=True):
        in_kafka += [max(0, arrived_ms - m.timestamp_ms) / 1000 for m in batch[start:end]]
        waiting += [max(0, closed_ms - arrived_ms) / 1000] * (end - start)
    return in_kafka, waiting
