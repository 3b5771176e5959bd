"""The compiled kernel against the pure-Python reference: identical results, or the same
error, on random states, hash fields and event streams.

Every function ``engagement_kernel`` exports is driven here side by side with the Python
function it stands in for. The module is skipped when the kernel is not built (``make
install`` builds it where Rust's cargo is found), unless ``ENGAGEMENT_KERNEL=rust`` says it
must be there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stream.adapters import redis_fields
from stream.adapters.codec import iso_ms
from stream.config.model_file import parse_model
from stream.core import kernel
from stream.core.alerts import AlertGate, RuleGate
from stream.core.customer import CustomerState, advance, running_of
from stream.core.events import Event
from stream.core.model import ScoringModel
from tests.factories import DAY_MS, NOW_MS, default_model
from tests.profiles import examples

if os.environ.get("ENGAGEMENT_KERNEL") == "rust":
    NATIVE: Any = kernel.load("rust").native
else:
    NATIVE = pytest.importorskip(kernel.MODULE, reason="the compiled kernel is not built")


def _same(reference: Callable[..., Any], native: Callable[..., Any], *args: Any) -> Any:
    """Both give equal values of equal types, or raise the same error."""
    try:
        expected: Any = reference(*args)
    except Exception as error:
        with pytest.raises(type(error)) as raised:
            native(*args)
        assert str(raised.value) == str(error)
        return None
    got = native(*args)
    assert got == expected
    assert _shape(got) == _shape(expected)
    return got


def _shape(value: Any) -> Any:
    """The types all the way down (``1 == True`` and ``1 == 1.0``: equality alone misses a
    bool or a float where an int belongs)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [type(value), *(_shape(v) for v in value)]
    if isinstance(value, CustomerState):
        return [_shape(getattr(value, name)) for name in CustomerState.__slots__]
    if isinstance(value, (AlertGate, RuleGate)):
        return [type(value), *(_shape(getattr(value, n)) for n in type(value).__slots__)]
    return type(value)


# ---------------------------------------------------------------------------------------
# Random states, as wild as their types allow

names = st.text(max_size=12)
plain_names = st.text(st.characters(min_codepoint=0x20, exclude_characters='"\\'), max_size=12)
moments = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))
wide = st.one_of(st.integers(-(2**31), 2**31), st.integers(-(2**63), 2**63 - 1),
                 st.integers(-(2**70), 2**70))  # fmt: skip
centipoints = st.one_of(st.integers(-(10**7), 10**7), wide)
clocks = st.one_of(
    st.integers(NOW_MS - 400 * DAY_MS, NOW_MS + 400 * DAY_MS),
    st.integers(0, 253_402_300_799_999),
    st.integers(-(2**45), 2**48),
)


@st.composite
def states(draw: st.DrawFn) -> CustomerState:
    key = draw(st.sampled_from([names, plain_names]))
    slots = st.dictionaries(key, draw(st.sampled_from([centipoints, st.integers(-9, 99)])),
                            max_size=5)  # fmt: skip
    history = st.lists(st.tuples(wide, centipoints), max_size=6).map(tuple)
    markers = st.lists(st.tuples(st.integers(0, 2**50), names), max_size=2).map(tuple)
    return CustomerState(
        buckets=draw(st.dictionaries(st.one_of(st.integers(0, 30_000), wide), slots, max_size=6)),
        score_cp=draw(centipoints),
        band=draw(st.sampled_from([None, "", "churn_risk", "power_user", "bändé"])),
        gate=AlertGate(draw(st.booleans()), draw(moments), draw(st.booleans())),
        updated_ms=draw(clocks),
        first_seen_ms=draw(moments),
        tenure_days=draw(st.one_of(st.integers(0, 400), wide)),
        prior_active=draw(moments),
        history=draw(history),
        markers=draw(st.one_of(st.just(()), markers)),
        version=draw(st.sampled_from([None, "v1", "v2", "", "ünï", "x" * 70_000])),
        rule_gates=draw(
            st.dictionaries(names, st.builds(RuleGate, st.booleans(), moments), max_size=3)
        ),
    )


breakdowns = st.dictionaries(st.one_of(plain_names, names), centipoints, max_size=6)
partitions = st.one_of(st.none(), st.integers(0, 64), wide)


