"""The ceiling row of the validity report: a gradient-boosted model on the same features.

scikit-learn's ``HistGradientBoostingClassifier`` is fitted on the calibration's training
rows and raw factor totals, and scored on its held-out rows. It is not a points score a
person can read; its AUC says how much ranking the same features hold, so the distance to
the points score is the skill left on the table (more would need other features).
"""

from __future__ import annotations

import numpy as np

from stream.calibrate.skill import Interval, bootstrap_interval
from stream.calibrate.snapshots import Snapshots

__all__ = ["ceiling_auc"]


def ceiling_auc(rows: Snapshots, train: np.ndarray, held_out: np.ndarray) -> Interval | None:
    """Held-out AUC (with its bootstrap interval) of gradient boosting fitted on the training
    rows; None when either side lacks churners or stayers."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: PLC0415 (extra)
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 (scikit-learn's dependency)

    matrix = rows.matrix()
    labels = np.asarray(rows.label, dtype=int)
    if len(set(labels[train].tolist())) < 2 or len(set(labels[held_out].tolist())) < 2:
        return None
    model = HistGradientBoostingClassifier(random_state=0)
    # One thread: OpenMP's spinning threads cost minutes on a machine shared with a worker.
    with threadpool_limits(limits=1):
        model.fit(matrix[train], labels[train])
        risk = model.predict_proba(matrix[held_out])[:, 1]
    customers = np.asarray(rows.customer, dtype=object)[held_out]
    return bootstrap_interval(labels[held_out], risk, customers)
