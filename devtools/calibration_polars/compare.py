"""DuckDB or Polars for calibrate's feature query: the same aggregation, timed on one history.

Development tooling (not part of the service, not run by `make test`; Polars is not a
dependency of the project: it runs in its own virtualenv, from ``requirements.txt`` here,
importing the project's ``stream`` package from the repository).
On a history staged by ``engagement calibrate --stage-dir DIR`` it computes the calibration
rows of the count model (one factor per event type, active buckets, tenure; window and
bucket as given) at the weekly snapshots calibrate would use, either with the product's
feature query in DuckDB (:func:`stream.calibrate.features.feature_query`, as calibrate runs
it, under its memory limit) or with the same rules written as a Polars lazy query, and
prints the number of rows, a checksum of every column and the seconds taken. Run each side
in its own process under ``/usr/bin/time -v`` for the peak memory:

    python3 -m venv .venv-polars
    .venv-polars/bin/pip install -r devtools/calibration_polars/requirements.txt
    PYTHONPATH=. /usr/bin/time -v .venv-polars/bin/python \
        devtools/calibration_polars/compare.py duckdb STAGED LABELS.csv    # and: polars

The Polars side follows the query's rules: duplicates by ``(customer, event_id)`` count
once (the earliest copy), a bucket counts until its start plus the window, the current
bucket's days before the snapshot count, naive counts over every decoded event, tenure in
whole tenure days from the first scored event, capped.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stream.calibrate.features import Engine, event_factors, feature_query
from stream.calibrate.pipeline import count_model, snapshot_times, split_for
from stream.calibrate.snapshots import DAY_MS, NAIVE_30D_MS
from stream.calibrate.staging import Staged
from stream.core.model import ACTIVE, ScoringModel
from stream.event_files.labels import Label, read_labels

_HORIZON_MS = 30 * DAY_MS


def _staged(folder: Path) -> tuple[Staged, list[str]]:
    import duckdb  # noqa: PLC0415

    events = folder / "events.parquet"
    db = duckdb.connect()
    query = f"SELECT count(*), min(ts), max(ts) FROM read_parquet('{events}')"
    count, first, last = db.execute(query).fetchone() or (0, None, None)
    kinds = db.execute(f"SELECT DISTINCT type FROM read_parquet('{events}') WHERE scored "
                       "ORDER BY type").fetchall()  # fmt: skip
    staged = Staged(events, folder / "contributions.parquet", int(count), first, last)
    return staged, [str(k[0]) for k in kinds]


def _checksum(columns: dict[str, list[int]]) -> str:
    return " ".join(f"{name}={sum(values)}" for name, values in columns.items())


def run_duckdb(staged: Staged, model: ScoringModel, labels: dict[str, Label],
               times: Sequence[int], spill: Path) -> tuple[int, str]:  # fmt: skip
    """The product's query, its rows fetched in Arrow batches (as calibrate does)."""
    engine = Engine(staged, spill)
    engine.set_inputs(labels, times)
    names = [f"f{i}" for i in range(len(event_factors(model)))]
    wanted = ["label", "naive", "naive_30d", *names, "active", "tenure_days"]
    sums = dict.fromkeys(wanted, 0)
    rows = 0
    for batch in engine.batches(feature_query(model, _HORIZON_MS)):
        rows += batch.num_rows
        for name in wanted:
            sums[name] += int(sum(batch.column(name).to_pylist()))
    engine.close()
    return rows, _checksum({k: [v] for k, v in sums.items()})


