"""Accounts: the aggregate against from-scratch definitions, the alert decision against a
from-scratch reference of its rules, the ``accounts`` model section, and the worker's
account roll-up in process with a crash at every step (each account alert stored and
published exactly once, account scores equal to a from-scratch aggregate of the users)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from fractions import Fraction
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.config.errors import ConfigError
from stream.config.model_file import load_model, parse_model
from stream.config.settings import TopicNames
from stream.core.account_settings import AccountSettings
from stream.core.accounts import (
    AccountState,
    Rollup,
    account_alert_id,
    aggregate,
    evaluate,
    reference_aggregate,
)
from stream.core.rules import AlertPolicy, AlertRule
from stream.ports import Incoming, IndexEntry
from stream.worker.accounts import roll_up_accounts, seed_accounts
from stream.worker.processor import BatchProcessor
from tests.doubles import Crash, CrashingStore, CrashPlan, MemoryScoreStore, RecordingPublisher
from tests.factories import DAY_MS, NOW_MS, default_model, native
from tests.profiles import examples

TOPICS = TopicNames()
CHURN = AlertPolicy(band="churn_risk", rearm_above=10.0, cooldown_ms=DAY_MS)
DROP = AlertRule("score_drop", "score_drop", percent=20.0, over_ms=7 * DAY_MS, cooldown_ms=DAY_MS)
SETTINGS = AccountSettings(aggregate="mean", churn_risk=CHURN, score_drop=DROP)
MODEL = dataclasses.replace(default_model(), accounts=SETTINGS)
_offsets = itertools.count()

scores = st.lists(st.integers(-50_000, 50_000), min_size=1, max_size=30)


@given(scores, st.sampled_from(["mean", "max", "top_n"]), st.integers(1, 6))
def test_the_aggregate_is_its_definition(users: list[int], kind: Any, top_n: int) -> None:
    """mean rounds half up to a centipoint, max is the highest, top_n sums the top N."""
    config = AccountSettings(aggregate=kind, top_n=top_n)
    ordered = sorted(users, reverse=True)
    rollup = Rollup(len(users), sum(users), tuple(ordered[: config.top_needed]))
    if kind == "mean":
        mean = Fraction(sum(users), len(users))
        expected = int((mean + Fraction(1, 2)).__floor__())
    elif kind == "max":
        expected = max(users)
    else:
        expected = sum(ordered[:top_n])
    assert aggregate(config, rollup) == expected == reference_aggregate(config, users)
    assert aggregate(config, Rollup(0, 0)) is None


@dataclasses.dataclass
class _Ref:
    """The account rules from scratch: the band sequence, the history and the last alerts."""

    band: str | None = None
    score: int | None = None
    churn_armed: bool = True
    churn_last: int | None = None
    drop_armed: bool = True
    drop_last: int | None = None
    points: dict[int, int] = dataclasses.field(default_factory=dict)


def _reference_step(ref: _Ref, score: int, at: int, bucket_ms: int) -> list[str]:
    if score == ref.score:
        return []
    band = SETTINGS.bands.band_for(score / 100)
    fired = []
    ref.churn_armed = ref.churn_armed or score > 1000
    cooled = ref.churn_last is None or at - ref.churn_last >= CHURN.cooldown_ms
    if band == "churn_risk" and ref.band not in (None, "churn_risk") and ref.churn_armed and cooled:
        fired.append("churn_risk")
        ref.churn_armed, ref.churn_last = False, at
    then = (at - DROP.over_ms) // bucket_ms * bucket_ms
    older = [b for b in ref.points if b <= then]
    if older:
        before = ref.points[max(older)]
        fell = before - score
        holds = fell > 0 and before > 0 and fell * 100 >= 20 * before
        drop_cooled = ref.drop_last is None or at - ref.drop_last >= DROP.cooldown_ms
        if holds and ref.drop_armed and drop_cooled and ref.band is not None:
            fired.append("score_drop")
            ref.drop_armed, ref.drop_last = False, at
        elif not holds:
            ref.drop_armed = True
    bucket = at // bucket_ms * bucket_ms
    latest = max(ref.points, default=None)
    ref.points[bucket if latest is None or bucket > latest else latest] = score
    ref.band, ref.score = band, score
    return fired


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(st.integers(-2000, 12_000), st.integers(1, 5 * DAY_MS)), max_size=40))
def test_account_alerts_follow_the_rules(steps: list[tuple[int, int]]) -> None:
    """Churn risk on entering the band (armed, cooled), score drop against ``over``
    earlier, each with its deterministic id; an unchanged score decides nothing."""
    state, ref, at = AccountState(), _Ref(), NOW_MS
    for score, gap in steps:
        at += gap
        result = evaluate(SETTINGS, "acme", state, Rollup(1, score), at, DAY_MS, "v1")
        expected = _reference_step(ref, score, at, DAY_MS)
        assert [a.rule for a in result.alerts] == expected
        for alert in result.alerts:
            assert alert.alert_id == account_alert_id("v1", "acme", alert.rule, at)
            assert alert.type == f"account_{alert.rule}" and alert.score_cp == score
        state = result.state
        again = evaluate(SETTINGS, "acme", state, Rollup(1, score), at + 1, DAY_MS, "v1")
        assert not again.changed and again.alerts == () and again.state == state


def test_a_new_account_never_alerts_and_an_emptied_account_has_no_score() -> None:
    first = evaluate(SETTINGS, "a", AccountState(), Rollup(2, -500), NOW_MS, DAY_MS, "v")
    assert first.alerts == () and first.state.band == "churn_risk"
    empty = evaluate(SETTINGS, "a", first.state, Rollup(0, 0), NOW_MS + 1, DAY_MS, "v")
    assert empty.changed and empty.state.score_cp is None and empty.state.band is None
    assert empty.state.history == first.state.history


def test_the_accounts_section_is_parsed_and_errors_name_the_key() -> None:
    assert load_model("default").accounts is None
    demo = load_model("demo").accounts
    assert demo is not None and demo.aggregate == "mean" and demo.score_drop is not None
    base: dict[str, Any] = {"version": "v", "window": "30d", "bucket": "1d",
                            "events": {"page_view": {"factor": "p", "points": 1}}}  # fmt: skip
    model = parse_model({**base, "accounts": {"aggregate": "top_n", "top_n": 2}}, "m")
    assert model.accounts is not None and model.accounts.top_needed == 2
    assert model.accounts.churn_risk is not None and model.accounts.score_drop is None
    off = parse_model({**base, "accounts": {"alerts": {"churn_risk": False}}}, "m")
    assert off.accounts is not None and off.accounts.churn_risk is None
    for bad, key in [
        ({"aggregate": "median"}, "accounts.aggregate"),
        ({"top_n": 0}, "accounts.top_n"),
        ({"colour": 1}, "accounts.colour"),
        ({"alerts": {"churn_risk": {"band": "nope"}}}, "accounts.alerts.churn_risk.band"),
        ({"alerts": {"score_drop": {"percent": -1}}}, "accounts.alerts.score_drop.percent"),
        ({"alerts": {"score_drop": "yes"}}, "accounts.alerts.score_drop"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_model({**base, "accounts": bad}, "m")
        assert key in str(info.value)


# The worker's account roll-up, in process.


def _msg(customer: str, at_ms: int, kind: str = "page_view", **fields: Any) -> Incoming:
    if kind == "group":
        doc = {"type": "group", "userId": customer, "messageId": f"g{next(_offsets)}",
               "timestamp": at_ms, **fields}  # fmt: skip
        value = orjson.dumps(doc)
    else:
        value = native(kind, customer, at_ms, f"e{next(_offsets)}")
    topic = TOPICS.app_installs if kind == "app_open" else TOPICS.clickstream
    return Incoming(topic, int(customer[1:]) % 2, next(_offsets), customer.encode(), value, at_ms)


def _steps() -> list[tuple[int, list[Incoming] | None]]:
    """Four customers in two accounts; one moves; later the window empties every score
    (a sweep): both accounts enter churn_risk and drop against a week before."""
    t0 = NOW_MS
    joins = {"c0": "acme", "c1": "acme", "c2": "acme", "c3": "beta"}
    first = [_msg(c, t0 - 5, "group", groupId=account) for c, account in joins.items()]
    first += [_msg(c, t0 - 4) for c in ("c0", "c1", "c1", "c2", "c3")]
    second = [_msg("c2", t0 + 3600_000 - 5, "group", groupId="beta"), _msg("c0", t0 + 3600_000)]
    return [(t0, first), (t0 + 3600_000 + 10, second), (t0 + 40 * DAY_MS, None)]


def _run(steps: list[tuple[int, list[Incoming] | None]], crash_at: set[int]) -> tuple[
    MemoryScoreStore, RecordingPublisher, CrashPlan
]:  # fmt: skip
    store, plan = MemoryScoreStore(), CrashPlan(at=crash_at)
    publisher, clock = RecordingPublisher(plan), [NOW_MS]

    def worker() -> BatchProcessor:
        return BatchProcessor(MODEL, CrashingStore(store, plan), publisher, TOPICS,
                              clock_ms=lambda: clock[0])  # fmt: skip

    current = worker()
    for now, batch in steps:
        clock[0] = now
        while True:
            try:
                if batch is None:
                    asyncio.run(current.sweep([0, 1]))
                else:
                    asyncio.run(current.process(batch))
                break
            except Crash:
                current = worker()  # a new process replays the batch
    return store, publisher, plan


def _account_alerts(publisher: RecordingPublisher) -> list[dict[str, Any]]:
    docs = [orjson.loads(m.value) for m in publisher.on(TOPICS.alerts)]
    return [d for d in docs if d.get("scope") == "account"]


def _assert_rollups_match(store: MemoryScoreStore) -> None:
    """Every account's users, score and band equal a from-scratch aggregate."""
    members: dict[str, list[int]] = {}
    for row in store.rows.values():
        if row.profile.account is not None:
            members.setdefault(row.profile.account, []).append(row.state.score_cp)
    for account, users in members.items():
        stored = store.accounts[account]
        assert sorted(stored.users.values()) == sorted(users)
        expected = reference_aggregate(SETTINGS, users)
        assert stored.state.score_cp == expected
        assert expected is not None
        assert stored.state.band == SETTINGS.bands.band_for(expected / 100)
        assert store.account_rank[account] == expected / 100


