"""Measure candidate features and shapes for ``engagement calibrate`` before building them.

Development tooling (not part of the service, not run by `make test`). It reads a history
staged by ``engagement calibrate --stage-dir DIR`` and the labels, computes the calibration
rows with the product's own feature query (:func:`stream.calibrate.features.window_totals`)
for one window, fits the product's score (:func:`stream.calibrate.pipeline.choose_fit`) on
the training snapshots and then each candidate on the same rows, and prints the held-out
AUC (95% bootstrap interval by customer) of each, on the same held-out snapshots:

- ``baseline``: the product's fit (log1p or cap saturation of the window totals);
- ``+recency``: plus, per event type, the days since the customer's last event of that type
  (capped at the window; an ASOF join in DuckDB);
- ``+rates``: plus, per event type, the window total per day of history
  (``total / min(window, days since first event)``), what young customers are judged on;
- ``shape``: per-factor piecewise-linear shape functions over each window total (knots at
  quantiles of the training totals), fitted monotone in the sign of the factor's linear
  fit (bounded L-BFGS on the logistic loss);
- ``ceiling`` and ``ceiling+recency+rates``: gradient boosting on the same columns.

    python -m devtools.calibration_lab STAGED_DIR LABELS.csv [--window 182] [--bucket 7]

Held-out AUCs here are of the fitted scores on the feature query's rows (no centipoint
rounding); the product's validity report replays the written model through the core.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stream.calibrate.features import Engine, window_totals
from stream.calibrate.pipeline import _fit, choose_fit, count_model, snapshot_times, split_for
from stream.calibrate.skill import Interval, bootstrap_interval
from stream.calibrate.snapshots import DAY_MS, Snapshots
from stream.calibrate.staging import Staged
from stream.event_files.labels import read_labels

_HORIZON_MS = 30 * DAY_MS
_KNOTS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)  # quantiles of a factor's positive training totals


def _staged(folder: Path) -> Staged:
    import duckdb  # noqa: PLC0415

    events = folder / "events.parquet"
    query = f"SELECT count(*), min(ts), max(ts) FROM read_parquet('{events}')"
    count, first, last = duckdb.connect().execute(query).fetchone() or (0, None, None)
    return Staged(events, folder / "contributions.parquet", int(count), first, last)


def _types(engine: Engine) -> list[str]:
    found = engine.db.sql("SELECT DISTINCT type FROM events WHERE scored ORDER BY type")
    return [str(row[0]) for row in found.fetchall()]


def _extras(engine: Engine, rows: Snapshots, types: Sequence[str], window_days: int) -> Any:
    """Per row (in ``rows`` order): recency per type (days, capped at the window) and the
    per-day rate per type, as one (rows, 2 * types) array."""
    import pyarrow as pa  # noqa: PLC0415

    keys = pa.table({
        "i": pa.array(np.arange(len(rows)), pa.int64()),
        "at_ms": pa.array(np.asarray(rows.at_ms, np.int64), pa.int64()),
        "customer": pa.array(list(rows.customer), pa.string()),
    })  # fmt: skip
    engine.db.register("keys", keys)
    cap = window_days * DAY_MS
    picks = ", ".join(
        f"min(CASE WHEN type = '{t}' THEN least(coalesce(ago, {cap}), {cap}) END) / {DAY_MS}"
        f" AS r{n}"
        for n, t in enumerate(types)
    )
    sql = f"""
    WITH grid AS (
      SELECT k.i, k.at_ms, k.customer, t.type
      FROM keys k CROSS JOIN (SELECT DISTINCT type FROM events WHERE scored) t
    ),
    last AS (
      SELECT g.i, g.type, g.at_ms - e.ts AS ago
      FROM grid g ASOF LEFT JOIN events e
        ON g.customer = e.customer AND g.type = e.type AND g.at_ms > e.ts
    )
    SELECT i, {picks} FROM last GROUP BY i ORDER BY i
    """
    result = engine.db.sql(sql).fetchnumpy()
    recent = np.column_stack([np.asarray(result[f"r{n}"], float) for n in range(len(types))])
    matrix = rows.matrix()
    days = np.minimum(np.asarray(rows.tenure_days, float), window_days)
    per_day = np.maximum(days, 1.0)
    index = {f: i for i, f in enumerate(rows.factors)}
    rates = np.column_stack([matrix[:, index[t]] / per_day for t in types])
    return np.column_stack([recent, rates])


def _report(name: str, interval: Interval, inner: float | None, seconds: float) -> None:
    later = f"{inner:.3f}" if inner is not None else "  -  "
    print(f"{name:28s} held-out AUC {interval.text()}  later-training {later}  "
          f"({seconds:.0f} s)", flush=True)  # fmt: skip


def _fit_extra(
    columns: Mapping[str, Any], labels: Any, train: Any, shape: tuple[str, float]
) -> Callable[[Mapping[str, Any]], Any]:
    fit = _fit({n: v[train] for n, v in columns.items()}, labels[train], {}, shape)
    return fit.score


def _hinges(values: Any, knots: Sequence[float]) -> Any:
    """Piecewise-linear basis: the part of ``values`` in each knot segment (the last open)."""
    parts = []
    for low, high in zip(knots, [*knots[1:], np.inf], strict=True):
        parts.append(np.clip(values - low, 0, high - low))
    return np.column_stack(parts)


def _monotone_logistic(matrix: Any, labels: Any, signs: Any, penalty: float = 1e-3) -> Any:
    """Logistic regression (predicting *staying*) with each column's weight bounded to its
    sign (0: free); returns (weights, intercept)."""
    from scipy.optimize import minimize  # noqa: PLC0415

    scale = matrix.std(axis=0)
    scale[scale == 0] = 1.0
    x = matrix / scale
    y = 1.0 - labels  # positive = stays

    def loss(theta: Any) -> tuple[float, Any]:
        z = x @ theta[:-1] + theta[-1]
        p = 1 / (1 + np.exp(-z))
        value = float(np.logaddexp(0, -z) @ y + np.logaddexp(0, z) @ (1 - y)) / len(y)
        grad_z = (p - y) / len(y)
        grad = np.append(x.T @ grad_z + penalty * theta[:-1], grad_z.sum())
        return value + 0.5 * penalty * float(theta[:-1] @ theta[:-1]), grad

    bounds = [(0, None) if s > 0 else (None, 0) if s < 0 else (None, None) for s in signs]
    found = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                     bounds=[*bounds, (None, None)])  # fmt: skip
    return found.x[:-1] / scale, found.x[-1]


def _shape_fit(
    columns: Mapping[str, Any], labels: Any, train: Any
) -> Callable[[Mapping[str, Any]], Any]:
    """Per-factor piecewise-linear points, monotone in the sign of a linear fit's weight."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    knots: dict[str, list[float]] = {}
    blocks = []
    for name, values in columns.items():
        positive = values[train][values[train] > 0]
        cuts = (
            sorted({0.0, *np.quantile(positive, _KNOTS[1:]).tolist()}) if positive.size else [0.0]
        )
        knots[name] = cuts
        blocks.append(_hinges(values[train], cuts))
    linear = LogisticRegression(max_iter=2000).fit(
        np.column_stack([np.log1p(np.maximum(v[train], 0)) for v in columns.values()]),
        1 - labels[train],
    )
    signs = np.concatenate([np.full(len(knots[n]), np.sign(c))
                            for n, c in zip(columns, linear.coef_[0], strict=True)])  # fmt: skip
    weights, intercept = _monotone_logistic(np.column_stack(blocks), labels[train], signs)

    def score(cols: Mapping[str, Any]) -> Any:
        matrix = np.column_stack([_hinges(cols[n], knots[n]) for n in columns])
        return matrix @ weights + intercept

    return score


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.calibration_lab")
    parser.add_argument("staged", type=Path, help="a calibrate --stage-dir folder")
    parser.add_argument("labels", type=Path)
    parser.add_argument("--window", type=int, default=182, help="days (default 182)")
    parser.add_argument("--bucket", type=int, default=7, help="days (default 7)")
    args = parser.parse_args(argv)
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    staged = _staged(args.staged)
    engine = Engine(staged, args.staged / "spill")
    labels = read_labels(args.labels)
    types = _types(engine)
    split = split_for(staged.last_ms, labels, None, 2)
    model = count_model(types, args.window * DAY_MS, args.bucket * DAY_MS, args.window)
    times = snapshot_times(staged.first_ms, model.window_ms, _HORIZON_MS, "weekly", split)
    started = time.monotonic()
    rows = window_totals(engine, model, labels, times, _HORIZON_MS)
    print(f"{staged.count} events, {len(rows)} rows, {args.window}d window "
          f"({time.monotonic() - started:.0f} s)", flush=True)  # fmt: skip
    at = np.asarray(rows.at_ms, np.int64)
    y = np.asarray(rows.label, int)
    customers = np.asarray(rows.customer, object)
    train = at + _HORIZON_MS <= split.train_until_ms
    held = at >= split.holdout_ms
    matrix = rows.matrix()
    columns = {f: matrix[:, i] for i, f in enumerate(rows.factors)}

    def held_out(risk: Any) -> Interval:
        return bootstrap_interval(y[held], risk[held], customers[held])

    clock = time.monotonic()
    fit, inner = choose_fit(rows, split, _HORIZON_MS, args.window)
    base = {f.name: columns[f.name] for f in fit.factors}
    _report(f"baseline ({fit.shape[0]} {fit.shape[1]:g})", held_out(-fit.score(base)), inner,
            time.monotonic() - clock)  # fmt: skip
    extra = _extras(engine, rows, types, args.window)
    names = [f"recency_{t}" for t in types] + [f"rate_{t}" for t in types]
    more = {n: extra[:, i] for i, n in enumerate(names)}
    for label, chosen in (("+recency", names[: len(types)]), ("+rates", names[len(types):]),
                          ("+recency+rates", names)):  # fmt: skip
        clock = time.monotonic()
        cols = {**base, **{n: more[n] for n in chosen}}
        scorer = _fit_extra(cols, y, train, fit.shape)
        _report(label, held_out(-scorer(cols)), None, time.monotonic() - clock)
    clock = time.monotonic()
    shaped = _shape_fit(base, y, train)
    _report("shape (piecewise, monotone)", held_out(-shaped(base)), None, time.monotonic() - clock)
    for label, table in (("ceiling", matrix), ("ceiling+recency+rates",
                                               np.column_stack([matrix, extra]))):  # fmt: skip
        clock = time.monotonic()
        booster = HistGradientBoostingClassifier(random_state=0)
        with threadpool_limits(limits=1):
            booster.fit(table[train], y[train])
            risk = booster.predict_proba(table)[:, 1]
        _report(label, held_out(risk), None, time.monotonic() - clock)
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
