"""One behavioural contract, two stores: the real ``RedisScoreStore`` (on the local
redis-server) and the in-memory ``MemoryScoreStore`` the processor's unit tests use.
Every case runs against both, and random operation sequences must give both the same
answers, so the fake cannot drift from the real store."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.localstack import LocalStack
from stream.adapters.redis_client import async_redis
from stream.adapters.redis_store import RedisScoreStore
from stream.config.security import RedisConnection
from stream.core.alerts import AlertGate
from stream.core.customer import CustomerState
from stream.core.profile import Profile
from stream.core.segments import Membership, rollup
from stream.ports import (
    Applied,
    AppliedMark,
    Commit,
    IndexEntry,
    OutboxAlert,
    ScoreStore,
    Watermark,
    pack_marks,
    source_id,
    unpack_marks,
)
from tests.doubles import MemoryScoreStore
from tests.profiles import examples

pytestmark = pytest.mark.integration
NOW_MS = 1_800_000_000_000
MODEL_VERSION = "contract-1"
Scenario = Callable[[ScoreStore], Awaitable[None]]
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def redis_url(stack: LocalStack) -> str:
    return stack.redis_url


def on_store(kind: str, redis_url: str, scenario: Scenario) -> None:
    """Run a scenario against a fresh store of the given kind."""

    async def main() -> None:
        if kind == "memory":
            await scenario(MemoryScoreStore())
            return
        client = async_redis(RedisConnection(redis_url))
        try:
            await scenario(RedisScoreStore(client, f"contract-{next(_prefixes)}"))
        finally:
            await client.aclose()

    asyncio.run(main())


@pytest.fixture(params=["memory", "redis"])
def run(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Callable[[Scenario], None]]:
    yield lambda scenario: on_store(request.param, redis_url, scenario)


def state(score_cp: int = 1250, band: str | None = "very_disengaged") -> CustomerState:
    buckets = {20_800: {"page_views": 250, "_active": 1}, 20_801: {"clicks": 1000}}
    gate = AlertGate(armed=False, last_alert_ms=NOW_MS - 5000)
    return CustomerState(buckets, score_cp, band, gate, NOW_MS - 7)


def commit(
    version: int,
    marks: list[AppliedMark] = (),  # type: ignore[assignment]
    outbox: list[OutboxAlert] = (),  # type: ignore[assignment]
    watermarks: dict[bytes, Watermark] | None = None,
    customer: str = "c1",
    score_cp: int = 1250,
) -> Commit:
    return Commit(customer, version, state(score_cp), {"page_views": score_cp}, 3, MODEL_VERSION,
                  Applied.of(watermarks, pack_marks(marks)), outbox)  # fmt: skip


def alert(alert_id: str) -> OutboxAlert:
    return {"alert_id": alert_id, "type": "churn_risk_entered", "score": -1.5, "reasons": []}


def test_an_unknown_customer_reads_as_new(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: ScoreStore) -> None:
        loaded = (await store.load(["nobody"]))["nobody"]
        assert (loaded.state, loaded.version, loaded.outbox) == (CustomerState(), 0, [])

    run(scenario)


def test_a_commit_reads_back_and_a_stale_one_conflicts(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: ScoreStore) -> None:
        first = await store.commit([commit(0, [(b"a" * 8, NOW_MS + 9000)], [alert("x")])])
        assert (first.written, first.conflicts) == (["c1"], [])
        stale = await store.commit([commit(0, [(b"b" * 8, NOW_MS + 9000)], score_cp=7)])
        assert (stale.written, stale.conflicts) == ([], ["c1"])
        loaded = (await store.load(["c1"]))["c1"]
        assert (loaded.state, loaded.version, loaded.outbox) == (state(), 1, [alert("x")])
        assert unpack_marks(loaded.applied.marks) == [(b"a" * 8, NOW_MS + 9000)], "not the stale"

    run(scenario)


def test_a_profile_is_written_with_its_commit_and_kept_by_commits_without_one(
    run: Callable[[Scenario], None],
) -> None:
    """Traits and account commit atomically with the state; a later commit without a
    profile leaves them; a Unicode id with braces and '%' reads back under its own key."""
    profile = Profile({"plan": "pro", "名前": "José"}, {"plan": 5, "名前": 5}, "Acme {EU}", 6)
    who = "josé {50%}"

    async def scenario(store: ScoreStore) -> None:
        first = commit(0, [(b"p" * 8, NOW_MS + 9000)], customer=who)
        first.profile = profile
        assert (await store.commit([first])).written == [who]
        assert (await store.commit([commit(1, [(b"q" * 8, NOW_MS + 9000)], customer=who)])).written
        loaded = await store.load([who, "c1"])
        assert (loaded[who].version, loaded[who].profile) == (2, profile)
        assert loaded["c1"].profile == Profile()
        cleared = commit(2, customer=who)
        cleared.profile = Profile()
        await store.commit([cleared])
        assert (await store.load([who]))[who].profile == Profile()

    run(scenario)


def test_the_applied_record_reads_back_as_written_to_the_second(
    run: Callable[[Scenario], None],
) -> None:
    """Watermarks and fingerprints (a fingerprint twice too: each application is a record)
    read back as written, their moments rounded up to the second; the next commit replaces
    the record, and an empty one reads back empty. The store refuses nothing by
    fingerprint: the duplicate check is the caller's."""
    src = source_id("events", 3)

    async def scenario(store: ScoreStore) -> None:
        marks = [(b"a" * 8, NOW_MS + 1500), (b"b" * 8, NOW_MS + 9000), (b"a" * 8, NOW_MS)]
        await store.commit([commit(0, marks, watermarks={src: (41, NOW_MS + 1)})])
        applied = (await store.load(["c1"]))["c1"].applied
        assert dict(applied.watermarks) == {src: (41, NOW_MS + 1000)}
        expected = [(b"a" * 8, NOW_MS + 2000), (b"b" * 8, NOW_MS + 9000), (b"a" * 8, NOW_MS)]
        assert unpack_marks(applied.marks) == expected
        assert (await store.commit([commit(1, marks[:1])])).written == ["c1"]
        assert (await store.load(["c1"]))["c1"].applied == Applied.of(
            {}, pack_marks([(b"a" * 8, NOW_MS + 2000)])
        )
        assert (await store.commit([commit(2)])).written == ["c1"]
        assert (await store.load(["c1"]))["c1"].applied == Applied.of()

    run(scenario)