@given(states(), breakdowns, st.sampled_from(["v1", "v2", "ünï"]), partitions,
       st.one_of(st.just(DAY_MS), wide))  # fmt: skip
@settings(max_examples=examples(400), deadline=None)
def test_state_values_are_identical(
    state: CustomerState, breakdown: dict[str, int], version: str, partition: Any, bucket: int
) -> None:
    args = (state, breakdown, version, partition, bucket)
    values = _same(redis_fields.state_values, NATIVE.state_values, *args)
    if values is None:
        return
    fields = dict(zip(redis_fields.STATE_FIELDS, values, strict=True))
    stored = {k: v.encode() if isinstance(v, str) else v for k, v in fields.items()}
    _same(redis_fields.state_from_fields, NATIVE.state_from_fields, stored)


# ---------------------------------------------------------------------------------------
# Hash fields as Redis might hand them over: written, then damaged or from older releases


def _written(state: CustomerState) -> dict[str, bytes | None]:
    values = redis_fields.state_values(state, {}, "v1", 3, DAY_MS)
    return {
        k: v.encode() if isinstance(v, str) else v
        for k, v in zip(redis_fields.STATE_FIELDS, values, strict=True)
    }


odd_bytes = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"",
            b"0",
            b"12.5",
            b"-3",
            b"1e3",
            b" 7",
            b"1_0",
            b"nan",
            b"inf",
            b"\xff",
            b"1.2345e+06",
            b"9" * 30,
            b"0.005",
            b"-0",
        ]
    ),
)


@st.composite
def damaged(draw: st.DrawFn) -> dict[str, Any]:
    fields: dict[str, Any] = _written(draw(states().filter(_writable)))
    for name in draw(st.lists(st.sampled_from([*redis_fields.STATE_FIELDS, "state"]))):
        if name == "state" and fields["state"]:
            raw = fields["state"]
            cut = draw(st.integers(0, len(raw)))
            fields["state"] = draw(st.sampled_from([
                raw[:cut], raw[:cut] + draw(st.binary(max_size=8)) + raw[cut:],
                bytes([draw(st.integers(0, 255))]) + raw[1:],
                raw.replace(b'":', b'": '), raw.replace(b"1", b"1.0"),
                b'{"w": {}, "a": 1, "l": null, "u": 5}',
            ]))  # fmt: skip
        else:
            fields[name] = draw(odd_bytes)
    if draw(st.booleans()):
        fields = {k: (bytearray(v) if isinstance(v, bytes) and draw(st.booleans()) else v)
                  for k, v in fields.items()}  # fmt: skip
    return fields


def _writable(state: CustomerState) -> bool:
    try:
        redis_fields.state_values(state, {}, "v1", 3, DAY_MS)
    except Exception:
        return False
    return True


@given(damaged())
@settings(max_examples=examples(300), deadline=None)
def test_state_from_fields_is_identical_on_any_fields(fields: dict[str, Any]) -> None:
    _same(redis_fields.state_from_fields, NATIVE.state_from_fields, fields)


@given(st.one_of(st.none(), st.binary(max_size=80), st.builds(
    lambda pts, ms: redis_fields.history_to_bytes(tuple(pts), ms),
    st.lists(st.tuples(wide, wide).filter(lambda p: all(abs(v) < 2**63 for v in p))),
    st.integers(1, 2**40))))  # fmt: skip
@settings(max_examples=examples(300), deadline=None)
def test_history_from_bytes_is_identical(raw: bytes | None) -> None:
    _same(redis_fields.history_from_bytes, NATIVE.history_from_bytes, raw)


@given(st.lists(st.tuples(wide, wide)).map(tuple), wide)
@settings(max_examples=examples(300), deadline=None)
def test_history_to_bytes_is_identical(history: tuple[tuple[int, int], ...], ms: int) -> None:
    _same(redis_fields.history_to_bytes, NATIVE.history_to_bytes, history, ms)


# ---------------------------------------------------------------------------------------
# Text as Python writes it


@given(st.one_of(st.integers(-(2**53), 2**53), st.integers(-(10**8), 10**8)))
@settings(max_examples=examples(1000), deadline=None)
def test_g_format_of_centipoints_is_pythons(cp: int) -> None:
    assert NATIVE.format_g(cp / 100) == f"{cp / 100:g}"


@given(st.floats(allow_nan=False, allow_infinity=False))
@settings(max_examples=examples(1000), deadline=None)
def test_g_format_of_any_float_is_pythons(x: float) -> None:
    assert NATIVE.format_g(x) == f"{x:g}"


