"""AUC, its bootstrap interval by customer, the no-skill verdict, and calibrate's exit status
on a history where churn does not depend on behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from stream.calibrate.skill import Interval, auc, bootstrap_interval, skill_verdict
from stream.cli.main import main
from stream.cli.offline import NO_SKILL_EXIT
from tests.profiles import examples


def _reference_auc(labels: list[int], risk: list[float]) -> float:
    """From scratch: over every (churner, stayer) pair, 1 if the churner is riskier, 1/2 on
    a tie."""
    pairs = wins = 0.0
    for y1, r1 in zip(labels, risk, strict=True):
        for y0, r0 in zip(labels, risk, strict=True):
            if y1 == 1 and y0 == 0:
                pairs += 1
                wins += 1.0 if r1 > r0 else 0.5 if r1 == r0 else 0.0
    return wins / pairs if pairs else float("nan")


_ROWS = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6), st.integers(0, 4)),
                 min_size=2, max_size=40)  # fmt: skip


@given(rows=_ROWS)
def test_auc_is_the_share_of_pairs_ranked_right(rows: list[tuple[int, int, int]]) -> None:
    labels = [y for y, _, _ in rows]
    risk = [float(r) for _, r, _ in rows]
    expected = _reference_auc(labels, risk)
    got = auc(np.array(labels), np.array(risk))
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected)
        assert got == pytest.approx(roc_auc_score(labels, risk))


@given(rows=_ROWS)
def test_weights_count_as_repeated_rows(rows: list[tuple[int, int, int]]) -> None:
    labels = [y for y, _, _ in rows]
    risk = [float(r) for _, r, _ in rows]
    weights = [w for _, _, w in rows]
    repeated_y = [y for y, w in zip(labels, weights, strict=True) for _ in range(w)]
    repeated_r = [r for r, w in zip(risk, weights, strict=True) for _ in range(w)]
    expected = _reference_auc(repeated_y, repeated_r)
    got = auc(np.array(labels), np.array(risk), np.array(weights))
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected)


def _reference_interval(
    labels: list[int], risk: list[float], groups: list[str], draws: int, seed: int
) -> tuple[float, float]:
    """From scratch: draw customers with replacement, take each drawn customer's rows as
    often as drawn, compute the AUC by pairs; the 2.5th and 97.5th percentiles."""
    customers = sorted(set(groups))
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(draws):
        drawn = rng.multinomial(len(customers), np.full(len(customers), 1 / len(customers)))
        times = dict(zip(customers, drawn.tolist(), strict=True))
        y = [v for v, g in zip(labels, groups, strict=True) for _ in range(times[g])]
        r = [v for v, g in zip(risk, groups, strict=True) for _ in range(times[g])]
        value = _reference_auc(y, r)
        if not np.isnan(value):
            found.append(value)
    low, high = np.percentile(found, [2.5, 97.5])
    return float(low), float(high)


@settings(max_examples=examples(15), deadline=None)
@given(seed=st.integers(0, 1000), customers=st.integers(4, 9))
def test_bootstrap_resamples_customers_with_all_their_rows(seed: int, customers: int) -> None:
    rng = np.random.default_rng(seed)
    groups = [f"c{i}" for i in range(customers) for _ in range(3)]
    labels = [int(i % 2 == 0) for i in range(customers) for _ in range(3)]
    risk = rng.integers(0, 5, len(groups)).astype(float).tolist()
    got = bootstrap_interval(np.array(labels), np.array(risk), np.array(groups), draws=60,
                             seed=seed)  # fmt: skip
    low, high = _reference_interval(labels, risk, groups, 60, seed)
    assert (got.low, got.high) == (pytest.approx(low), pytest.approx(high))
    assert got.value == pytest.approx(_reference_auc(labels, risk))


def test_a_perfect_ranking_has_a_point_interval_and_a_coin_straddles_a_half() -> None:
    groups = np.repeat(np.arange(200), 4)
    labels = (groups % 5 == 0).astype(int)
    perfect = bootstrap_interval(labels, labels.astype(float), groups)
    assert (perfect.value, perfect.low, perfect.high) == (1.0, 1.0, 1.0)
    coin = bootstrap_interval(labels, np.random.default_rng(1).random(labels.size), groups)
    assert coin.low < 0.5 < coin.high
    assert coin.high - coin.low < 0.2


def test_the_verdict_needs_both_the_later_training_auc_and_the_interval_to_clear_a_coin() -> None:
    good = Interval(0.70, 0.65, 0.75)
    assert skill_verdict(0.68, good).skill
    assert skill_verdict(None, good).skill
    below = skill_verdict(0.43, good)
    assert not below.skill and "later training" in below.reasons[0]
    straddles = skill_verdict(0.70, Interval(0.575, 0.49, 0.66))
    assert not straddles.skill and "0.490" in straddles.reasons[0]
    assert not skill_verdict(0.70, Interval(float("nan"), float("nan"), float("nan"))).skill


@pytest.fixture(scope="module")
def no_skill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("no-skill")
    args = ["--customers", "400", "--days", "150", "--seed", "11", "--no-skill"]
    assert main(["simulate", "--history", "--out", str(folder), *args]) == 0
    return folder


def test_calibrate_says_no_skill_and_exits_non_zero(
    no_skill: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["calibrate", "--events", str(no_skill / "events.jsonl.gz"), "--labels",
            str(no_skill / "labels.csv"), "--out", str(tmp_path / "m.yaml")]  # fmt: skip
    assert main(args) == NO_SKILL_EXIT
    out, err = capsys.readouterr()
    assert "NO SKILL" in err
    head = out[: out.index("## Ranking")]
    assert "No skill: these events do not predict churn on this history" in head
    assert "more churners" in head
    # the flag writes the model anyway (a fixed window: the verdict needs no window choice)
    assert main([*args, "--window", "30d", "--allow-no-skill"]) == 0
    assert "No skill" in capsys.readouterr().out
