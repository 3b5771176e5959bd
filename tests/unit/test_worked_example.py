"""The documented worked example of saturating factors, baseline, tenure and the onboarding
alert: the model block is read from docs/concepts/score.md and the numbers it states are
checked."""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from stream.config.model_file import parse_model
from stream.core.alerts import alert_id
from stream.core.customer import CustomerState, advance
from stream.core.events import Event
from stream.core.model import ScoringModel
from tests.factories import DAY_MS, NOW_MS

PAGE = Path(__file__).parents[2] / "docs" / "concepts" / "score.md"


def _documented_model() -> ScoringModel:
    text = PAGE.read_text()
    match = re.search(r"<!-- worked-example-model -->\n```yaml\n(.*?)```", text, re.S)
    assert match, "docs/concepts/score.md lost its worked-example model block"
    return parse_model(yaml.safe_load(match.group(1)), "docs/concepts/score.md")


MODEL = _documented_model()


def _points(breakdown: dict[str, int]) -> dict[str, float]:
    return {factor: cp / 100 for factor, cp in breakdown.items()}


def test_the_worked_example_scores_as_the_readme_says() -> None:
    """10 posts, 55 likes, 2 unfriends on 12 days, first seen 20 days ago: 29.23."""
    first_seen = NOW_MS - 20 * DAY_MS
    days = [first_seen] + [NOW_MS - d * DAY_MS for d in range(11)]
    kinds = ["post"] * 10 + ["like"] * 55 + ["unfriend"] * 2
    events = [Event(f"e{i}", "c1", kind, days[i % 12]) for i, kind in enumerate(kinds)]
    result = advance(MODEL, "c1", CustomerState(), events, NOW_MS)
    assert _points(result.breakdown) == {
        "posts": 15.23, "likes": 20.0, "unfriends": -6.0, "regularity": 10.0, "tenure": 10.0,
        "baseline": -20.0,
    }  # fmt: skip
    assert result.state.score_cp == 2923
    assert result.state.band == "very_disengaged"
    assert round(8.5 * math.log(6.5 / 6), 2) == 0.68  # the 11th post


def test_the_quiet_newcomer_alerts_once_at_the_end_of_onboarding() -> None:
    """One post and three likes on day 0: -14.05, then -7.05 at day 14, one onboarding alert."""
    first = [Event("p", "c2", "post", NOW_MS)] + [
        Event(f"l{i}", "c2", "like", NOW_MS) for i in range(3)
    ]
    result = advance(MODEL, "c2", CustomerState(), first, NOW_MS)
    assert result.state.score_cp == -1405 and result.alerts == ()
    alerts = []
    state = result.state
    due = result.next_due_ms
    while due is not None and due <= NOW_MS + 40 * DAY_MS:  # as the sweeper would
        step = advance(MODEL, "c2", state, [], due)
        alerts += step.alerts
        if due == NOW_MS + 14 * DAY_MS:
            assert step.state.score_cp == -705
        state, due = step.state, step.next_due_ms
    (alert,) = alerts
    assert alert.type == "churn_risk_after_onboarding"
    assert alert.trigger == "onboarding"
    assert alert.occurred_at_ms == NOW_MS + 14 * DAY_MS
    assert alert.score == -7.05
    assert alert.alert_id == alert_id(MODEL.version, "c2", "onboarding", NOW_MS + 14 * DAY_MS)
    assert [(r.factor, r.after) for r in alert.reasons] == [("baseline", -20.0)]
