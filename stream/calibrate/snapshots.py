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
from typing import Any, Literal

import numpy as np

from stream.core.events import Event
from stream.core.model import ScoringModel
from stream.event_files.labels import Label
from stream.event_files.replay import Replay

__all__ = [
    "DAY_MS",
    "NAIVE_30D_MS",
    "Cadence",
    "RowsBuilder",
    "Snapshots",
    "collect",
    "month_start",
    "snapshot_times",
]

DAY_MS = 86_400_000
NAIVE_30D_MS = 30 * DAY_MS
Cadence = Literal["weekly", "monthly"]


# A column of rows: a list while rows are appended one by one (the core replay), a numpy
# array once compacted (:meth:`Snapshots.compact`, :class:`RowsBuilder`), which holds a row
# in about 60 bytes plus 8 per factor instead of several hundred as Python objects.
Column = Any


@dataclass(slots=True)
class Snapshots:
    """One row per (snapshot moment, eligible customer)."""

    factors: tuple[str, ...]
    at_ms: Column = field(default_factory=list)
    customer: Column = field(default_factory=list)
    label: Column = field(default_factory=list)
    score: Column = field(default_factory=list)
    band: Column = field(default_factory=list)
    naive: Column = field(default_factory=list)
    naive_30d: Column = field(default_factory=list)
    tenure_days: Column = field(default_factory=list)
    points: Column = field(default_factory=list)  # lists, arrays of "d", or a 2-D array

    def __len__(self) -> int:
        return len(self.at_ms)

    def extend(self, other: Snapshots) -> None:
        """Append ``other``'s rows (same factors; this one's columns still lists)."""
        for name in _COLUMNS:
            getattr(self, name).extend(getattr(other, name))

    def ordered(self, first_seen: Mapping[str, int]) -> Snapshots:
        """The rows by snapshot moment, then by customers' first-seen moment and id."""
        customers = np.asarray(self.customer, dtype=object)
        firsts = np.fromiter((first_seen.get(c, 0) for c in customers), np.int64, len(customers))
        return self.taken(self.order_by(firsts))

    def order_by(self, first_ms: np.ndarray) -> np.ndarray:
        """The indices of the rows by snapshot moment, then ``first_ms`` (one per row), then
        customer id (code-point order, as SQL's byte order of UTF-8); stable. Ids are ranked
        as they are, never copied into a fixed-width array as long as the longest id."""
        _, rank = np.unique(np.asarray(self.customer, dtype=object), return_inverse=True)
        return np.lexsort((rank.reshape(-1), first_ms, np.asarray(self.at_ms, np.int64)))

    def taken(self, order: np.ndarray) -> Snapshots:
        """The rows at the indices ``order`` (a compact table)."""
        compact = self.compact()
        return Snapshots(self.factors, **{n: getattr(compact, n)[order] for n in _COLUMNS})

    def compact(self) -> Snapshots:
        """The same rows with every column a numpy array (points: rows x factors)."""
        columns = {name: np.asarray(getattr(self, name), dtype=dtype)
                   for name, dtype in _DTYPES.items()}  # fmt: skip
        points = np.asarray(self.points, dtype=float)
        if points.ndim != 2:  # no rows
            points = points.reshape(0, len(self.factors))
        columns["points"] = points
        return Snapshots(self.factors, **columns)

    def mask(self, keep: Callable[[int], bool]) -> np.ndarray:
        """Boolean mask of rows whose snapshot moment passes ``keep``."""
        return np.array([keep(t) for t in self.at_ms], dtype=bool)

    def matrix(self) -> np.ndarray:
        """Factor points as a (rows, factors) array."""
        if not len(self.points):
            return np.zeros((0, len(self.factors)))
        return np.asarray(self.points, dtype=float)


_COLUMNS = ("at_ms", "customer", "label", "score", "band", "naive", "naive_30d", "tenure_days",
            "points")  # fmt: skip
_DTYPES: dict[str, Any] = {"at_ms": np.int64, "customer": object, "label": np.int8,
                           "score": float, "band": object, "naive": np.int64,
                           "naive_30d": np.int64, "tenure_days": float}  # fmt: skip


class RowsBuilder:
    """Rows gathered in parts (each a small list-based :class:`Snapshots`) and compacted to
    numpy every ``chunk`` rows, so a large table never lives as Python objects."""

    def __init__(self, factors: tuple[str, ...], chunk: int = 65_536) -> None:
        self.factors = factors
        self.chunk = chunk
        self.pending = Snapshots(factors=factors)
        self.chunks: list[Snapshots] = []

    def add(self, part: Snapshots) -> None:
        """Append a part's rows."""
        self.pending.extend(part)
        if len(self.pending) >= self.chunk:
            self._compact()

    def add_compact(self, part: Snapshots) -> None:
        """Append rows already compacted (numpy columns)."""
        self._compact()
        self.chunks.append(part)

    def _compact(self) -> None:
        if len(self.pending):
            self.chunks.append(self.pending.compact())
            self.pending = Snapshots(factors=self.factors)

    def build(self) -> Snapshots:
        """Every row so far, as one compact table."""
        self._compact()
        if not self.chunks:
            return Snapshots(factors=self.factors).compact()
        if len(self.chunks) == 1:
            return self.chunks[0]
        columns = {n: np.concatenate([getattr(c, n) for c in self.chunks]) for n in _COLUMNS}
        self.chunks = []
        return Snapshots(self.factors, **columns)


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
    *,
    record_from_ms: int | None = None,
    points: bool = True,
) -> tuple[Snapshots, Replay]:
    """Replay ``events`` through ``model`` and take a snapshot at each of ``times`` (rows
    only at those from ``record_from_ms``, the replay stopping at all of them; without
    ``points``, the rows' factor points are left empty)."""
    factors = model.factors
    rows = Snapshots(factors=factors)
    stamps: dict[str, list[int]] = {}
    for event in events:
        stamps.setdefault(event.customer_id, []).append(event.timestamp_ms)

    def on_stop(at_ms: int, replay: Replay) -> None:
        if record_from_ms is not None and at_ms < record_from_ms:
            return
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
            rows.points.append([breakdown.get(f, 0) / 100 for f in factors] if points else [])

    replay = Replay(model)
    replay.run(events, times, on_stop, progress)
    return rows, replay


def _eligible(label: Label, first_event_ms: int, at_ms: int) -> bool:
    first = label.first_seen_ms if label.first_seen_ms is not None else first_event_ms
    if first > at_ms or first_event_ms >= at_ms:
        return False
    return label.churn_ms is None or label.churn_ms > at_ms
