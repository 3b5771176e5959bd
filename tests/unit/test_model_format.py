"""The model format's newer keys: factors, baseline, tenure, onboarding, optional rules.

Every key parses, and every mistake is reported as ``<file>: <key.path>: <problem>``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.config.errors import ConfigError
from stream.config.model_file import load_model, parse_model
from stream.core.decode import Rejection, decode_event
from stream.core.model import DAY_MS, FactorTransform, TenureRule

MINIMAL: dict[str, Any] = {
    "version": "minimal-1",
    "window": "30d",
    "bucket": "1d",
    "events": {"post": {"factor": "posts", "points": 1}, "like": {"factor": "likes", "points": 1}},
}

FULL: dict[str, Any] = {
    **MINIMAL,
    "factors": {
        "posts": {"transform": "log1p", "scale": 2, "weight": 8.5},
        "likes": {"transform": "cap", "max": 40, "weight": 0.5},
        "tenure": {"transform": "cap", "max": 20},
        "regularity": {"weight": 2},
    },
    "baseline": -20,
    "tenure": {"points_per_day": 0.5, "max_days": 60},
    "regularity": {"points_per_active_day": 1},
    "alerts": {"band": "churn_risk", "onboarding": {"after": "14d"}},
}


def _doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(FULL)
    doc.update(changes)
    return doc


def test_the_full_format_parses_into_the_model() -> None:
    """Each new key lands in the model with its meaning."""
    model = parse_model(copy.deepcopy(FULL), "full.yaml")
    assert model.transforms["posts"] == FactorTransform("log1p", 8.5, scale=2)
    assert model.transforms["likes"] == FactorTransform("cap", 0.5, maximum=40, minimum=-40)
    assert model.transforms["regularity"] == FactorTransform("linear", 2)
    assert model.baseline_cp == -2000
    assert model.tenure == TenureRule(points_cp_per_day=50, max_days=60, day_ms=DAY_MS)
    assert model.alerts.onboarding_after_ms == 14 * DAY_MS
    assert model.factors == ("posts", "likes", "regularity", "tenure", "baseline")


def test_a_minimal_model_counts_only_its_events() -> None:
    """No session_end/survey_response needed; omitted regularity and returning visits are off."""
    model = parse_model(copy.deepcopy(MINIMAL), "minimal.yaml")
    assert model.regularity is None and model.returning is None and model.tenure is None
    assert model.baseline_cp == 0 and model.transforms == {}
    assert model.alerts.onboarding_after_ms is None
    assert model.factors == ("posts", "likes")


def test_empty_rule_sections_are_off_and_empty_mappings_take_the_defaults() -> None:
    """``regularity:`` (null) is off; ``regularity: {}`` is on with the documented values."""
    off = parse_model({**copy.deepcopy(MINIMAL), "regularity": None, "returning_visit": None},
                      "m.yaml")  # fmt: skip
    on = parse_model({**copy.deepcopy(MINIMAL), "regularity": {}, "returning_visit": {}}, "m.yaml")
    assert off.regularity is None and off.returning is None
    assert on.regularity is not None and on.regularity.points_cp_per_active_bucket == 200
    assert on.returning is not None and (on.returning.away_ms, on.returning.points_cp) == (
        DAY_MS,
        500,
    )


def test_transform_defaults_and_cap_bounds() -> None:
    """A transform defaults to linear with weight 1; cap's min defaults to -max."""
    model = parse_model(_doc(factors={"posts": {}, "likes": {"transform": "cap", "max": 5,
                                                            "min": 0}}), "m.yaml")  # fmt: skip
    assert model.transforms["posts"] == FactorTransform()
    assert model.transforms["likes"] == FactorTransform("cap", 1, maximum=5, minimum=0)


def _set(path: str, value: Any) -> Any:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = doc
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value

    return mutate


