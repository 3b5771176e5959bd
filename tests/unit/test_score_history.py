"""Score history, trend and the further alert rules (score_drop, score_rise, band_entered)."""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.adapters.codec import alert_to_json
from stream.adapters.redis_fields import state_fields, state_from_fields
from stream.adapters.redis_reads import history_view
from stream.config.errors import ConfigError
from stream.config.model_file import parse_model
from stream.core import score_history as history
from stream.core.alerts import RuleGate, alert_id, moved_factors, pass_rule
from stream.core.customer import CustomerState, advance, drop_duplicates
from stream.core.events import Event
from stream.core.model import ScoringModel
from stream.core.rebuild import rebuild
from stream.core.rules import AlertRule
from tests.factories import DAY_MS, NOW_MS, default_model, event
from tests.profiles import examples

DEFAULT_FILE = Path(__file__).parents[2] / "stream" / "config" / "models" / "default.yaml"
RULES = [
    {"name": "churn_risk", "when": "band_entered", "band": "churn_risk", "rearm_above": 10},
    {"name": "upsell", "when": "band_entered", "band": "power_user", "cooldown": "7d"},
    {"name": "drop", "when": "score_drop", "percent": 20, "points": 10, "over": "7d"},
    {"name": "rise", "when": "score_rise", "percent": 30, "points": 20, "over": "7d"},
]


def rules_model(**alerts: Any) -> ScoringModel:
    data = yaml.safe_load(DEFAULT_FILE.read_text())
    data["alerts"] = alerts or {"rules": RULES}
    return parse_model(data, "test")


MODEL = rules_model()
PLAIN = default_model()


# -- the history ring -----------------------------------------------------------------------


observations = st.lists(st.tuples(st.integers(0, 300), st.integers(-5000, 5000)), max_size=80)


@given(observations, st.integers(1, 50))
@settings(max_examples=examples(300), deadline=None)
def test_history_matches_a_from_scratch_reference(seen: list[tuple[int, int]], limit: int) -> None:
    """Each bucket keeps the last score observed in it (late observations go to the latest
    point), buckets ascend, and only the latest ``limit`` points are kept."""
    kept: history.History = ()
    reference: dict[int, int] = {}
    for bucket, score in seen:
        kept = history.record(kept, bucket, score, limit)
        latest = max(reference, default=None)
        reference[bucket if latest is None or bucket > latest else latest] = score
    expected = sorted(reference.items())[-limit:]
    assert list(kept) == expected
    for bucket in range(0, 302):
        older = [s for b, s in expected if b <= bucket]
        if expected and bucket >= expected[0][0]:
            assert history.value_at(kept, bucket) == older[-1]


def test_markers_are_bounded() -> None:
    markers: tuple[history.Marker, ...] = ()
    for i in range(history.MAX_MARKERS + 5):
        markers = history.mark(markers, i, f"v{i}")
    assert len(markers) == history.MAX_MARKERS
    assert markers[-1] == (history.MAX_MARKERS + 4, f"v{history.MAX_MARKERS + 4}")


# -- history through the core ---------------------------------------------------------------

TYPES = ["page_view", "click", "conversion", "feature_used", "app_uninstall", "session_start"]
timeline = st.lists(
    st.tuples(st.sampled_from(TYPES), st.integers(0, 60 * DAY_MS)), min_size=1, max_size=40
)


def _events(drawn: list[tuple[str, int]]) -> list[Event]:
    start = NOW_MS - 60 * DAY_MS
    return sorted(
        (Event(f"id-{i}", "c1", kind, start + at, {}) for i, (kind, at) in enumerate(drawn)),
        key=lambda e: (e.timestamp_ms, e.event_id),
    )


