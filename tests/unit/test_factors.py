"""Factor transforms, baseline, tenure, the onboarding alert, due times and stored state."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.adapters.redis_fields import state_fields, state_from_fields
from stream.config.model_file import parse_model
from stream.core.alerts import AlertGate, alert_id
from stream.core.customer import CustomerState, advance, breakdown_of, factor_totals
from stream.core.events import Event
from stream.core.model import FactorTransform, ScoringModel
from stream.core.rebuild import rebuild
from tests.factories import DAY_MS, NOW_MS
from tests.profiles import examples

BASE: dict[str, Any] = {
    "version": "t-1",
    "window": "30d",
    "bucket": "1d",
    "events": {
        "post": {"factor": "posts", "points": 1},
        "like": {"factor": "likes", "points": 1},
        "uninstall": {"factor": "uninstalls", "points": -40},
    },
}


def _model(**changes: Any) -> ScoringModel:
    doc = copy.deepcopy(BASE)
    doc.update(changes)
    return parse_model(doc, "test.yaml")


def _posts(n: int, at: int, customer: str = "c1", tag: str = "p") -> list[Event]:
    return [Event(f"{tag}{at}-{i}", customer, "post", at) for i in range(n)]


# -- transforms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "total_cp", "expected_cp"),
    [
        (FactorTransform(), 1234, 1234),
        (FactorTransform("linear", 2.5), 400, 1000),
        (FactorTransform("linear", -3), 200, -600),
        (FactorTransform("cap", 0.5, maximum=40), 5500, 2000),
        (FactorTransform("cap", 0.5, maximum=40), -9000, -2000),
        (FactorTransform("cap", 1, maximum=40, minimum=0), -9000, 0),
        (FactorTransform("cap", 1, maximum=40), 1234, 1234),
        (FactorTransform("log1p", 8.5, scale=2), 1000, 1523),  # 8.5 ln 6 = 15.2300
        (FactorTransform("log1p", 8.5, scale=2), -1000, -1523),
        (FactorTransform("log1p", 1, scale=1), 0, 0),
    ],
)
def test_transforms_compute_and_round_to_centipoints(
    rule: FactorTransform, total_cp: int, expected_cp: int
) -> None:
    """Each transform as documented, rounded to whole centipoints."""
    assert rule.apply(total_cp) == expected_cp


transforms = st.one_of(
    st.builds(FactorTransform, st.just("linear"), st.floats(0, 50)),
    st.builds(
        lambda w, hi, lo: FactorTransform("cap", w, maximum=hi, minimum=min(lo, hi)),
        st.floats(0, 50), st.floats(-100, 100), st.floats(-100, 100),
    ),
    st.builds(lambda w, s: FactorTransform("log1p", w, scale=s), st.floats(0, 50),
              st.floats(0.01, 100)),
)  # fmt: skip


@given(transforms, st.integers(-(10**9), 10**9), st.integers(0, 10**6))
@settings(max_examples=examples(500), deadline=None)
def test_every_transform_is_non_decreasing(rule: FactorTransform, total: int, more: int) -> None:
    """With a non-negative weight, a larger total never gives a smaller contribution."""
    assert rule.apply(total + more) >= rule.apply(total)


def test_breakdown_shows_contributions_and_sums_to_the_score() -> None:
    """The breakdown holds the transformed contributions and the baseline."""
    model = _model(factors={"posts": {"transform": "log1p", "scale": 2, "weight": 8.5},
                            "likes": {"transform": "cap", "max": 3}}, baseline=-5)  # fmt: skip
    events = _posts(10, NOW_MS) + [Event(f"l{i}", "c1", "like", NOW_MS) for i in range(7)]
    result = advance(model, "c1", CustomerState(), events, NOW_MS)
    assert result.breakdown == {"posts": 1523, "likes": 300, "baseline": -500}
    assert result.state.score_cp == 1323 == sum(result.breakdown.values())
    assert breakdown_of(model, result.state) == result.breakdown


def test_the_baseline_is_in_every_score_even_an_empty_one() -> None:
    """A customer whose window emptied scores the baseline, and a reason names it."""
    model = _model(baseline=-1)
    first = advance(model, "c1", CustomerState(), _posts(5, NOW_MS), NOW_MS)
    assert first.state.score_cp == 400
    empty = advance(model, "c1", first.state, [], NOW_MS + 31 * DAY_MS)
    assert empty.breakdown == {"baseline": -100}
    assert empty.state.score_cp == -100
    (alert,) = empty.alerts
    assert [r.factor for r in alert.reasons] == ["posts"]
    assert advance(model, "c1", CustomerState(), [], NOW_MS).state.score_cp == -100


def test_reasons_compare_contributions_not_raw_totals() -> None:
    """A capped factor that stays above its cap does not fall, so it is no reason."""
    model = _model(factors={"likes": {"transform": "cap", "max": 2}})
    likes = [Event(f"l{i}", "c1", "like", NOW_MS - 5 * DAY_MS) for i in range(9)]
    state = advance(model, "c1", CustomerState(), likes + _posts(1, NOW_MS), NOW_MS).state
    gone = advance(model, "c1", state, [Event("u", "c1", "uninstall", NOW_MS + 1)], NOW_MS + 2)
    (alert,) = gone.alerts
    assert [r.factor for r in alert.reasons] == ["uninstalls"]


# -- tenure -------------------------------------------------------------------------------


def test_tenure_counts_whole_days_since_the_earliest_event_capped() -> None:
    """Tenure starts at the earliest applied event, grows per whole day, stops at the cap."""
    model = _model(tenure={"points_per_day": 0.5, "max_days": 3})
    result = advance(model, "c1", CustomerState(), _posts(1, NOW_MS), NOW_MS + DAY_MS - 1)
    assert result.state.first_seen_ms == NOW_MS
    assert "tenure" not in result.breakdown
    assert result.next_due_ms == NOW_MS + DAY_MS
    later = advance(model, "c1", result.state, [], NOW_MS + 2 * DAY_MS)
    assert later.breakdown["tenure"] == 100 and later.state.tenure_days == 2
    capped = advance(model, "c1", later.state, [], NOW_MS + 10 * DAY_MS)
    assert capped.breakdown["tenure"] == 150
    assert capped.next_due_ms == NOW_MS - NOW_MS % DAY_MS + 30 * DAY_MS  # the bucket's expiry
    late = advance(model, "c1", result.state, _posts(1, NOW_MS - 2 * DAY_MS, tag="q"),
                   NOW_MS + DAY_MS - 1)  # fmt: skip
    assert late.state.first_seen_ms == NOW_MS - 2 * DAY_MS
    assert late.breakdown["tenure"] == 100


def test_a_tenure_day_is_a_moment_that_dates_the_crossing() -> None:
    """A tenure step that moves the score into the alert band alerts at the day boundary."""
    model = _model(tenure={"points_per_day": -5, "max_days": 10})
    state = advance(model, "c1", CustomerState(), _posts(12, NOW_MS), NOW_MS).state
    result = advance(model, "c1", state, [], NOW_MS + 5 * DAY_MS + 7)
    (alert,) = result.alerts
    assert (alert.trigger, alert.occurred_at_ms) == ("tenure", NOW_MS + 3 * DAY_MS)
    assert alert.score == -3.0
    assert [r.factor for r in alert.reasons] == ["tenure"]
    assert alert.alert_id == alert_id(model.version, "c1", "tenure", NOW_MS + 3 * DAY_MS)


def test_zero_tenure_points_set_no_due_time() -> None:
    """Tenure without points does not wake the sweeper."""
    model = _model(tenure={"points_per_day": 0})
    result = advance(model, "c1", CustomerState(), _posts(1, NOW_MS), NOW_MS)
    assert result.next_due_ms == NOW_MS - NOW_MS % DAY_MS + 30 * DAY_MS


# -- onboarding alert ---------------------------------------------------------------------

ONBOARDING = {"onboarding": {"after": "14d"}}


def _sweep(model: ScoringModel, state: CustomerState, due: int | None, until: int) -> list[Any]:
    """Advance at every due time up to ``until``, as the worker's sweeper would."""
    alerts: list[Any] = []
    while due is not None and due <= until:
        step = advance(model, "c1", state, [], due)
        assert step.next_due_ms is None or step.next_due_ms > due
        alerts += step.alerts
        state, due = step.state, step.next_due_ms
    return alerts


