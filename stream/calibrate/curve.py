"""Alert quality as a curve: what a customer-success lead chooses from.

For a few shares of the training snapshots in the alert band (``churn_risk``), the model is
built with that band's threshold and replayed through the core; each point gives the share
of churners alerted before their churn date, the median lead time and the alerts per
retained customer, on the last two months of training (where a budget is chosen) and on
the held-out period (what it then did). :func:`pick_share` meets an alert budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stream.calibrate.metrics import AlertStats

__all__ = ["CURVE_SHARES", "CurvePoint", "pick_share", "shares_with"]

CURVE_SHARES = (0.05, 0.10, 0.15, 0.20)


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One alert-band share: its threshold and what its alerts did."""

    share: float
    threshold: float
    training: AlertStats
    held_out: AlertStats


def shares_with(
    shares: Mapping[str, float], names: Sequence[str], alert_share: float
) -> dict[str, float]:
    """``shares`` with the first (alert) band at ``alert_share``; the next band gives or
    takes the difference, so the shares still add up to at most 1."""
    out = dict(shares)
    first = names[0]
    change = alert_share - out.get(first, 0.0)
    out[first] = alert_share
    if len(names) > 1 and names[1] in out:
        out[names[1]] = max(0.01, out[names[1]] - change)
    return out


def pick_share(points: Sequence[CurvePoint], budget: float) -> CurvePoint:
    """The largest share whose alerts per retained customer on the training months stay
    within ``budget``; the smallest share if none does."""
    ordered = sorted(points, key=lambda p: p.share)
    within = [p for p in ordered if p.training.per_retained <= budget]
    return within[-1] if within else ordered[0]
