"""Accounts on real Redis and Kafka: the Redis store's account scripts behave as the
in-memory store's (same roll-ups, moves and alerts through the processor), and a real worker
rolls customers into accounts equal to a from-scratch aggregate, with each account alert
published exactly once across a SIGKILL; read back through the CLI and Prometheus."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from redis.cluster import RedisCluster

from devtools.localstack import LocalStack
from stream.adapters.redis_client import async_redis, sync_redis
from stream.adapters.redis_keys import account_key, account_users_key
from stream.adapters.redis_store import RedisScoreStore
from stream.config.settings import Settings
from stream.core.account_settings import AccountSettings
from stream.core.accounts import reference_aggregate
from stream.ports import Incoming, IndexEntry
from stream.worker.processor import BatchProcessor
from tests.doubles import MemoryScoreStore, RecordingPublisher
from tests.factories import NOW_MS, native
from tests.integration.conftest import Deployment, wait_until
from tests.profiles import examples
from tests.unit.test_accounts import MODEL, TOPICS, _steps

pytestmark = pytest.mark.integration
ACME = "Acme {EU} 100%"  # braces and % are escaped in the key's hash tag
BETA = "beta"
MEMBERS = {"u1": ACME, "u2": ACME, "u3": ACME, "u4": BETA, "u5": BETA}


def test_redis_accounts_behave_as_the_in_memory_store(
    on_store: Callable[[Callable[[RedisScoreStore], Any]], None],
) -> None:
    """The processor over the same steps: the Redis store ends with the in-memory store's
    account users, scores, bands, histories and published account alerts."""
    memory, memory_out = MemoryScoreStore(), RecordingPublisher()
    steps = _steps()

    async def play(store: Any, publisher: RecordingPublisher) -> None:
        clock = [0]
        worker = BatchProcessor(MODEL, store, publisher, TOPICS, clock_ms=lambda: clock[0])
        for now, batch in steps:
            clock[0] = now
            if batch is None:
                await worker.sweep([0, 1])
            else:
                await worker.process(batch)
        for now, batch in steps[:2]:  # a replay of the batches changes nothing
            clock[0] = now
            await BatchProcessor(MODEL, store, publisher, TOPICS,
                                 clock_ms=lambda: clock[0]).process(batch or [])  # fmt: skip

    async def scenario(store: RedisScoreStore) -> None:
        await play(memory, memory_out)
        redis_out = RecordingPublisher()
        await play(store, redis_out)
        assert _account_alerts(redis_out) == _account_alerts(memory_out) != []
        for account_id, row in memory.accounts.items():
            users = await store.client.zrange(account_users_key(store.prefix, account_id), 0, -1,
                                              withscores=True)  # fmt: skip
            assert {m.decode(): round(s * 100) for m, s in users} == row.users
            loaded = await store.roll_accounts([], 3, also=[account_id])
            assert loaded[account_id].state == row.state
            assert loaded[account_id].rollup.sum_cp == sum(row.users.values())
            assert loaded[account_id].outbox == []
            view = await store.accounts.reads.view(account_id, MODEL.bands, steps[-1][0])
            assert view is not None and view["users"] == len(row.users)
            assert [a["alert_id"] for a in view["alerts"]] == [a["alert_id"] for a in row.alerts]
        ranked = await store.accounts.reads.listing(MODEL.bands, None, 10)
        assert {r["account_id"]: r["score"] for r in ranked} == memory.account_rank

    on_store(scenario)


_CUSTOMER = st.sampled_from([f"u{i}" for i in range(8)])
_ACCOUNT = st.sampled_from(["a", "b", "{c}"])
_updates = st.lists(st.tuples(_CUSTOMER, _ACCOUNT, st.integers(-5000, 15_000)), min_size=1,
                    max_size=40)  # fmt: skip


@hypothesis_settings(max_examples=examples(25), deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(_updates, st.integers(1, 10), st.booleans())
def test_the_roll_script_keeps_sums_and_tops_of_any_update_sequence(
    on_store: Callable[[Callable[[RedisScoreStore], Any]], None],
    updates: list[tuple[str, str, int]],
    size: int,
    cached: bool,
) -> None:
    """Any sequence of score updates and moves, in batches of any size, with or without the
    caller's membership cache, leaves each account's users, sum and top scores equal to a
    from-scratch fold (hypothesis, real Redis, an empty prefix per example)."""

    async def scenario(store: RedisScoreStore) -> None:
        members: dict[str, str] | None = {} if cached else None
        final: dict[str, tuple[str, int]] = {}
        for start in range(0, len(updates), size):
            last = {u: (a, cp) for u, a, cp in updates[start : start + size]}  # one per customer
            entries = [IndexEntry(u, 0, cp / 100, None, account=a) for u, (a, cp) in last.items()]
            await store.roll_accounts(entries, 3, members=members)
            final.update(last)
        loaded = await store.roll_accounts([], 3, also=["a", "b", "{c}"])
        for account in ("a", "b", "{c}"):
            scores = sorted((cp for a, cp in final.values() if a == account), reverse=True)
            rollup = loaded[account].rollup
            assert (rollup.users, rollup.sum_cp, rollup.top_cp) == (
                len(scores), sum(scores), tuple(scores[:3]))  # fmt: skip

    on_store(scenario)


def test_accounts_on_a_redis_cluster(cluster_stack: LocalStack) -> None:
    """Twenty accounts (ids with braces, % and Unicode) over three masters: each account's
    keys share its slot, roll-ups equal the in-memory store's, and ``clear`` removes them."""
    settings = Settings.from_env(cluster_stack.env())
    sync = sync_redis(settings.redis)
    assert isinstance(sync, RedisCluster)
    names = [f"acct-{i}" for i in range(16)] + ["x}y", "{", "ünï-cødé", "50%"]
    offsets = itertools.count()

    def join(customer: int) -> Incoming:
        doc = {"type": "group", "userId": f"c{customer}", "groupId": names[customer % 20],
               "messageId": f"g{customer}", "timestamp": NOW_MS - 10}  # fmt: skip
        return Incoming(TOPICS.clickstream, customer % 2, next(offsets), f"c{customer}".encode(),
                        orjson.dumps(doc), NOW_MS)  # fmt: skip

    def view(customer: int, n: int) -> Incoming:
        value = native("conversion" if n % 3 else "page_view", f"c{customer}", NOW_MS - 5,
                       f"e{customer}-{n}")  # fmt: skip
        return Incoming(TOPICS.clickstream, customer % 2, next(offsets), f"c{customer}".encode(),
                        value, NOW_MS)  # fmt: skip

    batch = [join(c) for c in range(60)] + [view(c, n) for c in range(60) for n in range(c % 4)]
    memory = MemoryScoreStore()

    async def scenario() -> None:
        client = async_redis(settings.redis)
        store = RedisScoreStore(client, "es-cluster-accounts")
        try:
            await store.clear()
            for target in (memory, store):
                worker = BatchProcessor(MODEL, target, RecordingPublisher(), TOPICS,
                                        clock_ms=lambda: NOW_MS)  # fmt: skip
                await worker.process(batch)
            loaded = await store.roll_accounts([], 3, also=names)
            for name in names:
                assert loaded[name].state == memory.accounts[name].state
                assert loaded[name].rollup.users == len(memory.accounts[name].users) == 3
                key = account_key(store.prefix, name)
                slots = {sync.cluster_keyslot(k) for k in (key, f"{key}:users", f"{key}:alerts")}
                assert len(slots) == 1
            masters = {
                str(sync.get_node_from_key(account_key(store.prefix, n)).name) for n in names
            }
            assert len(masters) == 3
            assert await store.clear() > 0 and await store.empty()
        finally:
            await client.aclose()

    try:
        asyncio.run(scenario())
    finally:
        sync.close()


