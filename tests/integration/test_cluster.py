"""The score store on a real Redis Cluster of three masters (see ``cluster_stack``).

The end-to-end suites run on the cluster too (``deploy_on`` in test_scoring and
test_rescore, two scenarios in test_faults); these tests pin down the cluster-specific
mechanics: one slot per customer, scripts on every master, scans over every master.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import pytest
from redis.cluster import RedisCluster

from devtools.localstack import LocalStack
from stream.adapters.redis_client import async_redis, sync_redis
from stream.adapters.redis_cluster import is_cluster, ping_all
from stream.adapters.redis_keys import customer_key
from stream.adapters.redis_store import RedisScoreStore
from stream.config.settings import Settings
from stream.core.customer import CustomerState
from stream.ports import Applied, Commit, IndexEntry, pack_marks

pytestmark = pytest.mark.integration

CUSTOMERS = [f"c{i}" for i in range(300)] + ["a:b", "x}y", "ünï-cødé", "with space", "{"]


@pytest.fixture
def cluster(cluster_stack: LocalStack) -> Iterator[RedisCluster]:
    client = sync_redis(Settings.from_env(cluster_stack.env()).redis)
    assert isinstance(client, RedisCluster)
    yield client
    client.close()


def _master_of(client: RedisCluster, key: str) -> str:
    return str(client.get_node_from_key(key).name)


def test_a_customer_is_one_slot_and_customers_spread_over_every_master(
    cluster: RedisCluster,
) -> None:
    """CLUSTER KEYSLOT of each customer's key is the slot of its hash tag alone (a customer
    never spans slots), and a few hundred customers land on all three masters."""
    for customer in CUSTOMERS:
        key = customer_key("es-slot", customer)
        tag = key[key.index("{") + 1 : key.index("}", key.index("{") + 1)]
        assert cluster.cluster_keyslot(key) == cluster.cluster_keyslot(tag)
    slots = {cluster.cluster_keyslot(customer_key("es-slot", c)) for c in CUSTOMERS}
    assert len(slots) > 250
    masters = Counter(_master_of(cluster, customer_key("es-slot", c)) for c in CUSTOMERS)
    assert len(masters) == 3 and min(masters.values()) > 50


def _commit(
    customer: str, version: int, score_cp: int, marks: list[tuple[bytes, int]] | None = None
) -> Commit:
    return Commit(customer, version, CustomerState(score_cp=score_cp), {}, 0, "v1",
                  Applied.of(marks=pack_marks(marks or ())))  # fmt: skip


def test_store_commits_scans_and_clears_on_every_master(cluster_stack: LocalStack) -> None:
    """Commits (a script per key, loaded on demand after SCRIPT FLUSH), the version check,
    the applied record read back, the indexes, the emptiness scan and ``clear`` all work
    across masters."""
    settings = Settings.from_env(cluster_stack.env())
    sync = sync_redis(settings.redis)
    assert isinstance(sync, RedisCluster)
    prefix = "es-cluster-store"
    customers = CUSTOMERS[:120]

    async def scenario() -> None:
        client = async_redis(settings.redis)
        assert is_cluster(client)
        store = RedisScoreStore(client, prefix)
        try:
            assert await ping_all(client)
            assert await store.empty()
            sync.script_flush()  # every master, as if fresh or restarted
            first = [_commit(c, 0, 100, [(c.encode()[:8].ljust(8, b"."), 2**41)])
                     for c in customers]  # fmt: skip
            assert sorted((await store.commit(first)).written) == sorted(customers)
            sync.script_flush()
            again = await store.commit([replace(c, expected_version=1) for c in first])
            assert sorted(again.written) == sorted(customers)
            stale = await store.commit([_commit(c, 0, 200) for c in customers[:10]])
            assert sorted(stale.conflicts) == sorted(customers[:10])
            loaded = await store.load(customers)
            assert {v.version for v in loaded.values()} == {2}
            assert {c: v.applied.marks for c, v in loaded.items()} == {
                c.customer_id: c.applied.marks for c in first
            }
            await store.update_indexes(
                IndexEntry(c, i % 4, float(i), 1000 + i) for i, c in enumerate(customers)
            )
            await store.clear_outbox({c: [] for c in customers})
            assert {c for c, _ in await store.due(1, 10**6, 1000)} == set(customers[1::4])
            ids = [c async for chunk in store.customer_ids(50) for c in chunk]
            assert sorted(ids) == sorted(customers)
            keys = sync.keys(f"{prefix}:*", target_nodes=RedisCluster.PRIMARIES)
            holders = {_master_of(sync, k.decode()) for k in keys}
            assert len(holders) == 3, "the test needs keys on every master"
            assert not await store.empty()
            assert await store.clear(batch=7) == len(customers) + 1 + 4  # + rank + due:0..3
            assert await store.empty()
            assert sync.keys(f"{prefix}:*", target_nodes=RedisCluster.PRIMARIES) == []
        finally:
            await client.aclose()

    try:
        asyncio.run(scenario())
    finally:
        sync.close()
