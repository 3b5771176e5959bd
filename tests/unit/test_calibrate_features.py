"""The out-of-core feature query against the core replay, Parquet input, validate's
customer-by-customer replay against a replay of the whole history, and validate's held-out
rows (by the feature query) and alerts (of a capped sample) against the full replay's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.sim.event_files import HistorySpec, history_labels, history_records, make_history
from stream.calibrate.features import (
    check_against_core,
    feature_query,
    sample_ids,
    scored_rows,
    window_totals,
)
from stream.calibrate.metrics import alert_stats
from stream.calibrate.pipeline import (
    History,
    Split,
    Validation,
    count_model,
    fit_sample,
    held_out_rows,
    load_events,
    open_history,
    replay_alerts,
    replay_by_customer,
    snapshot_times,
    validate,
)
from stream.calibrate.snapshots import DAY_MS, RowsBuilder, Snapshots, collect
from stream.config.model_file import load_model, parse_model
from stream.core.bands import Band, BandScale
from stream.core.model import TENURE, FactorTransform, ScoringModel
from stream.event_files.labels import Label
from stream.event_files.sources import RawRecord, read_file
from tests.profiles import examples

_START = 1_767_225_600_000  # 2026-01-01 00:00 UTC
_TYPES = ("login", "report", "invite")


@contextmanager
def _opened(tmp: Path, records: Sequence[RawRecord], model: ScoringModel) -> Iterator[History]:
    lines = b"\n".join(r.value for r in records) + b"\n"
    path = tmp / "events.jsonl"
    path.write_bytes(lines)
    with open_history([path], model, now_ms=_START + 400 * DAY_MS) as history:
        yield history


def _doc(customer: str, kind: str, at: int, event_id: str) -> RawRecord:
    doc = {"customer_id": customer, "type": kind, "timestamp": at, "event_id": event_id}
    return RawRecord(customer.encode(), orjson.dumps(doc), event_id)


_EVENT = st.tuples(
    st.integers(0, 5),  # customer
    st.sampled_from((*_TYPES, "identify")),
    st.integers(0, 150 * DAY_MS),  # offset from the start
    st.sampled_from((None, 0, 3_600_000)),  # a duplicate: none, same moment, an hour later
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    events=st.lists(_EVENT, min_size=1, max_size=120),
    churn=st.lists(st.one_of(st.none(), st.integers(20, 170)), min_size=6, max_size=6),
    window=st.sampled_from(((30, 1), (7, 1), (91, 7))),
)
def test_the_feature_query_equals_the_core_replay(
    tmp_path: Path,
    events: list[tuple[int, str, int, int | None]],
    churn: list[int | None],
    window: tuple[int, int],
) -> None:
    records = []
    for number, (who, kind, offset, again) in enumerate(events):
        customer = f"c{who}"
        records.append(_doc(customer, kind, _START + offset, f"e{number}"))
        if again is not None:
            records.append(_doc(customer, kind, _START + offset + again, f"e{number}"))
    labels = {
        f"c{i}": Label(
            f"c{i}", days is not None, None if days is None else _START + days * DAY_MS, None
        )
        for i, days in enumerate(churn)
    }
    model = count_model(_TYPES, window[0] * DAY_MS, window[1] * DAY_MS, window[0])
    with _opened(tmp_path, records, model) as history:
        split = Split(_START + 120 * DAY_MS, _START + 120 * DAY_MS, history.last_ms or 0)
        times = snapshot_times(history.first_ms, model.window_ms, 30 * DAY_MS, "weekly", split)
        rows = window_totals(history.engine, model, labels, times, 30 * DAY_MS)
        compared = check_against_core(
            history.engine, model, labels, times, 30 * DAY_MS, rows, size=10
        )
        assert compared == len(rows)
        # and the plain replay of everything, written out: the same rows in the same order
        everything, _ = load_events([tmp_path / "events.jsonl"], model, _START + 400 * DAY_MS)
        core, _ = collect(model, everything, labels, times, 30 * DAY_MS)
        mine = [list(p) for p in rows.points]
        assert sorted(zip(rows.at_ms, rows.customer, mine, strict=True)) == sorted(
            zip(core.at_ms, core.customer, core.points, strict=True)
        )
        # the same totals through transforms and a baseline: the core's scores and bands
        weighed = _weighed(model)
        scored = scored_rows(history.engine, weighed, labels, times, 30 * DAY_MS)
        core, _ = collect(weighed, everything, labels, times, 30 * DAY_MS, points=False)
    assert _table(scored) == _table(core)


def _weighed(model: ScoringModel) -> ScoringModel:
    """``model`` with a transform of each kind, a baseline and bands its scores cross."""
    kinds = (
        FactorTransform("log1p", 4.0, scale=3.0),
        FactorTransform("cap", 0.6, maximum=2.5),
        FactorTransform("linear", -0.9),
        FactorTransform("cap", 0.2, maximum=9, minimum=1),
    )
    transforms = dict(zip((*_TYPES, TENURE), kinds, strict=True))
    bands = BandScale((Band("churn_risk", 0), Band("watch", 3), Band("healthy", None)))
    return replace(model, transforms=transforms, baseline_cp=-123, bands=bands)


def _table(rows: Snapshots) -> list[tuple[object, ...]]:
    """Every row's every column but the factor points, in the rows' order."""
    return list(zip(rows.at_ms, rows.customer, rows.label, rows.score, rows.band, rows.naive,
                    rows.naive_30d, rows.tenure_days, strict=True))  # fmt: skip


def test_a_wrong_feature_is_caught_by_the_core_check(tmp_path: Path) -> None:
    records = [_doc("c1", "login", _START + d * DAY_MS, f"e{d}") for d in range(0, 90, 3)]
    labels = {"c1": Label("c1", False, None, None)}
    model = count_model(_TYPES, 30 * DAY_MS, DAY_MS, 30)
    with _opened(tmp_path, records, model) as history:
        split = Split(_START + 60 * DAY_MS, _START + 60 * DAY_MS, history.last_ms or 0)
        times = snapshot_times(history.first_ms, model.window_ms, 0, "weekly", split)
        rows = window_totals(history.engine, model, labels, times, 0)
        rows.points[-1][0] += 1
        with pytest.raises(Exception, match="core replay"):
            check_against_core(history.engine, model, labels, times, 0, rows)


@pytest.fixture(scope="module")
def sim() -> tuple[list[RawRecord], dict[str, Label]]:
    spec = HistorySpec(customers=120, days=120, seed=3)
    customers, events = make_history(spec)
    return list(history_records(customers, events)), history_labels(spec, customers)


def test_validate_replays_customer_by_customer_as_the_whole_history(
    tmp_path: Path, sim: tuple[list[RawRecord], dict[str, Label]]
) -> None:
    records, labels = sim
    model = load_model("default")
    with _opened(tmp_path, records, model) as history:
        split = Split(_START + 90 * DAY_MS, _START + 90 * DAY_MS, history.last_ms or 0)
        times = snapshot_times(history.first_ms, model.window_ms, 30 * DAY_MS, "weekly", split)
        rows, alerts, first_seen = replay_by_customer(model, history, labels, times, 30 * DAY_MS)
        everything, _ = load_events([tmp_path / "events.jsonl"], model, _START + 400 * DAY_MS)
    whole, replay = collect(model, everything, labels, times, 30 * DAY_MS)
    assert alerts, "the default model alerts on this history"
    assert sorted(alerts, key=lambda a: a.alert_id) == sorted(
        replay.alerts, key=lambda a: a.alert_id
    )
    assert first_seen == {c: t for c, t in replay.first_seen.items() if c in labels}
    points = [list(p) for p in rows.points]
    mine = sorted(zip(rows.at_ms, rows.customer, rows.score, rows.band, points, strict=True))
    theirs = sorted(zip(whole.at_ms, whole.customer, whole.score, whole.band, whole.points,
                        strict=True))  # fmt: skip
    assert mine == theirs


def test_parquet_files_and_directories_read_as_the_same_records(tmp_path: Path) -> None:
    rows = [
        {"customer_id": "c1", "timestamp": _START + 5, "type": "login", "event_id": "a",
         "plan": "pro"},
        {"customer_id": "c2", "timestamp": _START + 9, "type": "report", "event_id": "b",
         "plan": None},
    ]  # fmt: skip
    folder = tmp_path / "export"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:1]), folder / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(rows[1:]), folder / "part-1.parquet")
    csv = tmp_path / "events.csv"
    csv.write_text("customer_id,timestamp,type,event_id,plan\n"
                   f"c1,{_START + 5},login,a,pro\nc2,{_START + 9},report,b,\n")  # fmt: skip
    from_dir = [orjson.loads(r.value) for r in read_file(folder)]
    from_csv = [orjson.loads(r.value) for r in read_file(csv)]
    assert from_dir == from_csv
    assert [r.key for r in read_file(folder / "part-0.parquet")] == [b"c1"]


def test_parquet_timestamps_become_epoch_milliseconds(tmp_path: Path) -> None:
    table = pa.table({
        "customer_id": ["c1"], "type": ["login"],
        "timestamp": pa.array([_START + 1234], pa.timestamp("ms", tz="UTC")),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "t.parquet")
    (record,) = read_file(tmp_path / "t.parquet")
    assert orjson.loads(record.value)["timestamp"] == _START + 1234


def test_the_kept_feature_query_runs_alone_over_the_staged_parquet(
    tmp_path: Path, sim: tuple[list[RawRecord], dict[str, Label]]
) -> None:
    import duckdb  # noqa: PLC0415

    records, labels = sim
    model = count_model(("page_view", "click", "feature_used"), 30 * DAY_MS, DAY_MS, 30)
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(r.value for r in records) + b"\n")
    staged = tmp_path / "staged"
    with open_history([tmp_path / "in.jsonl"], model, _START + 400 * DAY_MS, keep=staged) as h:
        split = Split(_START + 90 * DAY_MS, _START + 90 * DAY_MS, h.last_ms or 0)
        times = snapshot_times(h.first_ms, model.window_ms, 30 * DAY_MS, "weekly", split)
        rows = window_totals(h.engine, model, labels, times, 30 * DAY_MS)
    db = duckdb.connect()
    for name in ("events", "contributions"):
        db.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{staged / name}.parquet')")
    db.execute("CREATE TABLE snapshots (at_ms BIGINT)")
    db.executemany("INSERT INTO snapshots VALUES (?)", [[t] for t in times])
    db.execute("CREATE TABLE labels (customer VARCHAR, churn_ms BIGINT, first_seen_ms BIGINT)")
    db.executemany("INSERT INTO labels VALUES (?, ?, ?)",
                   [[c, v.churn_ms, v.first_seen_ms] for c, v in labels.items()])  # fmt: skip
    found = db.execute(feature_query(model, 30 * DAY_MS)).fetchall()
    assert [(r[0], r[1], r[3], r[4]) for r in found] == list(
        zip(rows.at_ms, rows.customer, rows.label, rows.naive, strict=True)
    )
    assert len(found) > 500


def test_held_out_rows_without_points_are_the_full_replays_rows_from_then_on(
    tmp_path: Path, sim: tuple[list[RawRecord], dict[str, Label]]
) -> None:
    """validate keeps only the held-out rows, without points: the replay must still stop at
    every snapshot (alerts the same) and the kept rows be exactly the full replay's."""
    records, labels = sim
    model = load_model("default")
    with _opened(tmp_path, records, model) as history:
        split = Split(_START + 60 * DAY_MS, _START + 60 * DAY_MS, history.last_ms or 0)
        times = snapshot_times(history.first_ms, model.window_ms, 30 * DAY_MS, "weekly", split)
        full, alerts, _ = replay_by_customer(model, history, labels, times, 30 * DAY_MS)
        kept, kept_alerts, _ = replay_by_customer(
            model, history, labels, times, 30 * DAY_MS, record_from_ms=split.holdout_ms,
            points=False,
        )  # fmt: skip
    assert kept_alerts == alerts
    after = [i for i, at in enumerate(full.at_ms) if at >= split.holdout_ms]
    assert 0 < len(after) < len(full)
    columns = ("at_ms", "customer", "label", "score", "band", "naive", "naive_30d")
    for name in columns:
        assert list(getattr(kept, name)) == [getattr(full, name)[i] for i in after], name
    assert kept.matrix().shape == (len(after), 0)