def _account_alerts(publisher: RecordingPublisher) -> list[tuple[str, str, int]]:
    docs = [orjson.loads(m.value) for m in publisher.on(TOPICS.alerts)]
    return sorted((d["account_id"], d["alert_id"], d["occurred_at_ms"])
                  for d in docs if d.get("scope") == "account")  # fmt: skip


def _model(tmp: Path) -> Path:
    source = Path(__file__).parents[2] / "stream/config/models/default.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["version"] = "accounts-test"
    # score_drop over one second: against the account's previous score in the current bucket.
    doc["accounts"] = {"aggregate": "mean", "alerts": {
        "churn_risk": True, "score_drop": {"percent": 30, "over": "1s"}}}  # fmt: skip
    path = tmp / "accounts-model.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _send(d: Deployment, customer: str, kind: str, at_ms: int, tag: str) -> None:
    role = "app_installs" if kind.startswith("app_") else "clickstream"
    d.send(role, customer, {"event_id": f"{customer}-{tag}", "customer_id": customer,
                            "type": kind, "timestamp": at_ms})  # fmt: skip


def _join(d: Deployment, customer: str, account: str, at_ms: int) -> None:
    call = {"type": "group", "userId": customer, "groupId": account,
            "messageId": f"g-{customer}-{account}", "timestamp": at_ms}  # fmt: skip
    d.send("clickstream", customer, call)