@given(clocks.filter(lambda ms: 0 <= ms <= 253_402_300_799_999))
@settings(max_examples=examples(1000), deadline=None)
def test_iso_ms_is_pythons(ms: int) -> None:
    assert NATIVE.iso_ms(ms) == iso_ms(ms)


# ---------------------------------------------------------------------------------------
# Realistic states: random models and event streams through the Python core


def _model(seed: int) -> ScoringModel:
    if seed == 0:
        return default_model()
    doc = yaml.safe_load((Path(__file__).parents[2] / "stream/config/models/default.yaml")
                         .read_text())  # fmt: skip
    doc.update(version=f"m{seed}", baseline=-15 if seed % 2 else 0)
    if seed % 3 == 0:
        doc["tenure"] = {"points_per_day": 1, "max_days": 20}
        doc["alerts"]["onboarding"] = {"after": "7d"}
    if seed % 4 == 1:
        doc["factors"] = {"page_views": {"transform": "log1p", "scale": 5, "weight": 6},
                          "social": {"transform": "cap", "max": 20}}  # fmt: skip
    return parse_model(doc, f"m{seed}.yaml")


MODELS = [_model(seed) for seed in range(6)]


@st.composite
def streams(draw: st.DrawFn) -> tuple[ScoringModel, list[tuple[int, list[Event]]]]:
    model = draw(st.sampled_from(MODELS))
    kinds = sorted(model.events)
    clock = NOW_MS - draw(st.integers(0, 90)) * DAY_MS
    steps = []
    for _ in range(draw(st.integers(1, 8))):
        clock += draw(st.integers(0, 20 * DAY_MS))
        batch = []
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(kinds))
            props: dict[str, Any] = {}
            if kind == "session_end":
                props = {"duration_seconds": draw(st.floats(0, 7200)),
                         "page_count": draw(st.integers(0, 50))}  # fmt: skip
            elif kind == "survey_response":
                props = {"nps": draw(st.integers(0, 10))}
            at = clock - draw(st.integers(0, 40 * DAY_MS))
            batch.append(Event(f"e{draw(st.integers(0, 99))}", "c", kind, at, props))
        steps.append((clock, batch))
    return model, steps


@given(streams(), st.integers(0, 7))
@settings(max_examples=examples(200), deadline=None)
def test_codec_is_identical_on_states_the_core_writes(
    stream: tuple[ScoringModel, list[tuple[int, list[Event]]]], partition: int
) -> None:
    model, steps = stream
    state = CustomerState()
    for now, batch in steps:
        result = advance(model, "c", state, batch, now)
        args = (result.state, result.breakdown, model.version, partition, model.bucket_ms)
        values = _same(redis_fields.state_values, NATIVE.state_values, *args)
        fields = dict(zip(redis_fields.STATE_FIELDS, values, strict=True))
        stored = {k: v.encode() if isinstance(v, str) else v for k, v in fields.items()}
        state = _same(redis_fields.state_from_fields, NATIVE.state_from_fields, stored)
        assert state == result.state
        # what the core writes never needs the Python path
        assert NATIVE.encodes(*args)
        assert NATIVE.decodes(stored)


def test_the_state_codec_follows_the_kernel_in_force() -> None:
    assert redis_fields.state_codec(kernel.load("python")).state_values is (
        redis_fields.state_values
    )
    native = redis_fields.state_codec(kernel.load("rust"))
    assert native.state_values is NATIVE.state_values
    assert native.state_from_fields is NATIVE.state_from_fields


# ---------------------------------------------------------------------------------------
# decode_event's fast path: whenever the compiled decoder answers, it answers as
# decode_event does


DECODE_MODEL = default_model()
KINDS = sorted(DECODE_MODEL.events)
ROLES = ["clickstream", "app_installs", "sessions", "elsewhere"]

