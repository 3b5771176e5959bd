"""The recent-alert record, the band snapshots and the read model on a real Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from stream.adapters.redis_alerts import RecentAlerts
from stream.adapters.redis_store import RedisScoreStore
from stream.config.model_file import load_model
from stream.web.band_history import BandHistory
from stream.web.readmodel import ReadModel
from tests.integration.conftest import StoreScenario as Scenario

pytestmark = pytest.mark.integration
NOW_MS = 1_800_000_000_000
HOUR_MS = 3600 * 1000
MODEL = load_model("default")


def alert(customer: str, at_ms: int, score: float = -5.0, **extra: Any) -> dict[str, Any]:
    return {
        "alert_id": f"{customer}-{at_ms}", "type": "churn_risk_entered", "customer_id": customer,
        "previous_band": "very_disengaged", "band": "churn_risk", "previous_score": 12.0,
        "score": score, "occurred_at_ms": at_ms, "trigger": "event",
        "reasons": [{"factor": "app_uninstalls", "change": -40.0, "before": 0.0, "after": -40.0}],
        "model_version": MODEL.version, **extra,
    }  # fmt: skip


async def put_customer(store: RedisScoreStore, customer: str, score: float) -> None:
    band = MODEL.bands.band_for(score)
    await store.client.hset(store.customer_key(customer), mapping={
        "score": f"{score:g}", "band": band, "updated_at": "2027-01-15T08:00:00.000+00:00",
        "breakdown": orjson.dumps({"conversions": score}), "model_version": MODEL.version,
    })  # fmt: skip
    await store.client.zadd(store.rank_key, {customer: score})


def test_record_is_idempotent_and_bounded(on_store: Callable[[Scenario], None]) -> None:
    async def scenario(store: RedisScoreStore) -> None:
        recent = RecentAlerts(store.client, store.prefix, retention_ms=24 * HOUR_MS,
                              max_alerts=5, per_customer=2)  # fmt: skip
        batch = [alert(f"c{i}", NOW_MS - i * HOUR_MS) for i in range(4)]
        await recent.record(batch, NOW_MS)
        await recent.record(batch, NOW_MS)  # a replay of the same batch
        assert await recent.count_since(0) == 4
        assert [a["customer_id"] for a in await recent.since(0, 10)] == ["c0", "c1", "c2", "c3"]
        # Older than the retention: trimmed on the next write, payload too.
        await recent.record([alert("c9", NOW_MS - 30 * HOUR_MS)], NOW_MS)
        assert await recent.count_since(0) == 4
        assert await store.client.hlen(recent.data_key) == 4
        # Beyond max_alerts: the oldest go.
        await recent.record([alert("c5", NOW_MS + 1), alert("c6", NOW_MS + 2)], NOW_MS)
        ids = [a["alert_id"] for a in await recent.since(0, 10)]
        assert ids == [f"c6-{NOW_MS + 2}", f"c5-{NOW_MS + 1}", f"c0-{NOW_MS}",
                       f"c1-{NOW_MS - HOUR_MS}", f"c2-{NOW_MS - 2 * HOUR_MS}"]  # fmt: skip
        assert await store.client.hlen(recent.data_key) == 5
        # Per customer: the newest per_customer, newest first.
        await recent.record([alert("c0", NOW_MS + 10), alert("c0", NOW_MS + 20)], NOW_MS)
        mine = await recent.of_customer("c0")
        assert [a["occurred_at_ms"] for a in mine] == [NOW_MS + 20, NOW_MS + 10]

    on_store(scenario)


def test_store_owns_the_new_keys(on_store: Callable[[Scenario], None]) -> None:
    async def scenario(store: RedisScoreStore) -> None:
        await store.record_alerts([alert("c1", NOW_MS)], NOW_MS)
        await BandHistory(store.client, store.prefix, 60_000).write({"churn_risk": 1}, NOW_MS)
        assert not await store.empty()
        assert await store.clear() == 4  # index, payloads, c1's ids, band history
        assert await store.empty()

    on_store(scenario)


def test_band_history_one_point_per_slot(on_store: Callable[[Scenario], None]) -> None:
    async def scenario(store: RedisScoreStore) -> None:
        history = BandHistory(store.client, store.prefix, 60_000, keep=3)
        other_replica = BandHistory(store.client, store.prefix, 60_000, keep=3)
        assert await history.write({"churn_risk": 1}, NOW_MS)
        assert not await other_replica.write({"churn_risk": 2}, NOW_MS + 1)  # same slot
        for minute in range(1, 5):
            await history.write({"churn_risk": 10 + minute}, NOW_MS + minute * 60_000)
        points = await history.read()
        assert [p["counts"]["churn_risk"] for p in points] == [12, 13, 14]
        assert [p["at_ms"] for p in points] == sorted(p["at_ms"] for p in points)

    on_store(scenario)


def test_read_model_lists(on_store: Callable[[Scenario], None]) -> None:
    async def scenario(store: RedisScoreStore) -> None:
        known = [("risk-old", -10), ("risk-new", -3), ("recovered", 55), ("quiet-risk", -20),
                 ("power", 130), ("power2", 101), ("close", 90)]  # fmt: skip
        for customer, score in known:
            await put_customer(store, customer, score)
        await store.record_alerts([
            alert("risk-old", NOW_MS - 5 * HOUR_MS), alert("risk-new", NOW_MS - HOUR_MS),
            alert("recovered", NOW_MS - 2 * HOUR_MS), alert("risk-new", NOW_MS - 9 * HOUR_MS),
        ], NOW_MS)  # fmt: skip
        view = ReadModel(MODEL, store, BandHistory(store.client, store.prefix, 60_000),
                         clock_ms=lambda: NOW_MS)  # fmt: skip
        risk = await view.at_risk()
        # Newest alert first, one row per customer, recovered customers left out, then the
        # rest of the band without a recent alert.
        assert [c["customer_id"] for c in risk["customers"]] == [
            "risk-new",
            "risk-old",
            "quiet-risk",
        ]
        assert risk["customers"][0]["alert"]["occurred_at_ms"] == NOW_MS - HOUR_MS
        assert risk["customers"][0]["reasons"][0]["factor"] == "app_uninstalls"
        assert risk["customers"][2]["alert"] is None
        assert risk["in_band"] == 3
        upsell = await view.upsell()
        assert [c["customer_id"] for c in upsell["customers"]] == ["power", "power2"]
        assert [c["customer_id"] for c in upsell["next_in_line"]] == ["close"]
        overview = await view.overview()
        counts = {b["name"]: b["count"] for b in overview["bands"]}
        assert counts == {"churn_risk": 3, "very_disengaged": 0, "somewhat_engaged": 1,
                          "highly_engaged": 1, "power_user": 2}  # fmt: skip
        assert overview["index"]["disengaged"] == pytest.approx(300 / 7)
        assert overview["alerts_24h"] == 4
        assert await view.snapshot()
        assert len((await view.overview())["history"]) == 1
        customer = await view.customer("risk-new")
        assert customer is not None
        assert [a["occurred_at_ms"] for a in customer["alerts"]] == [
            NOW_MS - HOUR_MS,
            NOW_MS - 9 * HOUR_MS,
        ]
        assert await view.customer("nobody") is None

    on_store(scenario)


def test_legacy_keys_of_percent_ids_migrate_and_others_stay(
    on_store: Callable[[Scenario], None],
) -> None:
    """Before ids were escaped, a customer '50%off' lived at ``<prefix>:{50%off}``: the
    migration moves its hash and alert keys (TTL kept) to the escaped keys, leaves an id
    without '%' alone, and a second run moves nothing."""

    async def scenario(store: RedisScoreStore) -> None:
        client, prefix = store.client, store.prefix
        await client.hset(f"{prefix}:{{50%off}}", mapping={"score": "3", "band": "x"})
        await client.zadd(f"{prefix}:alerts:{{50%off}}", {"a1": 1})
        await client.pexpire(f"{prefix}:alerts:{{50%off}}", 600_000)
        await client.hset(f"{prefix}:{{plain}}", mapping={"score": "4"})
        await client.zadd(store.rank_key, {"50%off": 3, "plain": 4})
        assert await store.migrate_legacy_keys() == (2, 0)
        assert await client.hget(store.customer_key("50%off"), "score") == b"3"
        assert store.customer_key("50%off") == f"{prefix}:{{50%25off}}"
        assert not await client.exists(f"{prefix}:{{50%off}}", f"{prefix}:alerts:{{50%off}}")
        alerts_key = f"{prefix}:alerts:{{50%25off}}"
        assert await client.zrange(alerts_key, 0, -1) == [b"a1"]
        assert 0 < await client.pttl(alerts_key) <= 600_000
        assert await client.hget(store.customer_key("plain"), "score") == b"4"
        assert (await store.customer("50%off") or {})["score"] == 3.0
        assert await store.migrate_legacy_keys() == (0, 0)

    on_store(scenario)


def test_at_risk_filters_by_trait_and_account(on_store: Callable[[Scenario], None]) -> None:
    """``trait=name:value`` and ``account`` keep only matching customers, from alerts and
    from the rest of the lowest band; the facets list what the candidates offer."""

    async def scenario(store: RedisScoreStore) -> None:
        profiles = {
            "pro-acme": ({"plan": "pro", "seats": 5}, "acme"),
            "free-acme": ({"plan": "free"}, "acme"),
            "pro-globex": ({"plan": "pro"}, "globex"),
            "no-profile": (None, None),
        }
        for n, (customer, (traits, account)) in enumerate(profiles.items()):
            await put_customer(store, customer, -10 - n)
            if traits is not None:
                await store.client.hset(
                    store.customer_key(customer), "traits", orjson.dumps(traits)
                )
            if account is not None:
                await store.client.hset(store.customer_key(customer), "account", account)
        await store.record_alerts(
            [alert("pro-acme", NOW_MS - HOUR_MS), alert("free-acme", NOW_MS - 2 * HOUR_MS)], NOW_MS
        )
        view = ReadModel(MODEL, store, clock_ms=lambda: NOW_MS)

        async def ids(trait: str | None = None, account: str | None = None) -> list[str]:
            found = await view.at_risk(trait=trait, account=account)
            return [c["customer_id"] for c in found["customers"]]

        everyone = await view.at_risk()
        assert [c["customer_id"] for c in everyone["customers"]] == [
            "pro-acme", "free-acme", "no-profile", "pro-globex"]  # fmt: skip
        assert [c["account"] for c in everyone["customers"]] == ["acme", "acme", None, "globex"]
        facets = {
            "traits": {"plan": ["free", "pro"], "seats": ["5"]},
            "accounts": ["acme", "globex"],
        }
        assert everyone["facets"] == facets
        assert await ids("plan:pro") == ["pro-acme", "pro-globex"]
        assert await ids(account="acme") == ["pro-acme", "free-acme"]
        assert await ids("plan:pro", "acme") == ["pro-acme"]
        assert await ids("seats:5") == ["pro-acme"]
        assert await ids("seats") == ["pro-acme"]
        assert await ids("plan:enterprise") == []
        assert await ids(account="nobody") == []
        assert (await view.at_risk(trait="plan:pro"))["filters"] == {
            "trait": "plan:pro",
            "account": None,
        }

    on_store(scenario)