def test_a_commit_that_knows_the_customer_leaves_it_exactly_as_one_that_does_not(
    run: Callable[[Scenario], None],
) -> None:
    """A commit carrying the customer as read (``before``, which spares the store deleting
    fields it knows are absent) reads back exactly like one without it, whether the outbox,
    the applied record and the band come or go."""
    src = source_id("events", 0)

    async def scenario(store: ScoreStore) -> None:
        steps = [commit(0, [(b"a" * 8, NOW_MS + 9000)], [alert("x")], {src: (1, NOW_MS + 1)}),
                 commit(1), commit(2, outbox=[alert("y")]),
                 commit(3, [(b"b" * 8, NOW_MS)])]  # fmt: skip
        steps[1].state = CustomerState()
        for step in steps:
            step.before = (await store.load(["c1"]))["c1"]
            assert (await store.commit([step])).written == ["c1"]
            got = (await store.load(["c1"]))["c1"]
            blind = dataclasses.replace(step, customer_id="c2", expected_version=got.version - 1,
                                        before=None)  # fmt: skip
            assert (await store.commit([blind])).written == ["c2"]
            other = (await store.load(["c2"]))["c2"]
            assert (got.state, got.outbox, got.applied) == (other.state, other.outbox,
                                                            other.applied)  # fmt: skip
            assert got.state == step.state and got.outbox == list(step.outbox)

    run(scenario)


