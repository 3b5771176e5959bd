"""The batch processor in process, against the in-memory store and a recording publisher:
replay after a crash at every step of the documented order, the conflict and duplicate
rounds, and the outbox order. Every run is compared with a from-scratch fold of the pure
core over the same input (each distinct event applied once, in order)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.adapters.codec import alert_to_json
from stream.config.settings import TopicNames
from stream.core.alerts import Alert, AlertGate
from stream.core.customer import CustomerState, advance
from stream.core.decode import Rejection, decode_event
from stream.core.events import Event, fingerprint
from stream.ports import Commit, Incoming
from stream.worker.dedup import DedupPolicy
from stream.worker.processor import BatchProcessor
from tests.doubles import Crash, CrashingStore, CrashPlan, MemoryScoreStore, RecordingPublisher
from tests.factories import DAY_MS, NOW_MS, default_model, native
from tests.profiles import examples

MODEL = default_model()
TOPICS = TopicNames()
HOUR_MS = 3_600_000
_ROLE_TOPIC = {
    "page_view": TOPICS.clickstream,
    "click": TOPICS.clickstream,
    "conversion": TOPICS.clickstream,
    "app_uninstall": TOPICS.app_installs,
    "app_open": TOPICS.app_installs,
}
_offsets = itertools.count()


def message(kind: str, customer: str, at_ms: int, event_id: str | None = None) -> Incoming:
    """An input message as Kafka would deliver it (partition by customer)."""
    return Incoming(
        _ROLE_TOPIC[kind],
        partition(customer),
        next(_offsets),
        customer.encode(),
        native(kind, customer, at_ms, event_id),
        at_ms,
    )


def garbage(customer: str) -> Incoming:
    """A message the decoder rejects (dead-lettered)."""
    return Incoming(
        TOPICS.clickstream,
        partition(customer),
        next(_offsets),
        customer.encode(),
        b"{not json",
        NOW_MS,
    )


def partition(customer: str) -> int:
    return int(customer[1:]) % 2


@dataclass(frozen=True, slots=True)
class Step:
    """A batch of messages (or, with none, a sweep of partitions 0 and 1) at ``now_ms``."""

    now_ms: int
    batch: tuple[Incoming, ...] = ()
    sweep: bool = False


@dataclass(slots=True)
class Reference:
    """The from-scratch fold of the pure core over the steps."""

    states: dict[str, CustomerState] = field(default_factory=dict)
    due: dict[str, int | None] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
    dead: set[tuple[str, int]] = field(default_factory=set)


def reference(steps: Sequence[Step]) -> Reference:
    """Each distinct event applied once, customers advanced when touched or due."""
    ref, seen = Reference(), set[bytes]()
    for step in steps:
        touched: dict[str, list[Event]] = {}
        if step.sweep:
            touched = {c: [] for c, at in ref.due.items() if at is not None and at <= step.now_ms}
        for m in step.batch:
            decoded = decode_event(
                m.value,
                key=m.key,
                topic_role=TOPICS.inputs[m.topic],
                model=MODEL,
                now_ms=step.now_ms,
                fallback_id=m.source,
            )
            if isinstance(decoded, Rejection):
                ref.dead.add((m.topic, m.offset))
                continue
            fresh = touched.setdefault(decoded.customer_id, [])
            if (mark := fingerprint(decoded)) not in seen:
                seen.add(mark)
                fresh.append(decoded)
        for customer, events in touched.items():
            state = ref.states.get(customer, CustomerState())
            result = advance(MODEL, customer, state, events, step.now_ms)
            ref.states[customer], ref.due[customer] = result.state, result.next_due_ms
            ref.alerts += [a.alert_id for a in result.alerts]
    return ref


@dataclass(slots=True)
class Run:
    """A worker's life over the steps: crashes, restarts and replays."""

    store: MemoryScoreStore = field(default_factory=MemoryScoreStore)
    plan: CrashPlan = field(default_factory=CrashPlan)
    publisher: RecordingPublisher = field(init=False)
    crashes: int = 0
    now_ms: int = NOW_MS
    dedup: DedupPolicy = field(default_factory=DedupPolicy)

    def __post_init__(self) -> None:
        self.publisher = RecordingPublisher(self.plan)

    def processor(self) -> BatchProcessor:
        return BatchProcessor(
            MODEL,
            CrashingStore(self.store, self.plan),
            self.publisher,
            TOPICS,
            clock_ms=lambda: self.now_ms,
            dedup=self.dedup,
        )

    def play(self, steps: Sequence[Step], restart: Sequence[bool] = (True,)) -> None:
        """Run every step until it succeeds; after a crash, either a new process replays
        the step (``restart``) or the same processor retries it (the runner's retry)."""
        choices = itertools.cycle(restart)
        worker = self.processor()
        for step in steps:
            self.now_ms = step.now_ms
            while True:
                try:
                    if step.sweep:
                        asyncio.run(worker.sweep([0, 1]))
                    else:
                        asyncio.run(worker.process(step.batch))
                    break
                except Crash:
                    self.crashes += 1
                    if next(choices):
                        worker = self.processor()

    def alerts(self) -> list[dict[str, object]]:
        return [orjson.loads(m.value) for m in self.publisher.on(TOPICS.alerts)]


