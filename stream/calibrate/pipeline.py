"""``engagement calibrate`` and ``engagement validate``: history in, model and report out.

Calibrate:
1. Read the history with the worker's decoder and stage it as Parquet on disk
   (:mod:`stream.calibrate.staging`: memory stays bounded whatever the history's size).
   Without ``--model`` every event type seen becomes its own factor worth 1 point per event
   (the factor total is the count).
2. Compute the "raw totals" version of the model (no transforms; active days and tenure as
   factors too) for every eligible customer at regular snapshot moments with the feature
   query (:mod:`stream.calibrate.features`, DuckDB, out of core), and check it against the
   core: a sample of customers replayed through ``advance`` must give the same rows.
3. Fit on the training snapshots (whose labels end before the held-out period starts),
   choosing between feature sets, saturations and (``--window auto``) windows on a later
   slice of the training period; a tie between windows goes to the longer one.
4. Set band thresholds from target shares of the training scores, and alert settings
   relative to them; write the model file.
5. Load the written file like the worker does and report on the held-out snapshots
   (:func:`validate`): their scores and bands by the feature query, turned into scores by
   the core's own code and checked against the core replay of a sample of customers; the
   alerts by the core replay (customer by customer, streamed from the staged files) of
   every labelled customer up to ``ALERT_CUSTOMERS``, else of a fixed sample of that many.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from stream.calibrate.ceiling import ceiling_auc
from stream.calibrate.curve import CURVE_SHARES, CurvePoint, pick_share, shares_with
from stream.calibrate.features import (
    Engine,
    check_against_core,
    feature_query,
    sample_ids,
    scored_rows,
    supports,
    window_totals,
)
from stream.calibrate.fit import (
    DEFAULT_SHARES,
    FactorFit,
    Fit,
    fit_weights,
    thresholds_from_shares,
)
from stream.calibrate.metrics import alert_stats, evaluate
from stream.calibrate.report import ReportInput, duration_text, render_markdown, write_report
from stream.calibrate.skill import Interval, skill_verdict
from stream.calibrate.snapshots import (
    DAY_MS,
    Cadence,
    RowsBuilder,
    Snapshots,
    collect,
    month_start,
)
from stream.calibrate.snapshots import snapshot_times as cadence_times
from stream.calibrate.staging import stage, stage_types
from stream.config.model_file import BUILTIN_MODELS, load_model, parse_model
from stream.core.alerts import Alert
from stream.core.events import Event
from stream.core.model import TENURE, EventRule, RegularityRule, ScoringModel, TenureRule
from stream.event_files.labels import Label
from stream.event_files.replay import DecodeSummary, Replay, decode_records
from stream.event_files.sources import RawRecord, read_file

__all__ = [
    "ALERT_CUSTOMERS",
    "FIT_ROWS",
    "CalibrationOptions",
    "History",
    "Split",
    "alert_curve",
    "calibrate",
    "fit_sample",
    "held_out_rows",
    "load_events",
    "open_history",
    "replay_alerts",
    "replay_by_customer",
    "split_for",
    "takes_longer_window",
    "validate",
]

_LOOKBACK_MS = 90 * DAY_MS
_BUDGET_MONTHS_MS = 61 * DAY_MS  # the training months an alert budget is measured on
_CURVE_CUSTOMERS = 5000  # the alert curve replays a fixed sample of this many customers
# The fit's rows (customers x snapshots) are capped at this: a fixed sample of customers
# beyond it. A row is about 200 bytes with a dozen factors, so the table stays near 100 MB.
FIT_ROWS = 500_000
# Validation replays the alerts of every labelled customer up to this many, else of a fixed
# sample of this many (the held-out scores and bands come from the feature query).
ALERT_CUSTOMERS = 10_000
# Later-training AUCs this close count as a tie, and a tie goes to the longer window: two
# windows tie when the training snapshots' histories fit in both, and then the fit has seen
# what the longer window keeps counting later (the counts since sign-up).
_WINDOW_TIE = 0.002
_REGULARITY = "regularity"


@dataclass(frozen=True, slots=True)
class Split:
    """Training rows: labels end by ``train_until_ms``; held-out rows: from ``holdout_ms``."""

    train_until_ms: int
    holdout_ms: int
    end_ms: int

    def describe(self) -> str:
        return f"held-out snapshots from {_day(self.holdout_ms)} to {_day(self.end_ms)}"


@dataclass(frozen=True, slots=True)
class CalibrationOptions:
    """What ``engagement calibrate`` was asked for."""

    cadence: Cadence = "weekly"
    horizon_ms: int = 30 * DAY_MS
    train_until_ms: int | None = None
    holdout_months: int = 2
    shares: Mapping[str, float] | None = None
    window_ms: int = 30 * DAY_MS
    bucket_ms: int = DAY_MS
    onboarding_ms: int = 14 * DAY_MS
    cooldown_ms: int = 14 * DAY_MS
    tenure_cap_days: int = 30
    version: str | None = None
    other_windows: tuple[tuple[int, int], ...] = ()  # (window, bucket) to try, shortest first
    target_alerts_per_customer: float | None = None  # alert budget on the training months


def takes_longer_window(longer_auc: float, best_auc: float) -> bool:
    """Whether a longer window's later-training AUC replaces the best so far (ties: yes)."""
    return longer_auc >= best_auc - _WINDOW_TIE


