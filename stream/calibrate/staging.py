"""History staged on disk as Parquet, so calibration never holds every event in memory.

Records are decoded by the worker's decoder (:class:`stream.core.kernel.Decoder`, as
:func:`stream.event_files.replay.decode_records` does) a batch at a time and written to two
Parquet files in a working folder:

- ``events.parquet``: one row per decoded event (``seq`` is its position among the decoded
  events, in input order), with what the core needs to replay it (properties, traits and
  account as JSON text);
- ``contributions.parquet``: one row per (event, factor) with the centipoints the scoring
  model's event rules give it (``model.contributions``), the hidden bucket counters too.

The feature query (:mod:`stream.calibrate.features`) aggregates these files out of core;
:func:`customer_events` streams them back customer by customer for the core replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stream.core.decode import SEGMENT_CALLS, DecodeLimits, Ignored, Rejection
from stream.core.events import PROFILE_TYPES, Event
from stream.core.kernel import Decoder
from stream.core.model import PROPERTY_SCORED_TYPES, ScoringModel
from stream.event_files.replay import DecodeSummary
from stream.event_files.sources import RawRecord

__all__ = ["EVENT_COLUMNS", "Staged", "customer_events", "named_type", "stage", "stage_types"]

_BATCH = 100_000
EVENT_COLUMNS = ("seq", "customer", "ts", "event_id", "type", "scored", "properties",
                 "traits", "account")  # fmt: skip
_CONTRIBUTION_COLUMNS = ("seq", "customer", "ts", "factor", "cp")


@dataclass(frozen=True, slots=True)
class Staged:
    """The staged history: its two Parquet files, the span of its event times and what the
    decoding read (nothing for a folder staged earlier)."""

    events: Path
    contributions: Path
    count: int
    first_ms: int | None
    last_ms: int | None
    summary: DecodeSummary = field(default_factory=DecodeSummary)


class _Writer:
    """Columns buffered up to a batch, then appended to a Parquet file as a row group."""

    def __init__(self, path: Path, columns: tuple[str, ...], types: dict[str, Any]) -> None:
        import pyarrow as pa  # noqa: PLC0415 (optional extra)
        import pyarrow.parquet as pq  # noqa: PLC0415

        self.schema = pa.schema([(name, types[name]) for name in columns])
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.columns: tuple[list[Any], ...] = tuple([] for _ in columns)

    def full(self) -> bool:
        return len(self.columns[0]) >= _BATCH

    def flush(self) -> None:
        import pyarrow as pa  # noqa: PLC0415

        if self.columns[0]:
            arrays = [pa.array(c, f.type) for c, f in zip(self.columns, self.schema, strict=True)]
            self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
            for column in self.columns:
                column.clear()

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
    limits: DecodeLimits | None = None,
) -> Staged:
    """Decode ``records`` with ``model`` as the worker would and write them to Parquet in
    ``folder``."""
    return _stage(records, _Fixed(model, limits), folder, now_ms)


def stage_types(
    read: Callable[[], Iterable[RawRecord]],
    build: Callable[[list[str]], ScoringModel],
    folder: Path,
    *,
    now_ms: int,
    limits: DecodeLimits | None = None,
) -> tuple[Staged, ScoringModel]:
    """Stage the records ``read`` gives with ``build``'s model of every event type they
    name (native ``type``, Segment track names), found in the same pass: the model grows at
    each new type, which only that type's records could depend on. Segment ``page`` and
    ``screen`` calls count as ``page_view`` only when that type is in the model, so when it
    first turns up after such a call was skipped, the staging starts over knowing it.
    Returns the staged files and the model of every type."""
    known: list[str] = []
    while True:
        growing = _Growing(build, known, limits)
        try:
            return _stage(read(), growing, folder, now_ms), growing.model
        except _PageViewLate:
            known = sorted(growing.types)


class _Fixed:
    """The worker's decoder of one model."""

    def __init__(self, model: ScoringModel, limits: DecodeLimits | None) -> None:
        self.limits = limits
        self.use(model)

    def use(self, model: ScoringModel) -> None:
        self.model = model
        self.decode = Decoder(model, self.limits, replay=True)

    def declined(
        self, record: RawRecord, outcome: Rejection | Ignored, now_ms: int
    ) -> Event | Rejection | Ignored:
        """What a record the decoder did not take an event from finally gives."""
        return outcome


