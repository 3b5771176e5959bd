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
- ``shape``: per-factor piecewise-linear shape functions over each window total
  (:func:`stream.calibrate.fit.fit_piecewise`: knots at quantiles of the training totals,
  monotone in the sign of the factor's weight in a plain logistic fit);
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
    shaped = _fit({n: v[train] for n, v in base.items()}, y[train], {}, ("piecewise", 1.0))
    _report("shape (piecewise, monotone)", held_out(-shaped.score(base)), None,
            time.monotonic() - clock)  # fmt: skip
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
