"""The benchmark harness's pure parts: the data set, percentiles, ratios and targets, the
histogram estimate, the profile classifier and the memory fit."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from devtools.bench import dataset, report
from devtools.bench.floor import replay_batches
from devtools.bench.latency import LatencyResult, histogram_quantile
from devtools.bench.measure import Measurement, percentile
from devtools.bench.memory import _fit
from devtools.bench.profile import classify, summarize
from stream.core.decode import decode_event
from stream.core.events import Event
from tests.factories import NOW_MS, default_model

MODEL = default_model()


def _decoded(record: dataset.Record) -> Event:
    got = decode_event(record.value, key=record.key, topic_role=record.role, model=MODEL,
                       now_ms=NOW_MS, fallback_id="x")  # fmt: skip
    assert isinstance(got, Event), got
    return got


def _records(customers: int = 500, events: int = 20_000) -> list[dataset.Record]:
    return list(dataset.records(customers, events, now_ms=NOW_MS, seed=4))


def test_every_generated_event_is_valid_for_the_default_model_on_its_topic() -> None:
    """Each record decodes to an Event of its key's customer, of a type its topic carries."""
    for record in _records(events=5000):
        got = _decoded(record)
        assert got.customer_id.encode() == record.key
        assert got.timestamp_ms == record.timestamp_ms


def test_data_set_covers_every_customer_in_time_order_with_the_intended_mix() -> None:
    """All customers appear, timestamps never go back, and type shares follow the weights."""
    records = _records()
    assert {r.key for r in records} == {dataset.customer_id(i).encode() for i in range(500)}
    stamps = [r.timestamp_ms for r in records]
    assert stamps == sorted(stamps)
    assert stamps[0] >= NOW_MS - 20 * dataset.DAY_MS
    assert stamps[-1] < NOW_MS
    kinds = Counter(_decoded(r).type for r in records)
    weights = {kind: weight for _, kind, weight in dataset.EVENT_MIX}
    total = sum(weights.values())
    for kind, weight in weights.items():
        assert kinds[kind] / len(records) == pytest.approx(weight / total, abs=0.01)


def test_data_set_is_reproducible_from_its_seed() -> None:
    """The same seed yields byte-identical records."""
    assert _records(events=1000) == _records(events=1000)


def test_customer_order_is_the_records_customers() -> None:
    """The floor probe's customer sequence is exactly the data set's, event by event."""
    order = dataset.customer_order(500, 3000, seed=4)
    got = [r.key for r in dataset.records(500, 3000, now_ms=NOW_MS, seed=4)]
    assert got == [dataset.customer_id(i).encode() for i in order]


def test_floor_batches_write_each_customer_once_per_batch() -> None:
    """A batch of events becomes one write per distinct customer, in first-seen order;
    only the first ``events`` count."""
    assert replay_batches([3, 1, 3, 2, 1, 1, 4], 6, 3) == [[3, 1], [2, 1]]
    assert replay_batches([5, 5], 10, 4) == [[5]]


def test_percentile_interpolates_linearly() -> None:
    """p50 of 1..5 is 3, p99 lies just below the top, empty input gives NaN."""
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile([1, 2, 3, 4, 5], 99) == pytest.approx(4.96)
    assert math.isnan(percentile([], 50))


def test_measurement_rates() -> None:
    """Events per second and CPU seconds per million come from the timed span."""
    m = Measurement("x", events=200_000, seconds=4.0, cpu_seconds=3.0, peak_rss_mb=10,
                    complete=True)  # fmt: skip
    assert m.rate == 50_000
    assert m.cpu_per_million == 15.0
    assert m.to_json()["events_per_cpu_s"] == pytest.approx(66_666.7)


def _row(rate: int, cpu_s: float = 1.0) -> dict[str, object]:
    """A measured row: ``rate`` events/s using ``cpu_s`` CPU seconds per second."""
    return Measurement("x", events=rate * 10, seconds=10.0, cpu_seconds=cpu_s * 10,
                       peak_rss_mb=1, complete=True).to_json()  # fmt: skip