class _PageViewLate(Exception):  # noqa: N818 (control flow inside stage_types, never raised out)
    """``page_view`` turned up after page or screen calls were skipped for lacking it."""


class _Growing(_Fixed):
    """The decoder of the model of the types seen so far, rebuilt at each new one."""

    def __init__(
        self,
        build: Callable[[list[str]], ScoringModel],
        known: list[str],
        limits: DecodeLimits | None,
    ) -> None:
        super().__init__(build(known), limits)
        self.build, self.types = build, set(known)
        self.skipped_pages = False

    def declined(
        self, record: RawRecord, outcome: Rejection | Ignored, now_ms: int
    ) -> Event | Rejection | Ignored:
        kind = named_type(record.value)
        if kind is None or kind in self.types:
            if isinstance(outcome, Ignored) and outcome.call in ("page", "screen"):
                self.skipped_pages = True
            return outcome
        self.types.add(kind)
        if kind == "page_view" and self.skipped_pages:
            raise _PageViewLate
        self.use(self.build(sorted(self.types)))
        return self.decode(record.value, record.key, record.role, now_ms, record.fallback_id)


def named_type(raw: bytes) -> str | None:
    """The event type a record names (native ``type``, a Segment track call's ``event``);
    None for calls that are no event type (page, screen, alias, identify, group) and for
    records that do not parse."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    kind = doc.get("event") if doc.get("type") == "track" else doc.get("type")
    return kind if isinstance(kind, str) and kind and kind not in SEGMENT_CALLS else None


def _stage(records: Iterable[RawRecord], decoding: _Fixed, folder: Path, now_ms: int) -> Staged:
    folder.mkdir(parents=True, exist_ok=True)
    types = _types()
    events = _Writer(folder / "events.parquet", EVENT_COLUMNS, types)
    points = _Writer(folder / "contributions.parquet", _CONTRIBUTION_COLUMNS, types)
    p_seq, p_customer, p_ts, p_factor, p_cp = points.columns
    by_type: dict[str, list[tuple[str, int]]] = {}
    summary = DecodeSummary()
    first: int | None = None
    last: int | None = None
    seq = 0
    for record in records:
        decoded = decoding.decode(record.value, record.key, record.role, now_ms,
                                  record.fallback_id)  # fmt: skip
        if not isinstance(decoded, Event):
            decoded = decoding.declined(record, decoded, now_ms)
        if not isinstance(decoded, Event):
            summary.declined(decoded)
            continue
        at, customer, kind = decoded.timestamp_ms, decoded.customer_id, decoded.type
        first = at if first is None or at < first else first
        last = at if last is None or at > last else last
        scored = kind not in PROFILE_TYPES
        _append(events.columns, seq, decoded, scored)
        if scored:
            pairs = by_type.get(kind)
            if pairs is None:
                pairs = list(decoding.model.contributions(decoded).items())
                if kind not in PROPERTY_SCORED_TYPES:
                    by_type[kind] = pairs
            for factor, cp in pairs:
                p_seq.append(seq)
                p_customer.append(customer)
                p_ts.append(at)
                p_factor.append(factor)
                p_cp.append(cp)
        seq += 1
        if events.full():
            events.flush()
        if points.full():
            points.flush()
    events.close()
    points.close()
    summary.read = seq + summary.rejected.total() + summary.ignored
    summary.decoded = seq
    return Staged(folder / "events.parquet", folder / "contributions.parquet", seq, first, last,
                  summary)  # fmt: skip


def _append(columns: tuple[list[Any], ...], seq: int, event: Event, scored: bool) -> None:
    """One event's row (in ``EVENT_COLUMNS`` order)."""
    values = (seq, event.customer_id, event.timestamp_ms, event.event_id, event.type, scored,
              _json(event.properties) if event.properties else None,
              _json(event.traits) if event.traits is not None else None, event.account)  # fmt: skip
    for column, value in zip(columns, values, strict=True):
        column.append(value)


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
