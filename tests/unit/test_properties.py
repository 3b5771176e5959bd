"""Property-based tests of the pure core (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.config.model_file import parse_model
from stream.core.customer import CustomerState, advance, breakdown_of, drop_duplicates
from stream.core.events import Event, fingerprint
from stream.core.model import ACTIVE, ScoringModel
from tests.factories import DAY_MS, NOW_MS, default_model
from tests.profiles import examples

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
@settings(max_examples=examples(200), deadline=None)
def test_order_within_window_does_not_matter(batch: list[Event], rng) -> None:
    """Any permutation of the same events gives the same score and breakdown."""
    shuffled = list(batch)
    rng.shuffle(shuffled)
    a = advance(MODEL, "c1", CustomerState(), batch, NOW_MS)
    b = advance(MODEL, "c1", CustomerState(), shuffled, NOW_MS)
    assert a.state.score_cp == b.state.score_cp
    assert a.breakdown == b.breakdown


@given(batches, st.integers(0, 40))
@settings(max_examples=examples(200), deadline=None)
def test_split_into_batches_equals_one_batch(batch: list[Event], cut: int) -> None:
    """Applying events in two batches gives the same state as one batch."""
    whole = advance(MODEL, "c1", CustomerState(), batch, NOW_MS)
    first = advance(MODEL, "c1", CustomerState(), batch[:cut], NOW_MS)
    second = advance(MODEL, "c1", first.state, batch[cut:], NOW_MS)
    assert second.state.buckets == whole.state.buckets
    assert second.state.score_cp == whole.state.score_cp


@given(batches)
@settings(max_examples=examples(200), deadline=None)
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
@settings(max_examples=examples(200), deadline=None)
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
@settings(max_examples=examples(200), deadline=None)
def test_score_equals_sum_of_breakdown_and_band_matches(batch: list[Event], later: int) -> None:
    """The score is exactly the sum of its breakdown, and the band is the score's band."""
    state = advance(MODEL, "c1", CustomerState(), batch, NOW_MS).state
    result = advance(MODEL, "c1", state, [], NOW_MS + later)
    assert result.state.score_cp == sum(result.breakdown.values())
    assert result.state.band == MODEL.bands.band_for(result.state.score_cp / 100)


@given(batches, st.lists(st.integers(0, 40 * DAY_MS), max_size=8))
@settings(max_examples=examples(200), deadline=None)
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
@settings(max_examples=examples(200), deadline=None)
def test_a_kept_breakdown_gives_the_same_evaluation(
    batch: list[Event], cut: int, later: int
) -> None:
    """Passing the previous evaluation's breakdown (the worker's cache) changes nothing."""
    first = advance(MODEL, "c1", CustomerState(), batch[:cut], NOW_MS)
    kept = advance(MODEL, "c1", first.state, batch[cut:], NOW_MS + later, first.breakdown)
    fresh = advance(MODEL, "c1", first.state, batch[cut:], NOW_MS + later)
    assert kept == fresh


