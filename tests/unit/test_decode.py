"""Decoding both input shapes, and a clear reason for every kind of bad input."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.decode import REASONS, DecodeLimits, Rejection, decode_event
from stream.core.events import Event
from tests.factories import DAY_MS, NOW_MS, default_model, native, segment

MODEL = default_model()


def _decode(raw: bytes, role: str = "clickstream", key: bytes | None = b"c1") -> Event | Rejection:
    return decode_event(raw, key=key, topic_role=role, model=MODEL, now_ms=NOW_MS,
                        fallback_id="clickstream/0/7")  # fmt: skip


def test_native_shape_with_epoch_millis() -> None:
    """The native shape decodes to an Event with its own id."""
    got = _decode(native("page_view", "c1", NOW_MS, event_id="e-1", path="/pricing"))
    assert got == Event("e-1", "c1", "page_view", NOW_MS, {"path": "/pricing"})


def test_native_shape_with_iso_timestamp_and_no_id_uses_source_coordinates() -> None:
    """An ISO timestamp is parsed; a missing id falls back to topic/partition/offset."""
    raw = orjson.dumps({"customer_id": "c1", "type": "click", "timestamp": "2026-11-18T12:00:00Z"})
    got = _decode(raw)
    assert isinstance(got, Event)
    assert got.timestamp_ms == NOW_MS
    assert got.event_id == "clickstream/0/7"


def test_segment_track_maps_event_name_and_message_id() -> None:
    """A Segment track call maps 'Application Uninstalled' and uses messageId and userId."""
    got = _decode(segment("Application Uninstalled", "c1", NOW_MS, "m-9"), role="app_installs")
    assert got == Event("m-9", "c1", "app_uninstall", NOW_MS, {})


def test_segment_anonymous_id_is_accepted() -> None:
    """Without userId, anonymousId identifies the customer."""
    raw = orjson.dumps({"type": "track", "event": "Page Viewed", "anonymousId": "c1",
                        "messageId": "m", "timestamp": NOW_MS})  # fmt: skip
    got = _decode(raw)
    assert isinstance(got, Event) and got.customer_id == "c1"


@pytest.mark.parametrize(
    ("raw", "role", "key", "reason"),
    [
        (b"{oops", "clickstream", b"c1", "invalid_json"),
        (b"[1, 2]", "clickstream", b"c1", "not_an_object"),
        (b"x" * 70_000, "clickstream", b"c1", "too_large"),
        (orjson.dumps({"type": "click", "timestamp": NOW_MS}), "clickstream", b"c1",
         "missing_customer_id"),
        (native("click", "has space", NOW_MS), "clickstream", b"has space", "invalid_customer_id"),
        (native("click", "{slot}", NOW_MS), "clickstream", b"{slot}", "invalid_customer_id"),
        (native("click", "c1", NOW_MS), "clickstream", b"c2", "key_mismatch"),
        (native("click", "c1", NOW_MS), "clickstream", None, "key_mismatch"),
        (native("teleport", "c1", NOW_MS), "clickstream", b"c1", "unknown_type"),
        (segment("Nope", "c1", NOW_MS, "m"), "clickstream", b"c1", "unknown_type"),
        (native("app_install", "c1", NOW_MS), "clickstream", b"c1", "wrong_topic"),
        (native("session_end", "c1", NOW_MS, duration_seconds="x", page_count=1), "sessions",
         b"c1", "invalid_field"),
        (native("session_end", "c1", NOW_MS, duration_seconds=3), "sessions", b"c1",
         "invalid_field"),
        (native("survey_response", "c1", NOW_MS, nps=11), "clickstream", b"c1", "invalid_field"),
        (native("survey_response", "c1", NOW_MS, csat=True), "clickstream", b"c1",
         "invalid_field"),
        (native("click", "c1", NOW_MS + DAY_MS), "clickstream", b"c1", "future_timestamp"),
        (native("click", "c1", NOW_MS - 31 * DAY_MS), "clickstream", b"c1", "too_old"),
        (native("click", "c1", -5), "clickstream", b"c1", "invalid_timestamp"),
        (orjson.dumps({"customer_id": "c1", "type": "click", "timestamp": "yesterday"}),
         "clickstream", b"c1", "invalid_timestamp"),
        (orjson.dumps({"customer_id": "c1", "type": "click", "timestamp": "2026-11-18T12:00:00"}),
         "clickstream", b"c1", "invalid_timestamp"),
        (b'{"customer_id": "c1", "type": "click", "timestamp": NaN}', "clickstream", b"c1",
         "invalid_json"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_named_reason(
    raw: bytes, role: str, key: bytes | None, reason: str
) -> None:
    """Each kind of bad input is rejected with its reason and a readable detail."""
    got = _decode(raw, role, key)
    assert isinstance(got, Rejection)
    assert got.reason == reason
    assert got.reason in REASONS
    assert got.detail


def test_size_limit_is_configurable() -> None:
    """A smaller limit rejects what the default accepts."""
    raw = native("click", "c1", NOW_MS)
    small = decode_event(raw, key=b"c1", topic_role="clickstream", model=MODEL, now_ms=NOW_MS,
                         fallback_id="f", limits=DecodeLimits(max_bytes=10))  # fmt: skip
    assert isinstance(small, Rejection) and small.reason == "too_large"


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    """Random bytes decode to an Event or a Rejection, never an exception."""
    assert isinstance(_decode(raw), Event | Rejection)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "customer_id",
                "type",
                "timestamp",
                "properties",
                "event_id",
                "userId",
                "event",
                "messageId",
            ]
        ),
        json_values | st.sampled_from(["c1", "page_view", "track", NOW_MS]),
    )
)
@settings(max_examples=500)
def test_arbitrary_json_objects_never_raise(doc: dict) -> None:
    """Any JSON object decodes to an Event or a Rejection with a known reason."""
    got = _decode(orjson.dumps(doc))
    assert isinstance(got, Event) or got.reason in REASONS