def test_the_roll_up_matches_a_from_scratch_aggregate_and_alerts_once() -> None:
    store, publisher, plan = _run(_steps(), set())
    _assert_rollups_match(store)
    assert set(store.accounts["acme"].users) == {"c0", "c1"}  # c2 moved to beta
    assert set(store.accounts["beta"].users) == {"c2", "c3"}
    alerts = _account_alerts(publisher)
    kinds = sorted((a["account_id"], a["type"]) for a in alerts)
    assert kinds == [("acme", "account_churn_risk"), ("acme", "account_score_drop"),
                     ("beta", "account_churn_risk"), ("beta", "account_score_drop")]  # fmt: skip
    assert all(a["occurred_at_ms"] == NOW_MS + 40 * DAY_MS for a in alerts)
    # The sweep takes partition 0 then 1: the drop fires at the first halving, churn at 0.
    assert all(a["score"] == 0 for a in alerts if a["rule"] == "churn_risk")
    drops = {a["account_id"]: a for a in alerts if a["rule"] == "score_drop"}
    assert (drops["acme"]["reference_score"], drops["beta"]["reference_score"]) == (4.0, 3.0)
    assert all("customer_id" not in a for a in alerts)
    assert not any(row.outbox for row in store.accounts.values())
    assert [a["alert_id"] for a in store.accounts["acme"].alerts] == [
        a["alert_id"] for a in reversed(alerts) if a["account_id"] == "acme"
    ]
    assert any(step.startswith("roll_accounts") for step in plan.trace)