def _reference(d: Deployment, settings: AccountSettings) -> dict[str, dict[str, int]]:
    """Each account's users and their scores (centipoints), from the customers' hashes."""
    members: dict[str, dict[str, int]] = {}
    for customer in MEMBERS:
        fields = d.customer(customer)
        if fields.get("account"):
            members.setdefault(fields["account"], {})[customer] = round(
                float(fields["score"]) * 100
            )
    return members


def _stored(d: Deployment, account: str) -> tuple[dict[str, int], dict[str, str]]:
    prefix = d.settings.redis_prefix
    users = d.redis.zrange(account_users_key(prefix, account), 0, -1, withscores=True)
    fields = d.redis.hgetall(account_key(prefix, account))
    return ({m.decode(): round(s * 100) for m, s in users},
            {k.decode(): v.decode() for k, v in fields.items()})  # fmt: skip


def _matches_reference(d: Deployment, settings: AccountSettings) -> bool:
    """Whether every account's members, score and user count equal the reference. The
    members (rolled up first) and the account's hash (committed after) are two writes, so
    a read between them is "not yet" (a new member can leave the mean where it was)."""
    for account, users in _reference(d, settings).items():
        stored_users, fields = _stored(d, account)
        expected = reference_aggregate(settings, list(users.values()))
        assert expected is not None
        if stored_users != users or (fields.get("score"), fields.get("users")) != (
            f"{expected / 100:g}",
            str(len(users)),
        ):
            return False
        assert fields["band"] == settings.bands.band_for(expected / 100)
    return True


