"""How well a model's score predicts churn on held-out snapshots, and what its alerts did.

- Ranking: AUC of the score (lower score = riskier) against two naive baselines (fewer =
  riskier): "events in the model's window" and "events in the last 30 days" (the same when
  the window is 30 days), with scikit-learn's ``roc_auc_score``; each with a 95% bootstrap
  interval by customer (:mod:`stream.calibrate.skill`).
- Bands: per band, its share of the rows, their churn rate and the lift over the base rate;
  precision and recall of the alert band.
- Alerts (replayed through the core in event time, as the worker raises them): the share of
  churners of the evaluated period with an alert in the ``lookback`` before their churn
  date, the median lead time of the latest such alert, and alerts per retained customer.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from stream.calibrate.skill import Interval, bootstrap_interval
from stream.calibrate.snapshots import DAY_MS, Snapshots
from stream.core.alerts import Alert
from stream.core.model import ScoringModel
from stream.event_files.labels import Label

__all__ = ["AlertStats", "BandRow", "Metrics", "alert_stats", "evaluate"]


@dataclass(frozen=True, slots=True)
class BandRow:
    """One band on the held-out snapshots."""

    band: str
    rows: int
    share: float
    churn_rate: float
    lift: float


@dataclass(frozen=True, slots=True)
class AlertStats:
    """What the replayed alerts did over the evaluated period."""

    churners: int
    alerted_before: int
    median_lead_days: float | None
    lead_days: tuple[float, ...]
    retained: int
    alerts_on_retained: int
    alerts: int
    lookback_days: float

    @property
    def share_alerted(self) -> float:
        return self.alerted_before / self.churners if self.churners else 0.0

    @property
    def per_retained(self) -> float:
        return self.alerts_on_retained / self.retained if self.retained else 0.0


@dataclass(frozen=True, slots=True)
class Metrics:
    """Ranking and band metrics on the held-out rows."""

    rows: int
    snapshots: int
    customers: int
    base_rate: float
    auc: float
    naive_auc: float
    naive_30d_auc: float
    bands: tuple[BandRow, ...]
    alert_band: str
    precision: float
    recall: float
    auc_interval: Interval
    naive_interval: Interval
    naive_30d_interval: Interval

    @property
    def margin(self) -> float:
        """The score's AUC over the better naive count's, or over 0.5 if both are worse."""
        return self.auc - max(self.naive_auc, self.naive_30d_auc, 0.5)

    @property
    def alert_lift(self) -> float:
        return self.precision / self.base_rate if self.base_rate else 0.0


def _auc(labels: np.ndarray, risk: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415 (optional extra)

    if labels.min(initial=1) == labels.max(initial=0):
        return float("nan")
    return float(roc_auc_score(labels, risk))


def evaluate(rows: Snapshots, keep: np.ndarray, model: ScoringModel) -> Metrics:
    """Metrics over the rows selected by ``keep``."""
    labels = np.asarray(rows.label, dtype=int)[keep]
    scores = np.asarray(rows.score, dtype=float)[keep]
    naive = np.asarray(rows.naive, dtype=float)[keep]
    bands = np.asarray(rows.band, dtype=object)[keep]
    total = len(labels)
    base = float(labels.mean()) if total else 0.0
    table = []
    for name in model.bands.names:
        inside = bands == name
        count = int(inside.sum())
        rate = float(labels[inside].mean()) if count else 0.0
        table.append(
            BandRow(name, count, count / total if total else 0.0, rate, rate / base if base else 0)
        )
    alert = model.alerts.band
    flagged = bands == alert
    caught = int(labels[flagged].sum())
    customers = np.asarray(rows.customer, dtype=object)[keep]
    naive_30d = np.asarray(rows.naive_30d, dtype=float)[keep]
    return Metrics(
        rows=total,
        snapshots=len(set(np.asarray(rows.at_ms)[keep].tolist())),
        customers=len(set(np.asarray(rows.customer, dtype=object)[keep].tolist())),
        base_rate=base,
        auc=_auc(labels, -scores),
        naive_auc=_auc(labels, -naive),
        naive_30d_auc=_auc(labels, -naive_30d),
        bands=tuple(table),
        alert_band=alert,
        precision=caught / int(flagged.sum()) if flagged.any() else 0.0,
        recall=caught / int(labels.sum()) if labels.any() else 0.0,
        auc_interval=bootstrap_interval(labels, -scores, customers),
        naive_interval=bootstrap_interval(labels, -naive, customers),
        naive_30d_interval=bootstrap_interval(labels, -naive_30d, customers),
    )


def alert_stats(
    alerts: Sequence[Alert],
    labels: Mapping[str, Label],
    first_seen: Mapping[str, int],
    period: tuple[int, int],
    lookback_ms: int,
) -> AlertStats:
    """Alerts against churn over ``period`` = [start, end) (event time, milliseconds).

    A churner of the period is a labelled customer the replay knew, churning in it; it
    counts as alerted when an alert fell in [churn - lookback, churn). Retained customers
    are those known before the period's end who did not churn by it; their alerts inside
    the period are counted.
    """
    start, end = period
    by_customer: dict[str, list[int]] = {}
    for alert in alerts:
        by_customer.setdefault(alert.customer_id, []).append(alert.occurred_at_ms)
    leads: list[float] = []
    churners = retained = on_retained = 0
    for customer_id, first in first_seen.items():
        label = labels.get(customer_id)
        if label is None or first >= end:
            continue
        moments = by_customer.get(customer_id, [])
        churn = label.churn_ms
        if churn is not None and start <= churn < end:
            churners += 1
            before = [t for t in moments if churn - lookback_ms <= t < churn]
            if before:
                leads.append((churn - max(before)) / DAY_MS)
        elif churn is None or churn >= end:
            retained += 1
            on_retained += sum(1 for t in moments if start <= t < end)
    return AlertStats(
        churners=churners,
        alerted_before=len(leads),
        median_lead_days=statistics.median(leads) if leads else None,
        lead_days=tuple(leads),
        retained=retained,
        alerts_on_retained=on_retained,
        alerts=sum(1 for a in alerts if start <= a.occurred_at_ms < end),
        lookback_days=lookback_ms / DAY_MS,
    )
