"""The internal ``state`` field: binary layout 1, and the JSON written before it still loads."""

from __future__ import annotations

import sys
from array import array
from itertools import chain
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.adapters.redis_fields import (
    history_from_bytes,
    history_to_bytes,
    state_fields,
    state_from_fields,
)
from stream.adapters.redis_state import LAYOUT, unpack_state
from stream.core.alerts import AlertGate, RuleGate
from stream.core.customer import CustomerState, advance
from tests.factories import DAY_MS, NOW_MS, default_model, event
from tests.profiles import examples

MODEL = default_model()
moments = st.one_of(st.none(), st.integers(-(2**62), 2**62))
names = st.text(min_size=1, max_size=20)
values = st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**62), 2**62))
slots = st.dictionaries(names, values, max_size=6)


@st.composite
def states(draw: st.DrawFn) -> CustomerState:
    return CustomerState(
        buckets=draw(st.dictionaries(st.integers(-(2**40), 2**40), slots, max_size=8)),
        score_cp=draw(st.integers(-(10**6), 10**6)),
        band=draw(st.sampled_from(["churn_risk", "very_disengaged", "engaged"])),
        gate=AlertGate(draw(st.booleans()), draw(moments), draw(st.booleans())),
        updated_ms=draw(st.integers(0, 2**43)),  # until the year 2248
        first_seen_ms=draw(moments),
        tenure_days=draw(st.integers(0, 2**31 - 1)),
        prior_active=draw(moments),
        version=draw(st.sampled_from([None, "v1", "v2", "", "ünï"])),
        rule_gates=draw(
            st.dictionaries(names, st.builds(RuleGate, st.booleans(), moments), max_size=3)
        ),
    )


def _stored(fields: dict[str, str | bytes]) -> dict[str, bytes | None]:
    return {k: v.encode() if isinstance(v, str) else v for k, v in fields.items()}


def _legacy_json(state: CustomerState, partition: int, model_version: str) -> bytes:
    """The ``state`` field exactly as the release before layout 1 wrote it."""
    internal: dict[str, Any] = {
        "w": {str(b): slot for b, slot in state.buckets.items()},
        "a": 1 if state.gate.armed else 0,
        "l": state.gate.last_alert_ms,
        "u": state.updated_ms,
        "p": partition,
    }
    if state.first_seen_ms is not None:
        internal["f"] = state.first_seen_ms
    if state.tenure_days:
        internal["t"] = state.tenure_days
    if state.prior_active is not None:
        internal["r"] = state.prior_active
    if state.gate.onboarded:
        internal["o"] = 1
    if state.version != model_version:
        internal["m"] = state.version
    if state.rule_gates:
        internal["g"] = {
            name: [1 if gate.armed else 0, gate.last_alert_ms]
            for name, gate in state.rule_gates.items()
        }
    return orjson.dumps(internal)


@given(states(), st.integers(0, 2**31 - 1), st.sampled_from(["v1", "v2"]))
@settings(max_examples=examples(300), deadline=None)
def test_any_state_round_trips_through_layout_1(
    state: CustomerState, partition: int, model_version: str
) -> None:
    fields = _stored(state_fields(state, {}, model_version, partition))
    raw = fields["state"]
    assert raw is not None and raw[0] == LAYOUT
    assert state_from_fields(fields) == state
    assert unpack_state(raw).partition == partition


@given(states(), st.integers(0, 2**31 - 1), st.sampled_from(["v1", "v2"]))
@settings(max_examples=examples(300), deadline=None)
def test_state_written_as_json_loads_as_the_same_state(
    state: CustomerState, partition: int, model_version: str
) -> None:
    """Migration: a hash written before layout 1 reads back exactly as it did then, and
    the next write is in layout 1."""
    fields = _stored(state_fields(state, {}, model_version, partition))
    legacy = dict(fields, state=_legacy_json(state, partition, model_version))
    loaded = state_from_fields(legacy)
    assert loaded == state
    assert unpack_state(_legacy_json(state, partition, model_version)).partition == partition
    rewritten = _stored(state_fields(loaded, {}, model_version, partition))["state"]
    assert rewritten is not None and rewritten[0] == LAYOUT


def test_an_unknown_layout_is_refused() -> None:
    raw = _stored(state_fields(CustomerState(), {}, "v", 0))["state"]
    assert raw is not None
    with pytest.raises(ValueError, match="unknown state layout"):
        unpack_state(bytes([LAYOUT + 1]) + raw[1:])


def test_a_month_of_activity_takes_no_more_room_than_its_json() -> None:
    """Redis memory per customer is no worse than with the JSON field (the window is the
    same JSON; the rest is fixed-size binary)."""
    state = CustomerState()
    for day in range(30, 0, -1):
        at = NOW_MS - day * DAY_MS
        batch = [event("page_view", at), event("click", at), event("session_end", at,
                 duration_seconds=120, page_count=3)]  # fmt: skip
        state = advance(MODEL, "c1", state, batch, at).state
    binary = _stored(state_fields(state, {}, MODEL.version, 3))["state"]
    assert binary is not None
    legacy = _legacy_json(state, 3, MODEL.version)
    assert len(state.buckets) == 30
    assert len(binary) <= len(legacy)
    assert state_from_fields(dict(_stored(state_fields(state, {}, MODEL.version, 3)))) == state


def _history_reference(history: tuple[tuple[int, int], ...], bucket_ms: int) -> bytes:
    """The public ``history`` field as documented: little-endian signed 64-bit integers."""
    packed = array("q", (1, bucket_ms))
    packed.extend(chain.from_iterable(history))
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


@given(
    st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1))),
    st.integers(1, 2**40),
)
@settings(max_examples=examples(300), deadline=None)
def test_the_history_field_is_byte_for_byte_the_documented_layout(
    points: list[tuple[int, int]], bucket_ms: int
) -> None:
    history = tuple(points)
    raw = history_to_bytes(history, bucket_ms)
    assert raw == _history_reference(history, bucket_ms)
    assert history_from_bytes(raw) == (bucket_ms, history)
