"""The calibration features of every (snapshot, customer), out of core, from staged Parquet.

:func:`feature_query` is the one text of the feature query: plain SQL over four relations
(``events`` and ``contributions`` as staged by :mod:`stream.calibrate.staging`, ``snapshots``
with one ``at_ms`` column, ``labels`` with ``customer, churn_ms, first_seen_ms``), written
so that DuckDB runs it here and Spark SQL or Trino can run it over the same Parquet. It
computes what the core would hold at each snapshot: each factor's window total, the active
buckets (regularity), whole days of tenure, the naive counts and the label, with the
worker's rules (a bucket counts until its start plus the window; duplicates by
``(customer, event_id)`` count once, the earliest copy; tenure from the first scored event).

:func:`window_totals` runs it with DuckDB under a memory limit (spilling to disk beyond it)
and :func:`check_against_core` replays a sample of customers through the core
(:func:`stream.calibrate.snapshots.collect`, i.e. ``advance``) and demands the same rows.
:func:`scored_rows` runs it for a model with transforms and a baseline (the one being
validated) and turns each row's totals into the worker's score and band by the core's code.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from stream.calibrate.snapshots import DAY_MS, NAIVE_30D_MS, RowsBuilder, Snapshots, collect
from stream.calibrate.staging import Staged, customer_events
from stream.core.model import ACTIVE, TENURE, ScoringModel
from stream.errors import ReplayError
from stream.event_files.labels import Label

__all__ = [
    "Engine",
    "check_against_core",
    "feature_query",
    "sample_ids",
    "scored_rows",
    "supports",
    "weighed_scores",
    "window_totals",
]

_MEMORY_LIMIT = "256MB"
# the labelled customers of one run of the query hold about this many events: DuckDB's
# joins over a whole large history do not all spill, so the query runs part by part
_PART_EVENTS = 4_000_000
REGULARITY = "regularity"


def supports(model: ScoringModel) -> bool:
    """Whether the query computes every factor of ``model`` (returning visits: not yet)."""
    return model.returning is None or not model.returning.points_cp


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def feature_query(model: ScoringModel, horizon_ms: int) -> str:
    """The feature query for ``model`` (its window, bucket and factors) as SQL text.

    Columns: ``at_ms, customer, first_ms, label, naive, naive_30d``, one ``f<i>`` column
    of raw centipoints per event factor (in ``event_factors(model)`` order), ``active``
    (active buckets in the window) and ``tenure_days`` (whole tenure days, capped)."""
    grain = math.gcd(model.bucket_ms, DAY_MS)  # snapshots are midnights: a grain is all in
    b, w, n30 = model.bucket_ms, model.window_ms, NAIVE_30D_MS  # or all out of a window
    tenure = model.tenure
    day = tenure.day_ms if tenure is not None else DAY_MS
    cap = tenure.max_days if tenure is not None and tenure.max_days is not None else 2**31
    pivots = "".join(
        f",\n    sum(CASE WHEN factor = {_quoted(name)} THEN cp ELSE 0 END) AS f{i}"
        for i, name in enumerate(event_factors(model))
    )
    picks = "".join(f"\n  coalesce(t.f{i}, 0) AS f{i}," for i in range(len(event_factors(model))))
    named = ", ".join(f"f{i} = {name}" for i, name in enumerate(event_factors(model)))
    return f"""-- engagement-stream calibration features (window {w} ms, bucket {b} ms, horizon
-- {horizon_ms} ms). Relations: events, contributions (the staged Parquet), snapshots(at_ms
-- BIGINT: midnights UTC), labels(customer VARCHAR, churn_ms BIGINT, first_seen_ms BIGINT).
-- Columns: raw centipoints per factor ({named}); active = active buckets in the window.
WITH
-- only the labelled customers' rows from the start: every later step is per customer, and
-- a history's unlabelled (or unsampled) customers would only make the joins larger
kept_events AS (
  SELECT * FROM events WHERE customer IN (SELECT customer FROM labels)
),
kept_contributions AS (
  SELECT * FROM contributions WHERE customer IN (SELECT customer FROM labels)
),
repeated AS (
  SELECT customer, event_id FROM kept_events GROUP BY customer, event_id HAVING count(*) > 1
),
copies AS (
  SELECT e.customer, e.seq,
         row_number() OVER (PARTITION BY e.customer, e.event_id ORDER BY e.ts, e.seq) AS copy
  FROM kept_events e JOIN repeated r ON e.customer = r.customer AND e.event_id = r.event_id
),
grains AS (
  SELECT c.customer, CAST(floor(c.ts / {grain}) AS BIGINT) AS grain, c.factor, sum(c.cp) AS cp
  FROM kept_contributions c LEFT JOIN copies d
    ON c.customer = d.customer AND c.seq = d.seq AND d.copy > 1
  WHERE d.seq IS NULL
  GROUP BY c.customer, CAST(floor(c.ts / {grain}) AS BIGINT), c.factor
),
counts AS (
  SELECT customer, CAST(floor(ts / {grain}) AS BIGINT) AS grain, count(*) AS n
  FROM kept_events GROUP BY customer, CAST(floor(ts / {grain}) AS BIGINT)
),
seen AS (
  SELECT customer, min(ts) AS first_ms, min(CASE WHEN scored THEN ts END) AS first_scored_ms
  FROM kept_events GROUP BY customer
),
pairs AS (
  SELECT s.at_ms, e.customer, e.first_ms, e.first_scored_ms, l.churn_ms
  FROM snapshots s
  JOIN seen e ON e.first_ms < s.at_ms
  JOIN labels l ON l.customer = e.customer
  WHERE coalesce(l.first_seen_ms, e.first_ms) <= s.at_ms
    AND (l.churn_ms IS NULL OR l.churn_ms > s.at_ms)
),
buckets AS (
  SELECT customer, CAST(floor(grain * {grain} / {b}) AS BIGINT) AS bucket, factor, sum(cp) AS cp
  FROM grains GROUP BY customer, CAST(floor(grain * {grain} / {b}) AS BIGINT), factor
),
parts AS (
  SELECT s.at_ms, k.customer, k.factor, k.cp
  FROM buckets k JOIN snapshots s
    ON (k.bucket + 1) * {b} <= s.at_ms AND k.bucket * {b} + {w} > s.at_ms
  UNION ALL
  SELECT s.at_ms, g.customer, g.factor, g.cp
  FROM grains g JOIN snapshots s
    ON CAST(floor(g.grain * {grain} / {b}) AS BIGINT) = CAST(floor(s.at_ms / {b}) AS BIGINT)
   AND g.grain * {grain} < s.at_ms
),
totals AS (
  SELECT at_ms, customer{pivots}
  FROM parts GROUP BY at_ms, customer
),
active_buckets AS (
  SELECT customer, CAST(floor(grain * {grain} / {b}) AS BIGINT) AS bucket, min(grain) AS grain
  FROM grains WHERE factor = {_quoted(ACTIVE)}
  GROUP BY customer, CAST(floor(grain * {grain} / {b}) AS BIGINT)
),
active AS (
  SELECT s.at_ms, a.customer, count(*) AS buckets
  FROM active_buckets a JOIN snapshots s
    ON a.grain * {grain} < s.at_ms AND a.bucket * {b} + {w} > s.at_ms
  GROUP BY s.at_ms, a.customer
),
naive AS (
  SELECT s.at_ms, c.customer,
         sum(CASE WHEN c.grain * {grain} >= s.at_ms - {w} THEN c.n ELSE 0 END) AS naive,
         sum(CASE WHEN c.grain * {grain} >= s.at_ms - {n30} THEN c.n ELSE 0 END) AS naive_30d
  FROM counts c JOIN snapshots s
    ON c.grain * {grain} < s.at_ms AND c.grain * {grain} >= s.at_ms - {max(w, n30)}
  GROUP BY s.at_ms, c.customer
)
SELECT p.at_ms, p.customer, p.first_ms,
  CASE WHEN p.churn_ms IS NOT NULL AND p.churn_ms <= p.at_ms + {horizon_ms} THEN 1 ELSE 0 END
    AS label,
  coalesce(n.naive, 0) AS naive,
  coalesce(n.naive_30d, 0) AS naive_30d,{picks}
  coalesce(a.buckets, 0) AS active,
  CASE WHEN p.first_scored_ms IS NULL OR p.first_scored_ms > p.at_ms THEN 0
       ELSE least(CAST(floor((p.at_ms - p.first_scored_ms) / {day}) AS BIGINT), {cap})
  END AS tenure_days