def assert_matches(run: Run, ref: Reference) -> None:
    """Store, indexes, published and stored alerts, and dead letters equal the reference."""
    assert run.store.states() == ref.states
    assert run.store.rank == {c: s.score_cp / 100 for c, s in ref.states.items()}
    due = {c: at for part in run.store.due_index.values() for c, at in part.items()}
    assert due == {c: at for c, at in ref.due.items() if at is not None}
    published = [str(a["alert_id"]) for a in run.alerts()]
    assert set(published) == set(ref.alerts), "every alert published at least once, no other"
    assert run.store.stored_alerts == dict.fromkeys(ref.alerts, 1), "each alert stored once"
    assert all(not row.outbox for row in run.store.rows.values()), "every outbox cleared"
    dead = {
        (dict(m.headers)["dlq.topic"].decode(), int(dict(m.headers)["dlq.offset"]))
        for m in run.publisher.on(TOPICS.dlq)
    }
    assert dead == ref.dead
    for customer in ref.states:
        first_seen = list(
            dict.fromkeys(
                (a["occurred_at_ms"], a["alert_id"])
                for a in run.alerts()
                if a["customer_id"] == customer
            )
        )
        assert first_seen == sorted(first_seen), "a customer's alerts go out in order"


def scenario() -> list[Step]:
    """Three customers: one alerts on an event, one on the window, one is dead-lettered at."""
    t0 = NOW_MS
    t1 = t0 + 2 * HOUR_MS
    late = t0 + 31 * DAY_MS
    return [
        Step(
            t0,
            (
                message("page_view", "c0", t0 - HOUR_MS, "a"),
                message("conversion", "c1", t0 - HOUR_MS, "b"),
                message("page_view", "c2", t0 - HOUR_MS, "c"),
            ),
        ),
        Step(
            t1,
            (
                message("app_uninstall", "c0", t1 - 60_000, "d"),
                garbage("c2"),
                message("click", "c1", t1 - 60_000, "e"),
                message("page_view", "c0", t0 - HOUR_MS, "a"),
            ),
        ),
        Step(late, sweep=True),
    ]


def test_the_scenario_alerts_on_an_event_and_on_the_window() -> None:
    """The fixed scenario exercises both alert triggers and a dead letter."""
    steps = scenario()
    ref = reference(steps)
    run = Run()
    run.play(steps)
    assert_matches(run, ref)
    assert {a["trigger"] for a in run.alerts()} == {"event", "window"}
    assert len(run.publisher.on(TOPICS.dlq)) == 1
    assert run.crashes == 0


def _trace() -> list[str]:
    run = Run()
    run.play(scenario())
    return run.plan.trace


TRACE = _trace()


