"""Band boundaries."""

from __future__ import annotations

import pytest

from stream.core.bands import DEFAULT_BANDS, Band, BandScale


@pytest.mark.parametrize(
    ("score", "band"),
    [(-5, "churn_risk"), (0, "churn_risk"), (0.01, "very_disengaged"), (40, "very_disengaged"),
     (40.5, "somewhat_engaged"), (70, "somewhat_engaged"), (100, "highly_engaged"),
     (100.01, "power_user")],
)  # fmt: skip
def test_default_band_edges(score: float, band: str) -> None:
    """Upper bounds are inclusive, as documented."""
    assert DEFAULT_BANDS.band_for(score) == band


def test_score_range_of_a_band() -> None:
    """A band's range is (previous upper, own upper]."""
    assert DEFAULT_BANDS.score_range("churn_risk") == (None, 0)
    assert DEFAULT_BANDS.score_range("somewhat_engaged") == (40, 70)
    assert DEFAULT_BANDS.score_range("power_user") == (100, None)


def test_invalid_scales_are_refused() -> None:
    """Unordered bounds and a bounded top band are errors."""
    with pytest.raises(ValueError, match="increase"):
        BandScale((Band("a", 10), Band("b", 5), Band("c", None)))
    with pytest.raises(ValueError, match="open-ended"):
        BandScale((Band("a", 10),))