ids = st.one_of(
    st.from_regex(r"[a-z]-[0-9]{1,9}", fullmatch=True),
    st.text(max_size=6),
    st.text(st.characters(max_codepoint=0x7F), min_size=120, max_size=140),
    st.sampled_from(["", "c\x00", "c\x7f", "ü-1", "c\u200b", "a b", "{c}", "c" * 128]),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
)  # fmt: skip


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    from datetime import UTC, datetime, timedelta, timezone  # noqa: PLC0415

    ms = draw(st.one_of(st.integers(NOW_MS - 35 * DAY_MS, NOW_MS + DAY_MS),
                        st.integers(-(10**12), 10**13)))  # fmt: skip
    minutes = draw(st.integers(-23 * 60, 23 * 60))
    zone = UTC if draw(st.booleans()) else timezone(timedelta(minutes=minutes))
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    moment += timedelta(microseconds=draw(st.sampled_from([0, 0, 1, 999, 500_000])))
    text = moment.astimezone(zone).isoformat(
        timespec=draw(st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]))
    )
    return draw(st.sampled_from([text, text.replace("+00:00", "Z"), text.replace("T", " "),
                                 text[:10], text.replace("+00:00", ""), text.lower()]))  # fmt: skip


ROLE_OF = {kind: role for role, kinds in DECODE_MODEL.topic_types.items() for kind in kinds}


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, bytes | None, str]:
    """A message, most often a plain valid one, else odd in one or more ways."""
    import json  # noqa: PLC0415

    odd = draw(st.integers(0, 3)) == 0  # odd anywhere at once, else one odd part at most
    part = draw(st.sampled_from(["id", "kind", "props", "time", "event_id", "members", "raw",
                                 "key", "role", "none", "none", "none"]))  # fmt: skip

    def pick(name: str, plain: st.SearchStrategy[Any], wild: st.SearchStrategy[Any]) -> Any:
        return draw(wild if odd or part == name else plain)

    customer = pick("id", st.from_regex(r"[a-z]-[0-9]{1,9}", fullmatch=True), ids)
    kind = pick("kind", st.sampled_from(KINDS), st.one_of(st.sampled_from(KINDS),
                st.sampled_from(["track", "identify", "group", "page", "", "Click"])))  # fmt: skip
    flat = st.dictionaries(st.text(max_size=5), scalars, max_size=4)
    props: Any = pick("props", flat, st.one_of(flat, st.none(), st.just([1]),
                      st.just({"nested": {"a": 1}}), st.just({"list": [1, 2]})))  # fmt: skip
    if kind == "session_end" and (odd or part != "props" or draw(st.booleans())):
        duration = st.one_of(st.integers(0, 7200), st.floats(0, 7200))
        pages = st.integers(0, 50)
        if odd or part == "props":
            duration = st.one_of(st.integers(-5, 700_000), st.floats(), st.booleans())
            pages = st.one_of(st.integers(-2, 2_000_000), st.floats(0, 9))
        props = {"duration_seconds": draw(duration), "page_count": draw(pages)}
    if kind == "survey_response":
        score = st.integers(0, 10) if not (odd or part == "props") else st.one_of(
            st.integers(-1, 12), st.floats(0, 10))  # fmt: skip
        names = st.sampled_from(["nps", "csat"])
        props = draw(st.dictionaries(names, score, min_size=0 if odd else 1, max_size=2))
        if "csat" in props and not (odd or part == "props"):
            props["csat"] = min(max(props["csat"], 1), 5)
    recent = st.integers(NOW_MS - 25 * DAY_MS, NOW_MS)
    plain_time = st.one_of(recent, recent.map(lambda ms: _iso(ms, draw)))
    wild_time = st.one_of(
        st.integers(NOW_MS - 40 * DAY_MS, NOW_MS + 600_000), st.integers(-(2**64), 2**64),
        iso_texts(), st.floats(1e12, 2e12), st.booleans(), st.text(max_size=4))  # fmt: skip
    doc: dict[str, Any] = {
        "event_id": pick("event_id", st.from_regex(r"e-[0-9]{1,6}", fullmatch=True),
                         st.one_of(ids, st.none(), st.integers(0, 10**6))),
        "customer_id": customer if not (odd and draw(st.booleans())) else draw(
            st.one_of(st.integers(0, 10**6), st.none())),
        "type": kind,
        "timestamp": pick("time", plain_time, wild_time),
        "properties": props,
    }  # fmt: skip
    if draw(st.booleans()) and not odd:
        del doc[draw(st.sampled_from(["event_id", "properties"]))]
    if odd or part == "members":
        for name in draw(st.lists(st.sampled_from([*doc, "extra", "userId", "event"]),
                                  max_size=2)):  # fmt: skip
            if name in doc and draw(st.booleans()):
                del doc[name]
            else:
                doc[name] = draw(scalars)
    compact = draw(st.booleans())
    raw = json.dumps(doc, indent=None if compact else 1, ensure_ascii=draw(st.booleans()),
                     separators=(",", ":") if compact else None).encode()  # fmt: skip
    if odd or part == "raw":  # damaged: cut, a stray byte, a repeated member
        cut = draw(st.integers(0, len(raw)))
        raw = draw(st.sampled_from([raw[:cut], raw[:cut] + b"\xff" + raw[cut:],
                                    raw[:-1] + b',"type":"click"}', raw + b" x"]))  # fmt: skip
    key = customer.encode(errors="surrogatepass") if isinstance(customer, str) else b"1"
    if odd or part == "key":
        key = draw(st.sampled_from([key, None, b"other"]))
    role = ROLE_OF.get(kind, "clickstream")
    if odd or part == "role":
        role = draw(st.sampled_from(ROLES))
    return raw, key, role