def test_onboarding_due_time_and_exactly_one_alert() -> None:
    """The onboarding moment is due; the alert fires once; replaying it gives the same id."""
    model = _model(baseline=-10, alerts=ONBOARDING)
    first = advance(model, "c1", CustomerState(), _posts(3, NOW_MS), NOW_MS)
    assert first.state.band == "churn_risk" and first.alerts == ()
    assert first.next_due_ms == NOW_MS + 14 * DAY_MS
    moment = NOW_MS + 14 * DAY_MS
    at = advance(model, "c1", first.state, [], moment + 60_000)
    (alert,) = at.alerts
    assert (alert.type, alert.trigger, alert.occurred_at_ms) == (
        "churn_risk_after_onboarding", "onboarding", moment)  # fmt: skip
    assert alert.alert_id == alert_id(model.version, "c1", "onboarding", moment)
    assert (alert.previous_band, alert.band, alert.score) == ("churn_risk", "churn_risk", -7.0)
    assert at.state.gate == AlertGate(armed=False, last_alert_ms=moment, onboarded=True)
    replayed = advance(model, "c1", first.state, [], moment + 90_000)  # crash before commit
    assert [a.alert_id for a in replayed.alerts] == [alert.alert_id]
    assert advance(model, "c1", at.state, [], moment + 60_000).alerts == ()
    assert _sweep(model, at.state, at.next_due_ms, NOW_MS + 90 * DAY_MS) == []
    assert at.next_due_ms == NOW_MS - NOW_MS % DAY_MS + 30 * DAY_MS