def test_the_fit_sample_caps_the_rows_with_a_fixed_sample() -> None:
    labels = {f"c{i}": Label(f"c{i}", False, None, None) for i in range(500)}
    assert fit_sample(labels, 10, limit=5000) is labels  # 500 x 10 fits
    sample = fit_sample(labels, 10, limit=1000)
    assert len(sample) == 100
    assert set(sample) <= set(labels)
    assert sample == fit_sample(dict(reversed(labels.items())), 10, limit=1000)


@given(st.lists(st.integers(0, 9), max_size=40), st.integers(1, 7))
@settings(max_examples=examples(40))
def test_rows_built_in_chunks_are_the_rows_appended(sizes: list[int], chunk: int) -> None:
    factors = ("a", "b")
    whole = Snapshots(factors=factors)
    builder = RowsBuilder(factors, chunk=chunk)
    for part_number, size in enumerate(sizes):
        part = Snapshots(factors=factors)
        for i in range(size):
            part.at_ms.append(part_number)
            part.customer.append(f"c{i}")
            part.label.append(i % 2)
            part.score.append(i / 3)
            part.band.append("x")
            part.naive.append(i)
            part.naive_30d.append(i)
            part.tenure_days.append(i / 7)
            part.points.append([i / 3, -i / 5])
        whole.extend(part)
        builder.add(part)
    built = builder.build()
    assert len(built) == len(whole)
    for name in ("at_ms", "customer", "label", "score", "band", "naive", "naive_30d",
                 "tenure_days"):  # fmt: skip
        assert list(getattr(built, name)) == getattr(whole, name), name
    assert built.matrix().tolist() == whole.matrix().tolist()