def test_ratios_and_targets_from_a_results_document() -> None:
    """Ratios divide the worker's rate by each peer's; targets say met or not met."""
    results = {
        "contenders": {"worker": _row(60_000), "raw-aiokafka": _row(300_000),
                       "quixstreams": _row(50_000, cpu_s=3.0), "faust-naive": _row(6_000)},
        "scale": {"two_workers": _row(90_000, cpu_s=1.6)},
        "latency": LatencyResult(30_000, 30_000, 20, store_ms=[40.0] * 9,
                                 alert_ms=[400.0] * 9).to_json(),
        "latency_fixed": LatencyResult(1000, 1000, 20, store_ms=[150.0] * 9,
                                       worker_stages={"kafka": {"count": 9, "p50": 0.002,
                                                                "p99": 0.004}}).to_json(),
        "memory": {"bytes_per_customer": 900.0},
        "sweeper": {"stored_ratio": 1.1, "due_ratio": 9.0, "scenarios": [
            {"due": 1000, "stored": 10_000, "sweep_ms_median": 100.0},
            {"due": 1000, "stored": 1_000_000, "sweep_ms_median": 110.0},
            {"due": 10_000, "stored": 1_000_000, "sweep_ms_median": 990.0}]},
        "redis_floor": {"us_per_event": 8.0, "worker_us_per_event": 14.0, "ratio": 1.75,
                        "hset_writes": 990, "events": 1000, "with_indexes_us_per_event": 10.0,
                        "ratio_with_indexes": 1.4},
    }  # fmt: skip
    results["ratios"] = report.ratios(results)
    assert results["ratios"]["worker/raw-aiokafka"] == 0.2
    assert results["ratios"]["worker/quixstreams"] == 1.2
    assert results["ratios"]["2 workers/1 worker throughput"] == 1.5
    assert results["ratios"]["2 workers/1 worker events per CPU-s"] == pytest.approx(0.938, 1e-3)
    assert results["ratios"]["worker Redis CPU/HSET floor"] == 1.75
    # vs quix events/s and CPU per event, vs raw, store p50, store p99, alert p99, store p99
    # at the fixed rate, memory, sweeper, two workers' efficiency, Redis floor
    verdicts = [met for _, _, met in report.targets(results)]
    assert verdicts == [False, True, True, True, True, True, False, True, True, True, False]
    assert report.targets(results)[1][1] == "0.278"  # 16.7 vs 60 CPU µs per event
    results["latency"]["event_to_alert"]["p99_ms"] = 501.0
    assert [met for _, _, met in report.targets(results)][5] is False
    text = report.render(results)
    assert "NOT met" in text and "Targets (issue 18):" in text
    assert "the worker's stages, p50/p99 ms: kafka 2.0/4.0" in text
    assert "the worker's stages, p50/p99 ms: not measured" in text  # the half-load run
    assert "-> 1.75x the floor; with the worker's index writes 10.0 µs -> 1.4x" in text
    assert "Kafka's ack of the probes" not in text  # no acks timed in this document
    timed = LatencyResult(30_000, 30_000, 20, store_ms=[80.0], ack_ms=[5.0] * 3).to_json()
    assert "Kafka's ack of the probes: p50 5.0 ms" in report.render({**results, "latency": timed})
    noisy = LatencyResult(30_000, 30_000, 20, store_ms=[80.0], ack_ms=[400.0] * 3).to_json()
    assert "a noisy run, rerun it" in report.render({**results, "latency": noisy})
    del results["redis_floor"]
    results["ratios"] = report.ratios(results)
    assert [met for _, _, met in report.targets(results)][-1] is None
    assert "stored 100x -> 1.10x, due 10x -> 9.00x" in text


def test_histogram_quantile_estimates_within_buckets() -> None:
    """Over an interval, 100 observations split 50/50 across two buckets give p50 at the
    first bucket's bound and p99 inside the second."""
    before = {0.01: 10.0, 0.05: 10.0, 0.1: 10.0, math.inf: 10.0}
    after = {0.01: 10.0, 0.05: 60.0, 0.1: 110.0, math.inf: 110.0}
    got = histogram_quantile(before, after)
    assert got["count"] == 100
    assert got["p50"] == pytest.approx(0.05)
    assert got["p99"] == pytest.approx(0.05 + 0.05 * 49 / 50)


def test_profile_classifier_attributes_asyncio_work_to_its_caller() -> None:
    """A select leaf is idle; asyncio under redis-py is redis-py; orjson lines are JSON."""
    root = ["_run (asyncio/events.py:80)"]
    assert classify([*root, "EpollSelector.select (selectors.py:468)"]).startswith("idle")
    redis_stack = [*root, "Pipeline.execute (redis/asyncio/client.py:2262)",
                   "StreamReader.readline (asyncio/streams.py:544)"]  # fmt: skip
    assert classify(redis_stack).startswith("redis-py")
    line = Path("stream/core/decode.py").read_text().splitlines().index(
        "        doc = orjson.loads(raw)") + 1  # fmt: skip
    assert classify([*root, f"_decode (stream/core/decode.py:{line})"]) == "json (orjson)"
    assert classify([*root, "advance (stream/core/customer.py:60)"]).startswith("scoring core")


def test_profile_summary_splits_main_thread_from_the_others(tmp_path: Path) -> None:
    """Main-thread samples are shared out by category; other threads only count as busy."""
    raw = tmp_path / "spy.txt"
    loop, idle = "run (asyncio/events.py:80)", "EpollSelector.select (selectors.py:468)"
    raw.write_text(
        f"thread (1): MainThread;{loop};{idle} 3\n"
        f"thread (1): MainThread;{loop};x (prometheus_client/metrics.py:1) 1\n"
        f"thread (2): Thread-1;{loop};{idle} 1\n"
        f"thread (2): Thread-1;{loop};send (aiokafka/conn.py:9) 3\n"
    )
    summary = summarize(raw)
    assert summary["samples"] == 4
    assert summary["main_thread_share"] == {"idle (event loop waiting)": 0.75,
                                            "prometheus metrics": 0.25}  # fmt: skip
    assert summary["other_threads_busy_share"] == 0.75


def test_memory_fit_recovers_a_line() -> None:
    """Least squares finds the fixed and per-event bytes of exact points."""
    intercept, slope = _fit([(1, 550), (3, 650), (10, 1000)])
    assert intercept == pytest.approx(500)
    assert slope == pytest.approx(50)
    assert _fit([(4, 10), (4, 30)]) == (20, 0.0)
