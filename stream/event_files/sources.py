"""Read event history from files: JSON lines (native or Segment shape) or CSV, gzip or not.

Every record becomes the raw bytes of one native or Segment JSON document with the key the
worker would see (the customer id), so history goes through the very decoder the worker
uses (:func:`stream.core.decode.decode_event`) and is rejected for the same reasons.

- JSON lines: one document per line; blank lines are skipped.
- CSV: a header with ``customer_id,timestamp,type`` and optionally ``event_id``; any other
  column becomes a property (numbers are read as numbers, empty cells are left out).
  ``timestamp`` is epoch milliseconds or ISO 8601 text (without a zone: UTC).
- gzip is recognised by its magic bytes, whatever the file is called.
- The format is told by the name (``.csv``, ``.csv.gz``), else by the first character
  (``{`` is JSON lines, anything else CSV).
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

__all__ = ["FileFormat", "RawRecord", "detect_format", "open_text", "read_file", "record_key"]

FileFormat = Literal["jsonl", "csv"]

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
    """JSON lines or CSV: by the file name, else by the first non-blank character."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    with open_text(path) as text:
        head = text.read(4096).lstrip()
    return "jsonl" if head.startswith("{") else "csv"


def read_file(path: Path) -> Iterator[RawRecord]:
    """Every record of one history file, in file order."""
    if detect_format(path) == "csv":
        yield from _read_csv(path)
    else:
        yield from _read_jsonl(path)


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