def test_a_healthy_customer_is_checked_once_and_never_later() -> None:
    """Healthy at the moment: no alert, and falling later alerts only as entering the band."""
    model = _model(alerts=ONBOARDING)
    first = advance(model, "c1", CustomerState(), _posts(30, NOW_MS), NOW_MS)
    alerts = _sweep(model, first.state, first.next_due_ms, NOW_MS + 60 * DAY_MS)
    assert [a.type for a in alerts] == ["churn_risk_entered"]


def test_no_onboarding_alert_after_an_unanswered_entering_alert() -> None:
    """A customer who alerted on entering and stayed there is not alerted a second time."""
    model = _model(alerts=ONBOARDING)
    first = advance(model, "c1", CustomerState(), _posts(3, NOW_MS), NOW_MS)
    drop = [Event("u", "c1", "uninstall", NOW_MS + DAY_MS)]
    second = advance(model, "c1", first.state, drop, NOW_MS + DAY_MS)
    assert [a.type for a in second.alerts] == ["churn_risk_entered"]
    assert _sweep(model, second.state, second.next_due_ms, NOW_MS + 60 * DAY_MS) == []


def test_first_sight_past_the_moment_and_rebuilds_do_not_alert() -> None:
    """Seen first when onboarding is already over (backfill, rescore): checked, silent."""
    model = _model(baseline=-10, alerts=ONBOARDING)
    old = _posts(1, NOW_MS - 20 * DAY_MS)
    result = advance(model, "c1", CustomerState(), old, NOW_MS)
    assert result.alerts == () and result.state.gate.onboarded
    assert result.state.band == "churn_risk"
    rebuilt = rebuild(model, "c1", old, NOW_MS, CustomerState(band="churn_risk"))
    assert rebuilt.evaluation.alerts == () and rebuilt.evaluation.state.gate.onboarded


def test_a_late_event_that_moves_first_seen_past_the_moment_is_checked_silently() -> None:
    """The moment moved before the customer's last change: no alert, but checked."""
    model = _model(baseline=-10, alerts=ONBOARDING)
    state = advance(model, "c1", CustomerState(), _posts(1, NOW_MS), NOW_MS).state
    state = advance(model, "c1", state, _posts(1, NOW_MS + DAY_MS, tag="b"), NOW_MS + DAY_MS).state
    late = advance(model, "c1", state, _posts(1, NOW_MS - 20 * DAY_MS, tag="c"),
                   NOW_MS + DAY_MS + 5)  # fmt: skip
    assert late.alerts == () and late.state.gate.onboarded
    assert late.state.first_seen_ms == NOW_MS - 20 * DAY_MS


# -- stored state -------------------------------------------------------------------------


def test_new_state_fields_round_trip_through_the_codec() -> None:
    """First seen, tenure days, the returning-visit memory and the onboarding mark persist."""
    state = CustomerState(
        buckets={20_000: {"posts": 300, "_active": 1}}, score_cp=300, band="very_disengaged",
        gate=AlertGate(armed=False, last_alert_ms=5, onboarded=True), updated_ms=9,
        first_seen_ms=1_700_000_000_000, tenure_days=12, prior_active=19_990, version="v",
    )  # fmt: skip
    fields = state_fields(state, {"posts": 300}, "v", 3)
    stored = {k: v.encode() if isinstance(v, str) else v for k, v in fields.items()}
    assert state_from_fields(dict(stored)) == state


def test_state_written_before_these_fields_still_loads_and_is_past_onboarding() -> None:
    """Today's stored JSON loads; the core takes the oldest bucket as first seen."""
    bucket = NOW_MS // DAY_MS - 3
    old = {"w": {str(bucket): {"posts": 100, "_active": 1}}, "a": 1, "l": None,
           "u": NOW_MS - 5, "p": 0}  # fmt: skip
    fields: dict[str, bytes | None] = {"state": orjson.dumps(old), "score": b"1",
                                       "band": b"very_disengaged"}  # fmt: skip
    state = state_from_fields(fields)
    assert state.first_seen_ms is None and state.tenure_days == 0
    assert state.prior_active is None and not state.gate.onboarded
    model = _model(alerts=ONBOARDING, tenure={"points_per_day": 1})
    result = advance(model, "c1", state, [], NOW_MS)
    assert result.state.first_seen_ms == bucket * DAY_MS
    assert result.state.gate.onboarded and result.alerts == ()
    assert result.breakdown == {"posts": 100, "tenure": 300}


def test_factor_totals_are_the_raw_window_totals() -> None:
    """The raw totals a calibration fits to: before transforms, without the baseline."""
    model = _model(factors={"posts": {"transform": "log1p", "scale": 2}}, baseline=-5,
                   tenure={"points_per_day": 2})  # fmt: skip
    result = advance(model, "c1", CustomerState(), _posts(10, NOW_MS - 3 * DAY_MS), NOW_MS)
    assert factor_totals(model, result.state) == {"posts": 1000, "tenure": 600}
    assert result.breakdown == {"posts": 179, "tenure": 600, "baseline": -500}
