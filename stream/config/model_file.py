"""Load the YAML scoring model into a ScoringModel, naming file, key and problem on error."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, cast

import yaml

from stream.config.durations import parse_duration_ms
from stream.config.errors import ConfigError
from stream.core.account_settings import AGGREGATES, AccountSettings
from stream.core.bands import DEFAULT_BANDS, Band, BandScale
from stream.core.model import (
    BASELINE,
    TENURE,
    TRANSFORMS,
    EventRule,
    FactorTransform,
    RegularityRule,
    ReturningRule,
    ScoringModel,
    SessionRules,
    SurveyRules,
    TenureRule,
    to_centipoints,
)
from stream.core.rules import RULE_KINDS, AlertPolicy, AlertRule
from stream.core.segments import (
    DEFAULT_MAX_VALUES,
    MAX_DIMENSIONS,
    MAX_VALUES_LIMIT,
    SegmentSettings,
)
from stream.core.vocabulary import UnmappedPolicy

__all__ = ["BUILTIN_MODELS", "load_model", "parse_model"]

BUILTIN_MODELS = ("default", "demo")
_TOP_KEYS = {
    "version", "window", "bucket", "max_future_skew", "events", "sessions", "surveys",
    "returning_visit", "regularity", "inactive_types", "bands", "alerts", "topics",
    "segment_events", "factors", "baseline", "tenure", "history", "unmapped", "accounts",
    "segments",
}  # fmt: skip
# Factor names an event may not use: the model computes these itself.
_RESERVED_FACTORS = {BASELINE, TENURE, "regularity", "returning_visits"}
# Keys each transform accepts under ``factors.<name>``.
_TRANSFORM_KEYS = {
    "linear": {"transform", "weight"},
    "cap": {"transform", "weight", "max", "min"},
    "log1p": {"transform", "weight", "scale"},
}


def load_model(path_or_name: str) -> ScoringModel:
    """Load a model file by path, or a shipped model by name (``default``, ``demo``)."""
    if path_or_name in BUILTIN_MODELS:
        source = f"builtin:{path_or_name}"
        text = (resources.files("stream.config") / "models" / f"{path_or_name}.yaml").read_text()
    else:
        source = path_or_name
        try:
            text = Path(path_or_name).read_text()
        except OSError as exc:
            raise ConfigError(source, "(file)", f"cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(source, exc) from None
    return parse_model(data, source)


def _yaml_error(source: str, exc: yaml.YAMLError) -> ConfigError:
    """One line naming the file, the line (and column) and the parser's problem."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return ConfigError(source, "(file)", f"not valid YAML: {' '.join(str(exc).split())}")
    mark = exc.problem_mark
    problem = exc.problem or "syntax error"
    if exc.context and exc.context_mark is not None and exc.context_mark.line != mark.line:
        problem += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
    elif exc.context:
        problem += f" ({exc.context})"
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    return ConfigError(source, where, f"not valid YAML: {' '.join(problem.split())}")


def parse_model(data: Any, source: str) -> ScoringModel:
    """Build a ScoringModel from parsed YAML."""
    root = _Node(source, "", data)
    root.only(_TOP_KEYS)
    events = _events(root.section("events"))
    types = set(events)
    for section, rule_type in (("sessions", "session_end"), ("surveys", "survey_response")):
        if root.data.get(section) is not None and rule_type not in types:
            raise ConfigError(source, f"events.{rule_type}",
                              f"is required (the '{section}' rules read it)")  # fmt: skip
    model_args: dict[str, Any] = {
        "version": root.text("version"),
        "window_ms": root.duration("window"),
        "bucket_ms": root.duration("bucket"),
        "events": events,
        "sessions": _sessions(root.section("sessions", required=False)),
        "surveys": _surveys(root.section("surveys", required=False)),
        "returning": _returning(root.optional("returning_visit")),
        "regularity": _regularity(root.optional("regularity")),
        "bands": _bands(root.section("bands", required=False)),
        "max_future_skew_ms": root.duration("max_future_skew", default="5m"),
        "inactive_types": frozenset(root.type_list("inactive_types", types, default=[])),
        "segment_events": _segment(root.section("segment_events", required=False), types),
        "topic_types": _topics(root.section("topics", required=False), types),
        "baseline_cp": root.points("baseline", 0),
        "tenure": _tenure(root.optional("tenure")),
        "unmapped": _unmapped(root),
        "segments": _segments(root.optional("segments")),
    }
    if model_args["segments"] is not None:  # band names go into the rollups' stored fields
        for name in model_args["bands"].names:
            if not name.isprintable():
                raise ConfigError(source, "bands", f"{name!r}: with segments, band names "
                                                   "must be printable")  # fmt: skip
    alerts_node = root.section("alerts", required=False)
    model_args["alerts"], model_args["rules"] = _alerts(alerts_node, model_args["bands"])
    history_node = root.section("history", required=False)
    history_node.only({"points"})
    model_args["history_points"] = history_node.whole("points", 120, minimum=1)
    model_args["accounts"] = _accounts(root.optional("accounts"), model_args)
    try:
        model = ScoringModel(**model_args)
    except ValueError as exc:
        raise ConfigError(source, "window", str(exc)) from None
    return replace(model, transforms=_factors(root.section("factors", required=False), model))


