"""Segment rollups: the pure maths against a from-scratch reference, the model section, and
the batch processor keeping the rollups equal to the stored customers across crashes and
redeliveries (in-memory store with the Redis store's semantics)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Sequence

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.config.errors import ConfigError
from stream.config.model_file import load_model, parse_model
from stream.config.settings import TopicNames
from stream.core.bands import DEFAULT_BANDS
from stream.core.segments import (
    MAX_VALUE_LENGTH,
    NONE_VALUE,
    OTHER_VALUE,
    Membership,
    SegmentSettings,
    apply_change,
    decode_membership,
    encode_membership,
    engagement_index,
    membership,
    normalise,
    rollup,
    segment_rows,
)
from stream.ports import Incoming
from stream.worker.processor import BatchProcessor
from tests.doubles import Crash, CrashingStore, CrashPlan, MemoryScoreStore, RecordingPublisher
from tests.factories import NOW_MS, native
from tests.profiles import examples

BANDS = list(DEFAULT_BANDS.names)
DIMS = ("plan", "country")
HOUR_MS = 3_600_000
TOPICS = TopicNames()
_offsets = itertools.count()

values = st.sampled_from(["free", "pro", "team", NONE_VALUE, OTHER_VALUE, "ü", "a b"])
members = st.builds(
    Membership,
    band=st.sampled_from(BANDS),
    score_cp=st.integers(-5000, 20000),
    values=st.tuples(*(st.tuples(st.just(d), values) for d in DIMS)),
)


@given(st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), members)), max_size=40))
def test_incremental_counters_equal_the_rollup_of_the_stored_memberships(
    writes: list[tuple[int, Membership | None]],
) -> None:
    """Any sequence of membership writes (None: the customer leaves), each applied as the
    difference from the stored one, ends at the from-scratch rollup; repeating the last
    write of every customer (a replay) changes nothing."""
    stored: dict[int, Membership] = {}
    counts: dict[str, int] = {}
    for customer, member in writes:
        apply_change(counts, stored.get(customer), member)
        if member is None:
            stored.pop(customer, None)
        else:
            stored[customer] = member
    assert counts == rollup(stored.values())
    for member in stored.values():
        apply_change(counts, member, member)
    assert counts == rollup(stored.values())
    assert all(amount != 0 for amount in counts.values()), "zero fields are removed"


@given(st.lists(members, max_size=30))
def test_rows_count_customers_mean_score_and_index_per_value(found: list[Membership]) -> None:
    rows = segment_rows(rollup(found), SegmentSettings(DIMS), DEFAULT_BANDS)
    for i, dim in enumerate(DIMS):
        expected: dict[str, list[Membership]] = {}
        for m in found:
            expected.setdefault(m.values[i][1], []).append(m)
        got = {r.value: r for r in rows[dim]}
        assert set(got) == set(expected)
        for value, group in expected.items():
            row = got[value]
            assert row.customers == len(group)
            assert row.mean_score == round(sum(m.score_cp for m in group) / len(group) / 100, 2)
            assert row.bands == {b: sum(m.band == b for m in group) for b in BANDS}
            assert row.index == engagement_index(DEFAULT_BANDS, row.bands)
            assert sum(row.index.values()) == pytest.approx(100.0)
        assert [r.customers for r in rows[dim]] == sorted((r.customers for r in rows[dim]),
                                                          reverse=True)  # fmt: skip


@given(st.one_of(st.none(), st.text(), st.integers(), st.floats(allow_nan=False),
                 st.booleans(), st.lists(st.integers(), max_size=3)))  # fmt: skip
def test_normalised_values_are_short_printable_strings(value: object) -> None:
    text = normalise(value)
    assert 0 < len(text) <= MAX_VALUE_LENGTH
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text), "no control characters"
    if value is None or (isinstance(value, str) and not value.strip()):
        assert text == NONE_VALUE


def test_normalise_examples() -> None:
    assert normalise("pro") == "pro"
    assert normalise(3) == "3" and normalise(True) == "true"
    assert normalise({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    assert normalise("x" * 100) == "x" * MAX_VALUE_LENGTH
    assert normalise("a\x1fb") == "a\ufffdb"
    assert normalise("") == NONE_VALUE


@given(members)
def test_the_stored_form_reads_back(member: Membership) -> None:
    assert decode_membership(encode_membership(member)) == member


def test_membership_from_traits_and_missing_traits() -> None:
    settings_ = SegmentSettings(("plan", "country"), 7)
    got = membership(settings_, {"plan": "pro", "other": 1}, "power_user", 12345)
    assert got == Membership("power_user", 12345, (("plan", "pro"), ("country", NONE_VALUE)), 7)
    assert membership(None, {"plan": "pro"}, "power_user", 1) is None


def _model_doc(**segments: object) -> dict[str, object]:
    return {"version": "t", "window": "30d", "bucket": "1d",
            "events": {"page_view": {"factor": "views", "points": 1}},
            "segments": segments}  # fmt: skip


def test_the_model_section_parses_and_defaults() -> None:
    model = parse_model(_model_doc(dimensions=["plan", "country"]), "t.yaml")
    assert model.segments == SegmentSettings(("plan", "country"), 50)
    assert parse_model(_model_doc(dimensions=["plan"], max_values=3), "t").segments == (
        SegmentSettings(("plan",), 3)
    )
    assert load_model("default").segments is None, "off by default: no cost"
    assert load_model("demo").segments == SegmentSettings(("plan", "country", "channel"), 50)


def test_band_names_must_be_printable_with_segments() -> None:
    doc = _model_doc(dimensions=["plan"])
    doc["bands"] = {"low\x1d": 0, "high": None}
    doc["alerts"] = {"band": "high"}
    with pytest.raises(ConfigError, match="printable"):
        parse_model(doc, "t.yaml")
    del doc["segments"]
    assert parse_model(doc, "t.yaml").bands.names == ("low\x1d", "high")


@pytest.mark.parametrize(
    ("section", "key", "problem"),
    [
        ({"dimensions": []}, "segments.dimensions", "non-empty list"),
        ({"dimensions": "plan"}, "segments.dimensions", "non-empty list"),
        ({"dimensions": ["plan", "plan"]}, "segments.dimensions", "repeat"),
        ({"dimensions": ["a\x1fb"]}, "segments.dimensions", "usable trait name"),
        ({"dimensions": [f"d{i}" for i in range(11)]}, "segments.dimensions", "at most 10"),
        ({"dimensions": ["plan"], "max_values": 0}, "segments.max_values", "at least 1"),
        ({"dimensions": ["plan"], "max_values": 5000}, "segments.max_values", "at most 1000"),
        ({"dimensions": ["plan"], "max_values": 2.5}, "segments.max_values", "whole number"),
        ({"dimensions": ["plan"], "limit": 3}, "segments.limit", "unknown key"),
        ({"max_values": 3}, "segments.dimensions", "is required"),
    ],
)
def test_bad_sections_name_the_key(section: dict[str, object], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_model(_model_doc(**section), "t.yaml")
    assert key in str(caught.value) and problem in str(caught.value)


# The batch processor: identify calls and events, crashes and redeliveries.

MODEL = dataclasses.replace(load_model("default"), segments=SegmentSettings(DIMS, max_values=2))
PLANS = ["free", "pro", "team", "enterprise"]  # four values, two admitted: overflow is exercised


def _partition(customer: str) -> int:
    return int(customer[1:]) % 3


def identify(customer: str, at_ms: int, **traits: object) -> Incoming:
    doc = {"type": "identify", "userId": customer, "messageId": f"i{next(_offsets)}",
           "timestamp": at_ms, "traits": traits}  # fmt: skip
    return Incoming(TOPICS.clickstream, _partition(customer), next(_offsets), customer.encode(),
                    orjson.dumps(doc), at_ms)  # fmt: skip


def view(customer: str, at_ms: int, kind: str = "page_view") -> Incoming:
    return Incoming(TOPICS.clickstream, _partition(customer), next(_offsets), customer.encode(),
                    native(kind, customer, at_ms, f"e{next(_offsets)}"), at_ms)  # fmt: skip


def assert_rollups_match(store: MemoryScoreStore) -> None:
    """Each partition's memberships and counters equal the ones computed from scratch from
    the stored customers (traits, band, score), with the store's admitted values; at most
    ``max_values`` values are admitted per dimension."""
    assert MODEL.segments is not None
    admitted = {dim: set(vals) for dim, vals in store.seg_values.items()}
    assert all(len(vals) <= MODEL.segments.max_values for vals in admitted.values())
    expected: dict[int, dict[str, Membership]] = {}
    for customer, row in store.rows.items():
        member = membership(MODEL.segments, row.profile.traits, str(row.state.band),
                            row.state.score_cp)  # fmt: skip
        assert member is not None
        values = tuple((d, v if v in (NONE_VALUE, OTHER_VALUE) or v in admitted.get(d, ())
                        else OTHER_VALUE) for d, v in member.values)  # fmt: skip
        resolved = dataclasses.replace(member, values=values)
        expected.setdefault(row.partition, {})[customer] = resolved
    assert store.seg_members == expected
    assert {p: c for p, c in store.seg_counts.items() if c} == {
        p: rollup(m.values()) for p, m in expected.items()
    }


def _play(store: MemoryScoreStore, plan: CrashPlan, batches: Sequence[tuple[int, list[Incoming]]],
          restart: bool) -> int:  # fmt: skip
    def worker(now: list[int]) -> BatchProcessor:
        return BatchProcessor(MODEL, CrashingStore(store, plan), RecordingPublisher(plan), TOPICS,
                              clock_ms=lambda: now[0])  # fmt: skip

    now = [NOW_MS]
    processor, crashes = worker(now), 0
    for at, batch in batches:
        now[0] = at
        while True:
            try:
                asyncio.run(processor.process(batch))
                break
            except Crash:
                crashes += 1
                if restart:
                    processor = worker(now)
    return crashes


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, list[Incoming]]]:
    batches: list[tuple[int, list[Incoming]]] = []
    sent: list[Incoming] = []
    now = NOW_MS
    for _ in range(draw(st.integers(1, 5))):
        now += draw(st.integers(0, 12)) * HOUR_MS
        fresh = []
        for c, kind, plan, age in draw(st.lists(st.tuples(
            st.integers(0, 5), st.sampled_from(["identify", "page_view", "conversion"]),
            st.sampled_from([*PLANS, None]), st.integers(0, 10),
        ), min_size=1, max_size=8)):  # fmt: skip
            at = now - age * HOUR_MS
            if kind == "identify":
                traits = {"country": draw(st.sampled_from(["DE", "FR"]))}
                if plan is not None:
                    traits["plan"] = plan
                fresh.append(identify(f"c{c}", at, **traits))
            else:
                fresh.append(view(f"c{c}", at, kind))
        again = draw(st.lists(st.sampled_from(sent), max_size=4)) if sent else []
        sent += fresh
        batches.append((now, draw(st.permutations([*fresh, *again]))))
    return batches


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sets(st.integers(0, 30), max_size=4), st.booleans())
def test_random_crashes_and_redeliveries_keep_rollups_equal_to_the_customers(
    batches: list[tuple[int, list[Incoming]]], crashes: set[int], restart: bool
) -> None:
    store = MemoryScoreStore()
    _play(store, CrashPlan(at=crashes), batches, restart)
    assert_rollups_match(store)
    again = dataclasses.replace(store, seg_counts={p: dict(c) for p, c in store.seg_counts.items()})
    _play(again, CrashPlan(), [(batches[-1][0], [m for _, b in batches for m in b])], True)
    assert again.seg_counts == store.seg_counts, "replaying every message changes nothing"


def test_values_beyond_the_limit_count_as_other_and_stay_there() -> None:
    store = MemoryScoreStore()
    batch = [identify(f"c{i}", NOW_MS - 10, plan=plan) for i, plan in enumerate(PLANS)]
    batch += [view(f"c{i}", NOW_MS - 5) for i in range(len(PLANS))]
    _play(store, CrashPlan(), [(NOW_MS, batch)], True)
    assert_rollups_match(store)
    rows = {r.value: r.customers for r in _rows(store)["plan"]}
    assert rows == {"free": 1, "pro": 1, OTHER_VALUE: 2}
    country = {r.value: r.customers for r in _rows(store)["country"]}
    assert country == {NONE_VALUE: 4}, "a missing trait counts under (none)"
    # c3 moves to an admitted plan: it leaves (other) for "pro".
    _play(store, CrashPlan(), [(NOW_MS + 1, [identify("c3", NOW_MS, plan="pro")])], True)
    assert {r.value: r.customers for r in _rows(store)["plan"]} == {
        "free": 1, "pro": 2, OTHER_VALUE: 1,
    }  # fmt: skip
    assert_rollups_match(store)


def _rows(store: MemoryScoreStore) -> dict[str, list[object]]:
    assert MODEL.segments is not None
    total: dict[str, int] = {}
    for counts in store.seg_counts.values():
        for name, amount in counts.items():
            total[name] = total.get(name, 0) + amount
    return segment_rows(total, MODEL.segments, MODEL.bands)  # type: ignore[return-value]


def test_segments_off_writes_nothing() -> None:
    store = MemoryScoreStore()
    processor = BatchProcessor(load_model("default"), store, RecordingPublisher(), TOPICS,
                               clock_ms=lambda: NOW_MS)  # fmt: skip
    asyncio.run(processor.process([identify("c1", NOW_MS - 5, plan="pro"), view("c1", NOW_MS)]))
    assert store.rows and not store.seg_members and not store.seg_counts


@given(st.dictionaries(st.sampled_from(["plan", "country", "x"]),
                       st.one_of(st.none(), st.text(max_size=80), st.integers())))  # fmt: skip
def test_membership_values_are_the_normalised_traits(traits: dict[str, object]) -> None:
    """The hot path's shortcut for plain strings gives what ``normalise`` gives."""
    got = membership(SegmentSettings(DIMS), traits, "power_user", 1)
    assert got is not None
    assert got.values == tuple((d, normalise(traits.get(d))) for d in DIMS)