@pytest.mark.parametrize("horizon_ms", [None, 0], ids=["24h fingerprints", "no fingerprints"])
@pytest.mark.parametrize("restart", [True, False], ids=["new process", "same process retries"])
@pytest.mark.parametrize("step", range(len(TRACE)), ids=lambda i: f"{i}-{TRACE[i]}")
def test_a_crash_at_any_step_replays_to_the_reference(
    step: int, restart: bool, horizon_ms: int | None
) -> None:
    """A crash before or after any store or publisher call, then a replay of the batch,
    ends exactly where a crash-free run does; with a fingerprint horizon of zero too, so
    the replay after a crash between the Redis commit and the offset commit is recognised
    by the offset watermarks alone."""
    steps = scenario()
    policy = DedupPolicy() if horizon_ms is None else DedupPolicy(horizon_ms)
    run = Run(plan=CrashPlan(at={step}), dedup=policy)
    run.play(steps, restart=[restart])
    assert run.crashes == 1
    assert_matches(run, reference(steps))


@pytest.mark.parametrize(
    ("point", "alert_copies"),
    [
        ("commit:after", 1),  # after the commit, before the outbox is published
        ("publish:alerts:after", 2),  # published, the outbox not cleared yet: published again
        ("clear_outbox:after", 1),  # before the index update
        ("update_indexes:after", 1),  # before the dead letters are acknowledged
        ("publish:dead_letters:before", 1),
        ("publish:dead_letters:after", 1),  # dead letters out, input not acknowledged
    ],
)
def test_the_documented_crash_points(point: str, alert_copies: int) -> None:
    """The order's promises at each documented point of the batch that alerts and
    dead-letters: the event alert goes out (twice only if it was already out), stored once."""
    dead_at = TRACE.index("publish:dead_letters:before")  # only the second batch has any
    if point.startswith("publish:dead_letters"):
        at = TRACE.index(point)
    else:  # the same point of the second batch: the last one before its dead letters
        at = max(i for i, name in enumerate(TRACE[:dead_at]) if name == point)
    steps = scenario()
    run = Run(plan=CrashPlan(at={at}))
    run.play(steps)
    assert_matches(run, reference(steps))
    event_alerts = [a for a in run.alerts() if a["trigger"] == "event"]
    assert len(event_alerts) == alert_copies
    assert len(run.publisher.on(TOPICS.dlq)) == (2 if point == "publish:dead_letters:after" else 1)


def test_a_conflicting_writer_is_read_back_and_built_upon() -> None:
    """Another writer bumps the version behind a worker's cache: the commit conflicts, the
    worker re-reads the customer and applies its events on top; nothing is lost."""
    store = MemoryScoreStore()
    mine = BatchProcessor(MODEL, store, RecordingPublisher(), TOPICS, clock_ms=lambda: NOW_MS)
    other = BatchProcessor(MODEL, store, RecordingPublisher(), TOPICS, clock_ms=lambda: NOW_MS)
    steps = [
        Step(NOW_MS, (message("page_view", "c0", NOW_MS - 3, "x"),)),
        Step(NOW_MS, (message("click", "c0", NOW_MS - 2, "y"),)),
        Step(NOW_MS, (message("conversion", "c0", NOW_MS - 1, "z"),)),
    ]
    asyncio.run(mine.process(steps[0].batch))
    asyncio.run(other.process(steps[1].batch))  # a zombie of a rebalance, say
    report = asyncio.run(mine.process(steps[2].batch))
    assert mine.metrics.registry.get_sample_value("engagement_store_conflicts_total") == 1
    assert report.scored == 1
    assert store.rows["c0"].version == 3
    assert store.states() == reference(steps).states