def _crash_points() -> int:
    return len(_run(_steps(), set())[2].trace)


@pytest.mark.parametrize("step", range(_crash_points()))
def test_a_crash_at_any_step_publishes_each_account_alert_exactly_once(step: int) -> None:
    clean_store, clean_publisher, _ = _run(_steps(), set())
    expected = {a["alert_id"] for a in _account_alerts(clean_publisher)}
    store, publisher, _ = _run(_steps(), {step})
    published = [a["alert_id"] for a in _account_alerts(publisher)]
    assert set(published) == expected
    assert {a: n for a, n in store.stored_alerts.items() if a in expected} == dict.fromkeys(
        expected, 1
    )
    _assert_rollups_match(store)
    assert not any(row.outbox for row in store.accounts.values())
    assert {a: r.state for a, r in store.accounts.items()} == {
        a: r.state for a, r in clean_store.accounts.items()
    }


def test_seeding_rolls_accounts_up_without_alerts_then_live_changes_alert() -> None:
    """A rescore/backfill seeds accounts (scores, bands, no alert even when an account is
    in churn_risk); the worker's next change alerts as usual against the seeded band."""
    store = MemoryScoreStore()
    joined = {"c1": ("acme", 50.0), "c2": ("acme", 30.0), "c3": ("risky", -5.0)}
    entries = [IndexEntry(c, 0, score, None, account=a) for c, (a, score) in joined.items()]
    asyncio.run(seed_accounts(MODEL, store, entries, NOW_MS))
    assert store.accounts["acme"].state.score_cp == 4000 and store.account_rank["risky"] == -5
    assert store.accounts["risky"].state.band == "churn_risk" and not store.stored_alerts
    publisher = RecordingPublisher()
    live = [
        IndexEntry(c, 0, score, None, account="acme") for c, score in (("c1", -20.0), ("c2", -30.0))
    ]
    alerts = asyncio.run(roll_up_accounts(MODEL, store, publisher, TOPICS.alerts, live,
                                          NOW_MS + 1000))  # fmt: skip
    assert [a["type"] for a in alerts] == ["account_churn_risk"]
    assert alerts[0]["previous_band"] == "very_disengaged" and alerts[0]["score"] == -25
    assert [orjson.loads(m.value)["alert_id"] for m in publisher.sent] == [alerts[0]["alert_id"]]
