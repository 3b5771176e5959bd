"""Property-based tests of the pure core (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.customer import CustomerState, advance, drop_duplicates
from stream.core.events import Event, fingerprint
from tests.factories import DAY_MS, NOW_MS, default_model

MODEL = default_model()
TYPES = sorted(t for t in MODEL.events if t not in ("session_end", "survey_response"))


@st.composite
def events(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from([*TYPES, "session_end", "survey_response"]))
    at = NOW_MS - draw(st.integers(0, 29 * DAY_MS))
    props: dict[str, object] = {}
    if kind == "session_end":
        props = {
            "duration_seconds": draw(st.floats(0, 7200)),
            "page_count": draw(st.integers(0, 50)),
        }
    elif kind == "survey_response":
        props = {"nps": draw(st.integers(0, 10))}
    return Event(f"id-{draw(st.integers(0, 10**9))}", "c1", kind, at, props)


batches = st.lists(events(), max_size=40)


@given(batches, st.randoms())
@settings(max_examples=200, deadline=None)
def test_order_within_window_does_not_matter(batch: list[Event], rng) -> None:
    """Any permutation of the same events gives the same score and breakdown."""
    shuffled = list(batch)
    rng.shuffle(shuffled)
    a = advance(MODEL, "c1", CustomerState(), batch, NOW_MS)
    b = advance(MODEL, "c1", CustomerState(), shuffled, NOW_MS)
    assert a.state.score_cp == b.state.score_cp
    assert a.breakdown == b.breakdown


@given(batches, st.integers(0, 40))
@settings(max_examples=200, deadline=None)
def test_split_into_batches_equals_one_batch(batch: list[Event], cut: int) -> None:
    """Applying events in two batches gives the same state as one batch."""
    whole = advance(MODEL, "c1", CustomerState(), batch, NOW_MS)
    first = advance(MODEL, "c1", CustomerState(), batch[:cut], NOW_MS)
    second = advance(MODEL, "c1", first.state, batch[cut:], NOW_MS)
    assert second.state.buckets == whole.state.buckets
    assert second.state.score_cp == whole.state.score_cp


@given(batches)
@settings(max_examples=200, deadline=None)
def test_replaying_a_batch_changes_nothing(batch: list[Event]) -> None:
    """With duplicate detection, a replayed batch leaves the state unchanged."""
    seen: set[bytes] = set()
    once = advance(MODEL, "c1", CustomerState(), drop_duplicates(batch, seen), NOW_MS)
    assert seen == {fingerprint(e) for e in batch}
    again = advance(MODEL, "c1", once.state, drop_duplicates(batch, seen), NOW_MS)
    assert again.state == once.state
    assert again.alerts == ()


@given(st.lists(events().filter(lambda e: e.type not in ("app_uninstall", "survey_response",
                                                         "session_end")), min_size=1, max_size=30),
       st.lists(st.integers(0, 40 * DAY_MS), min_size=2, max_size=6))  # fmt: skip
@settings(max_examples=200, deadline=None)
def test_scores_fall_as_events_expire(batch: list[Event], offsets: list[int]) -> None:
    """With only non-negative events, the score never rises as time passes, and ends at 0."""
    state = advance(MODEL, "c1", CustomerState(), batch, NOW_MS).state
    previous = state.score_cp
    for offset in sorted(offsets):
        state = advance(MODEL, "c1", state, [], NOW_MS + offset).state
        assert state.score_cp <= previous
        previous = state.score_cp
    final = advance(MODEL, "c1", state, [], NOW_MS + 31 * DAY_MS)
    assert final.state.score_cp == 0
    assert final.state.band == "churn_risk"


@given(batches, st.integers(0, 40 * DAY_MS))
@settings(max_examples=200, deadline=None)
def test_score_equals_sum_of_breakdown_and_band_matches(batch: list[Event], later: int) -> None:
    """The score is exactly the sum of its breakdown, and the band is the score's band."""
    state = advance(MODEL, "c1", CustomerState(), batch, NOW_MS).state
    result = advance(MODEL, "c1", state, [], NOW_MS + later)
    assert result.state.score_cp == sum(result.breakdown.values())
    assert result.state.band == MODEL.bands.band_for(result.state.score_cp / 100)


@given(batches, st.lists(st.integers(0, 40 * DAY_MS), max_size=8))
@settings(max_examples=200, deadline=None)
def test_at_most_one_alert_per_crossing_and_only_into_churn(
    batch: list[Event], steps: list[int]
) -> None:
    """Alerts fire only on entering churn_risk from another band, never twice without re-arming."""
    state = advance(MODEL, "c1", CustomerState(), batch, NOW_MS).state
    for step in sorted(steps):
        before = state
        result = advance(MODEL, "c1", state, [], NOW_MS + step)
        for alert in result.alerts:
            assert alert.band == "churn_risk" and alert.previous_band != "churn_risk"
            assert before.gate.armed or before.score_cp / 100 > MODEL.alerts.rearm_above
        state = result.state


@given(batches, st.integers(0, 40), st.integers(0, 40 * DAY_MS))
@settings(max_examples=200, deadline=None)
def test_a_kept_breakdown_gives_the_same_evaluation(
    batch: list[Event], cut: int, later: int
) -> None:
    """Passing the previous evaluation's breakdown (the worker's cache) changes nothing."""
    first = advance(MODEL, "c1", CustomerState(), batch[:cut], NOW_MS)
    kept = advance(MODEL, "c1", first.state, batch[cut:], NOW_MS + later, first.breakdown)
    fresh = advance(MODEL, "c1", first.state, batch[cut:], NOW_MS + later)
    assert kept == fresh


@given(batches)
@settings(max_examples=100, deadline=None)
def test_precomputed_fingerprints_drop_the_same_duplicates(batch: list[Event]) -> None:
    """drop_duplicates with the caller's fingerprints equals computing them itself."""
    doubled = batch + batch[: len(batch) // 2]
    marks = [fingerprint(e) for e in doubled]
    assert drop_duplicates(doubled, set(), marks) == drop_duplicates(doubled, set())
