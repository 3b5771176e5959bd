"""Whether a score ranks churners at all: AUC, its bootstrap interval by customer, and the
verdict "no skill". Plain numpy, no I/O.

- :func:`auc` is the Mann-Whitney form (ties count half), with optional row weights.
- :func:`bootstrap_interval` resamples *customers* with replacement (all of a drawn
  customer's snapshot rows come along, as often as the customer is drawn), because the rows
  of one customer are not independent; the interval is the percentile interval of the
  resampled AUCs.
- :func:`skill_verdict`: a score has no skill on this history when the AUC it was chosen on
  (on the later training snapshots) or the held-out interval's lower end does not clear 0.5
  by :data:`SKILL_MARGIN`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SKILL_MARGIN",
    "Interval",
    "SkillVerdict",
    "auc",
    "bootstrap_interval",
    "skill_verdict",
]

SKILL_MARGIN = 0.02
_DRAWS = 1000


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate and its two-sided interval."""

    value: float
    low: float
    high: float

    def text(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _levels(risk: np.ndarray) -> tuple[np.ndarray, int]:
    """Each row's rank among the distinct risk values (ties share one), and their number."""
    values, inverse = np.unique(risk, return_inverse=True)
    return inverse.ravel(), len(values)


def _auc_from_levels(
    labels: np.ndarray, level: np.ndarray, count: int, weights: np.ndarray
) -> float:
    positive = np.bincount(level, weights=weights * labels, minlength=count)
    negative = np.bincount(level, weights=weights * (1 - labels), minlength=count)
    pos_total, neg_total = positive.sum(), negative.sum()
    if pos_total <= 0 or neg_total <= 0:
        return float("nan")
    below = np.cumsum(negative) - negative  # negatives strictly less risky
    return float((positive * (below + 0.5 * negative)).sum() / (pos_total * neg_total))


def auc(labels: np.ndarray, risk: np.ndarray, weights: np.ndarray | None = None) -> float:
    """P(risk of a churner > risk of a stayer), ties half; NaN without both classes."""
    y = np.asarray(labels, dtype=float)
    level, count = _levels(np.asarray(risk, dtype=float))
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    return _auc_from_levels(y, level, count, w)


def bootstrap_interval(
    labels: np.ndarray,
    risk: np.ndarray,
    groups: np.ndarray,
    *,
    draws: int = _DRAWS,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """AUC with a percentile bootstrap interval, resampling ``groups`` (customers)."""
    y = np.asarray(labels, dtype=float)
    levels, count = _levels(np.asarray(risk, dtype=float))
    _, group = np.unique(np.asarray(groups), return_inverse=True)
    group = group.ravel()
    customers = int(group.max()) + 1 if group.size else 0
    point = _auc_from_levels(y, levels, count, np.ones_like(y))
    if customers == 0 or np.isnan(point):
        return Interval(point, float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(draws):
        times_drawn = rng.multinomial(customers, np.full(customers, 1 / customers))
        value = _auc_from_levels(y, levels, count, times_drawn[group].astype(float))
        if not np.isnan(value):
            found.append(value)
    if not found:
        return Interval(point, float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(found, [tail, 100 - tail])
    return Interval(point, float(low), float(high))


@dataclass(frozen=True, slots=True)
class SkillVerdict:
    """Whether the score clears a coin by the margin, and why not if it does not."""

    skill: bool
    reasons: tuple[str, ...]


def skill_verdict(
    later_training_auc: float | None, held_out: Interval, margin: float = SKILL_MARGIN
) -> SkillVerdict:
    """No skill when the later-training AUC (None: not measured) is below 0.5 + margin, or
    the held-out interval's lower end is (or the interval is unknown)."""
    reasons = []
    bar = 0.5 + margin
    if later_training_auc is not None and not later_training_auc >= bar:
        reasons.append(f"the AUC on the later training snapshots is {later_training_auc:.3f}, "
                       f"under {bar:.2f}")  # fmt: skip
    if not held_out.low >= bar:
        reasons.append(f"the held-out AUC's 95% interval {held_out.text()} does not clear "
                       f"{bar:.2f}")  # fmt: skip
    return SkillVerdict(not reasons, tuple(reasons))