@pytest.mark.fault
def test_accounts_roll_up_and_alert_once_across_a_sigkill(
    deploy: Callable[..., Deployment], tmp_path: Path
) -> None:
    d = deploy(model=str(_model(tmp_path)))
    settings = AccountSettings(aggregate="mean")
    worker = d.start_worker()
    now = int(time.time() * 1000)
    for customer in MEMBERS:  # scores first, so no account ever sees a user at 0
        for n in range(3):
            _send(d, customer, "conversion", now - 50_000 + n, f"c{n}")
    d.flush()
    wait_until(lambda: all(d.customer(c).get("score") == "32" for c in MEMBERS))
    for customer, account in MEMBERS.items():
        _join(d, customer, BETA if customer == "u3" else account, now - 45_000)
    d.flush()
    wait_until(lambda: d.customer("u3").get("account") == BETA)
    _join(d, "u3", ACME, now - 40_000)  # a move: beta -> acme
    d.flush()
    wait_until(lambda: d.customer("u3").get("account") == ACME)
    wait_until(lambda: _matches_reference(d, settings), timeout_s=60)
    assert set(_stored(d, ACME)[0]) == {"u1", "u2", "u3"} and set(_stored(d, BETA)[0]) == {
        "u4",
        "u5",
    }
    assert _stored(d, ACME)[1]["score"] == "32"  # 3 conversions + a day of regularity

    for customer in ("u1", "u2", "u3"):  # acme falls into churn risk: -8 each
        _send(d, customer, "app_uninstall", now - 30_000, "x")
    d.flush()
    expected = {(ACME, "account_churn_risk"), (ACME, "account_score_drop")}

    def both(alerts: list[dict[str, Any]]) -> bool:
        return expected <= {(a.get("account_id"), a["type"]) for a in alerts}

    d.alerts(both, timeout_s=120)
    worker.kill()  # before the batch's offsets are surely committed
    worker = d.start_worker()
    for customer in ("u1", "u2", "u3"):  # a producer retry: the same events again
        _send(d, customer, "app_uninstall", now - 30_000, "x")
    _send(d, "u4", "click", now - 20_000, "sentinel")
    d.flush()
    wait_until(lambda: "regularity" in d.customer("u4").get("breakdown", "") and
               d.customer("u4").get("score") == "32.5")  # fmt: skip
    wait_until(lambda: _matches_reference(d, settings), timeout_s=60)
    alerts = [a for a in d.alerts(both, timeout_s=60) if a.get("scope") == "account"]
    fired = Counter((a["account_id"], a["type"]) for a in alerts)
    assert fired == dict.fromkeys(expected, 1), fired  # and none for beta (never fell)
    assert len({a["alert_id"] for a in alerts}) == len(alerts)
    churn = next(a for a in alerts if a["type"] == "account_churn_risk")
    assert churn["score"] == -8 and churn["band"] == "churn_risk" and churn["users"] == 3
    assert "customer_id" not in churn
    fields = _stored(d, ACME)[1]
    assert fields["band"] == "churn_risk" and fields["aggregate"] == "mean"
    assert not fields.get("outbox")
    assert d.redis.zscore(f"{d.settings.redis_prefix}:acct:rank", ACME) == -8

    _read_back(d, worker, expected)


def _read_back(d: Deployment, worker: Any, expected: set[tuple[str, str]]) -> None:
    """The CLI (account and at-risk list), and Prometheus without ids."""
    env = {**os.environ, **d.env}
    cli = subprocess.run([sys.executable, "-m", "stream.cli.main", "account", ACME, "--json"],
                         env=env, capture_output=True, text=True, check=True)  # fmt: skip
    view = json.loads(cli.stdout)
    assert view["score"] == -8 and view["users"] == 3 and view["band"] == "churn_risk"
    assert {a["type"] for a in view["alerts"]} == {t for _, t in expected}
    assert [u["customer_id"] for u in view["top_users"]] == ["u3", "u2", "u1"]
    text = subprocess.run([sys.executable, "-m", "stream.cli.main", "account", ACME],
                          env=env, capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert f"{ACME}: score -8 (churn_risk), 3 users, aggregate mean" in text
    churn_line = next(line for line in text.splitlines() if "account_churn_risk" in line)
    assert churn_line.endswith("-> churn_risk  -8")  # the band before depends on batching
    listing = subprocess.run([sys.executable, "-m", "stream.cli.main", "accounts"],
                             env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert ACME in listing.stdout and BETA not in listing.stdout

    def exported() -> str:
        return (worker.get("/metrics") or b"").decode()

    wait_until(lambda: 'engagement_accounts{band="churn_risk"} 1.0' in exported(), timeout_s=60)
    metrics = exported()
    assert 'engagement_accounts{band="highly_engaged"} 0.0' in metrics
    assert ACME not in metrics and "u1" not in metrics
