"""Staging with the event types found in the same pass (``stage_types``) against a
from-scratch reference: list the types in a first pass, then stage with their count model."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.calibrate.pipeline import count_model
from stream.calibrate.snapshots import DAY_MS
from stream.calibrate.staging import Staged, stage, stage_types
from stream.event_files.sources import read_file
from tests.profiles import examples

_START = 1_767_225_600_000  # 2026-01-01 00:00 UTC
_NOW = _START + 400 * DAY_MS
_BUILD = partial(count_model, window_ms=30 * DAY_MS, bucket_ms=DAY_MS, tenure_cap_days=365)


def _reference_types(lines: list[bytes]) -> list[str]:
    """What a first pass over the lines names as event types, written out plainly."""
    found = set()
    for line in lines:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict):
            continue
        kind = doc.get("event") if doc.get("type") == "track" else doc.get("type")
        calls = ("page", "screen", "alias", "identify", "group")
        if isinstance(kind, str) and kind != "" and kind not in calls:
            found.add(kind)
    return sorted(found)


def _native(customer: str, kind: str, n: int) -> dict[str, Any]:
    return {"customer_id": customer, "type": kind, "timestamp": _START + n * 3_600_000,
            "event_id": f"e{n}"}  # fmt: skip


def _segment(customer: str, call: str, n: int, **extra: Any) -> dict[str, Any]:
    return {"type": call, "userId": customer, "messageId": f"m{n}",
            "timestamp": _START + n * 3_600_000, **extra}  # fmt: skip


def _line(shape: str, customer: str, kind: str, n: int) -> bytes:
    docs: dict[str, Any] = {
        "native": _native(customer, kind, n),
        "track": _segment(customer, "track", n, event=kind),
        "page": _segment(customer, "page", n, name="home"),
        "screen": _segment(customer, "screen", n, name="main"),
        "identify": _segment(customer, "identify", n, traits={"plan": kind}),
        "group": _segment(customer, "group", n, groupId="acme"),
        "alias": _segment(customer, "alias", n, previousId="anon"),
        "no_customer": {"type": kind, "timestamp": _START, "event_id": f"e{n}"},
    }
    if shape == "broken":
        return b'{"type": "' + kind.encode()
    return orjson.dumps(docs[shape])


_SHAPES = ("native", "native", "track", "page", "screen", "identify", "group", "alias",
           "no_customer", "broken")  # fmt: skip
_LINES = st.lists(
    st.tuples(
        st.sampled_from(_SHAPES),
        st.sampled_from(["c1", "c2", "c3"]),
        st.sampled_from(["login", "report", "page_view", "export", "session_start"]),
    ),
    min_size=1,
    max_size=40,
)


def _tables(staged: Staged) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    events = pq.read_table(staged.events).to_pylist()
    return events, pq.read_table(staged.contributions).to_pylist()


_FIXTURE = [HealthCheck.function_scoped_fixture]


@settings(max_examples=examples(60), deadline=None, suppress_health_check=_FIXTURE)
@given(shapes=_LINES)
def test_types_found_while_staging_stage_as_a_first_pass_would(
    tmp_path_factory: Any, shapes: list[tuple[str, str, str]]
) -> None:
    """The same model, rows, contributions and counts as listing the types first; page
    calls read before the first ``page_view`` count once it turns up (a restart)."""
    folder = tmp_path_factory.mktemp("staging")
    lines = [_line(shape, customer, kind, n) for n, (shape, customer, kind) in enumerate(shapes)]
    path = folder / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    types = _reference_types(lines)
    expected = stage(read_file(path), _BUILD(types), folder / "first-pass", now_ms=_NOW)
    got, model = stage_types(lambda: read_file(path), _BUILD, folder / "one-pass", now_ms=_NOW)
    assert list(model.events) == types
    assert model == _BUILD(types)
    assert _tables(got) == _tables(expected)
    assert (got.count, got.first_ms, got.last_ms) == (expected.count, expected.first_ms,
                                                      expected.last_ms)  # fmt: skip
    assert got.summary == expected.summary


def test_segment_calls_are_not_event_types_and_keep_their_traits(tmp_path: Path) -> None:
    """identify, group and alias are calls, not types to count: an identify's traits are
    staged as a profile row, not rejected for lacking a native customer id."""
    lines = [
        _line("identify", "c1", "pro", 0),
        _line("group", "c1", "", 1),
        _line("alias", "c1", "", 2),
        _line("track", "c1", "login", 3),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    staged, model = stage_types(lambda: read_file(path), _BUILD, tmp_path / "staged", now_ms=_NOW)
    assert list(model.events) == ["login"]
    events, _ = _tables(staged)
    assert [(row["type"], row["scored"]) for row in events] == [
        ("identify", False), ("group", False), ("login", True)]  # fmt: skip
    assert orjson.loads(events[0]["traits"]) == {"plan": "pro"}
    assert staged.summary.rejected.total() == 0
    assert staged.summary.ignored == 1  # the alias call


def test_a_late_page_view_restarts_the_staging_so_earlier_page_calls_count(
    tmp_path: Path,
) -> None:
    lines = [_line("page", "c1", "", 0), _line("native", "c1", "page_view", 1)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    reads = []

    def read() -> Any:
        reads.append(1)
        return read_file(path)

    staged, _ = stage_types(read, _BUILD, tmp_path / "staged", now_ms=_NOW)
    events, contributions = _tables(staged)
    assert [row["type"] for row in events] == ["page_view", "page_view"]
    assert [(row["factor"], row["cp"]) for row in contributions if row["factor"] == "page_view"] \
        == [("page_view", 100), ("page_view", 100)]  # fmt: skip
    assert (len(reads), staged.summary.ignored) == (2, 0)