def test_the_outbox_is_cleared_only_if_unchanged(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: ScoreStore) -> None:
        await store.commit([commit(0, outbox=[alert("a")])])
        await store.clear_outbox({"c1": [alert("a"), alert("b")], "nobody": [alert("a")]})
        assert (await store.load(["c1"]))["c1"].outbox == [alert("a")]
        await store.commit([commit(1, outbox=[alert("a"), alert("b")])])
        await store.clear_outbox({"c1": [alert("a")]})
        assert (await store.load(["c1"]))["c1"].outbox == [alert("a"), alert("b")]
        await store.clear_outbox({"c1": [alert("a"), alert("b")]})
        loaded = (await store.load(["c1"]))["c1"]
        assert (loaded.outbox, loaded.version) == ([], 2)

    run(scenario)


def test_the_due_index_lists_due_customers_earliest_first(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(store: ScoreStore) -> None:
        await store.update_indexes([
            IndexEntry("b", 0, 1.0, NOW_MS - 10), IndexEntry("a", 0, 2.0, NOW_MS - 10),
            IndexEntry("c", 0, 3.0, NOW_MS - 20), IndexEntry("d", 0, 4.0, NOW_MS + 1),
            IndexEntry("e", 1, 5.0, NOW_MS - 30), IndexEntry("f", 0, 6.0, None),
        ])  # fmt: skip
        assert await store.due(0, NOW_MS, 10) == [("c", NOW_MS - 20), ("a", NOW_MS - 10),
                                                  ("b", NOW_MS - 10)]  # fmt: skip
        assert await store.due(0, NOW_MS, 2) == [("c", NOW_MS - 20), ("a", NOW_MS - 10)]
        await store.update_indexes(
            [IndexEntry("c", 0, 3.0, None), IndexEntry("a", 0, 2.0, NOW_MS + 5)]
        )
        await store.update_indexes([IndexEntry("c", 0, 3.0, None)])  # idempotent
        assert await store.due(0, NOW_MS + 5, 10) == [("b", NOW_MS - 10), ("d", NOW_MS + 1),
                                                      ("a", NOW_MS + 5)]  # fmt: skip
        assert await store.due(1, NOW_MS, 10) == [("e", NOW_MS - 30)]

    run(scenario)


Operation = tuple[str, Any]
_MARKS = [bytes([65 + i]) * 8 for i in range(5)]
_customer = st.sampled_from(["c1", "c2"])
_alerts = st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True)
_marks = st.lists(
    st.tuples(st.sampled_from(_MARKS), st.integers(0, 5000)), max_size=3, unique_by=lambda m: m[0]
)
_operations = st.one_of(
    st.tuples(st.just("commit"),
              st.tuples(_customer, st.integers(0, 3), _marks, _alerts, st.integers(0, 6000))),
    st.tuples(st.just("clear"), st.tuples(_customer, _alerts.map(lambda a: a or ["a"]))),
    st.tuples(st.just("index"), st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 1),
                                           st.one_of(st.none(), st.integers(-50, 50)))),
    st.tuples(st.just("due"),
              st.tuples(st.integers(0, 1), st.integers(-50, 50), st.integers(1, 3))),
    st.tuples(st.just("load"), _customer),
)  # fmt: skip