class _Node:
    """A mapping in the YAML document, with typed getters that report the full key path."""

    def __init__(self, source: str, path: str, data: Any) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(source, path or "(top level)", "must be a mapping")
        self.source, self.path, self.data = source, path, data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else str(name)

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), problem)

    def only(self, allowed: set[str]) -> None:
        for name in self.data:
            if name not in allowed:
                raise self.fail(str(name), f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def section(self, name: str, required: bool = True) -> _Node:
        if name not in self.data and required:
            raise self.fail(name, "is required")
        return _Node(self.source, self.key(name), self.data.get(name))

    def optional(self, name: str) -> _Node | None:
        """A section whose absence (or an empty value) switches its rule off."""
        return None if self.data.get(name) is None else self.section(name)

    def raw(self, name: str, default: Any) -> Any:
        if name not in self.data:
            if default is _REQUIRED:
                raise self.fail(name, "is required")
            return default
        return self.data[name]

    def text(self, name: str, default: Any = None) -> str:
        value = self.raw(name, _REQUIRED if default is None else default)
        if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
            raise self.fail(name, "must be a non-empty string")
        return str(value)

    def number(self, name: str, default: Any = None, minimum: float | None = None) -> float:
        value = self.raw(name, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise self.fail(name, f"must be a finite number, got {value}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be at least {minimum:g}, got {value}")
        return float(value)

    def positive(self, name: str, default: Any = None) -> float:
        value = self.number(name, default)
        if value <= 0:
            raise self.fail(name, f"must be above zero, got {value:g}")
        return value

    def whole(self, name: str, default: Any = None, minimum: int = 0) -> int:
        value = self.number(name, default, minimum=minimum)
        if value != int(value):
            raise self.fail(name, f"must be a whole number, got {value:g}")
        return int(value)

    def points(self, name: str, default: float | None = None) -> int:
        return to_centipoints(self.number(name, default))

    def duration(self, name: str, default: str | None = None) -> int:
        value = self.raw(name, _REQUIRED if default is None else default)
        try:
            millis = parse_duration_ms(str(value))
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None
        if millis <= 0:
            raise self.fail(name, "must be longer than zero")
        return millis

    def type_list(self, name: str, types: set[str], default: Any = None) -> list[str]:
        value = self.raw(name, _REQUIRED if default is None else default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "must be a list of event types")
        unknown = [v for v in value if v not in types]
        if unknown:
            raise self.fail(name, f"unknown event types {unknown} (not under 'events')")
        return value


_REQUIRED = object()


def _events(node: _Node) -> dict[str, EventRule]:
    if not node.data:
        raise ConfigError(node.source, node.path, "must define at least one event type")
    rules = {}
    for name in node.data:
        item = node.section(str(name))
        item.only({"factor", "points"})
        factor = item.text("factor")
        if factor.startswith("_") or factor in _RESERVED_FACTORS:
            raise item.fail("factor", f"{factor!r} is reserved (for the model's own factors, or "
                                      "starts with '_')")  # fmt: skip
        rules[str(name)] = EventRule(factor=factor, points_cp=item.points("points"))
    return rules


def _sessions(node: _Node) -> SessionRules:
    node.only({"time_on_site", "pages_per_session", "bounce"})
    time, pages, bounce = (
        node.section(n, required=False) for n in ("time_on_site", "pages_per_session", "bounce")
    )
    time.only({"points_per_minute", "max_points"})
    pages.only({"points_per_page", "min_pages", "max_points"})
    bounce.only({"max_pages", "max_duration", "points"})
    return SessionRules(
        time_cp_per_minute=time.points("points_per_minute", 0.5),
        time_cap_cp=time.points("max_points", 10),
        pages_cp_per_page=pages.points("points_per_page", 0.5),
        pages_cap_cp=pages.points("max_points", 5),
        pages_min=int(pages.number("min_pages", 2, minimum=1)),
        bounce_max_pages=int(bounce.number("max_pages", 1, minimum=0)),
        bounce_max_duration_s=bounce.duration("max_duration", "10s") / 1000,
        bounce_cp=bounce.points("points", -3),
    )


def _surveys(node: _Node) -> SurveyRules:
    node.only({"nps", "csat"})
    nps = node.section("nps", required=False)
    nps.only({"promoter_min", "promoter_points", "detractor_max", "detractor_points"})
    csat_node = node.section("csat", required=False)
    csat = {1: -1000, 2: -500, 3: 0, 4: 500, 5: 1000}
    for answer in csat_node.data:
        if answer not in (1, 2, 3, 4, 5):
            raise csat_node.fail(str(answer), "CSAT answers are the integers 1 to 5")
        csat[int(answer)] = csat_node.points(answer)
    return SurveyRules(
        nps_promoter_min=int(nps.number("promoter_min", 9, minimum=0)),
        nps_promoter_cp=nps.points("promoter_points", 15),
        nps_detractor_max=int(nps.number("detractor_max", 6, minimum=0)),
        nps_detractor_cp=nps.points("detractor_points", -15),
        csat_cp=csat,
    )


def _returning(node: _Node | None) -> ReturningRule | None:
    if node is None:
        return None
    node.only({"away", "points"})
    return ReturningRule(away_ms=node.duration("away", "1d"), points_cp=node.points("points", 5))


def _regularity(node: _Node | None) -> RegularityRule | None:
    if node is None:
        return None
    node.only({"points_per_active_day"})
    return RegularityRule(points_cp_per_active_bucket=node.points("points_per_active_day", 2))


def _tenure(node: _Node | None) -> TenureRule | None:
    if node is None:
        return None
    node.only({"points_per_day", "max_days", "day"})
    return TenureRule(
        points_cp_per_day=node.points("points_per_day"),
        max_days=node.whole("max_days", minimum=1) if "max_days" in node.data else None,
        day_ms=node.duration("day", "1d"),
    )


def _factors(node: _Node, model: ScoringModel) -> dict[str, FactorTransform]:
    known = model.factors
    transforms = {}
    for name in node.data:
        if name == BASELINE:
            raise node.fail(BASELINE, "is a constant: set the top-level 'baseline' instead")
        if name not in known:
            hint = " (tenure needs a top-level 'tenure' section)" if name == "tenure" else ""
            raise node.fail(str(name), f"is not a factor of this model{hint}; "
                                       f"factors: {', '.join(known)}")  # fmt: skip
        transforms[str(name)] = _transform(node.section(str(name)))
    return transforms


def _transform(node: _Node) -> FactorTransform:
    kind = node.text("transform", "linear")
    if kind not in TRANSFORMS:
        raise node.fail("transform", f"must be one of {', '.join(TRANSFORMS)}, got {kind!r}")
    node.only(_TRANSFORM_KEYS[kind])
    weight = node.number("weight", 1)
    if kind == "log1p":
        return FactorTransform("log1p", weight, scale=node.positive("scale", 1))
    if kind == "cap":
        maximum = node.number("max")
        minimum = node.number("min") if "min" in node.data else -maximum
        if minimum > maximum:
            raise node.fail("min", f"must not exceed max ({maximum:g}), got {minimum:g}")
        return FactorTransform("cap", weight, maximum=maximum, minimum=minimum)
    return FactorTransform("linear", weight)


def _bands(node: _Node) -> BandScale:
    if not node.data:
        return DEFAULT_BANDS
    bands = []
    for name, upper in node.data.items():
        if upper is not None and (isinstance(upper, bool) or not isinstance(upper, int | float)):
            raise node.fail(str(name), "upper bound must be a number, or null for the top band")
        bands.append(Band(str(name), None if upper is None else float(upper)))
    try:
        return BandScale(tuple(bands))
    except ValueError as exc:
        raise ConfigError(node.source, node.path, str(exc)) from None


def _alerts(node: _Node, bands: BandScale) -> tuple[AlertPolicy, tuple[AlertRule, ...]]:
    """The churn-risk rule and the further rules.

    The short form (``band``, ``rearm_above``, ``cooldown``) is the churn-risk rule alone. In
    the ``rules`` form, the first ``band_entered`` rule takes the churn-risk rule's place
    (and the onboarding check, which stays a key of ``alerts``); the others are further rules.
    """
    onboarding = node.optional("onboarding")
    if onboarding is not None:
        onboarding.only({"after"})
    after = onboarding.duration("after") if onboarding is not None else None
    if "rules" not in node.data:
        node.only({"band", "rearm_above", "cooldown", "onboarding"})
        band = node.text("band", "churn_risk")
        if band not in bands.names:
            raise node.fail("band", f"{band!r} is not one of the bands {list(bands.names)}")
        policy = AlertPolicy(
            band=band,
            rearm_above=node.number("rearm_above", 10),
            cooldown_ms=node.duration("cooldown", "24h"),
            onboarding_after_ms=after,
        )
        return policy, ()
    node.only({"rules", "onboarding"})
    items = node.raw("rules", [])
    if not isinstance(items, list) or not items:
        raise node.fail("rules", "must be a non-empty list of rules")
    rules = [_rule(_Node(node.source, f"{node.key('rules')}[{i}]", item), bands)
             for i, item in enumerate(items)]  # fmt: skip
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise node.fail("rules", "rule names must be unique")
    primary = next((r for r in rules if _can_lead(r, bands)), None)
    if primary is None:
        if after is not None:
            raise node.fail("onboarding", "needs a band_entered rule (it alerts in its band)")
        # No band rule: the churn-risk rule is switched off.
        return AlertPolicy(band=bands.names[0], enabled=False, name="_off"), tuple(rules)
    upper = bands.score_range(str(primary.band))[1]
    policy = AlertPolicy(
        band=str(primary.band),
        rearm_above=primary.rearm_above if primary.rearm_above is not None else float(upper or 0),
        cooldown_ms=primary.cooldown_ms,
        onboarding_after_ms=after,
        name=primary.name,
    )
    return policy, tuple(r for r in rules if r is not primary)


def _can_lead(rule: AlertRule, bands: BandScale) -> bool:
    """Can the rule be the churn-risk rule (a band rule whose re-arming is a score level)?"""
    if rule.when != "band_entered" or rule.band is None:
        return False
    return rule.rearm_above is not None or bands.score_range(rule.band)[1] is not None


_RULE_KEYS = {
    "band_entered": {"name", "when", "band", "rearm_above", "cooldown"},
    "score_drop": {"name", "when", "percent", "points", "over", "cooldown"},
    "score_rise": {"name", "when", "percent", "points", "over", "cooldown"},
}


def _rule(node: _Node, bands: BandScale) -> AlertRule:
    kind = node.text("when")
    if kind not in RULE_KINDS:
        raise node.fail("when", f"must be one of {', '.join(RULE_KINDS)}, got {kind!r}")
    node.only(_RULE_KEYS[kind])
    name = node.text("name")
    if name.startswith("_"):
        raise node.fail("name", "must not start with '_'")
    cooldown = node.duration("cooldown", "24h" if kind == "band_entered" else "7d")
    if kind == "band_entered":
        band = node.text("band")
        if band not in bands.names:
            raise node.fail("band", f"{band!r} is not one of the bands {list(bands.names)}")
        rearm = node.number("rearm_above") if "rearm_above" in node.data else None
        return AlertRule(name, "band_entered", band=band, rearm_above=rearm, cooldown_ms=cooldown)
    percent = node.positive("percent") if "percent" in node.data else None
    points = to_centipoints(node.positive("points")) if "points" in node.data else None
    if percent is None and points is None:
        percent, points = 20.0, 1000
    return AlertRule(name, kind, percent=percent, points_cp=points,
                     over_ms=node.duration("over", "7d"), cooldown_ms=cooldown)  # fmt: skip


def _unmapped(root: _Node) -> UnmappedPolicy:
    """``unmapped``: ``ignore`` (default) counts unmapped track names and unscored Segment
    calls as ignored; ``dead_letter`` sends them to the DLQ as ``unknown_type``."""
    value = root.raw("unmapped", "ignore")
    if value in ("ignore", "dead_letter"):
        return cast(UnmappedPolicy, value)
    raise root.fail("unmapped", f"must be 'ignore' or 'dead_letter', got {value!r}")


def _segments(node: _Node | None) -> SegmentSettings | None:
    """``segments``: ``dimensions`` (trait names, at most ``MAX_DIMENSIONS``) and
    ``max_values`` (distinct values tracked per dimension, 1 to ``MAX_VALUES_LIMIT``)."""
    if node is None:
        return None
    node.only({"dimensions", "max_values"})
    dims = node.raw("dimensions", _REQUIRED)
    if not isinstance(dims, list) or not dims or not all(isinstance(d, str) for d in dims):
        raise node.fail("dimensions", "must be a non-empty list of trait names")
    for dim in dims:
        if not dim.strip() or any(not c.isprintable() for c in dim) or len(dim) > 128:
            raise node.fail("dimensions", f"{dim!r} is not a usable trait name "
                                          "(printable, 1-128 characters)")  # fmt: skip
    if len(set(dims)) != len(dims):
        raise node.fail("dimensions", "must not repeat a trait name")
    if len(dims) > MAX_DIMENSIONS:
        raise node.fail("dimensions", f"at most {MAX_DIMENSIONS} dimensions, got {len(dims)}")
    max_values = node.whole("max_values", DEFAULT_MAX_VALUES, minimum=1)
    if max_values > MAX_VALUES_LIMIT:
        raise node.fail("max_values", f"must be at most {MAX_VALUES_LIMIT}, got {max_values}")
    return SegmentSettings(tuple(dims), max_values)


def _segment(node: _Node, types: set[str]) -> Mapping[str, str]:
    mapping = {}
    for name, target in node.data.items():
        if target not in types:
            raise node.fail(str(name), f"maps to {target!r}, which is not under 'events'")
        mapping[str(name)] = str(target)
    return mapping


def _topics(node: _Node, types: set[str]) -> Mapping[str, frozenset[str]]:
    node.only({"clickstream", "app_installs", "sessions"})
    return {str(role): frozenset(node.type_list(str(role), types)) for role in node.data}


_ACCOUNT_KEYS = {"aggregate", "top_n", "bands", "alerts"}


def _accounts(node: _Node | None, model_args: Mapping[str, Any]) -> AccountSettings | None:
    """``accounts``: the account score's aggregate (``mean``, ``max`` or ``top_n`` with
    ``top_n``), the account bands (default: the customer bands) and the account alerts
    (``churn_risk``: true, false or ``{band, rearm_above, cooldown}``, default true;
    ``score_drop``: false, true or ``{percent, points, over, cooldown}``, default false)."""
    if node is None:
        return None
    node.only(_ACCOUNT_KEYS)
    kind = node.text("aggregate", "mean")
    if kind not in AGGREGATES:
        raise node.fail("aggregate", f"must be one of {', '.join(AGGREGATES)}, got {kind!r}")
    top_n = node.whole("top_n", 3, minimum=1)
    bands = _bands(node.section("bands", required=False)) if node.data.get("bands") else None
    bands = bands or model_args["bands"]
    alerts = node.section("alerts", required=False)
    alerts.only({"churn_risk", "score_drop"})
    return AccountSettings(
        aggregate=cast(Any, kind),
        top_n=top_n,
        bands=bands,
        churn_risk=_account_churn(alerts, bands, model_args["alerts"]),
        score_drop=_account_drop(alerts, bands),
        history_points=int(model_args["history_points"]),
    )


def _account_churn(node: _Node, bands: BandScale, customer: AlertPolicy) -> AlertPolicy | None:
    value = node.raw("churn_risk", True)
    if value is False or value is None:
        return None
    band = customer.band if customer.band in bands.names else bands.names[0]
    if value is True:
        upper = bands.score_range(band)[1]
        rearm = customer.rearm_above if band == customer.band else float(upper or 0)
        return AlertPolicy(band=band, rearm_above=rearm, cooldown_ms=customer.cooldown_ms,
                           name="churn_risk")  # fmt: skip
    rule = node.section("churn_risk")
    rule.only({"band", "rearm_above", "cooldown"})
    band = rule.text("band", band)
    if band not in bands.names:
        raise rule.fail("band", f"{band!r} is not one of the account bands {list(bands.names)}")
    upper = bands.score_range(band)[1]
    return AlertPolicy(
        band=band,
        rearm_above=rule.number("rearm_above", float(upper or 0)),
        cooldown_ms=rule.duration("cooldown", "24h"),
        name="churn_risk",
    )


def _account_drop(node: _Node, bands: BandScale) -> AlertRule | None:
    value = node.raw("score_drop", False)
    if value is False or value is None:
        return None
    data = {} if value is True else value
    if not isinstance(data, dict):
        raise node.fail("score_drop", "must be true, false or a mapping")
    if "name" in data or "when" in data:
        raise node.fail("score_drop", "takes percent, points, over and cooldown only")
    item = {**data, "name": "score_drop", "when": "score_drop"}
    return _rule(_Node(node.source, node.key("score_drop"), item), bands)
