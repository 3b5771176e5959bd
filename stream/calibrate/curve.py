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
_MIN_SHARE = 0.01  # the least a band keeps when the alert band grows into it


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One alert-band share: its threshold and what its alerts did."""

    share: float
    threshold: float
    training: AlertStats
    held_out: AlertStats


def shares_with(
    shares: Mapping[str, float], names: Sequence[str], alert_share: float
) -> dict[str, float] | None:
    """``shares`` with the first (alert) band at ``alert_share``. What it grows by is taken
    from the bands after it, in order, each kept at 0.01 or more (what it shrinks by goes
    to the next band), so the shares still add up to at most 1 when they did before; None
    when the other bands cannot give enough."""
    out = dict(shares)
    first = names[0]
    change = alert_share - out.get(first, 0.0)
    out[first] = alert_share
    for name in (n for n in names[1:] if n in out):
        if change <= 0:
            out[name] -= change  # a smaller alert band: its share goes to the next band
            return out
        given = min(change, max(0.0, out[name] - _MIN_SHARE))
        out[name] -= given
        change -= given
        if change <= 1e-12:
            return out
    return out if change <= 1e-12 else None


def pick_share(points: Sequence[CurvePoint], budget: float) -> CurvePoint:
    """The largest share whose alerts per retained customer on the training months stay
    within ``budget``; the smallest share if none does."""
    ordered = sorted(points, key=lambda p: p.share)
    within = [p for p in ordered if p.training.per_retained <= budget]
    return within[-1] if within else ordered[0]
