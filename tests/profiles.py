"""Hypothesis profiles of the test tiers, and the example counts they scale.

The gate (`make unit`, `make test`) runs the ``ci`` profile: each property test runs a
fraction of the examples it names, enough to catch a broken rule on most runs. The
``nightly`` profile (`make soak`) runs many times more, so a rare counter-example still
turns up within a few soak runs. ``HYPOTHESIS_PROFILE`` chooses; ``ci`` is the default.
"""

from __future__ import annotations

import os
from typing import Literal

from hypothesis import HealthCheck, settings

__all__ = ["PROFILE", "examples"]

Profile = Literal["ci", "nightly"]
_SCALE: dict[Profile, float] = {"ci": 0.3, "nightly": 5.0}
_FLOOR = 20  # below this a property test rarely reaches the interesting cases

# This machine is shared and noisy, so Hypothesis never times inputs.
_QUIET = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
for _name, _default in (("ci", 50), ("nightly", 500)):  # tests that name no count
    settings.register_profile(_name, max_examples=_default, **_QUIET)


def _profile() -> Profile:
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    if name not in _SCALE:
        raise ValueError(f"HYPOTHESIS_PROFILE={name!r}: use one of {sorted(_SCALE)}")
    return name  # type: ignore[return-value]


PROFILE: Profile = _profile()
settings.load_profile(PROFILE)


def examples(named: int) -> int:
    """The example count for a test that names ``named`` (its count before the tiers)."""
    return max(min(named, _FLOOR), round(named * _SCALE[PROFILE]))