def test_a_redelivered_event_is_dropped_and_the_rest_committed_in_one_round() -> None:
    """A redelivered event next to a new one, in a restarted worker (nothing cached): it
    loads the customer, drops exactly the redelivered event (its offset is at or below the
    customer's watermark) and commits the rest, in one round."""
    store = MemoryScoreStore()
    first = message("page_view", "c0", NOW_MS - 2, "x")
    steps = [Step(NOW_MS, (first,)), Step(NOW_MS, (first, message("click", "c0", NOW_MS, "y")))]
    asyncio.run(
        BatchProcessor(MODEL, store, RecordingPublisher(), TOPICS, clock_ms=lambda: NOW_MS).process(
            steps[0].batch
        )
    )
    plan = CrashPlan()
    restarted = BatchProcessor(
        MODEL, CrashingStore(store, plan), RecordingPublisher(), TOPICS, clock_ms=lambda: NOW_MS
    )
    report = asyncio.run(restarted.process(steps[1].batch))
    assert (report.scored, report.duplicates) == (1, 1)
    assert plan.trace.count("commit:before") == 1, "decided against the loaded record"
    assert store.rows["c0"].version == 2
    assert store.states() == reference(steps).states


def test_a_left_over_outbox_goes_out_first_then_the_new_alert() -> None:
    """A crash left an alert in the outbox; the next alert of that customer is published
    after it, in one go, and both leave the outbox."""
    store, publisher = MemoryScoreStore(), RecordingPublisher()
    warm = advance(
        MODEL,
        "c0",
        CustomerState(),
        [Event("w", "c0", "conversion", NOW_MS - DAY_MS)],
        NOW_MS - DAY_MS,
    )
    left_over = {**alert_to_json_stub("c0", NOW_MS - 2 * DAY_MS), "alert_id": "left-over"}
    state = CustomerState(
        warm.state.buckets,
        warm.state.score_cp,
        warm.state.band,
        AlertGate(armed=True, last_alert_ms=NOW_MS - 2 * DAY_MS),
        warm.state.updated_ms,
    )
    asyncio.run(
        store.commit([Commit("c0", 0, state, warm.breakdown, 0, MODEL.version, outbox=[left_over])])
    )
    processor = BatchProcessor(MODEL, store, publisher, TOPICS, clock_ms=lambda: NOW_MS)
    asyncio.run(processor.process([message("app_uninstall", "c0", NOW_MS - 5, "u")]))
    ids = [orjson.loads(m.value)["alert_id"] for m in publisher.on(TOPICS.alerts)]
    assert ids[0] == "left-over" and len(ids) == 2
    assert not store.rows["c0"].outbox


def alert_to_json_stub(customer: str, at_ms: int) -> dict[str, object]:
    """A published alert document of ``customer`` at ``at_ms`` (contents irrelevant here)."""
    return alert_to_json(
        Alert(
            "x",
            "churn_risk_entered",
            customer,
            "very_disengaged",
            "churn_risk",
            5.0,
            -35.0,
            at_ms,
            "event",
            (),
            MODEL.version,
        )
    )


_KINDS = ["page_view", "click", "conversion", "app_uninstall", "app_open"]


@st.composite
def lives(draw: st.DrawFn) -> tuple[list[Step], set[int], list[bool]]:
    """Random batches (with redeliveries and garbage) and sweeps over a few days, then a
    sweep after the window; random crash points; restart or retry after each crash."""
    steps: list[Step] = []
    sent: list[Incoming] = []
    now = NOW_MS
    for _ in range(draw(st.integers(1, 6))):
        now += draw(st.integers(0, 30)) * HOUR_MS
        if draw(st.booleans()) and steps:
            steps.append(Step(now, sweep=True))
            continue
        fresh = [
            garbage(f"c{c}")
            if kind is None
            else message(
                kind, f"c{c}", now - age * HOUR_MS, f"e{next(_offsets)}" if named else None
            )
            for c, kind, age, named in draw(
                st.lists(
                    st.tuples(
                        st.integers(0, 3),
                        st.sampled_from([*_KINDS, None]),
                        st.integers(0, 48),
                        st.booleans(),
                    ),
                    min_size=1,
                    max_size=8,
                )
            )
        ]
        again = draw(st.lists(st.sampled_from(sent), max_size=4)) if sent else []
        sent += fresh
        steps.append(Step(now, tuple(draw(st.permutations([*fresh, *again])))))
    steps.append(Step(now + 31 * DAY_MS, sweep=True))
    crashes = draw(st.sets(st.integers(0, 40), max_size=4))
    restart = draw(st.lists(st.booleans(), min_size=1, max_size=4))
    return steps, crashes, restart


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lives())
def test_random_crashes_and_redeliveries_give_the_reference(
    life: tuple[list[Step], set[int], list[bool]],
) -> None:
    """Whatever crashes and redeliveries happen, the store ends at the from-scratch state,
    each alert is published at least once and stored exactly once, nothing else goes out."""
    steps, crashes, restart = life
    run = Run(plan=CrashPlan(at=crashes))
    run.play(steps, restart)
    assert_matches(run, reference(steps))


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lives())
def test_redeliveries_after_crashes_need_no_fingerprint(
    life: tuple[list[Step], set[int], list[bool]],
) -> None:
    """The same lives with a fingerprint horizon of zero: every redelivery, after a crash
    between the Redis commit and the offset commit or hours later, is dropped by its
    offset watermark alone, and the store still ends at the reference."""
    steps, crashes, restart = life
    run = Run(plan=CrashPlan(at=crashes), dedup=DedupPolicy(horizon_ms=0))
    run.play(steps, restart)
    assert_matches(run, reference(steps))