_CALIBRATED = """
version: calibrated-test
window: 30d
bucket: 1d
events: {page_view: {factor: page_view, points: 1}, click: {factor: click, points: 1},
  feature_used: {factor: feature_used, points: 1}, like: {factor: like, points: 1},
  comment: {factor: comment, points: 1}, share: {factor: share, points: 1},
  app_open: {factor: app_open, points: 1}}
regularity: {points_per_active_day: 1}
tenure: {points_per_day: 1, max_days: 30, day: 1d}
baseline: -12.5
factors:
  page_view: {transform: log1p, scale: 3.0, weight: 4.0}
  click: {transform: cap, max: 20, min: 0, weight: 0.6}
  feature_used: {transform: linear, weight: 0.9}
  regularity: {transform: log1p, scale: 2, weight: 3}
  tenure: {transform: cap, max: 30, min: 0, weight: 0.2}
bands: {churn_risk: 10, watch: 25, healthy: null}
alerts: {band: churn_risk, rearm_above: 17.5, cooldown: 14d, onboarding: {after: 14d}}
"""


@pytest.fixture(scope="module")
def calibrated() -> ScoringModel:
    """A model shaped like calibrate's output: transforms of each kind, active days and
    tenure as factors, a baseline, and bands the simulator's customers enter and leave."""
    import yaml  # noqa: PLC0415

    return parse_model(yaml.safe_load(_CALIBRATED), "calibrated-test")


