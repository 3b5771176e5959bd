"""Snapshots of every eligible customer at regular moments, with their churn labels.

History is replayed in event time through the real core (:mod:`stream.event_files.replay`);
at each snapshot moment ``T`` every customer the worker would know (first event before
``T``), who has a label, was first seen at or before ``T`` and had not churned by ``T``,
becomes one row: the model's score and factor breakdown at ``T``, the customer's tenure,
the naive baselines (events in the model's window, and events in the last 30 days) and the
label "churns within the horizon".
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np

from stream.core.events import Event
from stream.core.model import ScoringModel
from stream.event_files.labels import Label
from stream.event_files.replay import Replay

__all__ = [
    "DAY_MS",
    "NAIVE_30D_MS",
    "Cadence",
    "Snapshots",
    "collect",
    "month_start",
    "snapshot_times",
]

DAY_MS = 86_400_000
NAIVE_30D_MS = 30 * DAY_MS
Cadence = Literal["weekly", "monthly"]


@dataclass(slots=True)
class Snapshots:
    """One row per (snapshot moment, eligible customer)."""

    factors: tuple[str, ...]
    at_ms: list[int] = field(default_factory=list)
    customer: list[str] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    band: list[str] = field(default_factory=list)
    naive: list[int] = field(default_factory=list)
    naive_30d: list[int] = field(default_factory=list)
    tenure_days: list[float] = field(default_factory=list)
    points: list[Sequence[float]] = field(default_factory=list)  # lists, or arrays of "d"

    def __len__(self) -> int:
        return len(self.at_ms)

    def extend(self, other: Snapshots) -> None:
        """Append ``other``'s rows (same factors)."""
        for name in _COLUMNS:
            getattr(self, name).extend(getattr(other, name))

    def ordered(self, first_seen: Mapping[str, int]) -> Snapshots:
        """The rows by snapshot moment, then by customers' first-seen moment and id."""
        order = sorted(range(len(self)), key=lambda i: (
            self.at_ms[i], first_seen.get(self.customer[i], 0), self.customer[i]))  # fmt: skip
        out = Snapshots(factors=self.factors)
        for name in _COLUMNS:
            column = getattr(self, name)
            getattr(out, name).extend(column[i] for i in order)
        return out

    def mask(self, keep: Callable[[int], bool]) -> np.ndarray:
        """Boolean mask of rows whose snapshot moment passes ``keep``."""
        return np.array([keep(t) for t in self.at_ms], dtype=bool)

    def matrix(self) -> np.ndarray:
        """Factor points as a (rows, factors) array."""
        if not self.points:
            return np.zeros((0, len(self.factors)))
        return np.asarray(self.points, dtype=float)


_COLUMNS = ("at_ms", "customer", "label", "score", "band", "naive", "naive_30d", "tenure_days",
            "points")  # fmt: skip


def month_start(millis: int, months_later: int = 0) -> int:
    """Midnight UTC of the first day of the month of ``millis``, shifted by whole months."""
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    index = moment.year * 12 + moment.month - 1 + months_later
    first = datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
    return int(first.timestamp() * 1000)


def snapshot_times(cadence: Cadence, first_ms: int, last_ms: int) -> list[int]:
    """Snapshot moments in [first_ms, last_ms]: Mondays or first days of months, 00:00 UTC."""
    times = []
    if cadence == "monthly":
        moment = month_start(first_ms)
        if moment < first_ms:
            moment = month_start(first_ms, 1)
        while moment <= last_ms:
            times.append(moment)
            moment = month_start(moment, 1)
        return times
    start = datetime.fromtimestamp(first_ms / 1000, tz=UTC)
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    day += timedelta(days=(7 - day.weekday()) % 7)
    moment = int(day.timestamp() * 1000)
    if moment < first_ms:
        moment += 7 * DAY_MS
    while moment <= last_ms:
        times.append(moment)
        moment += 7 * DAY_MS
    return times


def collect(
    model: ScoringModel,
    events: Sequence[Event],
    labels: dict[str, Label],
    times: Sequence[int],
    horizon_ms: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[Snapshots, Replay]:
    """Replay ``events`` through ``model`` and take a snapshot at each of ``times``."""
    factors = model.factors
    rows = Snapshots(factors=factors)
    stamps: dict[str, list[int]] = {}
    for event in events:
        stamps.setdefault(event.customer_id, []).append(event.timestamp_ms)

    def on_stop(at_ms: int, replay: Replay) -> None:
        for customer_id, first in replay.first_seen.items():
            label = labels.get(customer_id)
            if label is None or not _eligible(label, first, at_ms):
                continue
            state = replay.states[customer_id]
            breakdown = replay.breakdowns.get(customer_id, {})
            times_of = stamps[customer_id]
            upto = bisect.bisect_left(times_of, at_ms)
            naive = upto - bisect.bisect_left(times_of, at_ms - model.window_ms)
            naive_30d = upto - bisect.bisect_left(times_of, at_ms - NAIVE_30D_MS)
            churns = label.churn_ms is not None and label.churn_ms <= at_ms + horizon_ms
            rows.at_ms.append(at_ms)
            rows.customer.append(customer_id)
            rows.label.append(int(churns))
            rows.score.append(state.score_cp / 100)
            rows.band.append(state.band or model.bands.band_for(0))
            rows.naive.append(naive)
            rows.naive_30d.append(naive_30d)
            rows.tenure_days.append((at_ms - first) / DAY_MS)
            rows.points.append([breakdown.get(f, 0) / 100 for f in factors])

    replay = Replay(model)
    replay.run(events, times, on_stop, progress)
    return rows, replay


def _eligible(label: Label, first_event_ms: int, at_ms: int) -> bool:
    first = label.first_seen_ms if label.first_seen_ms is not None else first_event_ms
    if first > at_ms or first_event_ms >= at_ms:
        return False
    return label.churn_ms is None or label.churn_ms > at_ms
