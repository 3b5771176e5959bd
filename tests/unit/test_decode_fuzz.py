"""Property-based fuzzing of the decoder: nothing raises, and whatever it accepts is safe.

Documents are serialised with the standard library, so NaN, Infinity and integers
beyond 64 bits reach the decoder as text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.decode import (
    REASONS,
    DecodeLimits,
    Ignored,
    Rejection,
    decode_event,
    valid_customer_id,
)
from stream.core.events import Event
from stream.core.vocabulary import IGNORED_REASONS
from tests.factories import DAY_MS, NOW_MS, default_model
from tests.profiles import examples

MODEL = default_model()
LIMITS = DecodeLimits()
ROLES = sorted(MODEL.topic_types)
SAFE_ID = re.compile(r"[!-z|~]{1,128}")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)
timestamps = st.one_of(
    st.integers(NOW_MS - 29 * DAY_MS, NOW_MS),
    st.integers(NOW_MS - 40 * DAY_MS, NOW_MS + DAY_MS),
    st.integers() | st.floats(),
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.text(max_size=30),
)
ids = st.one_of(
    st.from_regex(SAFE_ID, fullmatch=True),
    st.from_regex(SAFE_ID, fullmatch=True),
    st.text(max_size=140),
    st.integers(),
)


@st.composite
def native_docs(draw: st.DrawFn, role: str) -> dict[str, Any]:
    """Documents near the native shape for ``role``, with some fields replaced or dropped."""
    allowed = sorted(MODEL.topic_types[role])
    doc: dict[str, Any] = {
        "event_id": draw(ids),
        "customer_id": draw(ids),
        "type": draw(st.sampled_from(allowed) | st.sampled_from(sorted(MODEL.events))),
        "timestamp": draw(timestamps),
        "properties": draw(
            st.fixed_dictionaries(
                {"duration_seconds": st.integers(0, 4000), "page_count": st.integers(0, 30)}
            )
            | st.dictionaries(
                st.sampled_from(["duration_seconds", "page_count", "nps", "x"]),
                json_values,
                max_size=3,
            )
        ),
    }
    for name in draw(st.lists(st.sampled_from(sorted(doc)), max_size=2)):
        if draw(st.booleans()):
            doc.pop(name, None)
        else:
            doc[name] = draw(json_values)
    return doc


role_and_doc = st.sampled_from(sorted(MODEL.topic_types)).flatmap(
    lambda role: st.tuples(st.just(role), native_docs(role))
)


def _check(raw: bytes, key: bytes | None, role: str) -> None:
    got = decode_event(raw, key=key, topic_role=role, model=MODEL, now_ms=NOW_MS,
                       fallback_id="t/0/1", limits=LIMITS)  # fmt: skip
    if isinstance(got, Rejection):
        assert got.reason in REASONS and got.detail
        return
    if isinstance(got, Ignored):
        assert got.reason in IGNORED_REASONS and got.detail
        return
    assert isinstance(got, Event)
    assert valid_customer_id(got.customer_id), "an accepted id has no control characters"
    assert key == got.customer_id.encode()
    assert got.type in MODEL.topic_types[role]
    assert MODEL.is_live(got.timestamp_ms, NOW_MS)
    assert got.timestamp_ms <= NOW_MS + MODEL.max_future_skew_ms
    assert 0 < len(got.event_id) <= LIMITS.max_id_length
    assert len(raw) <= LIMITS.max_bytes


@given(role_and_doc, st.booleans())
@settings(max_examples=examples(1500))
def test_near_valid_documents_are_accepted_only_when_safe(
    role_doc: tuple[str, dict[str, Any]], key_matches: bool
) -> None:
    """Mutated native documents either decode to a safe Event or are rejected with a reason."""
    role, doc = role_doc
    raw = json.dumps(doc).encode()
    customer = doc.get("customer_id")
    key = str(customer).encode() if key_matches else b"someone-else"
    _check(raw, key, role)


@given(st.binary(max_size=2000), st.none() | st.binary(max_size=40), st.sampled_from(ROLES))
@settings(max_examples=examples(1500))
def test_arbitrary_bytes_and_keys_never_raise(raw: bytes, key: bytes | None, role: str) -> None:
    """Random payloads and keys never raise; anything accepted is still safe."""
    _check(raw, key, role)


@given(role_and_doc, st.integers(1, 400))
@settings(max_examples=examples(500))
def test_truncated_documents_are_rejected(role_doc: tuple[str, dict[str, Any]], cut: int) -> None:
    """A JSON document cut short is never accepted."""
    role, doc = role_doc
    raw = json.dumps(doc).encode()
    truncated = raw[: max(1, len(raw) - cut)]
    got = decode_event(truncated, key=b"k", topic_role=role, model=MODEL, now_ms=NOW_MS,
                       fallback_id="t/0/1")  # fmt: skip
    assert isinstance(got, Rejection)


@given(st.integers(1025, 5000), st.sampled_from([b"[", b'{"a":']))
@settings(max_examples=examples(50))
def test_deep_nesting_is_rejected_not_a_crash(depth: int, opener: bytes) -> None:
    """Nesting beyond the parser's depth limit is a clear rejection."""
    closer = b"]" if opener == b"[" else b"}"
    raw = opener * depth + b"1" + closer * depth
    got = decode_event(raw, key=b"k", topic_role="clickstream", model=MODEL, now_ms=NOW_MS,
                       fallback_id="t/0/1")  # fmt: skip
    assert isinstance(got, Rejection)
    assert got.reason in {"too_deep", "too_large"}