def _validated(
    history: History, model: ScoringModel, labels: dict[str, Label], alert_cap: int
) -> tuple[Split, list[int], Validation]:
    split = Split(_START + 60 * DAY_MS, _START + 60 * DAY_MS, history.last_ms or 0)
    times = snapshot_times(history.first_ms, model.window_ms, 30 * DAY_MS, "weekly", split)
    found = validate(model, "test", history, labels, cadence="weekly", horizon_ms=30 * DAY_MS,
                     split=split, alert_cap=alert_cap)  # fmt: skip
    return split, times, found


def test_validates_held_out_rows_are_the_full_replays(
    tmp_path: Path, sim: tuple[list[RawRecord], dict[str, Label]], calibrated: ScoringModel
) -> None:
    """The held-out rows by the feature query (scores through the core's ``weigh``) equal
    the full core replay's held-out rows exactly, row for row and column for column."""
    records, labels = sim
    with _opened(tmp_path, records, calibrated) as history:
        split, times, found = _validated(history, calibrated, labels, 10_000)
        full, _, _ = replay_by_customer(calibrated, history, labels, times, 30 * DAY_MS,
                                        record_from_ms=split.holdout_ms, points=False)  # fmt: skip
        direct = held_out_rows(calibrated, history, labels, times, 30 * DAY_MS, split.holdout_ms)
    rows = found.report.rows
    assert len(full) > 300
    assert len(set(full.band.tolist())) == 3, "the rows cross every band"
    assert _table(rows) == _table(full)
    assert _table(direct) == _table(full)
    assert np.unique(full.score).size > 100, "transforms, tenure and baseline move the score"


