"""What only the Redis store has: its encoding of the applied record and of the outbox
field, and the upgrade from the pre-watermark ``seen`` field. The behaviour both stores
share is in ``test_store_contract.py``."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from stream.adapters.redis_fields import state_fields
from stream.adapters.redis_store import RedisScoreStore
from stream.core.customer import CustomerState
from stream.ports import (
    Applied,
    AppliedMark,
    Commit,
    OutboxAlert,
    pack_marks,
    source_id,
    unpack_marks,
)
from stream.worker.dedup import Seen, after
from tests.integration.conftest import StoreScenario as Scenario

pytestmark = pytest.mark.integration
NOW_MS = 1_800_000_000_000


def _commit(
    version: int, marks: list[AppliedMark], outbox: list[OutboxAlert] | None = None,
) -> Commit:  # fmt: skip
    bronze = CustomerState(score_cp=100, band="very_disengaged")
    applied = Applied.of(marks=pack_marks(marks))
    return Commit("c1", version, bronze, {"page_views": 100}, 0, "m1", applied, outbox or [])


def test_the_dedup_field_is_the_documented_layout(on_store: Callable[[Scenario], None]) -> None:
    """Header (layout 1, watermark count), 20-byte watermarks, 12-byte fingerprint records,
    moments in epoch seconds rounded up; a record with nothing in it deletes the field."""
    src = source_id("clicks", 5)

    async def run(store: RedisScoreStore) -> None:
        key = store.customer_key("c1")
        applied = Applied.of(
            {src: (2**40 + 7, NOW_MS + 1)}, pack_marks([(b"ABCDEFGH", NOW_MS + 9_000)])
        )
        await store.commit([Commit("c1", 0, CustomerState(), {}, 0, "m1", applied)])
        raw = await store.client.hget(key, "dedup")
        watermark = src + struct.pack(">qI", 2**40 + 7, NOW_MS // 1000 + 1)
        record = b"ABCDEFGH" + struct.pack(">I", NOW_MS // 1000 + 9)
        assert raw == struct.pack(">BH", 1, 1) + watermark + record
        await store.commit([_commit(1, [])])
        assert not await store.client.hexists(key, "dedup")

    on_store(run)


def test_a_customer_stored_before_watermarks_keeps_exactly_once_after_the_upgrade(
    on_store: Callable[[Scenario], None],
) -> None:
    """A hash written by the previous release (fingerprints in ``seen``, 4-byte header then
    12-byte records with their window expiry, no ``dedup``) loads with those fingerprints,
    so its applied events stay duplicates until they leave the window; the first commit
    moves the unexpired ones into ``dedup`` and deletes ``seen``."""

    async def run(store: RedisScoreStore) -> None:
        key = store.customer_key("c1")
        old = CustomerState(score_cp=100, band="very_disengaged")
        records = [(b"applied1", NOW_MS // 1000 + 86_400), (b"expired!", NOW_MS // 1000 - 5)]
        seen = struct.pack(">I", NOW_MS // 1000 - 5) + b"".join(
            struct.pack(">8sI", m, e) for m, e in records
        )
        await store.client.hset(key, mapping={**state_fields(old, {}, "m1", 0), "ver": "3",
                                              "seen": seen})  # fmt: skip
        loaded = (await store.load(["c1"]))["c1"]
        assert loaded.version == 3 and loaded.applied.legacy
        assert Seen(loaded.applied).duplicate(None, 0, b"applied1")
        applied = after(loaded.applied, NOW_MS, [(b"new-one!", NOW_MS + 1000)], {}, NOW_MS)
        commit = Commit("c1", 3, old, {}, 0, "m1", applied, before=loaded)
        assert (await store.commit([commit])).written == ["c1"]
        assert not await store.client.hexists(key, "seen")
        again = (await store.load(["c1"]))["c1"]
        assert not again.applied.legacy and again.version == 4
        assert unpack_marks(again.applied.marks) == [
            (b"applied1", (NOW_MS // 1000 + 86_400) * 1000),
            (b"new-one!", NOW_MS + 1000),
        ]

    on_store(run)


def test_one_call_commits_many_customers_each_on_its_own(
    on_store: Callable[[Scenario], None],
) -> None:
    """250 customers in one commit (three script calls of up to 100 keys): the stale ones
    conflict and keep what they had, the others are written, whatever their order."""
    names = [f"c{i}" for i in range(250)]

    def make(name: str, version: int, score_cp: int) -> Commit:
        marks = pack_marks([(name.encode().ljust(8, b"."), NOW_MS)])
        return Commit(
            name, version, CustomerState(score_cp=score_cp), {}, 0, "m1", Applied.of(marks=marks)
        )

    async def run(store: RedisScoreStore) -> None:
        assert sorted((await store.commit([make(n, 0, 100) for n in names])).written) == sorted(
            names
        )
        mixed = [make(n, 0 if i % 3 == 0 else 1, 200) for i, n in enumerate(names)]
        result = await store.commit(mixed)
        assert result.conflicts == names[::3]
        assert result.written == [n for i, n in enumerate(names) if i % 3]
        loaded = await store.load(names)
        assert {n: (v.version, v.state.score_cp) for n, v in loaded.items()} == {
            n: (1, 100) if i % 3 == 0 else (2, 200) for i, n in enumerate(names)
        }

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
        await store.commit([_commit(3, [], [{"alert_id": "z"}])])
        knowing = _commit(4, [])
        knowing.before = (await store.load(["c1"]))["c1"]  # says: an outbox to delete
        assert (await store.commit([knowing])).written == ["c1"]
        assert not await store.client.hexists(store.customer_key("c1"), "outbox")

    on_store(run)


def test_the_public_fields_are_the_read_contract(on_store: Callable[[Scenario], None]) -> None:
    """The hash carries the documented fields; the internal ones stay internal."""

    async def run(store: RedisScoreStore) -> None:
        await store.commit([_commit(0, [(b"a" * 8, NOW_MS + 9_000)])])
        fields = set(await store.client.hkeys(store.customer_key("c1")))
        public = {b"score", b"band", b"updated_at", b"breakdown", b"model_version", b"history"}
        assert fields == public | {b"state", b"ver", b"dedup"}
        view = await store.customer("c1")
        assert view is not None
        assert {k: v for k, v in view.items() if k not in ("history", "trend")} == {
            "customer_id": "c1", "score": 1.0, "band": "very_disengaged",
            "updated_at": "1970-01-01T00:00:00.000+00:00", "breakdown": {"page_views": 1.0},
            "model_version": "m1", "traits": {}, "account": None,
        }  # fmt: skip
        assert "history" in view and "trend" in view

    on_store(run)


def test_an_empty_band_or_applied_record_leaves_no_field(
    on_store: Callable[[Scenario], None],
) -> None:
    """The commit script sets the fields every commit has by position and deletes those of
    them that are empty afterwards: a customer without a band or an applied record has
    no such field, whether the commit knew the customer as read or not."""

    async def run(store: RedisScoreStore) -> None:
        key = store.customer_key("c1")
        banded = _commit(0, [(b"a" * 8, NOW_MS + 9_000)])
        await store.commit([banded])
        assert {b"band", b"dedup"} <= set(await store.client.hkeys(key))
        for version in (1, 2):
            bare = Commit("c1", version, CustomerState(), {}, 0, "m1")
            bare.before = (await store.load(["c1"]))["c1"] if version == 2 else None
            assert (await store.commit([bare])).written == ["c1"]
            fields = set(await store.client.hkeys(key))
            assert not fields & {b"band", b"dedup"}, fields
            assert await store.client.hget(key, "ver") == str(version + 1).encode()

    on_store(run)
