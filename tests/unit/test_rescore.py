"""The pure parts of `engagement rescore`: rebuilding a customer, input retention, which keys
a prefix owns, and the printed summary."""

from __future__ import annotations

import dataclasses
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from stream.adapters.kafka_admin import required_retention_ms
from stream.adapters.redis_keys import customer_key
from stream.adapters.redis_store import RedisScoreStore
from stream.cli.rescore import summary, switch_over
from stream.config.settings import Settings
from stream.core.alerts import AlertGate
from stream.core.customer import CustomerState, advance, drop_duplicates
from stream.core.decode import valid_customer_id
from stream.core.events import Event
from stream.core.profile import Profile
from stream.core.rebuild import carried_over, rebuild
from stream.core.segments import Membership, SegmentSettings
from stream.worker.rescore import RescoreReport, Target
from stream.worker.rescore import _commit as rescore_commit
from tests.factories import DAY_MS, NOW_MS, default_model, event
from tests.profiles import examples
from tests.unit.test_properties import batches

MODEL = default_model()


def test_rebuild_is_the_from_scratch_computation_with_repeats_dropped() -> None:
    """The rebuilt state is the model applied once to the distinct events; repeats counted."""
    events = [event("page_view", NOW_MS - d * DAY_MS) for d in range(5)]
    events += [event("session_end", NOW_MS - 2 * DAY_MS, duration_seconds=600, page_count=4)]
    rebuilt = rebuild(MODEL, "c1", [*events, events[0], events[3]], NOW_MS)
    expected = advance(MODEL, "c1", CustomerState(), events, NOW_MS)
    assert rebuilt.evaluation.state == expected.state
    assert rebuilt.evaluation.breakdown == expected.breakdown
    assert rebuilt.applied == tuple(events)
    assert rebuilt.duplicates == 2


def test_rebuild_keeps_only_the_alert_memory_of_the_previous_state() -> None:
    """Old points are forgotten, the gate and last update time are kept, no band is assumed."""
    old = advance(MODEL, "c1", CustomerState(), [event("conversion")] * 1, NOW_MS).state
    previous = CustomerState(
        buckets=old.buckets, score_cp=old.score_cp, band="somewhat_engaged",
        gate=AlertGate(armed=False, last_alert_ms=NOW_MS - 3_600_000), updated_ms=NOW_MS - 5,
    )  # fmt: skip
    assert carried_over(previous) == CustomerState(gate=previous.gate, updated_ms=NOW_MS - 5)
    silent = rebuild(MODEL, "c1", [], NOW_MS, previous).evaluation
    assert silent.state.buckets == {}
    assert (silent.state.score_cp, silent.state.band) == (0, "churn_risk")
    assert silent.state.gate == previous.gate
    assert silent.state.updated_ms == NOW_MS - 5
    assert silent.next_due_ms is None


def test_events_outside_the_window_are_not_applied_nor_fingerprinted() -> None:
    """An event that no longer counts is neither in the state nor among the applied events."""
    old, new = event("page_view", NOW_MS - 40 * DAY_MS), event("click")
    rebuilt = rebuild(MODEL, "c1", [old, new], NOW_MS)
    assert rebuilt.applied == (new,)
    assert rebuilt.evaluation.breakdown == {"clicks": 50, "regularity": 200}


@given(
    batches,
    st.booleans(),
    st.one_of(st.none(), st.integers(NOW_MS - 2 * DAY_MS, NOW_MS)),
    st.sampled_from([None, *MODEL.bands.names]),
)
@settings(max_examples=examples(300), deadline=None)
def test_a_rebuild_never_alerts(
    batch: list[Event], armed: bool, last_alert: int | None, band: str | None
) -> None:
    """Whatever the events and the carried alert memory, a rebuild publishes no history."""
    uninstalls = [Event(f"u{i}", "c1", "app_uninstall", NOW_MS - i) for i in range(3)]
    previous = CustomerState(band=band, gate=AlertGate(armed, last_alert))
    rebuilt = rebuild(MODEL, "c1", [*batch, *uninstalls], NOW_MS, previous)
    assert rebuilt.evaluation.alerts == ()
    fresh = drop_duplicates([*batch, *uninstalls], set())
    assert (
        rebuilt.evaluation.state.score_cp
        == advance(MODEL, "c1", CustomerState(), fresh, NOW_MS).state.score_cp
    )


@given(
    st.integers(0, 10**13),
    st.integers(0, MODEL.max_future_skew_ms),
    st.integers(0, 40 * DAY_MS),
)
def test_input_retention_outlives_every_event_that_still_counts(
    message_ms: int, ahead_ms: int, later_ms: int
) -> None:
    """An event (at most the future skew ahead of its message) that still counts at some
    moment belongs to a message that retention has kept until then."""
    event_ms = message_ms + ahead_ms
    now = message_ms + later_ms
    if MODEL.is_live(event_ms, now):
        assert now - message_ms < required_retention_ms(MODEL)


