"""The decoder's fast path for native events gives exactly the full path's answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.bench.dataset import records
from stream.core.decode import DecodeLimits, _fast, decode_event
from stream.core.events import Event
from tests.factories import DAY_MS, NOW_MS, default_model
from tests.profiles import examples
from tests.unit.test_decode_fuzz import json_values, native_docs

MODEL = default_model()
ROLES = sorted(MODEL.topic_types)
LIMITS = st.sampled_from(
    [
        DecodeLimits(),
        DecodeLimits(max_id_length=8),
        DecodeLimits(max_json_depth=1),
        DecodeLimits(max_json_depth=2),
        DecodeLimits(max_bytes=120),
        DecodeLimits(max_id_bytes=10),
    ]
)
iso = st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat())
recent = st.integers(NOW_MS - 35 * DAY_MS, NOW_MS + DAY_MS)


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes, bytes | None]:
    """Native documents, mostly valid, with ISO or epoch timestamps, extra or nested
    fields, and keys that match or not."""
    role = draw(st.sampled_from(ROLES))
    doc: dict[str, Any] = draw(native_docs(role))
    if draw(st.booleans()):
        doc["timestamp"] = draw(
            st.one_of(recent, recent.map(float), iso, recent.map(_iso), recent.map(_naive))
        )
    if draw(st.integers(0, 5)) == 0:
        doc[draw(st.sampled_from(["context", "userId", "extra"]))] = draw(json_values)
    if draw(st.integers(0, 5)) == 0 and isinstance(doc.get("properties"), dict):
        doc["properties"]["nested"] = draw(json_values)
    raw = json.dumps(doc).encode()
    customer = doc.get("customer_id")
    key = draw(
        st.sampled_from([str(customer).encode(), b"someone-else", None, b"\xff"])
        if draw(st.booleans())
        else st.just(str(customer).encode())
    )
    return role, raw, key


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _naive(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None).isoformat()


@given(messages(), LIMITS, st.booleans())
@settings(max_examples=examples(2000), deadline=None)
def test_the_fast_path_answers_exactly_as_the_full_path(
    message: tuple[str, bytes, bytes | None], limits: DecodeLimits, replay: bool
) -> None:
    role, raw, key = message
    args: dict[str, Any] = {"key": key, "topic_role": role, "model": MODEL, "now_ms": NOW_MS,
                            "fallback_id": "t/0/1", "limits": limits, "replay": replay}  # fmt: skip
    fast = decode_event(raw, fast=True, **args)
    assert fast == decode_event(raw, fast=False, **args)
    taken = _fast(raw, key, role, MODEL, NOW_MS, "t/0/1", limits, replay)
    assert taken is None or taken == fast


def test_the_benchmark_messages_take_the_fast_path() -> None:
    """The common shape (native, ISO timestamps, flat properties) is what it is for."""
    now_ms = NOW_MS
    limits = DecodeLimits()
    for message in records(50, 400, now_ms=now_ms):
        fast = _fast(message.value, message.key, message.role, MODEL, now_ms, "x", limits, False)
        assert isinstance(fast, Event)
        full = decode_event(message.value, key=message.key, topic_role=message.role,
                            model=MODEL, now_ms=now_ms, fallback_id="x", fast=False)  # fmt: skip
        assert fast == full
