"""History files: JSON lines (native and Segment), CSV, gzip by magic bytes, and the
worker's decoder and rejection reasons applied to them."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from stream.config.model_file import load_model
from stream.event_files.labels import parse_time_ms, read_labels
from stream.event_files.replay import decode_records
from stream.event_files.sources import detect_format, read_file

_NOW = parse_time_ms("2026-06-01T00:00:00Z")
_OLD = parse_time_ms("2025-01-01T00:00:00Z")  # far outside any window: not too_old in a replay


def _lines(*docs: object) -> str:
    return "".join(orjson.dumps(d).decode() + "\n" for d in docs)


def _decode(path: Path) -> tuple[list[object], dict[str, int]]:
    events, summary = decode_records(read_file(path), load_model("default"), now_ms=_NOW)
    return list(events), dict(summary.rejected)


def test_jsonl_native_and_segment_shapes_decode_like_the_worker(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        _lines(
            {"event_id": "a", "customer_id": "c1", "type": "page_view", "timestamp": _OLD},
            {"type": "track", "event": "Button Clicked", "userId": "c2", "messageId": "b",
             "timestamp": "2025-01-02T10:00:00Z"},
            {"type": "page", "anonymousId": "c3", "messageId": "c", "timestamp": _OLD + 5},
            {"customer_id": "c4", "type": "teleport", "timestamp": _OLD},
            {"customer_id": "c5", "type": "page_view", "timestamp": _NOW + 86_400_000},
        )
        + "{not json\n\n"
    )  # fmt: skip
    events, rejected = _decode(path)
    assert [(e.customer_id, e.type) for e in events] == [  # type: ignore[attr-defined]
        ("c1", "page_view"),
        ("c3", "page_view"),
        ("c2", "click"),
    ]
    assert rejected == {"unknown_type": 1, "future_timestamp": 1, "invalid_json": 1}


def test_csv_with_iso_and_epoch_times_and_properties(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        "customer_id,timestamp,type,event_id,duration_seconds,page_count\n"
        f"c1,{_OLD},session_end,s1,300,4\n"
        "c1,2025-01-03 00:00:00,page_view,,,\n"
        "c1,2025-01-04T00:00:00+01:00,click,c3,,\n"
        "c1,yesterday,click,c4,,\n"
        f"c2,{_OLD},session_end,s2,long,2\n"
        f",{_OLD},page_view,x,,\n"
    )
    events, rejected = _decode(path)
    assert [(e.type, e.properties) for e in events] == [  # type: ignore[attr-defined]
        ("session_end", {"duration_seconds": 300, "page_count": 4}),
        ("page_view", {}),
        ("click", {}),
    ]
    assert events[1].event_id == "history.csv:3"  # type: ignore[attr-defined]
    assert events[1].timestamp_ms == parse_time_ms("2025-01-03T00:00:00Z")  # type: ignore[attr-defined]
    assert events[2].timestamp_ms == parse_time_ms("2025-01-03T23:00:00Z")  # type: ignore[attr-defined]
    assert rejected == {"invalid_field": 1, "missing_customer_id": 1, "invalid_timestamp": 1}


def test_gzip_is_recognised_by_its_magic_bytes_whatever_the_name(tmp_path: Path) -> None:
    body = _lines({"event_id": "a", "customer_id": "c1", "type": "click", "timestamp": _OLD})
    plain, packed = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    plain.write_text(body)
    packed.write_bytes(gzip.compress(body.encode()))
    csv_packed = tmp_path / "c.data"
    csv_packed.write_bytes(gzip.compress(f"customer_id,timestamp,type\nc1,{_OLD},click\n".encode()))
    assert detect_format(csv_packed) == "csv"
    assert _decode(plain)[0] == _decode(packed)[0]
    assert len(_decode(csv_packed)[0]) == 1


def test_csv_without_required_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("customer,timestamp,type\nc1,1,click\n")
    with pytest.raises(ValueError, match="customer_id"):
        list(read_file(path))


def test_labels_accept_dates_flags_and_first_seen(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "customer_id,churned,churn_date,first_seen\n"
        "a,1,2026-03-01,2026-01-05T00:00:00Z\nb,false,,\nc,yes,1767225600000,\n"
    )
    labels = read_labels(path)
    assert labels["a"].churn_ms == parse_time_ms("2026-03-01T00:00:00Z")
    assert labels["a"].first_seen_ms == parse_time_ms("2026-01-05T00:00:00Z")
    assert not labels["b"].churned and labels["b"].churn_ms is None
    assert labels["c"].churn_ms == 1_767_225_600_000
    path.write_text("customer_id,churned,churn_date\nd,1,\n")
    with pytest.raises(ValueError, match=":2: a churned customer needs a churn_date"):
        read_labels(path)
