"""The event-time replay equals a from-scratch evaluation of every customer, whatever the
step, and its clock follows the events (nothing is too old against the wall clock)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.config.model_file import load_model
from stream.core.customer import CustomerState, advance, drop_duplicates
from stream.core.events import Event
from stream.core.model import FactorTransform, ScoringModel, TenureRule
from stream.event_files.replay import Replay
from tests.profiles import examples

_DAY = 86_400_000
_START = 1_767_225_600_000  # 2026-01-01
_TYPES = ("page_view", "click", "feature_used", "app_open", "app_uninstall")


def _saturating() -> ScoringModel:
    base = load_model("default")
    return replace(
        base,
        transforms={
            "page_views": FactorTransform("log1p", weight=12.0, scale=3.0),
            "clicks": FactorTransform("cap", weight=2.0, maximum=10.0),
        },
        baseline_cp=-500,
    )


_events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(_TYPES),
        st.integers(0, 70 * _DAY),
        st.integers(0, 40),
    ),
    min_size=1,
    max_size=60,
)


def _build(raw: list[tuple[str, str, int, int]]) -> list[Event]:
    events = [Event(f"{c}-{n}", c, kind, _START + at) for c, kind, at, n in raw]
    return sorted(events, key=lambda e: e.timestamp_ms)


def _reference(model: ScoringModel, events: list[Event], customer: str, now: int) -> CustomerState:
    mine = drop_duplicates([e for e in events if e.customer_id == customer], set())
    return advance(model, customer, CustomerState(), mine, now).state


@settings(max_examples=examples(60), deadline=None)
@given(_events, st.sampled_from([_DAY, 3 * _DAY, 7 * _DAY]), st.booleans())
def test_replay_equals_a_from_scratch_evaluation(
    raw: list[tuple[str, str, int, int]], step: int, saturating: bool
) -> None:
    model = _saturating() if saturating else load_model("default")
    events = _build(raw)
    end = _START + 80 * _DAY
    replay = Replay(model, step)
    replay.run(events, [end])
    for customer in {e.customer_id for e in events}:
        expected = _reference(model, events, customer, end)
        got = replay.states[customer]
        assert got.score_cp == expected.score_cp
        assert got.buckets == expected.buckets
        assert got.band == expected.band
    assert replay.applied + replay.duplicates == len(events)


@settings(max_examples=examples(40), deadline=None)
@given(_events, st.lists(st.integers(0, 80 * _DAY), max_size=4))
def test_snapshots_see_the_state_at_their_moment(
    raw: list[tuple[str, str, int, int]], offsets: list[int]
) -> None:
    """At each stop, every customer seen so far is scored as a from-scratch evaluation of
    the events before the stop would score them; tenure counts from the first event."""
    model = replace(load_model("default"), tenure=TenureRule(100, max_days=30))
    events = _build(raw)
    stops = sorted({_START + o for o in offsets})
    seen: list[tuple[int, str, int]] = []
    Replay(model).run(events, stops, lambda at, r: seen.extend(
        (at, c, s.score_cp) for c, s in r.states.items()))  # fmt: skip
    for at, customer, score in seen:
        before = [e for e in events if e.timestamp_ms < at]
        first = min(e.timestamp_ms for e in before if e.customer_id == customer)
        if all(model.is_live(e.timestamp_ms, at) for e in before if e.customer_id == customer):
            assert score == _reference(model, before, customer, at).score_cp
        assert first < at


def test_old_history_is_replayed_not_rejected() -> None:
    model = load_model("default")
    events = [Event(f"e{d}", "old", "page_view", _START - 400 * _DAY + d * _DAY) for d in range(5)]
    replay = Replay(model)
    alerts_before = len(replay.alerts)
    replay.run(events, [events[-1].timestamp_ms + _DAY])
    assert replay.applied == 5
    assert replay.breakdowns["old"]["page_views"] == 500
    assert len(replay.alerts) == alerts_before


def test_backfill_commits_carry_the_models_bucket() -> None:
    """A backfilled customer's stored history is laid out in the model's buckets (an hourly
    model's history must not be stored as if its points were days apart)."""
    from stream.worker.backfill import _commit  # noqa: PLC0415

    model = replace(load_model("default"), bucket_ms=3_600_000)
    events = [Event(f"e{h}", "hourly", "page_view", _START + h * 3_600_000) for h in range(3)]
    replay = Replay(model)
    replay.run(events, [events[-1].timestamp_ms + 3_600_000])
    commit, entry = _commit(model, replay, "hourly", 0, events[-1].timestamp_ms + 3_600_000)
    assert commit.bucket_ms == 3_600_000
    assert entry.customer_id == "hourly"