def _iso(ms: int, draw: st.DrawFn) -> str:
    """ISO text the compiled decoder reads itself (a zone as Z or as an offset)."""
    from datetime import UTC, datetime, timedelta, timezone  # noqa: PLC0415

    zone = timezone(timedelta(minutes=draw(st.integers(-23 * 60, 23 * 60))))
    moment = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(zone)
    text = moment.isoformat(timespec=draw(st.sampled_from(["milliseconds", "microseconds"])))
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


limits_strategy = st.builds(
    lambda b, n, d, i: __import__("stream.core.decode", fromlist=["x"]).DecodeLimits(b, n, d, i),
    st.sampled_from([65_536, 200, 64]), st.sampled_from([128, 8, 200]),
    st.sampled_from([32, 2, 1]), st.sampled_from([None, 6, 1000]),
)  # fmt: skip


@given(messages(), limits_strategy, st.integers(-3 * DAY_MS, 3 * DAY_MS), st.booleans())
@settings(max_examples=examples(800), deadline=None)
def test_the_fast_decoder_answers_as_decode_event(
    message: tuple[bytes, bytes | None, str], limits: Any, shift: int, replay: bool
) -> None:
    from stream.core.decode import decode_event  # noqa: PLC0415

    raw, key, role = message
    now = NOW_MS + shift
    decoder = NATIVE.FastDecoder(DECODE_MODEL, limits)
    got = decoder.decode(raw, key, role, now, "t/0/7", replay)
    expected = decode_event(raw, key=key, topic_role=role, model=DECODE_MODEL, now_ms=now,
                            fallback_id="t/0/7", limits=limits, replay=replay)  # fmt: skip
    if got is None:
        return
    assert isinstance(expected, Event)
    assert got == expected
    assert _shape(dict(got.properties)) == _shape(dict(expected.properties))
    assert type(got.timestamp_ms) is int and type(got.event_id) is str


@given(messages(), limits_strategy, st.integers(-3 * DAY_MS, 3 * DAY_MS), st.booleans())
@settings(max_examples=examples(300), deadline=None)
def test_the_decoder_gives_decode_events_answer_with_either_kernel(
    message: tuple[bytes, bytes | None, str], limits: Any, shift: int, replay: bool
) -> None:
    """``kernel.Decoder`` (the worker's, the file replay's and calibrate's staging's) gives
    exactly ``decode_event``'s answer, events, rejections and ignored calls alike."""
    from stream.core.decode import decode_event  # noqa: PLC0415

    raw, key, role = message
    now = NOW_MS + shift
    expected = decode_event(raw, key=key, topic_role=role, model=DECODE_MODEL, now_ms=now,
                            fallback_id="t/0/7", limits=limits, replay=replay)  # fmt: skip
    for name in ("rust", "python"):
        decode = kernel.Decoder(DECODE_MODEL, limits, replay=replay, loaded=kernel.load(name))
        assert (decode.fast is not None) == (name == "rust")
        assert decode(raw, key, role, now, "t/0/7") == expected