@given(timeline)
@settings(max_examples=examples(150), deadline=None)
def test_history_is_the_same_event_by_event_or_bucket_by_bucket(
    drawn: list[tuple[str, int]],
) -> None:
    """A chronological stream evaluated event by event, or bucket by bucket, leaves the same
    history; each point with events equals a from-scratch score of the events up to then."""
    events = _events(drawn)
    one = CustomerState()
    for e in events:
        one = advance(MODEL, "c1", one, [e], e.timestamp_ms).state
    grouped = CustomerState()
    for _, group in groupby(events, key=lambda e: MODEL.bucket_of(e.timestamp_ms)):
        batch = list(group)
        grouped = advance(MODEL, "c1", grouped, batch, batch[-1].timestamp_ms).state
    assert one.history == grouped.history
    assert one.history[-1][1] == one.score_cp
    for bucket, group in groupby(events, key=lambda e: MODEL.bucket_of(e.timestamp_ms)):
        last = list(group)[-1].timestamp_ms
        upto = [e for e in events if e.timestamp_ms <= last]
        fresh = advance(MODEL, "c1", CustomerState(), upto, last).state
        if any(not MODEL.is_live(e.timestamp_ms, last) for e in upto):
            continue
        start = bucket * MODEL.bucket_ms
        if start == one.history[-1][0] or any(b > start for b, _ in one.history):
            assert history.value_at(one.history, start) == fresh.score_cp


@given(st.lists(st.tuples(st.sampled_from(TYPES), st.integers(31 * DAY_MS, 60 * DAY_MS)),
                min_size=1, max_size=40))  # fmt: skip
@settings(max_examples=examples(150), deadline=None)
def test_a_replay_in_one_batch_leaves_the_history_of_a_live_run(
    drawn: list[tuple[str, int]],
) -> None:
    """Events within one window, applied in one batch (a replay), leave the history they
    leave when applied one by one as they happen."""
    events = _events(drawn)
    live = CustomerState()
    for e in events:
        live = advance(MODEL, "c1", live, [e], e.timestamp_ms).state
    replayed = advance(MODEL, "c1", CustomerState(), events[::-1], events[-1].timestamp_ms)
    assert replayed.state.history == live.history
    assert replayed.alerts == ()


@given(timeline)
@settings(max_examples=examples(100), deadline=None)
def test_replaying_changes_neither_history_nor_gates(drawn: list[tuple[str, int]]) -> None:
    events = _events(drawn)
    seen: set[bytes] = set()
    state = CustomerState()
    for e in events:
        state = advance(MODEL, "c1", state, drop_duplicates([e], seen), e.timestamp_ms).state
    last = events[-1].timestamp_ms
    again = advance(MODEL, "c1", state, drop_duplicates(events, seen), last)
    assert again.state == state
    assert again.alerts == ()


def test_a_new_model_version_is_marked_once() -> None:
    first = advance(PLAIN, "c1", CustomerState(), [event("conversion")], NOW_MS).state
    assert first.version == PLAIN.version and first.markers == ()
    newer = replace(PLAIN, version="v2")
    later = advance(newer, "c1", first, [event("click", NOW_MS + 1000)], NOW_MS + 1000).state
    assert later.markers == ((NOW_MS + 1000, "v2"),)
    again = advance(newer, "c1", later, [event("click", NOW_MS + 2000)], NOW_MS + 2000).state
    assert again.markers == later.markers


def test_a_rescore_keeps_history_and_marks_the_new_version() -> None:
    early = NOW_MS - 2 * DAY_MS
    first = advance(PLAIN, "c1", CustomerState(), [event("conversion", early)], early).state
    rebuilt = rebuild(replace(PLAIN, version="v2"), "c1", [event("click")], NOW_MS + 5, first)
    state = rebuilt.evaluation.state
    assert state.markers == ((NOW_MS + 5, "v2"),)
    today = PLAIN.bucket_of(NOW_MS) * DAY_MS
    assert state.history == (first.history[0], (today, state.score_cp))


