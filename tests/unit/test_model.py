"""Points per event and the property-reading rules of the default model."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from stream.core.model import ACTIVE, SESSION
from tests.factories import default_model, event

MODEL = default_model()


def test_flat_points_go_to_their_factor() -> None:
    """A page view earns one point under page_views and marks the day active."""
    assert MODEL.contributions(event("page_view")) == {"page_views": 100, ACTIVE: 1}


def test_uninstall_is_strongly_negative_and_not_activity() -> None:
    """An uninstall costs 40 points and does not count as an active day."""
    assert MODEL.contributions(event("app_uninstall")) == {"app_uninstalls": -4000}


def test_long_session_earns_time_and_pages_capped() -> None:
    """A 2-hour, 30-page session is capped at 10 points of time and 5 of pages."""
    got = MODEL.contributions(event("session_end", duration_seconds=7200, page_count=30))
    assert got == {"time_on_site": 1000, "pages_per_session": 500, ACTIVE: 1, SESSION: 1}


def test_moderate_session_scores_per_minute_and_page() -> None:
    """Six minutes and four pages: 3 points of time and 2 of pages."""
    got = MODEL.contributions(event("session_end", duration_seconds=360, page_count=4))
    assert got["time_on_site"] == 300
    assert got["pages_per_session"] == 200


def test_bounce_is_penalised_instead_of_time() -> None:
    """One page in five seconds is a bounce: minus 3, and no time or page points."""
    got = MODEL.contributions(event("session_end", duration_seconds=5, page_count=1))
    assert got == {"bounces": -300, ACTIVE: 1, SESSION: 1}


def test_nps_promoter_passive_detractor() -> None:
    """NPS 9-10 earns 15, 7-8 nothing, 0-6 costs 15."""
    assert MODEL.contributions(event("survey_response", nps=10))["nps"] == 1500
    assert "nps" not in MODEL.contributions(event("survey_response", nps=8))
    assert MODEL.contributions(event("survey_response", nps=3))["nps"] == -1500


def test_csat_scale() -> None:
    """CSAT 1 costs 10 points and 5 earns 10."""
    assert MODEL.contributions(event("survey_response", csat=1))["csat"] == -1000
    assert MODEL.contributions(event("survey_response", csat=5))["csat"] == 1000


def test_factors_cover_derived_ones() -> None:
    """The factor list includes the derived regularity and returning visits."""
    assert {"regularity", "returning_visits", "bounces", "nps"} <= set(MODEL.factors)


@given(
    bucket_ms=st.integers(1, 10_000),
    buckets=st.integers(1, 50),
    timestamp_ms=st.integers(-(10**9), 10**9),
    now_ms=st.integers(-(10**9), 10**9),
)
def test_live_from_is_the_one_comparison_is_live_makes(
    bucket_ms: int, buckets: int, timestamp_ms: int, now_ms: int
) -> None:
    """The worker's one comparison per event (``t >= live_from(now)``) agrees with
    ``is_live`` for any bucket length, window and moments."""
    model = dataclasses.replace(default_model(), bucket_ms=bucket_ms, window_ms=bucket_ms * buckets)
    assert model.is_live(timestamp_ms, now_ms) == (timestamp_ms >= model.live_from(now_ms))
