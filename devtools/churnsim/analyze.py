"""Sanity analysis of a labelled churn data set (events.csv.gz + labels.csv, as written by
``generate.py``): how well can churn within the next 30 days be ranked at monthly snapshots?

At each snapshot (the 1st of each month whose horizon fits in the data) every customer who is
active (``first_seen < snapshot`` and not churned on or before it) is labelled 1 if they churn
within ``(snapshot, snapshot + horizon]``. Snapshots are split by time: the earlier ones train,
the later ones are held out. Scores reported on the held-out snapshots:

* ``naive_count_30d``: number of events in the 30 days before the snapshot (the baseline the
  project's acceptance compares against);
* ``logreg_types_30d``: logistic regression on per-type ``log1p`` counts of the last 30 days,
  fitted on the training snapshots (scikit-learn);
* ``logreg_types_30d_tenure``: the same plus ``log1p(tenure days)``;
* ``logreg_types_lifetime_tenure``: per-type ``log1p`` average monthly counts over the whole
  history plus tenure (ChurnSim's churn utility uses counts accumulated since sign-up, so this
  shows the ceiling that a 30-day window cannot reach);
* ``logreg_types_cumulative_tenure``: per-type ``log1p`` counts since sign-up plus tenure (the
  quantity ChurnSim's utility is computed from);
* ``boosted_all``: gradient boosting on window + cumulative counts + tenure (a flexible ceiling).

AUCs come with a 95% bootstrap interval (held-out rows resampled).

For each score it also prints the churn rate, lift and recall of the riskiest 10% and 20%.

Development tooling only. Usage: ``python analyze.py DATA_DIR [--train-until 2020-05-01]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["main", "snapshot_table"]

WINDOW = pd.Timedelta(days=30)


def load(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    events = pd.read_csv(
        data_dir / "events.csv.gz",
        usecols=["customer_id", "timestamp", "type"],
        dtype={"customer_id": "int64", "type": "category"},
    )
    events["timestamp"] = pd.to_datetime(events["timestamp"], utc=True).dt.tz_localize(None)
    labels = pd.read_csv(data_dir / "labels.csv", parse_dates=["churn_date", "first_seen"])
    return events, labels.set_index("customer_id")


def snapshot_table(
    events: pd.DataFrame, labels: pd.DataFrame, snap: pd.Timestamp, horizon: pd.Timedelta
) -> pd.DataFrame:
    """Features and label for every customer active at ``snap``."""
    alive = labels["churn_date"].isna() | (labels["churn_date"] > snap)
    active = labels[(labels["first_seen"] < snap) & alive]
    types = list(events["type"].cat.categories)
    past = events[events["timestamp"] < snap]
    recent = past[past["timestamp"] >= snap - WINDOW]
    win = recent.groupby(["customer_id", "type"], observed=False).size().unstack(fill_value=0)
    life = past.groupby(["customer_id", "type"], observed=False).size().unstack(fill_value=0)
    out = pd.DataFrame(index=active.index)
    out["snapshot"] = snap
    out["tenure_days"] = (snap - active["first_seen"]).dt.days
    for t in types:
        out[f"w_{t}"] = win[t].reindex(out.index, fill_value=0) if t in win else 0
        months = np.maximum(out["tenure_days"], 1) / 30.0
        lifetime = life[t].reindex(out.index, fill_value=0) if t in life else 0
        out[f"l_{t}"] = lifetime / months
        out[f"c_{t}"] = lifetime
    out["count_30d"] = out[[f"w_{t}" for t in types]].sum(axis=1)
    cd = active["churn_date"]
    out["y"] = (cd.notna() & (cd <= snap + horizon)).astype(int)
    return out


def top_share(y: np.ndarray, score: np.ndarray, share: float) -> dict[str, float]:
    """Churn rate, lift and recall of the riskiest ``share`` (highest score = riskiest)."""
    k = max(1, round(share * len(y)))
    idx = np.argsort(-score, kind="stable")[:k]
    rate = float(y[idx].mean())
    base = float(y.mean())
    return {
        "rate": round(rate, 4),
        "lift": round(rate / base, 2),
        "recall": round(float(y[idx].sum() / y.sum()), 3),
    }


def _auc_or_none(y: np.ndarray, risk: np.ndarray) -> float | None:
    """AUC, or None when only one class is present (tiny data sets)."""
    if 0 < y.sum() < len(y):
        return round(float(roc_auc_score(y, risk)), 4)
    return None


def auc_interval(y: np.ndarray, risk: np.ndarray, reps: int = 200) -> list[float]:
    """95% bootstrap interval of the AUC (rows resampled with replacement, fixed seed)."""
    rng = np.random.default_rng(0)
    aucs = []
    for _ in range(reps):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            aucs.append(roc_auc_score(y[idx], risk[idx]))
    if not aucs:
        return [float("nan"), float("nan")]
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return [round(float(lo), 3), round(float(hi), 3)]


def evaluate(name: str, y: np.ndarray, risk: np.ndarray) -> dict[str, Any]:
    return {
        "score": name,
        "auc": round(float(roc_auc_score(y, risk)), 4),
        "auc_95": auc_interval(y, risk),
        "top10": top_share(y, risk, 0.10),
        "top20": top_share(y, risk, 0.20),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--train-until", default="2020-05-01", help="first held-out snapshot")
    p.add_argument("--horizon-days", type=int, default=30)
    p.add_argument(
        "--min-tenure-days", type=int, default=0, help="only score customers at least this old"
    )
    args = p.parse_args(argv)

    events, labels = load(args.data_dir)
    horizon = pd.Timedelta(days=args.horizon_days)
    last_event = events["timestamp"].max()
    first = events["timestamp"].min().normalize()
    snaps = []
    snap = (first + pd.offsets.MonthBegin(1)).normalize()
    while snap + horizon <= last_event.normalize() + pd.Timedelta(days=1):
        snaps.append(snap)
        snap = snap + pd.offsets.MonthBegin(1)
    table = pd.concat([snapshot_table(events, labels, s, horizon) for s in snaps])
    table = table[table["tenure_days"] >= args.min_tenure_days]
    split = pd.Timestamp(args.train_until)
    train, test = table[table["snapshot"] < split], table[table["snapshot"] >= split]
    types = list(events["type"].cat.categories)
    wcols = [f"w_{t}" for t in types]
    lcols = [f"l_{t}" for t in types]
    ccols = [f"c_{t}" for t in types]

    def fit(cols: list[str], boosted: bool = False) -> np.ndarray:
        def x(df: pd.DataFrame) -> np.ndarray:
            logged: np.ndarray = np.log1p(df[cols].to_numpy(dtype=float))
            return logged

        model = (
            HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
            if boosted
            else make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        )
        model.fit(x(train), train["y"])
        proba: np.ndarray = model.predict_proba(x(test))
        return proba[:, 1]

    y = test["y"].to_numpy()
    results = [
        evaluate("naive_count_30d", y, -test["count_30d"].to_numpy(dtype=float)),
        evaluate("logreg_types_30d", y, fit(wcols)),
        evaluate("logreg_types_30d_tenure", y, fit([*wcols, "tenure_days"])),
        evaluate("logreg_types_lifetime_tenure", y, fit([*lcols, "tenure_days"])),
        evaluate("logreg_types_cumulative_tenure", y, fit([*ccols, "tenure_days"])),
        evaluate("boosted_all", y, fit([*wcols, *ccols, "tenure_days"], boosted=True)),
    ]
    per_snapshot = [
        {
            "snapshot": str(s.date()),
            "eligible": int((table["snapshot"] == s).sum()),
            "churn_30d_rate": round(float(table.loc[table["snapshot"] == s, "y"].mean()), 4),
            "naive_auc": _auc_or_none(
                table.loc[table["snapshot"] == s, "y"].to_numpy(),
                -table.loc[table["snapshot"] == s, "count_30d"].to_numpy(dtype=float),
            ),
        }
        for s in snaps
    ]
    report = {
        "data": str(args.data_dir),
        "train_snapshots": [str(s.date()) for s in snaps if s < split],
        "test_snapshots": [str(s.date()) for s in snaps if s >= split],
        "train_rows": len(train),
        "min_tenure_days": args.min_tenure_days,
        "test_rows": len(test),
        "test_churn_rate": round(float(y.mean()), 4),
        "per_snapshot": per_snapshot,
        "held_out": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
