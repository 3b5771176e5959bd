"""Piecewise-linear shapes per factor: fitted monotone, written as a model the core scores
exactly as the fit does (to the centipoint rounding of each contribution)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.calibrate.fit import fit_piecewise
from stream.calibrate.pipeline import CalibrationOptions, model_document
from stream.config.model_file import parse_model
from tests.profiles import examples


def _history(seed: int, rows: int = 1000) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Posts protect with a saturating effect; ad views raise churn; noise is noise."""
    rng = np.random.default_rng(seed)
    posts = rng.poisson(rng.gamma(1.0, 8.0, rows)).astype(float)
    ads = rng.poisson(rng.gamma(1.0, 5.0, rows)).astype(float)
    noise = rng.poisson(4.0, rows).astype(float)
    utility = 3 * (1 - np.exp(-posts / 6)) - 0.08 * ads - 1.0
    churns = (rng.random(rows) < 1 / (1 + np.exp(utility))).astype(int)
    return {"posts": posts, "ads": ads, "noise": noise}, churns


@given(st.integers(0, 10_000))
@settings(max_examples=examples(20))
def test_shapes_are_monotone_and_the_written_model_scores_as_the_fit(seed: int) -> None:
    columns, churns = _history(seed)
    fit = fit_piecewise(columns, churns, caps={})
    shapes = {f.name: f for f in fit.factors}
    assert {f.transform for f in fit.factors} == {"piecewise"}
    for factor in fit.factors:
        values = [v for _, v in factor.knots]
        assert values[0] == 0 and values == sorted(values) and values[-1] <= 1
        totals = [t for t, _ in factor.knots]
        assert totals == sorted(set(totals))
    assert shapes["posts"].weight > 0 > shapes["ads"].weight  # more posts: safer
    doc = model_document(None, list(columns), fit, {"churn_risk": 10.0, "power_user": None},
                         CalibrationOptions(), "shapes-1")  # fmt: skip
    doc["events"] = {name: {"factor": name, "points": 1} for name in columns}
    doc["bands"] = {"churn_risk": 10.0, "very_disengaged": 20.0, "somewhat_engaged": 30.0,
                    "highly_engaged": 40.0, "power_user": None}  # fmt: skip
    model = parse_model(yaml.safe_load(yaml.safe_dump(doc, sort_keys=False)), "shapes.yaml")
    for row in range(0, 1000, 37):
        totals = {name: int(columns[name][row]) * 100 for name in columns}
        written = model.weigh(totals)
        for name, factor in shapes.items():
            expected = float(factor.apply(np.asarray([columns[name][row]]))[0]) * 100
            assert abs(written.get(name, 0) - expected) <= 1, (name, row)
        assert abs(
            sum(written.values()) / 100
            - fit.score({n: columns[n][row : row + 1] for n in columns})[0]
        ) <= 0.01 * (len(columns) + 1)


def test_a_saturating_effect_is_fitted_as_a_bend() -> None:
    """Where the truth saturates, the fitted shape bends (its last segment is flatter than
    its steepest) and ranks held-out rows at least as well as the true utility's line."""
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    columns, churns = _history(1, rows=20_000)
    train, test = slice(0, 10_000), slice(10_000, None)
    fit = fit_piecewise({n: v[train] for n, v in columns.items()}, churns[train], caps={})
    shaped = roc_auc_score(churns[test], -fit.score({n: v[test] for n, v in columns.items()}))
    straight = columns["posts"][test] / 2 - 0.08 * columns["ads"][test]
    assert shaped >= roc_auc_score(churns[test], -straight)
    posts = next(f for f in fit.factors if f.name == "posts")
    slopes = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in pairwise(posts.knots)]
    assert slopes[-1] < max(slopes) / 2