def test_the_fast_decoder_takes_the_benchmark_messages() -> None:
    """The compiled fast path answers every message of ``make bench``'s data set itself."""
    from devtools.bench.dataset import records  # noqa: PLC0415
    from stream.core.decode import DecodeLimits, decode_event  # noqa: PLC0415

    now = 1_795_000_000_000
    decoder = kernel.fast_decoder(DECODE_MODEL, DecodeLimits(), kernel.load("rust"))
    assert decoder is not None
    for m in records(200, 2000, now_ms=now):
        got = decoder.decode(m.value, m.key, m.role, now, "x")
        assert got is not None, m.value
        assert got == decode_event(m.value, key=m.key, topic_role=m.role, model=DECODE_MODEL,
                                   now_ms=now, fallback_id="x")  # fmt: skip


# ---------------------------------------------------------------------------------------
# Running totals of a state read from the store


def _running_model(returning: int | None, regularity: bool, bucket_ms: int) -> ScoringModel:
    from dataclasses import replace  # noqa: PLC0415

    from stream.core.model import RegularityRule, ReturningRule  # noqa: PLC0415

    return replace(
        default_model(),
        bucket_ms=bucket_ms,
        window_ms=30 * bucket_ms,
        returning=None if returning is None else ReturningRule(returning, 500),
        regularity=RegularityRule(200) if regularity else None,
    )


counters = st.sampled_from(["_active", "_session", "_other"])
visits = st.fixed_dictionaries(
    {"_active": st.integers(0, 2), "_session": st.integers(0, 2)},
    optional={"page_views": st.integers(-300, 300), "social": st.integers(0, 900)},
)
running_slots = st.one_of(
    visits,
    visits,
    st.dictionaries(
        st.one_of(counters, st.sampled_from(["page_views", "social", "bounces"]), names),
        st.one_of(st.integers(-3, 5), st.integers(-(2**63), 2**63 - 1)),
        max_size=5,
    ),
)


@given(
    st.one_of(
        st.sampled_from([None, 0, DAY_MS, 2 * DAY_MS, DAY_MS + 1]), st.integers(0, 5 * DAY_MS)
    ),
    st.booleans(),
    st.sampled_from([DAY_MS, 3_600_000]),
    st.dictionaries(
        st.one_of(st.integers(0, 20), st.integers(0, 60), wide), running_slots, max_size=10
    ),
    st.one_of(st.none(), st.integers(-5, 20), wide),
)
@example(DAY_MS, True, DAY_MS, {1: {"_active": 1, "_session": 1}, 2: {"_active": 1, "_session": 1}},
         None)  # fmt: skip
@settings(max_examples=examples(300), deadline=None)
def test_running_totals_are_built_identically(
    returning: int | None, regularity: bool, bucket_ms: int, buckets: dict[int, Any], prior: Any
) -> None:
    from stream.core import window  # noqa: PLC0415

    model = _running_model(returning, regularity, bucket_ms)
    gap = window.returning_gap(model)
    try:
        expected = window.Running.build(model, buckets, prior)
    except Exception as error:
        with pytest.raises(type(error)):
            NATIVE.running_build(model, buckets, prior, gap)
        return
    got = NATIVE.running_build(model, buckets, prior, gap)
    assert type(got) is window.Running and got.buckets is buckets
    for name in window.Running.__slots__:
        assert getattr(got, name) == getattr(expected, name), name
        assert _shape(getattr(got, name)) == _shape(getattr(expected, name)), name
    assert list(got.sums) == list(expected.sums)  # the same order: breakdowns follow it
    assert got.totals(model) == expected.totals(model) == window.totals(model, buckets, prior)


@given(streams())
@settings(max_examples=examples(200), deadline=None)
def test_advance_on_a_warmed_state_is_unchanged(
    stream: tuple[ScoringModel, list[tuple[int, list[Event]]]],
) -> None:
    """A state read back from the store, given its running totals by the compiled kernel,
    advances exactly as without them."""
    model, steps = stream
    warm = kernel.running_warmer(model, kernel.load("rust"))
    assert warm is not None
    state = CustomerState()
    for now, batch in steps:
        plain = _written(state)
        cold, warmed = (redis_fields.state_from_fields(plain) for _ in range(2))
        warm(warmed)
        assert running_of(model, warmed) is warmed.running  # advance takes it as it is
        a, b = advance(model, "c", cold, batch, now), advance(model, "c", warmed, batch, now)
        assert (a.state, a.breakdown, a.alerts, a.next_due_ms, a.applied) == (
            b.state, b.breakdown, b.alerts, b.next_due_ms, b.applied)  # fmt: skip
        assert list(a.breakdown) == list(b.breakdown)
        state = a.state
