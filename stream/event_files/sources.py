"""Read event history from files: JSON lines (native or Segment shape), CSV or Parquet.

Every record becomes the raw bytes of one native or Segment JSON document with the key the
worker would see (the customer id), so history goes through the very decoder the worker
uses (:func:`stream.core.decode.decode_event`) and is rejected for the same reasons.

- JSON lines: one document per line; blank lines are skipped.
- CSV: a header with ``customer_id,timestamp,type`` and optionally ``event_id``; any other
  column becomes a property (numbers are read as numbers, empty cells are left out).
  ``timestamp`` is epoch milliseconds or ISO 8601 text (without a zone: UTC).
- Parquet (what warehouses export): a file, or a directory of ``*.parquet`` files (read
  in name order, recursively); the columns are those of CSV (``timestamp`` may also be a
  Parquet timestamp). Read a row group at a time (pyarrow), so memory stays bounded.
- gzip is recognised by its magic bytes, whatever the file is called.
- The format is told by the name (``.csv``, ``.csv.gz``, ``.parquet``; a directory is
  Parquet), else by the first bytes (``PAR1`` Parquet, ``{`` JSON lines, anything else CSV).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from stream.core.decode import id_text
from stream.errors import MissingExtraError

__all__ = [
    "FileFormat",
    "RawRecord",
    "detect_format",
    "open_text",
    "parquet_files",
    "read_file",
    "record_key",
]

FileFormat = Literal["jsonl", "csv", "parquet"]

_PARQUET_MAGIC = b"PAR1"

_GZIP_MAGIC = b"\x1f\x8b"
_CSV_REQUIRED = ("customer_id", "timestamp", "type")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One message: key, bytes, the id an id-less event gets, and the topic role it was read
    from (``history`` for files: any event type is accepted)."""

    key: bytes | None
    value: bytes
    fallback_id: str
    role: str = "history"


def open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return io.TextIOWrapper(path.open("rb"), encoding="utf-8", newline="")


def detect_format(path: Path) -> FileFormat:
    """JSON lines, CSV or Parquet: by the file name, else by the first bytes."""
    if path.is_dir() or path.name.lower().endswith(".parquet"):
        return "parquet"
    with path.open("rb") as probe:
        if probe.read(4) == _PARQUET_MAGIC:
            return "parquet"
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    with open_text(path) as text:
        head = text.read(4096).lstrip()
    return "jsonl" if head.startswith("{") else "csv"


def read_file(path: Path) -> Iterator[RawRecord]:
    """Every record of one history file (or Parquet directory), in file order."""
    kind = detect_format(path)
    if kind == "csv":
        yield from _read_csv(path)
    elif kind == "parquet":
        for part in parquet_files(path):
            yield from _read_parquet(part)
    else:
        yield from _read_jsonl(path)


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of a path: itself, or a directory's ``*.parquet`` in name order."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if p.is_file())


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    try:
        import pyarrow.parquet as pq  # noqa: PLC0415 (optional extra)
    except ImportError as exc:
        raise MissingExtraError(
            f"{path}: reading Parquet needs the optional extra 'calibrate' "
            f"(pip install 'engagement-stream[calibrate]'): {exc}"
        ) from None

    source = pq.ParquetFile(path)
    columns = source.schema_arrow.names
    missing = [c for c in _CSV_REQUIRED if c not in columns]
    if missing:
        raise ValueError(f"{path}: Parquet columns lack {', '.join(missing)}")
    extra = [c for c in columns if c not in (*_CSV_REQUIRED, "event_id")]
    number = 0
    for batch in source.iter_batches(batch_size=65_536):
        for row in batch.to_pylist():
            number += 1
            yield _parquet_record(row, extra, f"{path.name}:{number}")


def _parquet_record(row: dict[str, Any], extra: list[str], fallback: str) -> RawRecord:
    customer_id = id_text(row["customer_id"]) or ""
    stamp = row["timestamp"]
    if isinstance(stamp, datetime):
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        stamp = round(stamp.timestamp() * 1000)
    elif isinstance(stamp, str):
        stamp = _csv_time(stamp.strip())
    doc: dict[str, Any] = {"customer_id": customer_id, "type": row["type"], "timestamp": stamp}
    if row.get("event_id") not in (None, ""):
        doc["event_id"] = str(row["event_id"])
    properties = {name: row[name] for name in extra if row[name] is not None}
    if properties:
        doc["properties"] = properties
    return RawRecord(customer_id.encode() or None, orjson.dumps(doc, default=str), fallback)


_SEGMENT_CALLS = ("track", "page", "screen", "identify", "group", "alias")


def record_key(doc: Any) -> bytes | None:
    """The key the worker would see: the customer id of either shape (None if absent)."""
    if not isinstance(doc, dict):
        return None
    if doc.get("type") in _SEGMENT_CALLS:
        value = doc.get("userId") if doc.get("userId") not in (None, "") else doc.get("anonymousId")
    else:
        value = doc.get("customer_id")
    text = id_text(value)  # an integer id is its decimal string, as in the decoder
    return text.encode() if text else None


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    with open_text(path) as text:
        for number, line in enumerate(text, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            raw = stripped.encode()
            try:
                key = record_key(orjson.loads(raw))
            except orjson.JSONDecodeError:
                key = None
            yield RawRecord(key, raw, f"{path.name}:{number}")


def _read_csv(path: Path) -> Iterator[RawRecord]:
    with open_text(path) as text:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        columns = [c.strip() for c in header]
        missing = [c for c in _CSV_REQUIRED if c not in columns]
        if missing:
            raise ValueError(f"{path}: CSV header lacks {', '.join(missing)}")
        at = {name: columns.index(name) for name in (*_CSV_REQUIRED, "event_id") if name in columns}
        extra = [(i, c) for i, c in enumerate(columns) if c not in at]
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            yield _csv_record(row, at, extra, f"{path.name}:{number}")


def _csv_record(
    row: list[str], at: dict[str, int], extra: list[tuple[int, str]], fallback: str
) -> RawRecord:
    def cell(name: str) -> str:
        index = at.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""

    customer_id = cell("customer_id")
    stamp = cell("timestamp")
    doc: dict[str, Any] = {
        "customer_id": customer_id,
        "type": cell("type"),
        "timestamp": _csv_time(stamp),
    }
    if cell("event_id"):
        doc["event_id"] = cell("event_id")
    properties = {name: _scalar(row[i]) for i, name in extra if i < len(row) and row[i] != ""}
    if properties:
        doc["properties"] = properties
    return RawRecord(customer_id.encode() or None, orjson.dumps(doc), fallback)


def _csv_time(text: str) -> int | str:
    """Epoch milliseconds, or ISO 8601 text where no zone means UTC (a CSV convention; the
    text is passed on unchanged when it does not parse, so the decoder names the problem)."""
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


def _scalar(text: str) -> Any:
    """A CSV cell as a number when it reads as one, else as text."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