def run_polars(staged: Staged, model: ScoringModel, labels: dict[str, Label],
               times: Sequence[int]) -> tuple[int, str]:  # fmt: skip
    """The same rows, one snapshot at a time over day-grain totals, in Polars."""
    import polars as pl  # type: ignore[import-not-found]  # noqa: PLC0415

    b, w, day = model.bucket_ms, model.window_ms, DAY_MS
    tenure = model.tenure
    assert tenure is not None and tenure.max_days is not None
    events = pl.scan_parquet(staged.events)
    contributions = pl.scan_parquet(staged.contributions)
    copies = (
        events.select("customer", "event_id", "seq", "ts")
        .with_columns(
            pl.struct("ts", "seq").rank("ordinal").over("customer", "event_id").alias("copy")
        )
        .filter(pl.col("copy") > 1)
        .select("customer", "seq")
    )
    grains: Any = (
        contributions.join(copies, on=["customer", "seq"], how="anti")
        .with_columns((pl.col("ts") // day).alias("grain"))
        .group_by("customer", "grain", "factor")
        .agg(pl.col("cp").sum())
        .with_columns(((pl.col("grain") * day // b) * b).alias("bucket_ms"))
        .collect()
    )
    counts: Any = (
        events.with_columns((pl.col("ts") // day).alias("grain"))
        .group_by("customer", "grain")
        .agg(pl.len().alias("n"))
        .collect()
    )
    seen = (
        events.group_by("customer")
        .agg(
            pl.col("ts").min().alias("first_ms"),
            pl.col("ts").filter(pl.col("scored")).min().alias("first_scored_ms"),
        )
        .collect()
    )
    table = pl.DataFrame({
        "customer": list(labels),
        "churn_ms": [v.churn_ms for v in labels.values()],
        "first_seen_ms": [v.first_seen_ms for v in labels.values()],
    }, schema={"customer": pl.String, "churn_ms": pl.Int64, "first_seen_ms": pl.Int64})  # fmt: skip
    people = seen.join(table, on="customer", how="inner")
    factors = event_factors(model)
    sums: dict[str, list[int]] = {n: [] for n in ("label", "naive", "naive_30d")}
    sums.update({f"f{i}": [] for i in range(len(factors))})
    sums.update(active=[], tenure_days=[])
    rows = 0
    for at in times:
        pairs = people.filter(
            (pl.col("first_ms") < at)
            & (pl.coalesce("first_seen_ms", "first_ms") <= at)
            & (pl.col("churn_ms").is_null() | (pl.col("churn_ms") > at))
        )
        live = grains.filter((pl.col("grain") * day < at) & (pl.col("bucket_ms") + w > at))
        totals = (
            live.filter(pl.col("factor") != ACTIVE)
            .group_by("customer", "factor")
            .agg(pl.col("cp").sum())
        )
        active = (
            live.filter(pl.col("factor") == ACTIVE)
            .group_by("customer")
            .agg(pl.col("bucket_ms").n_unique().alias("active"))
        )
        window = max(w, NAIVE_30D_MS)
        recent = counts.filter(
            (pl.col("grain") * day < at) & (pl.col("grain") * day >= at - window)
        )
        naive = recent.group_by("customer").agg(
            pl.col("n").filter(pl.col("grain") * day >= at - w).sum().alias("naive"),
            pl.col("n").filter(pl.col("grain") * day >= at - NAIVE_30D_MS).sum().alias("naive_30d"),
        )
        out = pairs.join(active, on="customer", how="left").join(naive, on="customer", how="left")
        for i, name in enumerate(factors):
            part = totals.filter(pl.col("factor") == name).select(
                "customer", pl.col("cp").alias(f"f{i}")
            )
            out = out.join(part, on="customer", how="left")
        tenure_days = ((at - pl.col("first_scored_ms")) // tenure.day_ms).clip(
            upper_bound=tenure.max_days
        )
        out = out.with_columns(
            (pl.col("churn_ms").is_not_null() & (pl.col("churn_ms") <= at + _HORIZON_MS))
            .cast(pl.Int64)
            .alias("label"),
            pl.when(pl.col("first_scored_ms").is_null() | (pl.col("first_scored_ms") > at))
            .then(0)
            .otherwise(tenure_days)
            .alias("tenure_days"),
        ).fill_null(0)
        rows += out.height
        for name, found in sums.items():
            found.append(int(out[name].sum()))
    return rows, _checksum(sums)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devtools/calibration_polars/compare.py")
    parser.add_argument("engine", choices=("duckdb", "polars"))
    parser.add_argument("staged", type=Path, help="a calibrate --stage-dir folder")
    parser.add_argument("labels", type=Path)
    parser.add_argument("--window", type=int, default=182, help="days (default 182)")
    parser.add_argument("--bucket", type=int, default=7, help="days (default 7)")
    args = parser.parse_args(argv)
    staged, types = _staged(args.staged)
    labels = read_labels(args.labels)
    split = split_for(staged.last_ms, labels, None, 2)
    model = count_model(types, args.window * DAY_MS, args.bucket * DAY_MS, args.window)
    times = snapshot_times(staged.first_ms, model.window_ms, _HORIZON_MS, "weekly", split)
    started = time.monotonic()
    if args.engine == "duckdb":
        rows, checksum = run_duckdb(staged, model, labels, times, args.staged / "spill")
    else:
        rows, checksum = run_polars(staged, model, labels, times)
    took = time.monotonic() - started
    print(f"{args.engine}: {staged.count} events, {len(times)} snapshots, {rows} rows in "
          f"{took:.1f} s; {checksum}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
