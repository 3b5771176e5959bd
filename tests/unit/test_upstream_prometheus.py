"""``observe_all`` against one ``observe`` per amount (it relies on prometheus_client's
histogram fields, so a change there fails here)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from stream.upstream.prometheus import observe_all

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def _samples(histogram: Histogram) -> dict[str, float]:
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for metric in histogram.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def _pair() -> tuple[Histogram, Histogram]:
    return (
        Histogram("latency", "one by one", buckets=_BUCKETS, registry=CollectorRegistry()),
        Histogram("latency", "all at once", buckets=_BUCKETS, registry=CollectorRegistry()),
    )


@given(st.lists(st.one_of(st.sampled_from(_BUCKETS), st.floats(0, 1e4)), max_size=300))
def test_observe_all_counts_as_observe_does(amounts: list[float]) -> None:
    one, many = _pair()
    for amount in amounts:
        one.observe(amount)
    observe_all(many, amounts)
    expected, got = _samples(one), _samples(many)
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        if name.startswith("latency_sum"):
            assert math.isclose(got[name], value, rel_tol=1e-9, abs_tol=1e-9)
        else:
            assert got[name] == value, name


def test_observe_all_adds_to_earlier_observations() -> None:
    one, many = _pair()
    for histogram in (one, many):
        histogram.observe(0.3)
    for amount in (0.0, 0.005, 0.0051, 61.0, 0.3):
        one.observe(amount)
    observe_all(many, [0.0, 0.005, 0.0051, 61.0, 0.3])
    assert _samples(many) == _samples(one)
    assert _samples(many)["latency_count[]"] == 6