def test_history_and_trend_through_the_codec() -> None:
    state = CustomerState()
    for day in (20, 10, 3, 0):
        at = NOW_MS - day * DAY_MS
        state = advance(PLAIN, "c1", state, [event("conversion", at)], at).state
    fields = state_fields(state, {}, PLAIN.version, 0, PLAIN.bucket_ms)
    stored = {k: v.encode() if isinstance(v, str) else v for k, v in fields.items()}
    assert state_from_fields(stored).history == state.history
    raw = stored["history"]
    assert raw[:16] == (1).to_bytes(8, "little") + DAY_MS.to_bytes(8, "little")
    assert len(raw) == 16 + 16 * len(state.history)
    view = history_view(stored, NOW_MS)
    points = view["history"]["points"]
    assert [p[0] for p in points] == [PLAIN.bucket_of(NOW_MS - d * DAY_MS) * DAY_MS
                                      for d in (20, 10, 3, 0)]  # fmt: skip
    assert points[-1][1] == state.score_cp / 100
    week_ago = history.value_at(state.history, PLAIN.bucket_of(NOW_MS - 7 * DAY_MS) * DAY_MS)
    assert week_ago is not None
    assert view["trend"]["change_7d"] == (state.score_cp - week_ago) / 100
    assert view["trend"]["top_factor"] == "conversions"


# -- rules: the gate alone ------------------------------------------------------------------

DROP = AlertRule("drop", "score_drop", percent=20, points_cp=1000, cooldown_ms=3)


@given(st.lists(st.tuples(st.integers(-3000, 3000), st.integers(-3000, 3000)), max_size=60),
       st.sampled_from([DROP, replace(DROP, name="rise", when="score_rise")]))  # fmt: skip
@settings(max_examples=examples(300), deadline=None)
def test_a_score_rule_fires_once_per_crossing_and_respects_cooldown(
    moments: list[tuple[int, int]], rule: AlertRule
) -> None:
    gate, fired, rearmed = RuleGate(), [], True
    for at, (reference, score) in enumerate(moments):
        fire, gate = pass_rule(rule, gate, "b", "b", score, reference, at)
        holds = rule.crossed(reference, score)
        if fire:
            assert holds and rearmed
            assert not fired or at - fired[-1] >= rule.cooldown_ms
            fired.append(at)
            rearmed = False
        elif not holds:
            rearmed = True


def test_band_rule_rearms_when_the_band_is_left() -> None:
    rule = AlertRule("upsell", "band_entered", band="power_user", cooldown_ms=0)
    gate = RuleGate()
    sequence = [("highly_engaged", "power_user"), ("power_user", "power_user"),
                ("power_user", "highly_engaged"), ("highly_engaged", "power_user")]  # fmt: skip
    fires = []
    for at, (before, after) in enumerate(sequence):
        fire, gate = pass_rule(rule, gate, before, after, 15000, None, at)
        fires.append(fire)
    assert fires == [True, False, False, True]


# -- rules: through the core ----------------------------------------------------------------


def _scenario(model: ScoringModel) -> tuple[CustomerState, list[Any]]:
    """Ten conversions 10 days ago, then an uninstall today (a 40 point drop)."""
    seen: set[bytes] = set()
    early = NOW_MS - 10 * DAY_MS
    batch = [event("conversion", early + i) for i in range(10)]
    first = advance(model, "c1", CustomerState(), drop_duplicates(batch, seen), early + 10)
    uninstall = [event("app_uninstall", NOW_MS)]
    second = advance(model, "c1", first.state, drop_duplicates(uninstall, seen), NOW_MS)
    third = advance(model, "c1", second.state, drop_duplicates(uninstall + batch, seen), NOW_MS)
    return third.state, [*first.alerts, *second.alerts, *third.alerts]


