"""The Redis store's commit script on a real Redis: versions, duplicates, expiry, outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from devtools.localstack import LocalStack
from stream.adapters.redis_client import async_redis
from stream.adapters.redis_store import Commit, RedisScoreStore
from stream.config.settings import Settings

pytestmark = pytest.mark.integration
NOW_MS = 1_800_000_000_000


Scenario = Callable[[RedisScoreStore], Awaitable[None]]


@pytest.fixture
def on_store(stack: LocalStack, request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    """Run a scenario against a store on the shared Redis, under a prefix of its own."""

    def run(scenario: Scenario) -> None:
        async def main() -> None:
            client = async_redis(Settings(redis_url=stack.redis_url))
            try:
                await scenario(RedisScoreStore(client, f"store-{request.node.name}"))
            finally:
                await client.aclose()

        asyncio.run(main())

    return run


def _commit(version: str, marks: list[tuple[bytes, int]], **fields: str) -> Commit:
    return Commit("c1", version, {"score": "1", **fields}, marks, trim_before_ms=NOW_MS)


def test_commit_checks_the_version(on_store: Callable[[Scenario], None]) -> None:
    """A commit based on a stale version writes nothing and is reported as a conflict."""

    async def run(store: RedisScoreStore) -> None:
        first = await store.commit([_commit("0", [(b"a" * 8, NOW_MS + 9_000)])])
        assert first.written == ["c1"]
        stale = await store.commit([_commit("0", [(b"b" * 8, NOW_MS + 9_000)], score="7")])
        assert stale.conflicts == ["c1"]
        assert (await store.load(["c1"]))["c1"].version == "1"

    on_store(run)


def test_applied_fingerprints_are_refused_by_position(
    on_store: Callable[[Scenario], None],
) -> None:
    """Only the new fingerprints seen before are reported, and nothing is written."""

    async def run(store: RedisScoreStore) -> None:
        await store.commit([_commit("0", [(b"a" * 8, NOW_MS + 9_000), (b"b" * 8, NOW_MS + 9_000)])])
        again = [(b"c" * 8, NOW_MS + 9_000), (b"b" * 8, NOW_MS + 9_000)]
        result = await store.commit([_commit("1", again, score="9")])
        assert result.duplicates == {"c1": {b"b" * 8}}
        assert (await store.load(["c1"]))["c1"].version == "1"
        ok = await store.commit([_commit("1", again[:1], score="9")])
        assert ok.written == ["c1"]

    on_store(run)


def test_a_shifted_fingerprint_is_not_a_match(
    on_store: Callable[[Scenario], None],
) -> None:
    """Bytes that straddle two records never count as an applied fingerprint."""

    async def run(store: RedisScoreStore) -> None:
        await store.commit([_commit("0", [(b"ABCDEFGH", NOW_MS + 9_000)])])
        straddling = b"EFGH" + (NOW_MS // 1000 + 9).to_bytes(4, "big")
        result = await store.commit([_commit("1", [(straddling, NOW_MS + 9_000)])])
        assert result.written == ["c1"]

    on_store(run)


def test_expired_fingerprints_are_dropped(on_store: Callable[[Scenario], None]) -> None:
    """Once its expiry has passed, a fingerprint is trimmed and the event may apply again."""

    async def run(store: RedisScoreStore) -> None:
        key = store.customer_key("c1")
        await store.commit(
            [_commit("0", [(b"old-mark", NOW_MS + 1000), (b"new-mark", NOW_MS + 60_000)])]
        )
        later = Commit("c1", "1", {"score": "2"}, [(b"3rd-mark", NOW_MS + 90_000)],
                       trim_before_ms=NOW_MS + 30_000)  # fmt: skip
        assert (await store.commit([later])).written == ["c1"]
        seen = await store.client.hget(key, "seen")
        assert len(seen) == 4 + 2 * 12
        assert b"old-mark" not in seen and b"new-mark" in seen and b"3rd-mark" in seen
        assert int.from_bytes(seen[:4], "big") == (NOW_MS + 60_000) // 1000

    on_store(run)


def test_an_empty_outbox_is_not_stored(on_store: Callable[[Scenario], None]) -> None:
    """Empty field values delete the field, so a cleared outbox costs no memory."""

    async def run(store: RedisScoreStore) -> None:
        await store.commit([_commit("0", [], outbox='[{"alert_id": "x"}]')])
        assert await store.client.hexists(store.customer_key("c1"), "outbox")
        await store.commit([_commit("1", [], outbox="")])
        assert not await store.client.hexists(store.customer_key("c1"), "outbox")

    on_store(run)
