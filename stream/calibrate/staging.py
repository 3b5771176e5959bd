"""History staged on disk as Parquet, so calibration never holds every event in memory.

Records are decoded by the worker's decoder (:func:`stream.history.replay.decode_records`'s
rules) a batch at a time and written to two Parquet files in a working folder:

- ``events.parquet``: one row per decoded event (``seq`` is its position in the input),
  with what the core needs to replay it (properties, traits and account as JSON text);
- ``contributions.parquet``: one row per (event, factor) with the centipoints the scoring
  model's event rules give it (``model.contributions``), the hidden bucket counters too.

The feature query (:mod:`stream.calibrate.features`) aggregates these files out of core;
:func:`customer_events` streams them back customer by customer for the core replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stream.core.decode import DecodeLimits, Ignored, Rejection, decode_event
from stream.core.events import PROFILE_TYPES, Event
from stream.core.model import ScoringModel
from stream.history.replay import DecodeSummary
from stream.history.sources import RawRecord

__all__ = ["EVENT_COLUMNS", "Staged", "customer_events", "stage"]

_BATCH = 100_000
EVENT_COLUMNS = ("seq", "customer", "ts", "event_id", "type", "scored", "properties",
                 "traits", "account")  # fmt: skip
_CONTRIBUTION_COLUMNS = ("seq", "customer", "ts", "factor", "cp")


@dataclass(frozen=True, slots=True)
class Staged:
    """The staged history: its two Parquet files and the span of its event times."""

    events: Path
    contributions: Path
    count: int
    first_ms: int | None
    last_ms: int | None


class _Writer:
    """Columns buffered up to a batch, then appended to a Parquet file as a row group."""

    def __init__(self, path: Path, columns: tuple[str, ...], types: dict[str, Any]) -> None:
        import pyarrow as pa  # noqa: PLC0415 (optional extra)
        import pyarrow.parquet as pq  # noqa: PLC0415

        self.schema = pa.schema([(name, types[name]) for name in columns])
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.columns: dict[str, list[Any]] = {name: [] for name in columns}

    def add(self, *values: Any) -> None:
        for column, value in zip(self.columns.values(), values, strict=True):
            column.append(value)
        if len(self.columns["seq"]) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa  # noqa: PLC0415

        if self.columns["seq"]:
            self.writer.write_table(pa.table(self.columns, schema=self.schema))
            self.columns = {name: [] for name in self.columns}

    def close(self) -> None:
        self.flush()
        self.writer.close()


def _types() -> dict[str, Any]:
    import pyarrow as pa  # noqa: PLC0415

    text, whole = pa.string(), pa.int64()
    return {"seq": whole, "customer": text, "ts": whole, "event_id": text, "type": text,
            "scored": pa.bool_(), "properties": text, "traits": text, "account": text,
            "factor": text, "cp": whole}  # fmt: skip


def stage(
    records: Iterable[RawRecord],
    model: ScoringModel,
    folder: Path,
    *,
    now_ms: int,
    summary: DecodeSummary,
    limits: DecodeLimits | None = None,
) -> Staged:
    """Decode ``records`` as the worker would and write them to Parquet in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    types = _types()
    events = _Writer(folder / "events.parquet", EVENT_COLUMNS, types)
    points = _Writer(folder / "contributions.parquet", _CONTRIBUTION_COLUMNS, types)
    chosen = limits or DecodeLimits()
    first: int | None = None
    last: int | None = None
    seq = 0
    for record in records:
        summary.read += 1
        decoded = decode_event(record.value, key=record.key, topic_role=record.role,
                               model=model, now_ms=now_ms, fallback_id=record.fallback_id,
                               limits=chosen, replay=True)  # fmt: skip
        if isinstance(decoded, Rejection):
            summary.rejected[decoded.reason] += 1
            continue
        if isinstance(decoded, Ignored):
            summary.ignored += 1
            continue
        at = decoded.timestamp_ms
        first = at if first is None or at < first else first
        last = at if last is None or at > last else last
        scored = decoded.type not in PROFILE_TYPES
        events.add(seq, decoded.customer_id, at, decoded.event_id, decoded.type, scored,
                   _json(decoded.properties) if decoded.properties else None,
                   _json(decoded.traits) if decoded.traits is not None else None,
                   decoded.account)  # fmt: skip
        if scored:
            for factor, cp in model.contributions(decoded).items():
                points.add(seq, decoded.customer_id, at, factor, cp)
        seq += 1
    events.close()
    points.close()
    summary.decoded = seq
    return Staged(folder / "events.parquet", folder / "contributions.parquet", seq, first, last)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def customer_events(rows: Iterable[dict[str, Any]]) -> Iterator[list[Event]]:
    """Staged event rows ordered by (customer, ts, seq) as one list of events per customer."""
    batch: list[Event] = []
    for row in rows:
        event = Event(
            event_id=row["event_id"],
            customer_id=row["customer"],
            type=row["type"],
            timestamp_ms=row["ts"],
            properties=orjson.loads(row["properties"]) if row["properties"] else {},
            traits=orjson.loads(row["traits"]) if row["traits"] is not None else None,
            account=row["account"],
        )
        if batch and batch[0].customer_id != event.customer_id:
            yield batch
            batch = []
        batch.append(event)
    if batch:
        yield batch