prefixes = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="{}"),
                   min_size=1, max_size=12)  # fmt: skip
ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
              max_size=20).filter(valid_customer_id)  # fmt: skip


# The store's own key namespaces under its prefix (a prefix nested in one of them is not
# told apart from the store's keys; the documented key layout reserves them).
_NAMESPACES = {"alerts", "acct", "seg", "bands", "rank", "due"}


def _keys(prefix: str, customer: str, partition: int) -> list[str]:
    return [customer_key(prefix, customer), f"{prefix}:rank", f"{prefix}:due:{partition}",
            f"{prefix}:seg:{{p{partition}}}:members", f"{prefix}:seg:{{p{partition}}}:counts",
            f"{prefix}:seg:values", f"{prefix}:seg:partitions"]  # fmt: skip


@given(prefixes, prefixes, ids, st.integers(0, 10_000))
@settings(max_examples=examples(1000))
def test_a_store_owns_exactly_the_keys_of_its_prefix(
    mine: str, other: str, customer: str, partition: int
) -> None:
    """`--force` deletes all keys of the target prefix and never one of another prefix, even
    of a prefix that starts with it (such as "<prefix>:due")."""
    store = RedisScoreStore(Redis(), mine)
    for key in _keys(mine, customer, partition):
        assert store.owns(key.encode()), key
    others = _keys(f"{mine}:due", customer, partition)
    if other.split(":", maxsplit=1)[0] not in _NAMESPACES:  # "<prefix>:alerts" is the store's
        others += _keys(f"{mine}:{other}", customer, 1)
    for key in others:
        assert not store.owns(key.encode()), key
    if other != mine:
        assert not any(store.owns(k.encode()) for k in _keys(other, customer, partition))


def test_summary_shows_counts_bands_of_both_models_and_warnings() -> None:
    """The summary lists what was read, the rejections by reason, both band distributions."""
    report = RescoreReport(
        "a-1", "b-2", partitions=8, messages=120, scored=100, duplicates=5,
        rejected=Counter({"too_old": 12, "invalid_json": 3}), rebuilt=40, carried=2,
        entered_alert_band=4, bands_old={"churn_risk": 3, "engaged": 39},
        bands_new={"churn_risk": 7, "fans": 35}, warnings=["clickstream: retention"],
    )  # fmt: skip
    target = Target(MODEL, "es-b", "group-b")
    text = summary(report, target)
    assert "read 120 messages below the snapshot of 8 partitions" in text
    assert "rejected   15: too_old 12, invalid_json 3" in text
    assert "customers: 40 rebuilt from events, 2 carried over" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[5:9]}
    assert rows == {"band": ["old", "(a-1)", "new", "(b-2)"], "churn_risk": ["3", "7"],
                    "engaged": ["39", "-"], "fans": ["-", "35"]}  # fmt: skip
    assert "4 customers are in churn_risk under b-2 and were not before" in text
    assert "warning: clickstream: retention" in text


def test_switch_over_names_the_exact_settings() -> None:
    """The steps give the new workers' model, prefix and group, and the old group to stop."""
    settings = Settings(app_id="group-a", redis_prefix="es")
    steps = switch_over(settings, "/etc/model-b.yaml", Target(MODEL, "es-b", "group-b"))
    assert (
        "ENGAGEMENT_MODEL=/etc/model-b.yaml ENGAGEMENT_REDIS_PREFIX=es-b "
        "ENGAGEMENT_APP_ID=group-b" in steps
    )
    assert "Stop the old workers (ENGAGEMENT_APP_ID=group-a)" in steps
    assert f"model_version field there says {MODEL.version}" in steps


def test_a_rescored_customer_carries_its_segment_membership() -> None:
    """With segment dimensions, the rescore's index entry holds the customer's membership
    (traits carried over, band and score of the rebuild), so the new prefix has rollups."""
    model = dataclasses.replace(MODEL, segments=SegmentSettings(("plan", "country")))
    rebuilt = rebuild(model, "c1", [event("conversion", NOW_MS - DAY_MS)], NOW_MS)
    profile = Profile(traits={"plan": "pro"}, trait_ms={"plan": NOW_MS - DAY_MS})
    _, entry = rescore_commit(model, "c1", 3, rebuilt, NOW_MS, profile)
    state = rebuilt.evaluation.state
    assert entry.segments == Membership(str(state.band), state.score_cp,
                                        (("plan", "pro"), ("country", "(none)")), 50)  # fmt: skip
    _, plain = rescore_commit(MODEL, "c1", 3, rebuilt, NOW_MS, profile)
    assert plain.segments is None
