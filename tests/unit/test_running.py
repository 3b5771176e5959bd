"""Running window totals (``window.Running``) against the from-scratch ``window.totals``."""

from __future__ import annotations

import copy
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core import window
from stream.core.customer import CustomerState, advance, running_of
from stream.core.events import Event
from stream.core.model import ACTIVE, SESSION, RegularityRule, ReturningRule, ScoringModel
from tests.factories import DAY_MS, NOW_MS, default_model
from tests.profiles import examples

MODEL = default_model()
MODELS: list[ScoringModel] = [
    MODEL,
    replace(MODEL, returning=ReturningRule(away_ms=3 * DAY_MS, points_cp=700)),
    replace(MODEL, returning=ReturningRule(away_ms=1, points_cp=100), regularity=None),
    replace(MODEL, returning=None, regularity=RegularityRule(300)),
    replace(MODEL, returning=ReturningRule(points_cp=0), regularity=RegularityRule(0)),
]
BASE = MODEL.bucket_of(NOW_MS) - 40

contributions = st.dictionaries(
    st.sampled_from(["clicks", "posts", "bounces", ACTIVE, SESSION]),
    st.integers(-500, 500),
    max_size=5,
).map(lambda c: {k: (1 if k in (ACTIVE, SESSION) else v) for k, v in c.items() if v})
add_op = st.tuples(st.just("add"), st.integers(0, 45), contributions)
expire_op = st.tuples(st.just("expire"), st.integers(0, 80), st.just({}))
operations = st.lists(st.one_of(add_op, add_op, expire_op), max_size=60)


def _check(model: ScoringModel, running: window.Running) -> None:
    buckets = running.buckets
    assert running.totals(model) == window.totals(model, buckets, running.prior)
    assert running.keys == sorted(buckets)
    assert running.active == sorted(b for b, s in buckets.items() if s.get(ACTIVE, 0) > 0)
    rebuilt = window.Running.build(model, buckets, running.prior)
    assert running.returns == rebuilt.returns
    assert {k: v for k, v in running.sums.items() if v} == {
        k: v for k, v in rebuilt.sums.items() if v
    }


@given(
    st.sampled_from(range(len(MODELS))),
    operations,
    st.one_of(st.none(), st.integers(BASE - 10, BASE + 5)),
)
@settings(max_examples=examples(300), deadline=None)
def test_running_totals_equal_totals_from_scratch_after_adds_and_expiries(
    which: int, ops: list[tuple[str, int, dict[str, int]]], prior: int | None
) -> None:
    """After any sequence of adds and expiries, the running totals equal ``window.totals``
    over the buckets, and buckets and ``prior`` equal the in-place reference operations."""
    model = MODELS[which]
    running = window.Running.build(model, {}, prior)
    reference: window.Buckets = {}
    reference_prior = prior
    for kind, offset, contribution in ops:
        if kind == "add":
            running.add(BASE + offset, contribution)
            window.add(reference, BASE + offset, contribution)
        else:
            at = (BASE + offset) * model.bucket_ms + model.window_ms
            expected_moments = window.expiry_moments(model, reference, at)
            assert running.expiry_moments(model, at) == expected_moments
            running.expire(model, at)
            latest = window.pop_expired(model, reference, at)
            if latest is not None and (reference_prior is None or latest > reference_prior):
                reference_prior = latest
        assert running.buckets == reference
        assert running.prior == reference_prior
        assert running.next_expiry(model) == window.next_expiry(model, reference)
        _check(model, running)


@given(operations, operations)
@settings(max_examples=examples(100), deadline=None)
def test_a_copy_changes_without_changing_the_original(
    first: list[tuple[str, int, dict[str, int]]], second: list[tuple[str, int, dict[str, int]]]
) -> None:
    """Slots are shared between copies but never changed in place."""
    model = MODELS[1]
    running = window.Running.build(model, {}, None)
    for kind, offset, contribution in first:
        if kind == "add":
            running.add(BASE + offset, contribution)
    before = copy.deepcopy(running.buckets)
    totals = running.totals(model)
    other = running.copy()
    for kind, offset, contribution in second:
        if kind == "add":
            other.add(BASE + offset, contribution)
        else:
            other.expire(model, (BASE + offset) * model.bucket_ms + model.window_ms)
    assert running.buckets == before
    assert running.totals(model) == totals
    _check(model, running)
    _check(model, other)


def _events(days: list[tuple[int, str]]) -> list[Event]:
    return [
        Event(f"e{i}", "c1", kind, NOW_MS - day * DAY_MS, {"duration_seconds": 60, "page_count": 3})
        for i, (day, kind) in enumerate(days)
    ]


@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(0, 29), st.sampled_from(["click", "session_end", "conversion"])),
            max_size=6,
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 40),
)
@settings(max_examples=examples(100), deadline=None)
def test_advance_never_changes_the_state_it_is_given(
    batches: list[list[tuple[int, str]]], later_days: int
) -> None:
    """A caller may keep using the state it advanced (the worker retries a commit from it):
    advancing it again, with events or with time only, gives the same result each time."""
    state = CustomerState()
    for batch in batches:
        state = advance(MODEL, "c1", state, _events(batch), NOW_MS).state
    frozen = copy.deepcopy(state)
    at = NOW_MS + later_days * DAY_MS
    more = _events([(0, "click")])
    more = [replace(e, timestamp_ms=at, event_id="late") for e in more]
    once = advance(MODEL, "c1", state, more, at)
    twice = advance(MODEL, "c1", state, more, at)
    assert state == frozen
    assert state.buckets == frozen.buckets
    assert once.state == twice.state
    assert once.breakdown == twice.breakdown
    assert running_of(MODEL, once.state).totals(MODEL) == window.totals(
        MODEL, once.state.buckets, once.state.prior_active
    )


def test_a_state_built_by_hand_or_replaced_gets_totals_of_its_own_buckets() -> None:
    """Totals cached on a state are used only for the very buckets and prior they describe."""
    state = advance(
        MODEL, "c1", CustomerState(), _events([(0, "click"), (3, "conversion")]), NOW_MS
    ).state
    assert state.running is not None
    assert running_of(MODEL, state) is state.running
    emptied = replace(state, buckets={})
    assert running_of(MODEL, emptied).totals(MODEL) == {}
    moved = replace(state, prior_active=MODEL.bucket_of(NOW_MS) - 40)
    assert running_of(MODEL, moved) is not state.running
    assert running_of(MODEL, moved).totals(MODEL) == window.totals(
        MODEL, moved.buckets, moved.prior_active
    )