FROM pairs p
LEFT JOIN totals t ON t.at_ms = p.at_ms AND t.customer = p.customer
LEFT JOIN naive n ON n.at_ms = p.at_ms AND n.customer = p.customer
LEFT JOIN active a ON a.at_ms = p.at_ms AND a.customer = p.customer
ORDER BY p.at_ms, p.first_ms, p.customer
"""


def event_factors(model: ScoringModel) -> list[str]:
    """The factors the query sums from contributions (all but regularity and tenure)."""
    return [f for f in model.factors if f not in (REGULARITY, TENURE)]


class Engine:
    """A DuckDB connection over a staged history, under a memory limit."""

    def __init__(
        self,
        staged: Staged,
        spill: Path,
        memory_limit: str = _MEMORY_LIMIT,
        part_events: int = _PART_EVENTS,
    ) -> None:
        import duckdb  # noqa: PLC0415 (optional extra)

        self.staged = staged
        self.part_events = part_events
        self._customers: int | None = None
        self.db = duckdb.connect(config={"memory_limit": memory_limit,
                                         "temp_directory": str(spill),
                                         "preserve_insertion_order": False})  # fmt: skip
        self.db.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{staged.events}')")
        self.db.execute("CREATE VIEW contributions AS SELECT * FROM "
                        f"read_parquet('{staged.contributions}')")  # fmt: skip

    def set_inputs(self, labels: Mapping[str, Label], times: Sequence[int]) -> None:
        """Register the labels and snapshot moments as the query's small relations."""
        import pyarrow as pa  # noqa: PLC0415

        self.db.register("labels", pa.table({
            "customer": pa.array(list(labels), pa.string()),
            "churn_ms": pa.array([v.churn_ms for v in labels.values()], pa.int64()),
            "first_seen_ms": pa.array([v.first_seen_ms for v in labels.values()], pa.int64()),
        }))  # fmt: skip
        self.db.register("snapshots", pa.table({"at_ms": pa.array(list(times), pa.int64())}))

    def parts(self, labels: Mapping[str, Label]) -> list[dict[str, Label]]:
        """``labels`` in parts whose customers hold about ``part_events`` events (by the
        history's mean per customer): the query runs once per part, as customers never
        interact."""
        if self._customers is None:
            found = self.db.execute("SELECT count(DISTINCT customer) FROM events").fetchall()
            self._customers = int(found[0][0])
        per = max(1, self.part_events * self._customers // max(self.staged.count, 1))
        items = list(labels.items())
        return [dict(items[i : i + per]) for i in range(0, len(items), per)] or [{}]

    def rows(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """The query's rows, fetched a batch at a time."""
        result = self.db.execute(sql)
        while batch := result.fetchmany(50_000):
            yield from batch

    def batches(self, sql: str, size: int = 50_000) -> Iterator[Any]:
        """The query's rows as Arrow record batches of up to ``size`` rows."""
        reader = self.db.sql(sql).to_arrow_reader(size)
        yield from reader

    def customer_events(self, customers: Sequence[str] | None = None) -> Iterator[list[Any]]:
        """Staged events by customer (each customer's in time order), optionally only those of
        ``customers`` (any number: they are registered as a relation, not a literal list)."""
        import pyarrow as pa  # noqa: PLC0415

        where = ""
        if customers is not None:
            self.db.register("chosen", pa.table({"customer": pa.array(customers, pa.string())}))
            where = "WHERE customer IN (SELECT customer FROM chosen)"
        result = self.db.execute(f"SELECT * FROM events {where} ORDER BY customer, ts, seq")
        names = [d[0] for d in result.description]

        def dicts() -> Iterator[dict[str, Any]]:
            while batch := result.fetchmany(50_000):
                for row in batch:
                    yield dict(zip(names, row, strict=True))

        yield from customer_events(dicts())

    def close(self) -> None:
        self.db.close()


def _query_batches(
    engine: Engine,
    model: ScoringModel,
    labels: Mapping[str, Label],
    times: Sequence[int],
    horizon_ms: int,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The feature query's rows a batch at a time: its columns (numpy) and each factor's
    raw window total in centipoints, regularity and tenure included (as the core's
    ``factor_totals`` has them: active buckets and tenure days times their points)."""
    import numpy as np  # noqa: PLC0415

    if not supports(model):
        raise ValueError("the feature query does not compute returning visits")
    names = event_factors(model)
    regularity = model.regularity.points_cp_per_active_bucket if model.regularity else 0
    per_day = model.tenure.points_cp_per_day if model.tenure is not None else 0
    sql = feature_query(model, horizon_ms)
    for part in engine.parts(labels):
        engine.set_inputs(part, times)
        for batch in engine.batches(sql):
            column = {name: batch.column(name).to_numpy(zero_copy_only=False)
                      for name in batch.schema.names}  # fmt: skip
            cp = {name: column[f"f{i}"].astype(np.int64) for i, name in enumerate(names)}
            cp[REGULARITY] = column["active"].astype(np.int64) * regularity
            cp[TENURE] = column["tenure_days"].astype(np.int64) * per_day
            yield column, cp


def _in_query_order(rows: Snapshots, first_ms: list[Any]) -> Snapshots:
    """``rows`` gathered batch by batch (of one or more parts) in the query's order: by
    snapshot, first event and customer (a stable sort: one part's rows stay as they are)."""
    import numpy as np  # noqa: PLC0415

    if len(first_ms) <= 1:
        return rows
    return rows.taken(rows.order_by(np.concatenate(first_ms)))


def _rows_of(
    model: ScoringModel,
    column: dict[str, Any],
    score: Any,
    points: Any,
    interned: dict[str, str],
) -> Snapshots:
    """A compact table of one batch's rows, with ``score`` (points) and its bands."""
    import numpy as np  # noqa: PLC0415

    at_ms = column["at_ms"].astype(np.int64)
    return Snapshots(
        model.factors,
        at_ms=at_ms,
        customer=np.array([interned.setdefault(c, c) for c in column["customer"]], object),
        label=column["label"].astype(np.int8),
        score=score,
        band=np.array([model.bands.band_for(v) for v in score.tolist()], object),
        naive=column["naive"].astype(np.int64),
        naive_30d=column["naive_30d"].astype(np.int64),
        tenure_days=(at_ms - column["first_ms"].astype(np.int64)) / DAY_MS,
        points=points,
    )


def window_totals(
    engine: Engine,
    model: ScoringModel,
    labels: Mapping[str, Label],
    times: Sequence[int],
    horizon_ms: int,
) -> Snapshots:
    """Snapshot rows of ``model``'s raw totals (no transforms), by the feature query, as a
    compact (numpy) table built a fetched batch at a time."""
    import numpy as np  # noqa: PLC0415

    factors = model.factors
    interned: dict[str, str] = {}
    out = RowsBuilder(factors)
    first_ms: list[Any] = []
    for column, cp in _query_batches(engine, model, labels, times, horizon_ms):
        first_ms.append(column["first_ms"].astype(np.int64))
        rows = len(column["at_ms"])
        total = np.zeros(rows, dtype=np.int64)
        for value in cp.values():  # the score: the exact sum of every factor's centipoints
            total += value
        zero = np.zeros(rows, dtype=np.int64)
        points = (np.column_stack([cp.get(f, zero) / 100 for f in factors])
                  if factors else np.zeros((rows, 0)))  # fmt: skip
        out.add_compact(_rows_of(model, column, total / 100, points, interned))
    return _in_query_order(out.build(), first_ms)


def scored_rows(
    engine: Engine,
    model: ScoringModel,
    labels: Mapping[str, Label],
    times: Sequence[int],
    horizon_ms: int,
) -> Snapshots:
    """Snapshot rows of ``model``'s score and band (without factor points), by the feature
    query: each row's raw factor totals become the score by the core's own
    ``ScoringModel.weigh`` (transforms and baseline, as ``advance`` computes the breakdown)
    and the band by ``model.bands.band_for``, so they are the worker's."""
    import numpy as np  # noqa: PLC0415

    interned: dict[str, str] = {}
    out = RowsBuilder(model.factors)
    first_ms: list[Any] = []
    for column, cp in _query_batches(engine, model, labels, times, horizon_ms):
        first_ms.append(column["first_ms"].astype(np.int64))
        rows = len(column["at_ms"])
        score = weighed_scores(model, cp, rows) / 100
        out.add_compact(_rows_of(model, column, score, np.zeros((rows, 0)), interned))
    return _in_query_order(out.build(), first_ms)


def weighed_scores(model: ScoringModel, totals: Mapping[str, Any], rows: int) -> Any:
    """Each row's score in centipoints: the sum of ``model.weigh`` of its non-zero raw
    totals (the core leaves a zero total out of the breakdown before weighing it)."""
    import numpy as np  # noqa: PLC0415

    names = list(totals)
    columns = [totals[name].tolist() for name in names]
    out = np.zeros(rows, dtype=np.int64)
    for i, values in enumerate(zip(*columns, strict=True)):
        present = {name: value for name, value in zip(names, values, strict=True) if value}
        out[i] = sum(model.weigh(present).values())
    return out


def sample_ids(ids: Iterable[str], size: int) -> list[str]:
    """A fixed pseudo-random sample of ``size`` of the ids (the lowest by a hash of the id)."""
    unique = set(ids)
    return sorted(unique, key=lambda c: hashlib.blake2b(c.encode(), digest_size=8).digest())[:size]


def check_against_core(
    engine: Engine,
    model: ScoringModel,
    labels: Mapping[str, Label],
    times: Sequence[int],
    horizon_ms: int,
    rows: Snapshots,
    size: int = 40,
    *,
    record_from_ms: int | None = None,
    points: bool = True,
) -> int:
    """Replay ``size`` sampled customers through the core and demand the query's rows for
    them, field for field (raises ReplayError naming the first difference). Returns how
    many rows were compared. ``rows`` only from ``record_from_ms`` and, without ``points``,
    without factor points: then the core's rows are taken the same way."""
    sample = sample_ids(rows.customer, size)
    events = sorted(
        (e for batch in engine.customer_events(sample) for e in batch),
        key=lambda e: e.timestamp_ms,
    )
    chosen = {c: labels[c] for c in sample}
    core, _ = collect(model, events, chosen, times, horizon_ms,
                      record_from_ms=record_from_ms, points=points)  # fmt: skip
    mine = _by_key(rows, set(sample))
    theirs = _by_key(core, set(sample))
    if mine.keys() != theirs.keys():
        missing = sorted(theirs.keys() ^ mine.keys())[:1]
        raise ReplayError(f"feature query: rows differ from the core replay at {missing}")
    for key, value in theirs.items():
        if mine[key] != value:
            raise ReplayError(f"feature query: customer {key[1]!r} at {key[0]}: "
                              f"{mine[key]} but the core replay has {value}")  # fmt: skip
    return len(theirs)


def _by_key(rows: Snapshots, customers: set[str]) -> dict[tuple[int, str], tuple[Any, ...]]:
    out: dict[tuple[int, str], tuple[Any, ...]] = {}
    for i, customer in enumerate(rows.customer):
        if customer in customers:
            out[(rows.at_ms[i], customer)] = (
                rows.label[i], rows.naive[i], rows.naive_30d[i], rows.tenure_days[i],
                rows.score[i], rows.band[i], tuple(rows.points[i]),
            )  # fmt: skip
    return out