async def _apply(store: ScoreStore, operation: Operation) -> object:
    kind, args = operation
    if kind == "commit":
        customer, version, marks, alerts, offset = args
        fingerprints = [(m, NOW_MS + e) for m, e in marks]
        watermarks = {source_id("t", offset % 2): (offset, NOW_MS + offset)}
        result = await store.commit([commit(version, fingerprints, [alert(a) for a in alerts],
                                           watermarks, customer, 100 * version)])  # fmt: skip
        return result.written, result.conflicts
    if kind == "clear":
        await store.clear_outbox({args[0]: [alert(a) for a in args[1]]})
        return None
    if kind == "index":
        customer, part, due = args
        await store.update_indexes(
            [IndexEntry(customer, part, 1.0, None if due is None else NOW_MS + due)]
        )
        return None
    if kind == "due":
        part, at, limit = args
        return await store.due(part, NOW_MS + at, limit)
    loaded = (await store.load([args]))[args]
    return loaded.state, loaded.version, loaded.outbox, loaded.applied


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(_operations, min_size=1, max_size=12))
def test_random_operations_get_the_same_answers(
    redis_url: str, operations: list[Operation]
) -> None:
    """Any sequence of operations gets equal answers from the Redis and in-memory stores."""

    async def both() -> None:
        memory = MemoryScoreStore()
        client = async_redis(RedisConnection(redis_url))
        try:
            real = RedisScoreStore(client, f"contract-{next(_prefixes)}")
            for operation in operations:
                assert await _apply(real, operation) == await _apply(memory, operation), operation
        finally:
            await client.aclose()

    asyncio.run(both())


_SEG_ENTRY = st.tuples(
    st.sampled_from(["c1", "c2", "c3", "c4"]),
    st.sampled_from(["churn_risk", "somewhat_engaged", "power_user"]), st.integers(-500, 5000),
    st.sampled_from(["free", "pro", "team", "edu", "(none)"]), st.sampled_from(["DE", "FR"]),
)  # fmt: skip


def _segment_entries(batch: list[tuple[str, str, int, str, str]]) -> list[IndexEntry]:
    """One index entry per customer (the last of the batch), partition 0 or 1 by customer."""
    entries: dict[str, IndexEntry] = {}
    for c, band, score, plan, country in batch:
        member = Membership(band, score, (("plan", plan), ("country", country)), 2)
        entries[c] = IndexEntry(c, int(c[1:]) % 2, score / 100, None, segments=member)
    return list(entries.values())


async def _segment_counts(store: ScoreStore) -> dict[str, int]:
    """The segment counters summed over partitions, from either store."""
    if isinstance(store, MemoryScoreStore):
        total: dict[str, int] = {}
        for counts in store.seg_counts.values():
            for name, amount in counts.items():
                total[name] = total.get(name, 0) + amount
        return total
    assert isinstance(store, RedisScoreStore)
    return await store.segments.counts()


def _segment_reference(written: list[list[IndexEntry]]) -> dict[str, int]:
    """From scratch: the first two plans ever written are tracked, the rest are (other);
    the rollup of each customer's latest membership."""
    tracked: list[str] = []
    latest: dict[str, Membership] = {}
    for entries in written:
        for entry in entries:
            assert entry.segments is not None
            plan = entry.segments.values[0][1]
            if plan != "(none)" and plan not in tracked and len(tracked) < 2:
                tracked.append(plan)
            kept = plan if plan == "(none)" or plan in tracked else "(other)"
            values = (("plan", kept), entry.segments.values[1])
            latest[entry.customer_id] = dataclasses.replace(entry.segments, values=values)
    return rollup(latest.values())


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.lists(_SEG_ENTRY, min_size=1, max_size=4), min_size=1, max_size=6))
def test_segment_rollups_equal_the_rollup_of_the_latest_memberships(
    redis_url: str, batches: list[list[tuple[str, str, int, str, str]]]
) -> None:
    """Both stores keep counters equal to the rollup of each customer's latest membership,
    with at most ``max_values`` (2) plans tracked and the rest as ``(other)``; writing every
    batch again changes nothing."""
    written = [_segment_entries(batch) for batch in batches]
    expected = _segment_reference(written)
    for kind in ("memory", "redis"):

        async def scenario(store: ScoreStore) -> None:
            for entries in written:
                await store.update_indexes(entries)
            assert await _segment_counts(store) == expected
            await store.update_indexes(written[-1])  # a replay of the last batch
            assert await _segment_counts(store) == expected

        on_store(kind, redis_url, scenario)
