"""What only the Redis store has: its encoding of fingerprints and of the outbox field.
The behaviour both stores share is in ``test_store_contract.py``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stream.adapters.redis_store import RedisScoreStore
from stream.core.customer import CustomerState
from stream.ports import AppliedMark, Commit, OutboxAlert
from tests.integration.conftest import StoreScenario as Scenario

pytestmark = pytest.mark.integration
NOW_MS = 1_800_000_000_000


def _commit(
    version: int, marks: list[AppliedMark], outbox: list[OutboxAlert] | None = None,
    trim_ms: int = NOW_MS,
) -> Commit:  # fmt: skip
    bronze = CustomerState(score_cp=100, band="very_disengaged")
    return Commit("c1", version, bronze, {"page_views": 100}, 0, "m1", marks, outbox or [],
                  trim_before_ms=trim_ms)  # fmt: skip


def test_a_shifted_fingerprint_is_not_a_match(
    on_store: Callable[[Scenario], None],
) -> None:
    """Bytes that straddle two records never count as an applied fingerprint."""

    async def run(store: RedisScoreStore) -> None:
        await store.commit([_commit(0, [(b"ABCDEFGH", NOW_MS + 9_000)])])
        straddling = b"EFGH" + (NOW_MS // 1000 + 9).to_bytes(4, "big")
        result = await store.commit([_commit(1, [(straddling, NOW_MS + 9_000)])])
        assert result.written == ["c1"]

    on_store(run)


def test_expired_fingerprints_are_dropped_from_the_packed_field(
    on_store: Callable[[Scenario], None],
) -> None:
    """Once its expiry has passed, a fingerprint's record leaves ``seen``; the header holds
    the earliest expiry left."""

    async def run(store: RedisScoreStore) -> None:
        key = store.customer_key("c1")
        await store.commit(
            [_commit(0, [(b"old-mark", NOW_MS + 1000), (b"new-mark", NOW_MS + 60_000)])]
        )
        later = _commit(1, [(b"3rd-mark", NOW_MS + 90_000)], trim_ms=NOW_MS + 30_000)
        assert (await store.commit([later])).written == ["c1"]
        seen = await store.client.hget(key, "seen")
        assert len(seen) == 4 + 2 * 12
        assert b"old-mark" not in seen and b"new-mark" in seen and b"3rd-mark" in seen
        assert int.from_bytes(seen[:4], "big") == (NOW_MS + 60_000) // 1000

    on_store(run)


def test_an_empty_outbox_is_not_stored(on_store: Callable[[Scenario], None]) -> None:
    """An empty outbox deletes the field, so a cleared outbox costs no memory."""

    async def run(store: RedisScoreStore) -> None:
        await store.commit([_commit(0, [], [{"alert_id": "x"}])])
        assert await store.client.hexists(store.customer_key("c1"), "outbox")
        await store.commit([_commit(1, [])])
        assert not await store.client.hexists(store.customer_key("c1"), "outbox")
        await store.commit([_commit(2, [], [{"alert_id": "y"}])])
        await store.clear_outbox({"c1": [{"alert_id": "y"}]})
        assert not await store.client.hexists(store.customer_key("c1"), "outbox")

    on_store(run)


def test_the_public_fields_are_the_read_contract(on_store: Callable[[Scenario], None]) -> None:
    """The hash carries the README's fields; the internal ones stay internal."""

    async def run(store: RedisScoreStore) -> None:
        await store.commit([_commit(0, [(b"a" * 8, NOW_MS + 9_000)])])
        fields = set(await store.client.hkeys(store.customer_key("c1")))
        public = {b"score", b"band", b"updated_at", b"breakdown", b"model_version", b"history"}
        assert fields == public | {b"state", b"ver", b"seen"}
        view = await store.customer("c1")
        assert view is not None
        assert {k: v for k, v in view.items() if k not in ("history", "trend")} == {
            "customer_id": "c1", "score": 1.0, "band": "very_disengaged",
            "updated_at": "1970-01-01T00:00:00.000+00:00", "breakdown": {"page_views": 1.0},
            "model_version": "m1", "traits": {}, "account": None,
        }  # fmt: skip
        assert "history" in view and "trend" in view

    on_store(run)