@given(batches)
@settings(max_examples=examples(100), deadline=None)
def test_precomputed_fingerprints_drop_the_same_duplicates(batch: list[Event]) -> None:
    """drop_duplicates with the caller's fingerprints equals computing them itself."""
    doubled = batch + batch[: len(batch) // 2]
    marks = [fingerprint(e) for e in doubled]
    assert drop_duplicates(doubled, set(), marks) == drop_duplicates(doubled, set())


# -- models with transforms, a baseline, tenure and the onboarding alert ------------------


def _shaped_model(**changes: object) -> ScoringModel:
    doc = yaml.safe_load((Path(__file__).parents[2] / "stream/config/models/default.yaml")
                         .read_text())  # fmt: skip
    doc.update(
        version="shaped-1",
        factors={
            "page_views": {"transform": "log1p", "scale": 5, "weight": 6},
            "social": {"transform": "cap", "max": 20},
            "regularity": {"transform": "cap", "max": 20, "weight": 1.5},
            "time_on_site": {"transform": "log1p", "scale": 10, "weight": 4},
            "nps": {"weight": 0.5},
            "tenure": {"transform": "log1p", "scale": 10, "weight": 5},
        },
        baseline=-15,
        tenure={"points_per_day": 1, "max_days": 20},
    )
    doc["alerts"]["onboarding"] = {"after": "7d"}
    doc.update(changes)
    return parse_model(doc, "shaped.yaml")


SHAPED = _shaped_model()


@given(batches, st.randoms())
@settings(max_examples=examples(200), deadline=None)
def test_shaped_order_within_window_does_not_matter(batch: list[Event], rng) -> None:
    """Transforms, baseline and tenure keep any permutation's score and breakdown equal."""
    shuffled = list(batch)
    rng.shuffle(shuffled)
    a = advance(SHAPED, "c1", CustomerState(), batch, NOW_MS)
    b = advance(SHAPED, "c1", CustomerState(), shuffled, NOW_MS)
    assert a.state == b.state
    assert a.breakdown == b.breakdown
    assert a.state.score_cp == sum(a.breakdown.values())


@given(batches, st.integers(0, 40), st.integers(0, 3 * DAY_MS))
@settings(max_examples=examples(200), deadline=None)
def test_shaped_split_into_batches_equals_one_batch(batch: list[Event], cut: int,
                                                    gap: int) -> None:  # fmt: skip
    """Two batches (the second a little later) give the one-batch state at the later time
    (for events that still count then: one that expires in between is applied only by the
    split run, and then sets the first-seen time)."""
    batch = [e for e in batch if SHAPED.is_live(e.timestamp_ms, NOW_MS + gap)]
    whole = advance(SHAPED, "c1", CustomerState(), batch, NOW_MS + gap)
    first = advance(SHAPED, "c1", CustomerState(), batch[:cut], NOW_MS)
    second = advance(SHAPED, "c1", first.state, batch[cut:], NOW_MS + gap)
    assert second.state.buckets == whole.state.buckets
    assert second.state.first_seen_ms == whole.state.first_seen_ms
    assert second.breakdown == whole.breakdown
    assert second.state.score_cp == whole.state.score_cp


@given(batches, st.lists(st.integers(0, 60 * DAY_MS), max_size=6))
@settings(max_examples=examples(200), deadline=None)
def test_shaped_replay_is_idempotent_and_onboarding_alerts_at_most_once(
    batch: list[Event], steps: list[int]
) -> None:
    """Replaying a batch or a sweep changes nothing; one onboarding alert at most, ever."""
    seen: set[bytes] = set()
    state = advance(SHAPED, "c1", CustomerState(), drop_duplicates(batch, seen), NOW_MS).state
    onboarding = 0
    for step in sorted(steps):
        result = advance(SHAPED, "c1", state, drop_duplicates(batch, seen), NOW_MS + step)
        again = advance(SHAPED, "c1", result.state, drop_duplicates(batch, seen), NOW_MS + step)
        assert again.state == result.state and again.alerts == ()
        onboarding += sum(a.trigger == "onboarding" for a in result.alerts)
        assert result.next_due_ms is None or result.next_due_ms > NOW_MS + step
        state = result.state
    assert onboarding <= 1


@given(st.lists(events().filter(lambda e: e.type not in ("app_uninstall", "survey_response",
                                                         "session_end")), min_size=1, max_size=30),
       st.lists(st.integers(0, 40 * DAY_MS), min_size=2, max_size=6))  # fmt: skip
@settings(max_examples=examples(200), deadline=None)
def test_shaped_scores_fall_as_events_expire_except_for_tenure(
    batch: list[Event], offsets: list[int]
) -> None:
    """Without tenure the score never rises as time passes; it ends at the baseline + tenure."""
    state = advance(SHAPED, "c1", CustomerState(), batch, NOW_MS).state
    previous = state.score_cp - breakdown_of(SHAPED, state).get("tenure", 0)
    for offset in sorted(offsets):
        result = advance(SHAPED, "c1", state, [], NOW_MS + offset)
        state = result.state
        current = state.score_cp - result.breakdown.get("tenure", 0)
        assert current <= previous
        previous = current
    final = advance(SHAPED, "c1", state, [], NOW_MS + 31 * DAY_MS)
    assert final.breakdown == {"baseline": -1500, "tenure": SHAPED.transforms["tenure"].apply(2000)}


# -- monotonicity --------------------------------------------------------------------------

POSITIVE = sorted(t for t, rule in MODEL.events.items()
                  if rule.points_cp >= 0 and t not in ("session_end",
                                                       "survey_response"))  # fmt: skip
MONOTONE = _shaped_model(returning_visit=None)


@st.composite
def positive_events(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from(POSITIVE))
    at = NOW_MS - draw(st.integers(0, 29 * DAY_MS))
    return Event(f"x-{draw(st.integers(0, 10**9))}", "c1", kind, at)


@given(batches, st.lists(positive_events(), min_size=1, max_size=10),
       st.lists(st.integers(0, 40 * DAY_MS), max_size=4))  # fmt: skip
@settings(max_examples=examples(300), deadline=None)
def test_more_of_a_positive_event_never_lowers_the_score(
    batch: list[Event], extra: list[Event], later: list[int]
) -> None:
    """With monotone transforms and non-negative weights, extra positive events never lower
    the score, now or at any later time (returning visits off: see the next tests)."""
    fewer = advance(MONOTONE, "c1", CustomerState(), batch, NOW_MS)
    more = advance(MONOTONE, "c1", CustomerState(), batch + extra, NOW_MS)
    assert more.state.score_cp >= fewer.state.score_cp
    for step in sorted(later):
        fewer = advance(MONOTONE, "c1", fewer.state, [], NOW_MS + step)
        more = advance(MONOTONE, "c1", more.state, [], NOW_MS + step)
        assert more.state.score_cp >= fewer.state.score_cp


@given(batches, st.lists(positive_events(), min_size=1, max_size=10))
@settings(max_examples=examples(300), deadline=None)
def test_with_returning_visits_more_on_an_active_day_never_lowers_the_score(
    batch: list[Event], extra: list[Event]
) -> None:
    """Returning visits on: extra positive events on days that already have activity never
    lower the score."""
    fewer = advance(SHAPED, "c1", CustomerState(), batch, NOW_MS)
    active = {b for b, slot in fewer.state.buckets.items() if slot.get(ACTIVE, 0) > 0}
    on_active = [e for e in extra if SHAPED.bucket_of(e.timestamp_ms) in active]
    more = advance(SHAPED, "c1", CustomerState(), batch + on_active, NOW_MS)
    assert more.state.score_cp >= fewer.state.score_cp


def test_activity_on_a_quiet_day_between_two_visits_can_lower_the_score() -> None:
    """The documented exception: a page view between two visits removes a return bonus."""
    visits = [Event("s1", "c1", "session_start", NOW_MS - 2 * DAY_MS),
              Event("s2", "c1", "session_start", NOW_MS)]  # fmt: skip
    fewer = advance(SHAPED, "c1", CustomerState(), visits, NOW_MS)
    between = Event("p", "c1", "page_view", NOW_MS - DAY_MS)
    more = advance(SHAPED, "c1", CustomerState(), [*visits, between], NOW_MS)
    assert fewer.breakdown["returning_visits"] == 500
    assert "returning_visits" not in more.breakdown
    assert more.state.score_cp < fewer.state.score_cp


# -- the returning-visit rule against a from-scratch computation ---------------------------

VISITS = ["session_start", "page_view", "app_uninstall"]


@st.composite
def deliveries(draw: st.DrawFn) -> list[tuple[int, Event]]:
    """Events over 90 days, each delivered some time after it happened (so, often late)."""
    out = []
    for i in range(draw(st.integers(1, 25))):
        at = NOW_MS + draw(st.integers(0, 90)) * DAY_MS + draw(st.integers(0, DAY_MS - 1))
        kind = draw(st.sampled_from(VISITS))
        out.append((at + draw(st.integers(0, 29 * DAY_MS)), Event(f"v{i}", "c1", kind, at)))
    return sorted(out, key=lambda pair: pair[0])


def _returning_from_scratch(model: ScoringModel, applied: list[Event], at_ms: int) -> int:
    """Returning visits at ``at_ms`` computed from every applied event, expired or not."""
    assert model.returning is not None
    gap = -(-model.returning.away_ms // model.bucket_ms)
    active = sorted({model.bucket_of(e.timestamp_ms) for e in applied
                     if e.type not in model.inactive_types})  # fmt: skip
    visits = {model.bucket_of(e.timestamp_ms) for e in applied if e.type == "session_start"}
    count = 0
    for bucket in visits:
        if model.expiry_of(bucket) <= at_ms:
            continue
        earlier = [b for b in active if b < bucket]
        count += bool(earlier) and bucket - earlier[-1] > gap
    return count


@given(deliveries(), st.lists(st.integers(0, 6), max_size=25), st.integers(0, 40 * DAY_MS))
@settings(max_examples=examples(300), deadline=None)
def test_a_visit_stays_returning_while_it_is_in_the_window(
    delivered: list[tuple[int, Event]], cuts: list[int], later: int
) -> None:
    """However events are batched and however late they come, the returning visits equal
    the from-scratch rule over all applied events (earlier activity counts even after it
    left the window)."""
    state, applied, index = CustomerState(), [], 0
    for size in [*cuts, len(delivered)]:
        batch = delivered[index : index + size]
        index += len(batch)
        if not batch:
            continue
        now = batch[-1][0]
        applied += [e for _, e in batch if MODEL.is_live(e.timestamp_ms, now)]
        state = advance(MODEL, "c1", state, [e for _, e in batch], now).state
    end = delivered[-1][0] + later
    result = advance(MODEL, "c1", state, [], end)
    expected = _returning_from_scratch(MODEL, applied, end)
    assert MODEL.returning is not None
    assert result.breakdown.get("returning_visits", 0) == expected * MODEL.returning.points_cp
