"""Fit per-factor weights with saturation, and band thresholds from target shares.

Each factor's window total ``x`` enters as ``log1p(x / scale)`` (``scale`` is the median
of its positive totals in the training snapshots), so the first events of a kind count
more than the hundredth; a factor that can be negative enters linearly. Tenure enters as
``log1p(min(days, cap) / scale)``. A logistic regression (scikit-learn, regularisation
chosen by cross-validation on AUC) predicts "churns within the horizon"; its coefficients,
negated and rescaled, become the factor weights in points, so a higher score means a more
engaged customer. Score 0 and 100 are the 5th and 95th percentile of the training scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_SHARES", "FactorFit", "Fit", "fit_weights", "thresholds_from_shares"]

DEFAULT_SHARES: dict[str, float] = {
    "churn_risk": 0.10,
    "very_disengaged": 0.20,
    "somewhat_engaged": 0.30,
    "highly_engaged": 0.25,
    "power_user": 0.15,
}


@dataclass(frozen=True, slots=True)
class FactorFit:
    """One factor's transform and weight (points per unit of the transformed total)."""

    name: str
    transform: str  # "log1p", "cap" (min(total, scale) / scale) or "linear"
    scale: float
    weight: float
    cap: float | None = None

    def apply(self, totals: np.ndarray) -> np.ndarray:
        """The factor's contribution in points for window totals (in points)."""
        values = totals if self.cap is None else np.minimum(totals, self.cap)
        if self.transform == "cap":
            capped: np.ndarray = self.weight * np.minimum(values, self.scale) / self.scale
            return capped
        if self.transform == "log1p":
            out: np.ndarray = self.weight * np.sign(values) * np.log1p(np.abs(values) / self.scale)
            return out
        linear: np.ndarray = self.weight * values / self.scale
        return linear


@dataclass(frozen=True, slots=True)
class Fit:
    """A fitted score: factor weights, the constant baseline, and the regulariser used."""

    factors: tuple[FactorFit, ...]
    baseline: float
    regularisation: float
    shape: tuple[str, float] = ("log1p", 1.0)

    def score(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Scores (points) for factor totals given per factor name."""
        rows = len(next(iter(columns.values()))) if columns else 0
        total = np.full(rows, self.baseline, dtype=float)
        for factor in self.factors:
            total += factor.apply(columns[factor.name])
        return total


def _scale_of(values: np.ndarray) -> float:
    positive = values[values > 0]
    return float(np.median(positive)) if positive.size else 1.0


def fit_weights(
    columns: Mapping[str, np.ndarray],
    labels: np.ndarray,
    *,
    caps: Mapping[str, float] | None = None,
    scales: Mapping[str, float] | None = None,
    shape: tuple[str, float] = ("log1p", 1.0),
    seed: int = 0,
) -> Fit:
    """Fit the factors in ``columns`` (window totals, training rows) to ``labels``.

    ``shape`` is the saturation of the factors not in ``scales``: ``("log1p", q)`` is
    ``log1p(total / (q * median))``, ``("cap", q)`` is ``min(total, q * median)``, the
    median being that of the factor's positive training totals. ``scales`` fixes the log1p
    scale of some factors (tenure).
    """
    scales = scales or {}
    from sklearn.linear_model import LogisticRegressionCV  # noqa: PLC0415 (optional extra)

    caps = caps or {}
    shapes: list[FactorFit] = []
    features = []
    for name, raw in columns.items():
        values = np.minimum(raw, caps[name]) if name in caps else raw
        if values.min(initial=0.0) >= 0:
            fixed = scales.get(name)
            kind = "log1p" if fixed else shape[0]
            scale = fixed or _scale_of(values) * shape[1]
            made = FactorFit(name, kind, scale, 1.0, caps.get(name))
        else:
            spread = float(np.std(values)) or 1.0
            made = FactorFit(name, "linear", spread, 1.0, caps.get(name))
        shapes.append(made)
        features.append(made.apply(raw))
    matrix = np.column_stack(features) if features else np.zeros((len(labels), 0))
    model = LogisticRegressionCV(
        Cs=[0.01, 0.1, 1.0, 10.0], cv=3, scoring="roc_auc", max_iter=2000, random_state=seed
    )
    model.fit(matrix, labels)
    logit = -(matrix @ model.coef_[0] + model.intercept_[0])  # higher = less likely to churn
    low, high = np.percentile(logit, [5, 95])
    gain = 100.0 / (high - low) if high > low else 1.0
    fitted = tuple(
        FactorFit(s.name, s.transform, s.scale, float(-c * gain), s.cap)
        for s, c in zip(shapes, model.coef_[0], strict=True)
    )
    baseline = float((-model.intercept_[0] - low) * gain)
    return Fit(fitted, baseline, float(model.C_[0]), shape)


def thresholds_from_shares(
    scores: np.ndarray, names: Sequence[str], shares: Mapping[str, float]
) -> dict[str, float | None]:
    """Upper bounds so that each band holds its share of ``scores`` (lowest band first).

    Bands not named in ``shares`` split what is left evenly; the last band is open-ended.
    """
    given = sum(shares.get(n, 0.0) for n in names)
    if given > 1.0 + 1e-9:
        raise ValueError(f"band shares add up to {given:.2f}, more than 1")
    rest = [n for n in names if n not in shares]
    fill = (1.0 - given) / len(rest) if rest else 0.0
    cumulative = 0.0
    uppers: dict[str, float | None] = {}
    previous = -np.inf
    for name in names[:-1]:
        cumulative += shares.get(name, fill)
        upper = round(float(np.quantile(scores, min(cumulative, 1.0))), 2)
        upper = max(upper, previous + 0.01)
        uppers[name] = upper
        previous = upper
    uppers[names[-1]] = None
    return uppers
