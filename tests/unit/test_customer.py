"""Advancing a customer: windows, bands, derived factors and churn-risk alerts."""

from __future__ import annotations

from stream.core.alerts import alert_id
from stream.core.customer import CustomerState, advance, drop_duplicates
from tests.factories import DAY_MS, NOW_MS, default_model, event

MODEL = default_model()


def _engaged(days_ago: int = 0, views: int = 30) -> list:
    at = NOW_MS - days_ago * DAY_MS
    return [event("page_view", at) for _ in range(views)]


def test_score_is_sum_of_points_plus_regularity() -> None:
    """Thirty page views on one day: 30 points plus 2 for one active day."""
    result = advance(MODEL, "c1", CustomerState(), _engaged(), NOW_MS)
    assert result.state.score_cp == 3200
    assert result.breakdown == {"page_views": 3000, "regularity": 200}
    assert result.state.band == "very_disengaged"


def test_events_age_out_and_score_falls_to_churn_risk() -> None:
    """After the window passes with no new events, the score is 0 and the band churn_risk."""
    first = advance(MODEL, "c1", CustomerState(), _engaged(), NOW_MS)
    later = advance(MODEL, "c1", first.state, [], NOW_MS + 31 * DAY_MS)
    assert later.state.score_cp == 0
    assert later.state.band == "churn_risk"
    assert later.next_due_ms is None


def test_silent_customer_alerts_with_window_trigger_at_expiry_moment() -> None:
    """A silent customer alerts once, dated when the last bucket left the window."""
    first = advance(MODEL, "c1", CustomerState(), _engaged(), NOW_MS)
    expiry = first.next_due_ms
    assert expiry is not None
    later = advance(MODEL, "c1", first.state, [], expiry + 5_000)
    (alert,) = later.alerts
    assert alert.trigger == "window"
    assert alert.occurred_at_ms == expiry
    assert (alert.previous_band, alert.band) == ("very_disengaged", "churn_risk")
    assert alert.reasons[0].factor == "page_views"
    assert alert.reasons[0].change == -30.0
    assert alert.alert_id == alert_id(MODEL.version, "c1", "window", expiry)


def test_uninstall_drop_alerts_with_event_trigger() -> None:
    """An uninstall and a detractor answer push a light user into churn risk at once."""
    first = advance(MODEL, "c1", CustomerState(), _engaged(views=20), NOW_MS)
    drop = [event("app_uninstall", NOW_MS + 1000), event("survey_response", NOW_MS + 2000, nps=1)]
    result = advance(MODEL, "c1", first.state, drop, NOW_MS + 5000)
    (alert,) = result.alerts
    assert alert.trigger == "event"
    assert alert.occurred_at_ms == NOW_MS + 2000
    assert alert.score == -33.0
    assert [r.factor for r in alert.reasons] == ["app_uninstalls", "nps"]


def test_no_alert_storm_while_hovering_at_the_boundary() -> None:
    """After alerting, small bounces above zero do not alert again until re-armed."""
    state = advance(MODEL, "c1", CustomerState(), _engaged(views=5), NOW_MS).state
    state = advance(MODEL, "c1", state, [event("app_uninstall", NOW_MS + 1)], NOW_MS + 10).state
    assert not state.gate.armed
    up = advance(MODEL, "c1", state, _engaged(views=36), NOW_MS + 20)  # to +3
    assert up.state.band == "very_disengaged"
    down = advance(MODEL, "c1", up.state, [event("app_uninstall", NOW_MS + 30)], NOW_MS + 40)
    assert down.state.band == "churn_risk"
    assert down.alerts == ()


def test_rearmed_after_climbing_above_threshold_and_cooldown() -> None:
    """Climbing above the re-arm score, then falling after the cooldown, alerts again."""
    state = advance(MODEL, "c1", CustomerState(), _engaged(views=5), NOW_MS).state
    state = advance(MODEL, "c1", state, [event("app_uninstall", NOW_MS + 1)], NOW_MS + 10).state
    later = NOW_MS + 2 * DAY_MS
    state = advance(MODEL, "c1", state, _engaged(views=60, days_ago=-2), later).state
    assert state.gate.armed
    drop = [event("app_uninstall", later + 1), event("app_uninstall", later + 2)]
    assert len(advance(MODEL, "c1", state, drop, later + 10).alerts) == 1


def test_new_customer_never_alerts_on_first_sight() -> None:
    """A first-ever event that lands in churn risk has no previous band and no alert."""
    result = advance(MODEL, "c1", CustomerState(), [event("app_uninstall")], NOW_MS)
    assert result.state.band == "churn_risk"
    assert result.alerts == ()


def test_returning_visit_needs_a_whole_day_away() -> None:
    """Sessions on days 0 and 2 make one return; days 0 and 1 make none."""

    def sessions(*days: int) -> list:
        return [event("session_start", NOW_MS - d * DAY_MS) for d in days]

    apart = advance(MODEL, "c1", CustomerState(), sessions(2, 0), NOW_MS)
    adjacent = advance(MODEL, "c1", CustomerState(), sessions(1, 0), NOW_MS)
    assert apart.breakdown["returning_visits"] == 500
    assert "returning_visits" not in adjacent.breakdown
    assert adjacent.breakdown["regularity"] == 400


def test_drop_duplicates_keeps_first_and_remembers() -> None:
    """Duplicates inside a batch and already-seen events are dropped."""
    one = event("click")
    seen: set[bytes] = set()
    assert drop_duplicates([one, one], seen) == [one]
    assert drop_duplicates([one], seen) == []


def test_events_already_outside_window_are_ignored() -> None:
    """An event older than the window changes nothing."""
    old = event("page_view", NOW_MS - 40 * DAY_MS)
    result = advance(MODEL, "c1", CustomerState(), [old], NOW_MS)
    assert result.applied == 0
    assert result.state.score_cp == 0