def test_the_query_run_part_by_part_gives_the_rows_of_one_run(
    tmp_path: Path, sim: tuple[list[RawRecord], dict[str, Label]], calibrated: ScoringModel
) -> None:
    """A history too large for one run of the query is run over parts of the labelled
    customers: the same rows, in the same order, as one run over all of them."""
    records, labels = sim
    with _opened(tmp_path, records, calibrated) as history:
        split = Split(_START + 60 * DAY_MS, _START + 60 * DAY_MS, history.last_ms or 0)
        times = snapshot_times(history.first_ms, calibrated.window_ms, 30 * DAY_MS, "weekly",
                               split)  # fmt: skip
        engine = history.engine
        assert len(engine.parts(labels)) == 1
        whole = window_totals(engine, calibrated, labels, times, 30 * DAY_MS)
        scored = scored_rows(engine, calibrated, labels, times, 30 * DAY_MS)
        engine.part_events = history.count // 7
        assert len(engine.parts(labels)) >= 7
        assert sum(map(len, engine.parts(labels))) == len(labels)
        parted = window_totals(engine, calibrated, labels, times, 30 * DAY_MS)
        scored_parted = scored_rows(engine, calibrated, labels, times, 30 * DAY_MS)
    assert len(whole) > 300
    assert _table(parted) == _table(whole)
    assert parted.points.tolist() == whole.points.tolist()
    assert _table(scored_parted) == _table(scored)


def test_rows_are_ordered_by_moment_first_event_and_customer_id() -> None:
    """The query's order (``ORDER BY at_ms, first_ms, customer``: ids in code-point order,
    as the bytes of UTF-8 sort), whatever the length of the ids."""
    customers = ["b", "a" * 300, "é", "c", "a", "b"]
    rows = Snapshots(("f",), at_ms=[2, 1, 1, 1, 1, 1], customer=customers,
                     label=[0] * 6, score=[0.0] * 6, band=["x"] * 6, naive=[0] * 6,
                     naive_30d=[0] * 6, tenure_days=[0.0] * 6, points=[[0.0]] * 6)  # fmt: skip
    order = rows.order_by(np.array([0, 5, 5, 5, 5, 4]))
    assert [customers[i] for i in order] == ["b", "a", "a" * 300, "c", "é", "b"]
    assert sorted(["é", "c", "a" * 300], key=lambda c: c.encode()) == ["a" * 300, "c", "é"]