def _drop(path: str) -> Any:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = doc
        for name in parents:
            node = node[name]
        del node[leaf]

    return mutate


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (_set("factors.shares", {"weight": 1}), "factors.shares", "not a factor of this model"),
        (_set("factors.posts.transform", "sqrt"), "factors.posts.transform", "must be one of"),
        (_set("factors.posts.max", 3), "factors.posts.max", "unknown key"),
        (_set("factors.posts.scale", 0), "factors.posts.scale", "above zero"),
        (_set("factors.posts.weight", "heavy"), "factors.posts.weight", "must be a number"),
        (_set("factors.posts.weight", float("nan")), "factors.posts.weight", "finite"),
        (_drop("factors.likes.max"), "factors.likes.max", "is required"),
        (_set("factors.likes.min", 50), "factors.likes.min", "must not exceed max"),
        (_set("factors.clicks", 3), "factors.clicks", "not a factor"),
        (_set("factors.posts", 3), "factors.posts", "must be a mapping"),
        (_set("factors.baseline", {"weight": 2}), "factors.baseline", "constant"),
        (_set("factors", ["posts"]), "factors", "must be a mapping"),
        (_set("baseline", "low"), "baseline", "must be a number"),
        (_drop("tenure.points_per_day"), "tenure.points_per_day", "is required"),
        (_set("tenure.max_days", 0), "tenure.max_days", "at least 1"),
        (_set("tenure.max_days", 2.5), "tenure.max_days", "whole number"),
        (_set("tenure.day", "a day"), "tenure.day", "not a duration"),
        (_set("tenure.years", 1), "tenure.years", "unknown key"),
        (_set("tenure", 5), "tenure", "must be a mapping"),
        (_set("alerts.onboarding.after", "soon"), "alerts.onboarding.after", "not a duration"),
        (_drop("alerts.onboarding.after"), "alerts.onboarding.after", "is required"),
        (_set("alerts.onboarding.grace", "1d"), "alerts.onboarding.grace", "unknown key"),
        (_set("alerts.cooldown", "0s"), "alerts.cooldown", "longer than zero"),
        (_set("regularity.points_per_day", 1), "regularity.points_per_day", "unknown key"),
        (_set("returning_visit.away", "soon"), "returning_visit.away", "not a duration"),
        (_set("events.post.factor", "tenure"), "events.post.factor", "reserved"),
        (_set("events.post.factor", "_hidden"), "events.post.factor", "reserved"),
        (_set("sessions", {"bounce": {"points": -3}}), "events.session_end", "is required"),
        (_set("surveys", {"nps": {"promoter_min": 9}}), "events.survey_response", "is required"),
    ],
)
def test_mistakes_name_file_key_path_and_problem(mutate: Any, key: str, problem: str) -> None:
    """Each broken key raises ConfigError naming the source, the key path and the problem."""
    doc = _doc()
    mutate(doc)
    with pytest.raises(ConfigError) as caught:
        parse_model(doc, "my-model.yaml")
    assert (caught.value.source, caught.value.key) == ("my-model.yaml", key)
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"my-model.yaml: {key}: ")


def test_tenure_transform_needs_the_tenure_section() -> None:
    """A transform of tenure without a tenure section says what is missing."""
    doc = _doc()
    del doc["tenure"]
    with pytest.raises(ConfigError, match="tenure needs a top-level 'tenure' section") as caught:
        parse_model(doc, "m.yaml")
    assert caught.value.key == "factors.tenure"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("version: x\nevents: [unclosed\n", 3),
        ("version: x\nwindow: 30d\n  bucket: 1d\n", 3),
        ("version: x\nevents:\n  post: {factor: posts, points: 1\nbands: {}\n", 4),
        ('version: "x\n', 2),
    ],
)
def test_a_yaml_syntax_error_is_one_line_with_file_and_line(
    tmp_path: Path, text: str, line: int
) -> None:
    """No parser fragments: one line naming the file, the line and the problem."""
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_model(str(path))
    message = str(caught.value)
    assert "\n" not in message and "^" not in message
    assert message.startswith(f"{path}: line {line}, column ")
    assert "not valid YAML: " in message


def test_the_shipped_models_write_every_scoring_rule_explicitly() -> None:
    """The shipped files keep regularity and returning visits on by saying so."""
    for name in ("default", "demo"):
        text = (Path(__file__).parents[2] / f"stream/config/models/{name}.yaml").read_text()
        doc = yaml.safe_load(text)
        assert doc["regularity"] == {"points_per_active_day": 2}
        assert doc["returning_visit"]["points"] == 5
        model = load_model(name)
        assert model.regularity is not None and model.returning is not None
        assert model.baseline_cp == 0 and model.tenure is None and model.transforms == {}


def test_page_calls_are_refused_by_a_strict_model_without_page_view() -> None:
    """A Segment ``page`` call counts as page_view only if the model declares it; a model
    with ``unmapped: dead_letter`` dead-letters it (the default ignores it)."""
    model = parse_model({**copy.deepcopy(MINIMAL), "unmapped": "dead_letter"}, "minimal.yaml")
    raw = b'{"type": "page", "userId": "c1", "messageId": "m1", "timestamp": 1795000000000}'
    got = decode_event(raw, key=b"c1", topic_role="clickstream", model=model,
                       now_ms=1_795_000_000_000, fallback_id="t/0/1")  # fmt: skip
    assert isinstance(got, Rejection)
    assert got.reason == "unknown_type" and "page_view" in got.detail


def test_unmapped_policy_is_ignore_or_dead_letter() -> None:
    """``unmapped`` defaults to ignore; any other value than the two is refused by name."""
    assert parse_model(copy.deepcopy(MINIMAL), "m.yaml").unmapped == "ignore"
    with pytest.raises(ConfigError, match="unmapped"):
        parse_model({**copy.deepcopy(MINIMAL), "unmapped": "drop"}, "m.yaml")