def test_score_drop_fires_once_with_a_deterministic_id() -> None:
    state, alerts = _scenario(MODEL)
    drops = [a for a in alerts if a.rule == "drop"]
    assert len(drops) == 1
    drop = drops[0]
    assert drop.type == "score_drop" and drop.occurred_at_ms == NOW_MS
    assert drop.alert_id == alert_id(MODEL.version, "c1", "event", NOW_MS, "drop")
    assert drop.reasons[0].factor == "app_uninstalls"
    assert state.rule_gates["drop"] == RuleGate(armed=False, last_alert_ms=NOW_MS)
    assert alert_to_json(drop)["rule"] == "drop"
    assert _scenario(MODEL)[1] == alerts  # the same input gives the same alerts


def test_the_short_alerts_form_has_no_further_rules() -> None:
    assert PLAIN.rules == () and PLAIN.alerts.name == "churn_risk"
    assert [a for a in _scenario(PLAIN)[1] if a.rule != "churn_risk"] == []


def test_power_user_entry_is_an_upsell_alert() -> None:
    state = advance(MODEL, "c1", CustomerState(), [event("click")], NOW_MS).state
    burst = [event("conversion", NOW_MS + 1000 + i) for i in range(12)]
    result = advance(MODEL, "c1", state, burst, NOW_MS + 2000)
    kinds = {(a.rule, a.type) for a in result.alerts}
    assert ("upsell", "power_user_entered") in kinds
    assert ("rise", "score_rise") not in kinds  # no history 7 days back


def test_a_band_entered_from_below_lists_the_factors_that_rose() -> None:
    state = advance(MODEL, "c1", CustomerState(), [event("click")], NOW_MS).state
    burst = [event("conversion", NOW_MS + 1000 + i) for i in range(12)]
    result = advance(MODEL, "c1", state, burst, NOW_MS + 2000)
    upsell = next(a for a in result.alerts if a.type == "power_user_entered")
    assert upsell.score > upsell.previous_score
    assert upsell.reasons, "an alert for a band entered from below names what rose"
    assert all(r.change > 0 and r.after > r.before for r in upsell.reasons)
    assert "conversions" in {r.factor for r in upsell.reasons}
    assert list(upsell.reasons) == sorted(upsell.reasons, key=lambda r: (-r.change, r.factor))
    assert alert_to_json(upsell)["reasons"]


def test_moved_factors_follow_the_direction_of_the_score() -> None:
    before, after = {"a": 500, "b": 300, "c": 100}, {"a": 900, "b": 100, "c": 100, "d": 50}
    assert [r.factor for r in moved_factors(before, after, rose=True)] == ["a", "d"]
    assert [r.factor for r in moved_factors(before, after, rose=False)] == ["b"]


def test_rules_form_parses_with_defaults_and_errors() -> None:
    assert MODEL.alerts.name == "churn_risk" and MODEL.alerts.rearm_above == 10
    assert [r.name for r in MODEL.rules] == ["upsell", "drop", "rise"]
    assert MODEL.rules[1] == AlertRule("drop", "score_drop", percent=20, points_cp=1000,
                                       over_ms=7 * DAY_MS, cooldown_ms=7 * DAY_MS)  # fmt: skip
    only_drop = rules_model(rules=[{"name": "d", "when": "score_drop"}])
    assert not only_drop.alerts.enabled
    assert only_drop.rules[0].percent == 20 and only_drop.rules[0].points_cp == 1000
    with pytest.raises(ConfigError, match=r"alerts.rules\[0\].when"):
        rules_model(rules=[{"name": "x", "when": "sometimes"}])
    with pytest.raises(ConfigError, match="unique"):
        rules_model(rules=[RULES[1], RULES[1]])
    with pytest.raises(ConfigError, match="not one of the bands"):
        rules_model(rules=[{"name": "x", "when": "band_entered", "band": "nope"}])
    data = yaml.safe_load(DEFAULT_FILE.read_text())
    data["history"] = {"points": 200}
    assert parse_model(data, "t").history_points == 200
