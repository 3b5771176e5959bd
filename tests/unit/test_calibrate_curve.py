"""The alert trade-off: band shares for a curve point, the budget pick, and the ceiling."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.calibrate.ceiling import ceiling_auc
from stream.calibrate.curve import CurvePoint, pick_share, shares_with
from stream.calibrate.fit import DEFAULT_SHARES
from stream.calibrate.metrics import AlertStats
from stream.calibrate.snapshots import Snapshots
from stream.cli.main import main
from stream.config.model_file import load_model

_NAMES = list(DEFAULT_SHARES)


def _stats(per_retained: float) -> AlertStats:
    return AlertStats(churners=10, alerted_before=5, median_lead_days=10.0, lead_days=(10.0,),
                      retained=1000, alerts_on_retained=round(per_retained * 1000), alerts=0,
                      lookback_days=90)  # fmt: skip


@given(share=st.sampled_from((0.05, 0.10, 0.15, 0.20)))
def test_a_curve_point_keeps_the_shares_within_one(share: float) -> None:
    shares = shares_with(DEFAULT_SHARES, _NAMES, share)
    assert shares is not None
    assert shares["churn_risk"] == share
    assert sum(shares.values()) <= 1 + 1e-9
    assert {k: v for k, v in shares.items() if k not in _NAMES[:2]} == {
        k: v for k, v in DEFAULT_SHARES.items() if k not in _NAMES[:2]
    }


@given(
    user=st.lists(st.floats(0.02, 1.0), min_size=5, max_size=5).map(
        lambda raw: [x / sum(raw) for x in raw]
    ),
    share=st.sampled_from((0.05, 0.10, 0.15, 0.20)),
)
def test_the_shares_of_a_curve_point_add_up_to_at_most_one_or_none(
    user: list[float], share: float
) -> None:
    """Whatever shares the user gave (they add up to 1), a curve point keeps every band at
    0.01 or more and the total at most 1, taking what the alert band grows by from the
    bands after it in order; or says the point does not fit (seen: churn_risk 0.05,
    very_disengaged 0.05 and a 0.20 point made the thresholds fail)."""
    shares = dict(zip(_NAMES, user, strict=True))
    point = shares_with(shares, _NAMES, share)
    room = sum(max(0.0, v - 0.01) for v in user[1:])
    if point is None:
        assert share - user[0] > room - 1e-9
        return
    assert point["churn_risk"] == share
    assert sum(point.values()) <= 1 + 1e-9
    assert all(v >= 0.01 - 1e-12 for name, v in point.items() if name != "churn_risk" and
               shares[name] >= 0.01)  # fmt: skip


def test_the_shares_that_crashed_a_calibrate_now_fit() -> None:
    shares = {"churn_risk": 0.05, "very_disengaged": 0.05, "somewhat_engaged": 0.4,
              "highly_engaged": 0.3, "power_user": 0.2}  # fmt: skip
    point = shares_with(shares, _NAMES, 0.20)
    assert point is not None and abs(sum(point.values()) - 1) < 1e-9
    assert (
        round(point["very_disengaged"], 9) == 0.01 and round(point["somewhat_engaged"], 9) == 0.29
    )


@given(
    rates=st.lists(st.floats(0, 0.5), min_size=4, max_size=4).map(sorted),
    budget=st.floats(0, 0.5),
)
def test_the_budget_pick_is_the_largest_share_within_it(rates: list[float], budget: float) -> None:
    points = [CurvePoint(s, 0.0, _stats(r), _stats(r))
              for s, r in zip((0.05, 0.10, 0.15, 0.20), rates, strict=True)]  # fmt: skip
    chosen = pick_share(points, budget)
    within = [p.share for p in points if p.training.per_retained <= budget]
    assert chosen.share == (max(within) if within else 0.05)


def test_the_ceiling_finds_a_pattern_a_points_score_cannot() -> None:
    rng = np.random.default_rng(4)
    rows = Snapshots(factors=("logins", "reports"))
    for i in range(4000):
        logins, reports = rng.integers(0, 20), rng.integers(0, 20)
        churns = 1 if 8 <= logins <= 12 and rng.random() < 0.9 else int(rng.random() < 0.05)
        rows.at_ms.append(i % 2)
        rows.customer.append(f"c{i // 2}")
        rows.label.append(churns)
        rows.points.append([float(logins), float(reports)])
    at = np.asarray(rows.at_ms)
    ceiling = ceiling_auc(rows, at == 0, at == 1)
    assert ceiling is not None
    assert ceiling.value > 0.9 and ceiling.low > 0.85


def test_the_alert_budget_sets_the_written_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "h"
    args = ["--customers", "400", "--days", "150", "--seed", "11"]
    assert main(["simulate", "--history", "--out", str(history), *args]) == 0
    capsys.readouterr()
    out = tmp_path / "m.yaml"
    assert main(["calibrate", "--events", str(history / "events.jsonl.gz"), "--labels",
                 str(history / "labels.csv"), "--out", str(out), "--allow-no-skill",
                 "--target-alerts-per-customer", "0.1"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    report = captured.out
    table = re.findall(r"^\| (0\.\d\d) \| (-?[0-9.]+) \| .* \| ([0-9.]+) / [0-9.]+ \|$",
                       report, re.MULTILINE)  # fmt: skip
    assert len(table) == 4, report
    within = [(float(s), float(t)) for s, t, cost in table if float(cost) <= 0.1]
    share, threshold = max(within) if within else (0.05, float(table[0][1]))
    model = load_model(str(out))
    assert model.bands.score_range("churn_risk")[1] == pytest.approx(threshold, abs=0.01)
    assert f"churn_risk share {share:.2f} meets the budget" in captured.err