def test_a_wrong_score_is_caught_by_the_held_out_check(
    tmp_path: Path, sim: tuple[list[RawRecord], dict[str, Label]], calibrated: ScoringModel
) -> None:
    """The held-out rows are checked against the core replay of a sample: a model whose
    staged contributions differ from the scored one's is stopped, not reported."""
    records, labels = sim
    other = replace(calibrated, baseline_cp=calibrated.baseline_cp + 1)
    with _opened(tmp_path, records, calibrated) as history:
        split = Split(_START + 60 * DAY_MS, _START + 60 * DAY_MS, history.last_ms or 0)
        times = snapshot_times(history.first_ms, other.window_ms, 30 * DAY_MS, "weekly", split)
        rows = scored_rows(history.engine, other, labels, times, 30 * DAY_MS)
        rows.score[-1] += 0.01
        with pytest.raises(Exception, match="core replay"):
            check_against_core(history.engine, other, labels, times, 30 * DAY_MS, rows,
                               size=len(labels), record_from_ms=split.holdout_ms,
                               points=False)  # fmt: skip


def test_alerts_under_the_cap_are_the_full_replays(
    tmp_path: Path, sim: tuple[list[RawRecord], dict[str, Label]], calibrated: ScoringModel
) -> None:
    """With no more labelled customers than the cap every one is replayed: the alerts and
    the report's alert figures are the full replay's, and no sample is mentioned."""
    records, labels = sim
    with _opened(tmp_path, records, calibrated) as history:
        split, times, found = _validated(history, calibrated, labels, len(labels))
        _, alerts, first_seen = replay_by_customer(calibrated, history, labels, times,
                                                   30 * DAY_MS)  # fmt: skip
        replayed, seen, chosen = replay_alerts(calibrated, history, labels, times, len(labels))
    assert len(alerts) > 20
    assert replayed == alerts
    assert seen == first_seen
    assert chosen == labels
    period = (split.holdout_ms, split.end_ms + 1)
    stats = alert_stats(alerts, labels, first_seen, period, 90 * DAY_MS)
    assert found.report.alerts == stats
    assert stats.churners > 0
    assert "fixed sample" not in found.markdown


def test_alerts_over_the_cap_come_from_a_fixed_sample(
    tmp_path: Path, sim: tuple[list[RawRecord], dict[str, Label]], calibrated: ScoringModel
) -> None:
    """Past the cap, only a fixed sample of that many customers (the lowest by a hash of
    the id) is replayed for alerts; its alerts are exactly the full replay's for them, the
    held-out rows still cover every customer, and the report says so."""
    records, labels = sim
    with _opened(tmp_path, records, calibrated) as history:
        split, times, found = _validated(history, calibrated, labels, 40)
        _, alerts, first_seen = replay_by_customer(calibrated, history, labels, times,
                                                   30 * DAY_MS)  # fmt: skip
    sample = set(sample_ids(labels, 40))
    assert len(sample) == 40 < len(labels)
    theirs = [a for a in alerts if a.customer_id in sample]
    assert 0 < len(theirs) < len(alerts)
    chosen = {c: labels[c] for c in sample}
    seen = {c: t for c, t in first_seen.items() if c in sample}
    period = (split.holdout_ms, split.end_ms + 1)
    report = found.report
    assert report.alerts == alert_stats(theirs, chosen, seen, period, 90 * DAY_MS)
    assert report.alert_sample == (40, len(labels))
    assert len(set(report.rows.customer.tolist())) > 40, "rows: every customer, not the sample"
    assert f"for a fixed sample of 40 of the {len(labels)} labelled customers" in found.markdown


def test_a_model_the_query_lacks_is_validated_by_the_full_replay(
    tmp_path: Path, sim: tuple[list[RawRecord], dict[str, Label]]
) -> None:
    """Returning visits are not in the feature query: validate falls back to replaying
    every labelled customer (rows and alerts), whatever the cap."""
    records, labels = sim
    model = load_model("default")
    with _opened(tmp_path, records, model) as history:
        split, times, found = _validated(history, model, labels, 10)
        full, alerts, first_seen = replay_by_customer(model, history, labels, times,
                                                      30 * DAY_MS, record_from_ms=split.holdout_ms,
                                                      points=False)  # fmt: skip
    report = found.report
    assert _table(report.rows) == _table(full)
    period = (split.holdout_ms, split.end_ms + 1)
    assert report.alerts == alert_stats(alerts, labels, first_seen, period, 90 * DAY_MS)
    assert report.alert_sample is None
