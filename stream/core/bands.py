"""Engagement bands: named, ordered score ranges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.errors import InvalidModelError

__all__ = ["DEFAULT_BANDS", "Band", "BandScale"]


@dataclass(frozen=True, slots=True)
class Band:
    """A band holds scores up to and including ``upper`` (``None``: no upper bound)."""

    name: str
    upper: float | None


@dataclass(frozen=True, slots=True)
class BandScale:
    """Bands in ascending order; the last one is open-ended."""

    bands: tuple[Band, ...]

    def __post_init__(self) -> None:
        if not self.bands:
            raise InvalidModelError("at least one band is required")
        uppers = [b.upper for b in self.bands[:-1]]
        if any(u is None for u in uppers):
            raise InvalidModelError("only the last band may be open-ended")
        bounded = [u for u in uppers if u is not None]
        if bounded != sorted(bounded) or len(set(bounded)) != len(bounded):
            raise InvalidModelError("band upper bounds must increase strictly")
        if self.bands[-1].upper is not None:
            raise InvalidModelError("the last band must be open-ended (no upper bound)")
        names = [b.name for b in self.bands]
        if len(set(names)) != len(names):
            raise InvalidModelError("band names must be unique")

    @property
    def names(self) -> tuple[str, ...]:
        """Band names from lowest to highest."""
        return tuple(b.name for b in self.bands)

    def band_for(self, score: float) -> str:
        """Name of the band that contains ``score``."""
        for band in self.bands:
            if band.upper is None or score <= band.upper:
                return band.name
        raise AssertionError("unreachable: the last band is open-ended")

    def score_range(self, name: str) -> tuple[float | None, float | None]:
        """Return (exclusive lower, inclusive upper) bounds of a band; None is unbounded."""
        lower: float | None = None
        for band in self.bands:
            if band.name == name:
                return lower, band.upper
            lower = band.upper
        raise KeyError(name)


def _default() -> BandScale:
    spec: Sequence[tuple[str, float | None]] = (
        ("churn_risk", 0),
        ("very_disengaged", 40),
        ("somewhat_engaged", 70),
        ("highly_engaged", 100),
        ("power_user", None),
    )
    return BandScale(tuple(Band(name, upper) for name, upper in spec))


DEFAULT_BANDS = _default()