def _segment_call(
    customer: str, message_id: str, at_ms: int, kind: str, **fields: object
) -> Incoming:
    doc = {"type": kind, "userId": customer, "messageId": message_id, "timestamp": at_ms, **fields}
    return Incoming(TOPICS.clickstream, 0, next(_offsets), customer.encode(), orjson.dumps(doc),
                    at_ms)  # fmt: skip


def test_segment_workspace_ignores_unmapped_and_stores_traits_and_account_once() -> None:
    """identify/group calls are stored (profiled), unmapped calls are ignored and counted,
    nothing is dead-lettered, and replaying the batch changes nothing."""
    store, publisher = MemoryScoreStore(), RecordingPublisher()
    worker = BatchProcessor(MODEL, store, publisher, TOPICS, clock_ms=lambda: NOW_MS)
    batch = [
        _segment_call("josé", "i1", NOW_MS - 5, "identify", traits={"plan": "pro", "n": 1}),
        _segment_call("josé", "i0", NOW_MS - 9, "identify", traits={"plan": "free", "x": 2}),
        _segment_call("josé", "g1", NOW_MS - 4, "group", groupId=77),
        _segment_call("josé", "t1", NOW_MS - 3, "track", event="Internal Thing"),
        _segment_call("josé", "a1", NOW_MS - 3, "alias", previousId="anon"),
        _segment_call("josé", "t2", NOW_MS - 2, "track", event="Button Clicked"),
    ]
    report = asyncio.run(worker.process(batch))
    assert (report.dead_lettered, report.ignored, report.profiled, report.scored) == (0, 2, 3, 1)
    assert publisher.sent == [] or all(m.topic != TOPICS.dlq for m in publisher.sent)
    row = store.rows["josé"]
    assert row.profile.traits == {"plan": "pro", "n": 1, "x": 2}  # newest plan wins
    assert row.profile.account == "77"
    only_click = MemoryScoreStore()
    alone = BatchProcessor(MODEL, only_click, RecordingPublisher(), TOPICS, clock_ms=lambda: NOW_MS)
    asyncio.run(alone.process([batch[-1]]))
    assert row.state == only_click.rows["josé"].state  # profile calls never move the score
    metrics = worker.metrics.render().decode()
    assert 'engagement_ignored_total{reason="unmapped_track"} 1.0' in metrics
    assert 'engagement_ignored_total{reason="unscored_call"} 1.0' in metrics
    assert 'outcome="profiled"' in metrics
    version = row.version
    fresh = BatchProcessor(MODEL, store, publisher, TOPICS, clock_ms=lambda: NOW_MS)
    again = asyncio.run(fresh.process(batch))  # a replay after a crash
    assert again.profiled == 0 and again.duplicates == 4
    assert store.rows["josé"].version == version and store.rows["josé"].profile == row.profile