def _day(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=UTC).strftime("%Y-%m-%d")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_events(
    paths: Sequence[Path], model: ScoringModel, now_ms: int | None = None
) -> tuple[list[Event], DecodeSummary]:
    """Every event of the files, decoded by the worker's decoder, sorted by time."""
    summary = DecodeSummary()
    records = (record for path in paths for record in read_file(path))
    clock = now_ms if now_ms is not None else int(time.time() * 1000)
    return decode_records(records, model, now_ms=clock, summary=summary)


def count_model(
    types: Iterable[str], window_ms: int, bucket_ms: int, tenure_cap_days: int
) -> ScoringModel:
    """One factor per event type, 1 point per event; active days and tenure as factors."""
    names = list(types)
    return ScoringModel(
        version="calibration-counts",
        window_ms=window_ms,
        bucket_ms=bucket_ms,
        events={name: EventRule(name, 100) for name in names},
        regularity=RegularityRule(100),
        tenure=tenure_rule(bucket_ms, tenure_cap_days),
        inactive_types=frozenset(),
        segment_events={name: name for name in names},
    )


def tenure_rule(bucket_ms: int, cap_days: int) -> TenureRule:
    """Tenure counted in buckets (a day, or a week for long windows), capped at ``cap_days``."""
    return TenureRule(100, max_days=max(1, -(-cap_days * DAY_MS // bucket_ms)), day_ms=bucket_ms)


def raw_totals_model(base: ScoringModel, tenure_cap_days: int) -> ScoringModel:
    """``base`` without transforms or baseline, with active days and tenure as factors."""
    return replace(
        base,
        transforms={},
        baseline_cp=0,
        regularity=RegularityRule(100),
        tenure=tenure_rule(base.bucket_ms, tenure_cap_days),
    )


def split_for(
    last_ms: int | None,
    labels: Mapping[str, Label],
    train_until_ms: int | None,
    holdout_months: int,
) -> Split:
    """Where training ends and the held-out period begins (``last_ms``: the latest event)."""
    churns = [label.churn_ms for label in labels.values() if label.churn_ms is not None]
    end = last_ms if last_ms is not None else max(churns, default=0)
    if train_until_ms is not None:
        return Split(train_until_ms, train_until_ms, end)
    holdout = month_start(end, -(holdout_months - 1))
    return Split(holdout, holdout, end)


def snapshot_times(
    first_ms: int | None, window_ms: int, horizon_ms: int, cadence: Cadence, split: Split
) -> list[int]:
    """Moments from 30 days (or a shorter window) after the first event (``first_ms``), with
    a known label horizon ahead. Customers seen for less than a window are fine: tenure
    counts from their first event, so a short history looks like a new customer, as it
    would live."""
    if first_ms is None:
        return []
    first = first_ms + min(window_ms, 30 * DAY_MS)
    last = split.end_ms + DAY_MS - horizon_ms
    return cadence_times(cadence, first, last)


def _columns(rows: Snapshots, keep: np.ndarray) -> dict[str, np.ndarray]:
    matrix = rows.matrix()
    return {name: matrix[keep, i] for i, name in enumerate(rows.factors)}


_SHAPES: tuple[tuple[str, float], ...] = (("log1p", 1.0), ("cap", 0.25), ("cap", 0.5), ("cap", 1.0))


def choose_fit(
    rows: Snapshots, split: Split, horizon_ms: int, tenure_cap: int
) -> tuple[Fit, float]:
    """Fit on the training rows. The saturation (log1p, or a cap at a quarter, half or all of
    each factor's median) and whether active days and tenure join are chosen by AUC on the
    last third of the training period, fitting on the rest (that AUC is returned too)."""
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415 (optional extra)

    at = np.asarray(rows.at_ms)
    labels = np.asarray(rows.label)
    train = at + horizon_ms <= split.train_until_ms
    if not _both_classes(labels[train]):
        raise ValueError("the training period has no snapshot with both churners and stayers")
    columns = _columns(rows, train)
    usable = [n for n, v in columns.items() if np.ptp(v) > 0]
    times = sorted(set(at[train].tolist()))
    cut = times[max(1, len(times) * 2 // 3)] if len(times) > 2 else None
    caps = {TENURE: float(tenure_cap)}
    candidates = [
        usable,
        [n for n in usable if n != TENURE],
        [n for n in usable if n != _REGULARITY],
        [n for n in usable if n not in (TENURE, _REGULARITY)],
    ]
    best: tuple[list[str], tuple[str, float]] = (candidates[0], _SHAPES[0])
    best_auc = -1.0
    if cut is not None:
        inner_train = train & (at + horizon_ms <= cut)
        inner_test = train & (at >= cut)
        fit_cols, test_cols = _columns(rows, inner_train), _columns(rows, inner_test)
        ok = _both_classes(labels[inner_train]) and _both_classes(labels[inner_test])
        for names in candidates if ok else []:
            for shape in _SHAPES if names else []:
                fitted = _fit({n: fit_cols[n] for n in names}, labels[inner_train], caps, shape)
                scores = fitted.score({n: test_cols[n] for n in names})
                auc = float(roc_auc_score(labels[inner_test], -scores))
                if auc > best_auc + 0.001:
                    best, best_auc = (names, shape), auc
    names, shape = best
    return _fit({n: columns[n] for n in names}, labels[train], caps, shape), best_auc


def _both_classes(labels: np.ndarray) -> bool:
    return labels.size > 0 and labels.min() != labels.max()


def _fit(
    columns: Mapping[str, np.ndarray],
    labels: np.ndarray,
    caps: Mapping[str, float],
    shape: tuple[str, float],
) -> Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return fit_weights(
            columns,
            labels,
            caps={k: v for k, v in caps.items() if k in columns},
            scales={TENURE: 1.0},  # log1p(days) ~ log(days): turns counts into rates
            shape=shape,
        )


def _base_document(base: str | None) -> dict[str, Any] | None:
    if base is None:
        return None
    if base in BUILTIN_MODELS:
        text = (resources.files("stream.config") / "models" / f"{base}.yaml").read_text()
    else:
        text = Path(base).read_text()
    loaded = yaml.safe_load(text)
    return loaded if isinstance(loaded, dict) else {}


def model_document(
    base: dict[str, Any] | None,
    types: Sequence[str],
    fit: Fit,
    uppers: Mapping[str, float | None],
    options: CalibrationOptions,
    version: str,
) -> dict[str, Any]:
    """The calibrated model as a YAML-ready mapping."""
    doc: dict[str, Any] = dict(base) if base is not None else {}
    doc["version"] = version
    if base is None:
        doc["window"] = duration_text(options.window_ms)
        doc["bucket"] = duration_text(options.bucket_ms)
        doc["events"] = {t: {"factor": t, "points": 1} for t in types}
        doc["segment_events"] = {t: t for t in types}
    names = {f.name for f in fit.factors}
    doc.pop("regularity", None)
    doc.pop("tenure", None)
    if _REGULARITY in names:
        doc["regularity"] = {"points_per_active_day": 1}
    if TENURE in names:
        rule = tenure_rule(options.bucket_ms, options.tenure_cap_days)
        doc["tenure"] = {"points_per_day": 1, "max_days": rule.max_days,
                         "day": duration_text(rule.day_ms)}  # fmt: skip
    doc["baseline"] = round(fit.baseline, 2)
    doc["factors"] = {f.name: _transform_entry(f) for f in fit.factors}
    doc["bands"] = dict(uppers)
    alert_band = next(iter(uppers))
    bounds = [u for u in uppers.values() if u is not None]
    rearm = bounds[0] + (bounds[1] - bounds[0]) / 2 if len(bounds) > 1 else bounds[0] + 5
    doc["alerts"] = {
        "band": alert_band,
        "rearm_above": round(rearm, 2),
        "cooldown": duration_text(options.cooldown_ms),
        "onboarding": {"after": duration_text(options.onboarding_ms)},
    }
    return doc


def _transform_entry(factor: FactorFit) -> dict[str, Any]:
    if factor.transform == "log1p":
        return {"transform": "log1p", "scale": round(factor.scale, 4),
                "weight": round(factor.weight, 4)}  # fmt: skip
    if factor.transform == "cap":
        return {"transform": "cap", "max": round(factor.scale, 4), "min": 0,
                "weight": round(factor.weight / factor.scale, 6)}  # fmt: skip
    return {"transform": "linear", "weight": round(factor.weight / factor.scale, 6)}


def _yaml_text(doc: Mapping[str, Any], provenance: Sequence[str]) -> str:
    body = yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=None, width=100)
    return "".join(f"# {line}\n" for line in provenance) + body


@dataclass(frozen=True, slots=True)
class Validation:
    """A model's report on the held-out period."""

    report: ReportInput
    markdown: str


@dataclass(frozen=True, slots=True)
class History:
    """A history staged on disk (see :mod:`stream.calibrate.staging`), open for queries,
    with the model it was decoded by."""

    engine: Engine
    model: ScoringModel
    summary: DecodeSummary
    first_ms: int | None
    last_ms: int | None
    count: int


@contextmanager
def open_history(
    paths: Sequence[Path],
    model: ScoringModel | Callable[[list[str]], ScoringModel],
    now_ms: int | None = None,
    keep: Path | None = None,
) -> Iterator[History]:
    """Decode the files with ``model`` into Parquet in a temporary folder (removed on exit),
    or in ``keep`` (kept: the staged files another SQL engine can read). ``model`` may be a
    function of the event types, given every type the files name (``History.model``)."""

    def read() -> Iterator[RawRecord]:
        return (record for path in paths for record in read_file(path))

    clock = now_ms if now_ms is not None else int(time.time() * 1000)
    with tempfile.TemporaryDirectory(prefix="engagement-calibrate-") as folder:
        target = keep if keep is not None else Path(folder) / "staged"
        if isinstance(model, ScoringModel):
            staged, staged_with = stage(read(), model, target, now_ms=clock), model
        else:
            staged, staged_with = stage_types(read, model, target, now_ms=clock)
        engine = Engine(staged, Path(folder) / "spill")
        try:
            yield History(engine, staged_with, staged.summary, staged.first_ms, staged.last_ms,
                          staged.count)  # fmt: skip
        finally:
            engine.close()


def replay_by_customer(
    model: ScoringModel,
    history: History,
    labels: Mapping[str, Label],
    times: Sequence[int],
    horizon_ms: int,
    progress: Callable[[int], None] | None = None,
    *,
    record_from_ms: int | None = None,
    points: bool = True,
) -> tuple[Snapshots, list[Alert], dict[str, int]]:
    """The core replay (:func:`collect`) of each labelled customer on their own, their
    events streamed from the staged files: the rows, alerts and first-seen moments of a
    replay of the whole history, in bounded memory (customers never interact). Rows are
    kept compact (numpy), only from ``record_from_ms`` and, without ``points``, without
    the factor points."""
    rows = RowsBuilder(model.factors)
    alerts: list[Alert] = []
    first_seen: dict[str, int] = {}
    for batch in history.engine.customer_events():
        customer = batch[0].customer_id
        if customer not in labels:
            continue
        part, replay = collect(model, batch, {customer: labels[customer]}, times, horizon_ms,
                               record_from_ms=record_from_ms, points=points)  # fmt: skip
        rows.add(part)
        alerts.extend(replay.alerts)
        first_seen.update(replay.first_seen)
        if progress is not None:
            progress(len(batch))
    return rows.build().ordered(first_seen), alerts, first_seen


def fit_sample(
    labels: Mapping[str, Label], snapshots: int, limit: int = FIT_ROWS
) -> Mapping[str, Label]:
    """The labelled customers whose rows the fit uses: all of them while customers times
    snapshots stays within ``limit``, else a fixed sample of that many rows' worth (so the
    fit's memory stays bounded however long and wide the history)."""
    size = max(1, limit // max(1, snapshots))
    if len(labels) <= size:
        return labels
    return {c: labels[c] for c in sample_ids(labels, size)}


def _features(
    history: History,
    model: ScoringModel,
    labels: Mapping[str, Label],
    times: Sequence[int],
    horizon_ms: int,
) -> Snapshots:
    """Raw-total snapshot rows: by the feature query, checked against the core on a sample
    (or by the core replay, customer by customer, for a factor the query lacks)."""
    if not supports(model):
        _say("calibrate: returning visits: computing the features by the core replay")
        return replay_by_customer(model, history, labels, times, horizon_ms)[0]
    started = time.monotonic()
    sample = fit_sample(labels, len(times))
    if len(sample) < len(labels):
        _say(f"calibrate: fitting on a fixed sample of {len(sample)} of the {len(labels)} "
             f"labelled customers (at most {FIT_ROWS} customer-snapshots)")  # fmt: skip
    rows = window_totals(history.engine, model, sample, times, horizon_ms)
    return _checked("calibrate: feature query", rows, started, history, model, sample, times,
                    horizon_ms)  # fmt: skip


def held_out_rows(
    model: ScoringModel,
    history: History,
    labels: Mapping[str, Label],
    times: Sequence[int],
    horizon_ms: int,
    holdout_ms: int,
) -> Snapshots:
    """The held-out rows (from ``holdout_ms``, without factor points) of ``model``'s scores
    and bands, by the feature query (:func:`scored_rows`), checked against the core: a
    sample of customers replayed through ``advance`` must give exactly the same rows."""
    held = [t for t in times if t >= holdout_ms]
    started = time.monotonic()
    rows = scored_rows(history.engine, model, labels, held, horizon_ms)
    return _checked(
        "validate: held-out rows by the feature query",
        rows,
        started,
        history,
        model,
        labels,
        times,
        horizon_ms,
        record_from_ms=holdout_ms,
        points=False,
    )


def _checked(
    what: str,
    rows: Snapshots,
    started: float,
    history: History,
    model: ScoringModel,
    labels: Mapping[str, Label],
    times: Sequence[int],
    horizon_ms: int,
    *,
    record_from_ms: int | None = None,
    points: bool = True,
) -> Snapshots:
    """``rows`` of the feature query, once a sample of customers replayed through the core
    gives the same rows (:func:`check_against_core`); says what was checked on stderr."""
    took = time.monotonic() - started
    checked = check_against_core(history.engine, model, labels, times, horizon_ms, rows,
                                 record_from_ms=record_from_ms, points=points)  # fmt: skip
    _say(f"{what}: {len(rows)} rows in {took:.1f} s; the core replay of a sample gives the "
         f"same {checked} rows")  # fmt: skip
    return rows


def replay_alerts(
    model: ScoringModel,
    history: History,
    labels: Mapping[str, Label],
    times: Sequence[int],
    cap: int = ALERT_CUSTOMERS,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Alert], dict[str, int], Mapping[str, Label]]:
    """The core replay's alerts and first-seen moments of every labelled customer, or of a
    fixed sample of ``cap`` of them (the lowest by a hash of the id) when there are more,
    each customer replayed on their own; and the labels of the customers replayed."""
    chosen = labels if len(labels) <= cap else {c: labels[c] for c in sample_ids(labels, cap)}
    alerts: list[Alert] = []
    first_seen: dict[str, int] = {}
    for batch in history.engine.customer_events(list(chosen)):
        replay = Replay(model)
        replay.run(batch, times)
        alerts.extend(replay.alerts)
        first_seen.update(replay.first_seen)
        if progress is not None:
            progress(len(batch))
    return alerts, first_seen, chosen


def _replayed(
    model: ScoringModel,
    history: History,
    labels: Mapping[str, Label],
    times: Sequence[int],
    horizon_ms: int,
    holdout_ms: int,
    progress: Callable[[int], None] | None,
    cap: int,
) -> tuple[Snapshots, list[Alert], dict[str, int], Mapping[str, Label]]:
    """Validation's held-out rows, alerts, first-seen moments and the labels the alerts
    cover: rows by the feature query and alerts of at most ``cap`` customers, or (a model
    the query does not compute) everything by the full core replay."""
    if not supports(model):
        _say("validate: returning visits: replaying every labelled customer through the core")
        # Rows only on the held-out snapshots (the replay still stops at every one) and
        # without factor points: the report needs neither.
        rows, alerts, first_seen = replay_by_customer(
            model, history, labels, times, horizon_ms, progress,
            record_from_ms=holdout_ms, points=False,
        )  # fmt: skip
        return rows, alerts, first_seen, labels
    rows = held_out_rows(model, history, labels, times, horizon_ms, holdout_ms)
    if len(labels) > cap:
        _say(f"validate: replaying the alerts of a fixed sample of {cap} of the "
             f"{len(labels)} labelled customers")  # fmt: skip
    alerts, first_seen, chosen = replay_alerts(model, history, labels, times, cap, progress)
    return rows, alerts, first_seen, chosen


def validate(
    model: ScoringModel,
    source: str,
    history: History,
    labels: Mapping[str, Label],
    *,
    cadence: Cadence,
    horizon_ms: int,
    split: Split,
    out: Path | None = None,
    notes: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    later_training_auc: float | None = None,
    ceiling: Interval | None = None,
    curve: tuple[CurvePoint, ...] = (),
    alert_cap: int = ALERT_CUSTOMERS,
) -> Validation:
    """Score the held-out snapshots with ``model`` and replay its alerts (of at most
    ``alert_cap`` labelled customers: :func:`_replayed`), and report on them, with the
    verdict on its skill (``later_training_auc``: what calibrate chose it on) and the
    gradient-boosted ceiling if given."""
    times = snapshot_times(history.first_ms, model.window_ms, horizon_ms, cadence, split)
    rows, alerts, first_seen, replayed = _replayed(
        model, history, labels, times, horizon_ms, split.holdout_ms, progress, alert_cap
    )
    keep = np.asarray(rows.at_ms, dtype=np.int64) >= split.holdout_ms
    if not keep.any():
        raise ValueError(f"no snapshot in the held-out period ({split.describe()})")
    metrics = evaluate(rows, keep, model)
    stats = alert_stats(
        alerts,
        replayed,
        first_seen,
        (split.holdout_ms, split.end_ms + 1),
        _LOOKBACK_MS,
    )
    data = ReportInput(
        model=model,
        model_source=source,
        metrics=metrics,
        alerts=stats,
        period=split.describe(),
        horizon_ms=horizon_ms,
        cadence=cadence,
        rows=rows,
        keep=keep,
        notes=notes,
        verdict=skill_verdict(later_training_auc, metrics.auc_interval),
        ceiling=ceiling,
        curve=curve,
        alert_sample=(len(replayed), len(labels)) if len(replayed) < len(labels) else None,
    )
    if out is not None:
        write_report(data, out)
    return Validation(data, render_markdown(data, charts=out is not None))


def calibrate(
    paths: Sequence[Path],
    labels: Mapping[str, Label],
    options: CalibrationOptions,
    *,
    base: str | None = None,
    out_model: Path,
    report_dir: Path | None = None,
    stage_dir: Path | None = None,
) -> tuple[ScoringModel, Validation, DecodeSummary]:
    """Calibrate a model on the history in ``paths``; write it; validate it. With
    ``stage_dir``, the staged Parquet and the feature query (``features.sql``) are kept."""
    base_model = load_model(base) if base is not None else None
    staging: ScoringModel | Callable[[list[str]], ScoringModel]
    if base_model is None:
        staging = partial(count_model, window_ms=options.window_ms, bucket_ms=options.bucket_ms,
                          tenure_cap_days=options.tenure_cap_days)  # fmt: skip
        _say(f"calibrate: reading {len(paths)} file(s) and the event types they name")
    else:
        options = replace(options, window_ms=base_model.window_ms, bucket_ms=base_model.bucket_ms)
        staging = raw_totals_model(base_model, options.tenure_cap_days)
        _say(f"calibrate: reading {len(paths)} file(s), {len(base_model.events)} event types")
    with open_history(paths, staging, keep=stage_dir) as history:
        types = list(history.model.events)
        if not types:
            raise ValueError("no event type found in the history")
        if base_model is None:
            _say(f"calibrate: {len(types)} event types: {', '.join(types)}")
        model, validation, summary, chosen = _calibrate_staged(
            history, paths, labels, options, base, base_model, out_model, report_dir
        )
    if stage_dir is not None:
        (stage_dir / "features.sql").write_text(feature_query(chosen, options.horizon_ms))
    return model, validation, summary


def _calibrate_staged(
    history: History,
    paths: Sequence[Path],
    labels: Mapping[str, Label],
    options: CalibrationOptions,
    base: str | None,
    base_model: ScoringModel | None,
    out_model: Path,
    report_dir: Path | None,
) -> tuple[ScoringModel, Validation, DecodeSummary, ScoringModel]:
    if history.first_ms is None:
        raise ValueError("no event in the history")
    features = history.model  # the model the history was staged with
    types = list(features.events)
    split = split_for(history.last_ms, labels, options.train_until_ms, options.holdout_months)
    times = snapshot_times(
        history.first_ms, features.window_ms, options.horizon_ms, options.cadence, split
    )
    _say(f"calibrate: {history.count} events; features at {len(times)} snapshots")
    options, features, rows, fit, inner, tried = _choose_window(
        history, labels, times, split, options, features, types if base_model is None else None
    )
    at = np.asarray(rows.at_ms)
    train = at + options.horizon_ms <= split.train_until_ms
    # Thresholds from the training snapshots with a full window behind them (the way the
    # model will see customers from now on); the latest one if none has.
    full = train & (at >= history.first_ms + features.window_ms)
    if not full.any():
        full = train & (at == at[train].max())
    train_scores = fit.score(_columns(rows, full))
    _say("calibrate: fitting the gradient-boosted ceiling on the same rows")
    ceiling = ceiling_auc(rows, train, at >= split.holdout_ms)
    train_times = sorted(set(at[train].tolist()))
    train_rows = int(train.sum())
    del rows, at, train, full  # the feature rows are not needed from here on
    names = list(base_model.bands.names) if base_model is not None else list(DEFAULT_SHARES)
    shares = dict(options.shares) if options.shares is not None else dict(DEFAULT_SHARES)
    shares = {k: v for k, v in shares.items() if k in names}
    stamp = datetime.now(tz=UTC).strftime("%Y%m%d%H%M%S")
    version = options.version or f"calibrated-{stamp}"

    def variant(adjusted: Mapping[str, float]) -> ScoringModel:
        bounds = thresholds_from_shares(train_scores, names, adjusted)
        doc = model_document(_base_document(base), types, fit, bounds, options, version)
        return parse_model(yaml.safe_load(_yaml_text(doc, [])), "alert curve")

    curve_shares = {s: a for s in CURVE_SHARES if (a := shares_with(shares, names, s))}
    for share in sorted(set(CURVE_SHARES) - set(curve_shares)):
        _say(f"calibrate: the alert curve leaves out a {names[0]} share of {share:.2f}: "
             "the other bands' shares leave no room for it")  # fmt: skip
    _say("calibrate: replaying the alert trade-off curve")
    curve = alert_curve(history, {s: variant(a) for s, a in curve_shares.items()}, labels,
                        split, options.horizon_ms)  # fmt: skip
    if options.target_alerts_per_customer is not None and curve:
        chosen = pick_share(curve, options.target_alerts_per_customer)
        shares = curve_shares[chosen.share]
        _say(f"calibrate: {names[0]} share {chosen.share:.2f} meets the budget of "
             f"{options.target_alerts_per_customer:g} alerts per retained customer "
             f"({chosen.training.per_retained:.3f} on the last training months)")  # fmt: skip
    uppers = thresholds_from_shares(train_scores, names, shares)
    provenance = _provenance(paths, history.count, labels, base, train_times, train_rows, fit,
                             options, names, shares, split, tried,
                             len(fit_sample(labels, len(times))))  # fmt: skip
    doc = model_document(_base_document(base), types, fit, uppers, options, version)
    text = _yaml_text(doc, provenance)
    out_model.parent.mkdir(parents=True, exist_ok=True)
    out_model.write_text(text)
    model = parse_model(yaml.safe_load(text), str(out_model))
    _say(f"calibrate: wrote {out_model} ({version}); validating on the held-out period")
    validation = validate(
        model,
        str(out_model),
        history,
        labels,
        cadence=options.cadence,
        horizon_ms=options.horizon_ms,
        split=split,
        out=report_dir,
        later_training_auc=inner if inner >= 0 else None,
        ceiling=ceiling,
        curve=tuple(curve),
    )
    return model, validation, history.summary, features


def _choose_window(
    history: History,
    labels: Mapping[str, Label],
    times: Sequence[int],
    split: Split,
    options: CalibrationOptions,
    features: ScoringModel,
    types: Sequence[str] | None,
) -> tuple[CalibrationOptions, ScoringModel, Snapshots, Fit, float, list[str]]:
    """The fit on ``features`` and, with ``types`` (no base model), on each other window;
    the best by later-training AUC (a tie goes to the longer window), and what was tried."""
    rows = _features(history, features, labels, times, options.horizon_ms)
    fit, inner = choose_fit(rows, split, options.horizon_ms, options.tenure_cap_days)
    tried = [f"{duration_text(options.window_ms)} {inner:.3f}"]
    for window_ms, bucket_ms in options.other_windows:
        if types is None:
            break
        other = replace(options, window_ms=window_ms, bucket_ms=bucket_ms,
                        tenure_cap_days=window_ms // DAY_MS)  # fmt: skip
        model = count_model(types, window_ms, bucket_ms, other.tenure_cap_days)
        _say(f"calibrate: trying a {duration_text(window_ms)} window")
        more = rows  # drop the last window's rows before the next are read
        more = _features(history, model, labels, times, options.horizon_ms)
        fitted, auc = choose_fit(more, split, options.horizon_ms, other.tenure_cap_days)
        _say(f"calibrate: later-training AUC {inner:.3f} ({duration_text(options.window_ms)}) "
             f"vs {auc:.3f} ({duration_text(window_ms)})")  # fmt: skip
        tried.append(f"{duration_text(window_ms)} {auc:.3f}")
        if takes_longer_window(auc, inner):
            options, features, rows, fit, inner = other, model, more, fitted, auc
    return options, features, rows, fit, inner, tried


def _provenance(
    paths: Sequence[Path],
    count: int,
    labels: Mapping[str, Label],
    base: str | None,
    train_times: Sequence[int],
    train_rows: int,
    fit: Fit,
    options: CalibrationOptions,
    names: Sequence[str],
    shares: Mapping[str, float],
    split: Split,
    tried: Sequence[str],
    fit_customers: int,
) -> list[str]:
    """The model file's header comment: what it was calibrated on and how."""
    provenance = [
        f"Calibrated by `engagement calibrate` on {datetime.now(tz=UTC).isoformat()[:19]}Z",
        f"history: {', '.join(p.name for p in paths)} ({count} events, "
        f"{len(labels)} labelled customers)",
        f"base model: {base or '(none: one factor per event type, 1 point per event)'}",
        f"training: {len(train_times)} {options.cadence} snapshots "
        f"{_sampled(fit_customers, len(labels))}"
        f"{_day(train_times[0])}..{_day(train_times[-1])}, {train_rows} rows, label = "
        f"churns within {duration_text(options.horizon_ms)}; fit: logistic regression "
        f"(scikit-learn), C={fit.regularisation:g}, saturation {fit.shape[0]} "
        f"(scale {fit.shape[1]:g} x median)",
        "band shares (training snapshots): "
        + ", ".join(f"{n}={shares.get(n, 0):.2f}" for n in names if n in shares),
        f"held out: {split.describe()} (see the validity report)",
    ]
    if len(tried) > 1:
        provenance.append(
            f"window {duration_text(options.window_ms)}, chosen by later-training AUC "
            f"({', '.join(tried)}; a tie within {_WINDOW_TIE:g} goes to the longer window)"
        )
    return provenance


def _sampled(size: int, labelled: int) -> str:
    return f"(a fixed sample of {size} customers) " if size < labelled else ""


def alert_curve(
    history: History,
    variants: Mapping[float, ScoringModel],
    labels: Mapping[str, Label],
    split: Split,
    horizon_ms: int,
) -> list[CurvePoint]:
    """Each variant's alerts (one pass over the staged events, each labelled customer of a
    fixed sample of at most ``_CURVE_CUSTOMERS`` replayed through every variant) against
    churn on the last training months and on the held-out period."""
    models = list(variants.values())
    sample = set(sample_ids(labels, _CURVE_CUSTOMERS))
    labels = {c: labels[c] for c in sample}
    times = snapshot_times(history.first_ms, models[0].window_ms, horizon_ms, "weekly", split)
    alerts: list[list[Alert]] = [[] for _ in models]
    first_seen: dict[str, int] = {}
    for batch in history.engine.customer_events(sorted(sample)):
        for found, model in zip(alerts, models, strict=True):
            replay = Replay(model)
            replay.run(batch, times)
            found.extend(replay.alerts)
            first_seen.update(replay.first_seen)
    training = (split.train_until_ms - _BUDGET_MONTHS_MS, split.train_until_ms)
    held_out = (split.holdout_ms, split.end_ms + 1)
    points = []
    for (share, model), found in zip(variants.items(), alerts, strict=True):
        upper = model.bands.score_range(model.alerts.band)[1]
        points.append(CurvePoint(
            share, upper if upper is not None else float("nan"),
            alert_stats(found, labels, first_seen, training, _LOOKBACK_MS),
            alert_stats(found, labels, first_seen, held_out, _LOOKBACK_MS),
        ))  # fmt: skip
    return points
